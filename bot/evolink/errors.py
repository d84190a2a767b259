"""Typed errors of the EvoLink client and the mapping from HTTP answers to them.

Every message is safe to show a moderator: it is built from the HTTP status and the
provider's own short error text (truncated, with the API key redacted), never from
raw bodies such as a proxy's HTML page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar

from pydantic import ValidationError

from .models import ApiErrorBody

_MAX_MESSAGE_CHARS = 300
_REDACTED = "[redacted]"


class EvolinkError(Exception):
    """Base class. ``retryable`` says whether repeating an *idempotent* request may help."""

    retryable: ClassVar[bool] = False
    default_message: ClassVar[str] = "EvoLink request failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.status = status
        self.code = code
        self.error_type = error_type
        self.param = param
        # Seconds the provider asked us to wait (Retry-After or legacy fallback_suggestion).
        self.retry_after = retry_after
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [f"HTTP {self.status}"] if self.status is not None else []
        if self.code:
            parts.append(self.code)
        prefix = f"[{' '.join(parts)}] " if parts else ""
        return f"{prefix}{self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r})"
        )


class InvalidRequest(EvolinkError):
    default_message = "EvoLink rejected the request as invalid"


class AuthenticationFailed(EvolinkError):
    default_message = "EvoLink rejected the API key"


class InsufficientCredits(EvolinkError):
    default_message = "The EvoLink account has insufficient credits"


class AccessDenied(EvolinkError):
    default_message = "The EvoLink API key may not use this model or task"


class NotFound(EvolinkError):
    default_message = "EvoLink could not find the task or model"


class RateLimited(EvolinkError):
    retryable = True
    default_message = "EvoLink rate limit exceeded"


class ServerError(EvolinkError):
    """HTTP 500 (or an unlisted 5xx) on a GET. A create raises SubmissionOutcomeUnknown."""

    retryable = True
    default_message = "EvoLink internal server error"


class UpstreamUnavailable(EvolinkError):
    retryable = True
    default_message = "EvoLink or its upstream model service is unavailable"


class ProviderUnreachable(EvolinkError):
    """No HTTP answer. On create this is raised only when nothing was sent."""

    retryable = True
    default_message = "Could not reach EvoLink"


class MalformedResponse(EvolinkError):
    default_message = "EvoLink sent a response that could not be understood"


class SubmissionOutcomeUnknown(EvolinkError):
    """The create request left this process but no usable answer came back.

    The task may exist and be billed. Never retry automatically: resubmitting could
    charge twice (DESIGN.md §4). ``status`` is the HTTP status when one arrived (a
    proxy's 5xx, a 2xx with an unreadable body), ``None`` after a timeout or a dropped
    connection; ``body_excerpt`` is the start of that answer's body for the logs
    (whitespace collapsed, the key redacted, at most _MAX_EXCERPT_CHARS), never shown
    to members. The task id, if the provider made one, is not known to us.
    """

    default_message = "EvoLink may or may not have created the task (no usable answer)"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        body_excerpt: str | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.body_excerpt = body_excerpt or None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, message={self.message!r}, "
            f"body_excerpt={self.body_excerpt!r})"
        )


_BY_STATUS: Mapping[int, type[EvolinkError]] = {
    400: InvalidRequest,
    413: InvalidRequest,
    401: AuthenticationFailed,
    402: InsufficientCredits,
    403: AccessDenied,
    404: NotFound,
    429: RateLimited,
    500: ServerError,
    502: UpstreamUnavailable,
    503: UpstreamUnavailable,
}

# HTTP answers to a create that provably created nothing. The provider documents
# 400/401/402/403 (and, on its legacy pages, 404/413) as refusals; a proxy in front of it
# answers these only for requests it refused to forward. 429 is also "nothing created"
# but is retried, not a refusal. Every other status on create (any 5xx, 3xx, an unlisted
# 4xx such as 408) may come after the provider created the task: an uncertain outcome.
CREATE_REFUSAL_STATUSES: frozenset[int] = frozenset({400, 401, 402, 403, 404, 413})
_MAX_EXCERPT_CHARS = 200

_RETRY_AFTER_HINT = re.compile(r"retry\s+after\s+(\d+(?:\.\d+)?)\s*(?:s\b|sec|second)", re.I)


def error_class_for_status(status: int) -> type[EvolinkError]:
    """HTTP status decides the class; the body only adds detail (§4.1 envelopes differ)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 500 <= status <= 599:
        # 501/504/...: a proxy or gateway failure (create_error_from_response handles create).
        return ServerError
    if 400 <= status <= 499:
        return InvalidRequest
    return MalformedResponse


def parse_error_body(raw: bytes) -> ApiErrorBody | None:
    """Read either envelope; ``None`` when the body is not a JSON error object."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    inner = data.get("error", data)
    if isinstance(inner, str):
        inner = {"message": inner}
    if not isinstance(inner, dict):
        return None
    try:
        return ApiErrorBody.model_validate(inner)
    except ValidationError:
        return None


def parse_retry_after(headers: Mapping[str, str], body: ApiErrorBody | None) -> float | None:
    """Seconds to wait: ``Retry-After`` (seconds or HTTP date), else the legacy hint."""
    header = headers.get("Retry-After")
    if header:
        header = header.strip()
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    if body is not None and body.fallback_suggestion:
        match = _RETRY_AFTER_HINT.search(body.fallback_suggestion)
        if match:
            return float(match.group(1))
    return None


def sanitize_message(text: str, secret: str | None, limit: int = _MAX_MESSAGE_CHARS) -> str:
    """Strip the API key (should the provider echo it) and bound the length."""
    if secret:
        text = text.replace(secret, _REDACTED)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def error_from_response(
    status: int, raw: bytes, headers: Mapping[str, str], *, secret: str | None = None
) -> EvolinkError:
    """Build the typed error for a non-2xx answer."""
    body = parse_error_body(raw)
    cls = error_class_for_status(status)
    if body is None:
        # A proxy's HTML page or an empty body: the status alone still tells us what to do.
        return cls(
            f"{cls.default_message} (HTTP {status}, unreadable error body)",
            status=status,
            retry_after=parse_retry_after(headers, None),
        )
    message = sanitize_message(body.message, secret) if body.message else None
    return cls(
        message,
        status=status,
        code=body.string_code,
        error_type=body.type,
        param=body.param,
        retry_after=parse_retry_after(headers, body),
    )


def body_excerpt(raw: bytes, secret: str | None) -> str | None:
    """The start of a body for the logs: decoded leniently, key redacted, bounded."""
    # The whole (already capped) body is decoded so a key cut in half cannot slip past.
    text = sanitize_message(raw.decode("utf-8", errors="replace"), secret, _MAX_EXCERPT_CHARS)
    return text or None


def create_error_from_response(
    status: int, raw: bytes, headers: Mapping[str, str], *, secret: str | None = None
) -> EvolinkError:
    """A non-2xx answer to a create: a definite refusal, a 429, or an uncertain outcome.

    The status alone decides (whoever wrote the body): a refusal status means the request
    was refused whether the body is EvoLink's envelope or a proxy's HTML page.
    """
    if status == 429 or status in CREATE_REFUSAL_STATUSES:
        return error_from_response(status, raw, headers, secret=secret)
    return SubmissionOutcomeUnknown(
        f"EvoLink create answered HTTP {status}, which may come after the task was created",
        status=status,
        body_excerpt=body_excerpt(raw, secret),
    )
