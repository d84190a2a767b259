"""HTTP error bodies in both envelope generations of EVOLINK_API.md §4.1.

`current` (since 2026-03-06): `{"error": {"code": "<string>", "message", "type"}}`, plus
`param` only on the task-query 400. `legacy`: `code` is the integer HTTP status and the
body may carry `param` / `fallback_suggestion` where the legacy table lists them.

Rows marked "inferred" are statuses the current docs do not list for that endpoint (the
simulator can still be told to inject them); their names follow the legacy table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

from aiohttp import web

from .contract import Envelope

Endpoint = Literal["create", "query", "credits"]

_BILLING_URL = "https://evolink.ai/dashboard/billing"


@dataclass(frozen=True)
class ErrorSpec:
    code: str
    type: str
    message: str
    legacy_type: str
    legacy_message: str
    legacy_param: str | None = None
    legacy_fallback: str | None = None
    param: str | None = None  # emitted in both envelopes


_CREATE: dict[int, ErrorSpec] = {
    400: ErrorSpec(
        "invalid_request",
        "invalid_request_error",
        "Invalid request parameters",
        "invalid_request_error",
        "Invalid request parameter",
    ),
    401: ErrorSpec(
        "unauthorized",
        "authentication_error",
        "Invalid or expired token",
        "authentication_error",
        "Invalid or expired token",
    ),
    402: ErrorSpec(
        "insufficient_quota",
        "insufficient_quota",
        "Insufficient quota. Please top up your account.",
        "insufficient_quota_error",
        "Insufficient quota",
        legacy_fallback=_BILLING_URL,
    ),
    403: ErrorSpec(
        "model_access_denied",
        "invalid_request_error",
        "Token does not have access to model: {model}",
        "permission_error",
        "Access denied for this model",
        legacy_param="model",
    ),
    404: ErrorSpec(  # inferred for the current envelope
        "model_not_found",
        "invalid_request_error",
        "Specified model not found",
        "not_found_error",
        "Specified model not found",
        legacy_param="model",
        legacy_fallback="{model}",
    ),
    413: ErrorSpec(  # inferred for the current envelope
        "request_too_large",
        "invalid_request_error",
        "Request body too large",
        "request_too_large_error",
        "Request body too large",
    ),
    429: ErrorSpec(
        "rate_limit_exceeded",
        "rate_limit_error",
        "Too many requests, please try again later",
        "rate_limit_error",
        "Rate limit exceeded",
        legacy_fallback="retry after 60 seconds",
    ),
    500: ErrorSpec(
        "internal_error",
        "api_error",
        "Internal server error",
        "internal_server_error",
        "Internal server error",
        legacy_fallback="try again later",
    ),
    502: ErrorSpec(  # inferred for the current envelope
        "upstream_error",
        "api_error",
        "Upstream AI service unavailable",
        "upstream_error",
        "Upstream AI service unavailable",
        legacy_fallback="try different model",
    ),
    503: ErrorSpec(
        "service_unavailable",
        "api_error",
        "No available channel for the requested model",
        "service_unavailable_error",
        "Service temporarily unavailable",
        legacy_fallback="retry after 30 seconds",
    ),
}

_QUERY: dict[int, ErrorSpec] = {
    400: ErrorSpec(
        "invalid_task_id",
        "invalid_request_error",
        "Invalid task ID format, must start with 'task-unified-'",
        "invalid_request_error",
        "Invalid task ID format, must start with 'task-unified-'",
        param="task_id",
    ),
    401: ErrorSpec(
        "unauthorized",
        "authentication_error",
        "Authentication required",
        "authentication_error",
        "Invalid or expired token",
    ),
    402: ErrorSpec(
        "quota_exceeded",
        "insufficient_quota",
        "Insufficient quota, please top up your account.",
        "insufficient_quota_error",
        "Insufficient quota",
        legacy_fallback=_BILLING_URL,
    ),
    403: ErrorSpec(
        "permission_denied",
        "invalid_request_error",
        "You don't have permission to access this task",
        "permission_error",
        "You don't have permission to access this task",
        legacy_param="task_id",
    ),
    404: ErrorSpec(
        "task_not_found",
        "invalid_request_error",
        "The requested task could not be found",
        "not_found_error",
        "Task not found or expired",
        legacy_param="task_id",
    ),
    429: ErrorSpec(
        "rate_limit_exceeded",
        "evo_api_error",
        "Rate limit exceeded",
        "rate_limit_error",
        "Rate limit exceeded",
        legacy_fallback="retry after 60 seconds",
    ),
    500: ErrorSpec(
        "internal_error",
        "api_error",
        "Failed to retrieve task status",
        "internal_server_error",
        "Internal server error",
        legacy_fallback="try again later",
    ),
    502: ErrorSpec(  # inferred for the current envelope
        "upstream_error",
        "api_error",
        "Upstream AI service unavailable",
        "upstream_error",
        "Upstream AI service unavailable",
        legacy_fallback="try again later",
    ),
    503: ErrorSpec(  # inferred for the current envelope
        "service_unavailable",
        "api_error",
        "Service temporarily unavailable",
        "service_unavailable_error",
        "Service temporarily unavailable",
        legacy_fallback="retry after 30 seconds",
    ),
}

_TABLES: dict[Endpoint, dict[int, ErrorSpec]] = {
    "create": _CREATE,
    "query": _QUERY,
    "credits": _CREATE,  # §3: the credits page documents legacy-style errors only
}


def _fallback_spec(status: int) -> ErrorSpec:
    """Any other injected status: generic names, the HTTP reason as message."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    kind = "api_error" if status >= 500 else "invalid_request_error"
    return ErrorSpec(f"http_{status}", kind, reason, kind, reason)


def error_body(
    endpoint: Endpoint,
    status: int,
    envelope: Envelope,
    *,
    detail: str | None = None,
    model: str = "kling-o1-video-edit",
) -> dict[str, Any]:
    """Build the JSON error body; `detail` is appended to the table message (used by 400s)."""
    spec = _TABLES[endpoint].get(status) or _fallback_spec(status)
    if endpoint == "credits":
        envelope = "legacy"
    legacy = envelope == "legacy"
    template = spec.legacy_message if legacy else spec.message
    # Documented key order: code, message, type, then the optional extras.
    error: dict[str, Any] = {
        "code": status if legacy else spec.code,
        "message": f"{template}: {detail}" if detail else template.format(model=model),
        "type": spec.legacy_type if legacy else spec.type,
    }
    param = spec.param or (spec.legacy_param if legacy else None)
    if param is not None:
        error["param"] = param
    if legacy and spec.legacy_fallback is not None:
        error["fallback_suggestion"] = spec.legacy_fallback.format(model=model)
    return {"error": error}


def error_response(
    endpoint: Endpoint,
    status: int,
    envelope: Envelope,
    *,
    detail: str | None = None,
    model: str = "kling-o1-video-edit",
    retry_after: float | None = None,
) -> web.Response:
    headers: dict[str, str] = {}
    if retry_after is not None:
        # RFC 9110 delta-seconds are whole numbers; round up so the hint is never too short.
        headers["Retry-After"] = str(max(0, math.ceil(retry_after)))
    body = error_body(endpoint, status, envelope, detail=detail, model=model)
    return web.json_response(body, status=status, headers=headers)
