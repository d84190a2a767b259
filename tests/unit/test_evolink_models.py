"""Parsing of the EvoLink contract (shared/EVOLINK_API.md) and the error/retry mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from pydantic import ValidationError
from tenacity import RetryCallState

from bot.evolink import (
    AccessDenied,
    AuthenticationFailed,
    Credits,
    EditTaskRequest,
    EvolinkError,
    InsufficientCredits,
    InvalidRequest,
    MalformedResponse,
    NotFound,
    ProviderUnreachable,
    RateLimited,
    ServerError,
    SubmissionOutcomeUnknown,
    Task,
    TaskStatus,
    UpstreamUnavailable,
)
from bot.evolink.errors import create_error_from_response, error_from_response, parse_retry_after
from bot.evolink.retry import RetryAfterAwareWait, create_may_retry, get_may_retry

# §1.2, verbatim.
CREATE_EXAMPLE: dict[str, Any] = {
    "created": 1757169743,
    "id": "task-unified-1757169743-7cvnl5zw",
    "model": "kling-o1-video-edit",
    "object": "video.generation.task",
    "progress": 0,
    "status": "pending",
    "task_info": {"can_cancel": True, "estimated_time": 300, "video_duration": 9},
    "type": "video",
    "usage": {"billing_rule": "per_call", "credits_reserved": 7, "user_group": "default"},
}

COMPLETED_EXAMPLE = {
    "id": "task-unified-1757169743-7cvnl5zw",
    "object": "video.generation.task",
    "created": 1757169743,
    "model": "kling-o1-video-edit",
    "status": "completed",
    "progress": 100,
    "type": "video",
    "results": ["https://cdn.example/xxx.mp4"],
    "task_info": {"can_cancel": False},
}

FAILED_EXAMPLE = {
    "id": "task-unified-1757169743-7cvnl5zw",
    "object": "video.generation.task",
    "created": 1757169743,
    "model": "kling-o1-video-edit",
    "status": "failed",
    "progress": 0,
    "type": "video",
    "error": {
        "code": "content_policy_violation",
        "message": "Content policy violation.\n…",
        "type": "task_error",
    },
    "task_info": {"can_cancel": False},
}

CREDITS_EXAMPLE = {
    "data": {
        "token": {
            "remaining_credits": 99416.4429,
            "unlimited_credits": False,
            "used_credits": 583.5571,
        },
        "user": {"remaining_credits": 1095.3996, "used_credits": 135.9048},
    },
    "message": "",
    "success": True,
}


def _json(data: Any) -> bytes:
    return json.dumps(data).encode()


# --- tasks ---------------------------------------------------------------------------


def test_create_example_parses() -> None:
    task = Task.model_validate_json(_json(CREATE_EXAMPLE))
    assert task.id == "task-unified-1757169743-7cvnl5zw"
    assert task.status is TaskStatus.PENDING
    assert task.created == 1757169743
    assert task.task_info.estimated_time == 300
    assert task.task_info.video_duration == 9
    assert task.usage is not None and task.usage.credits_reserved == 7
    assert not task.is_terminal
    assert task.result_url is None


def test_completed_example_exposes_result_url() -> None:
    task = Task.model_validate(COMPLETED_EXAMPLE)
    assert task.is_terminal
    assert task.result_url == "https://cdn.example/xxx.mp4"
    assert task.usage is None  # not part of the query schema (§2.1)


def test_failed_example_keeps_task_error() -> None:
    task = Task.model_validate(FAILED_EXAMPLE)
    assert task.status is TaskStatus.FAILED and task.is_terminal
    assert task.error is not None
    assert task.error.code == "content_policy_violation"
    assert task.error.type == "task_error"
    assert not task.error.retryable
    assert task.result_url is None


def test_processing_minimal_shape() -> None:
    task = Task.model_validate({"id": "task-unified-1-a", "status": "processing", "progress": 45})
    assert task.status is TaskStatus.PROCESSING
    assert task.progress == 45
    assert task.task_info.can_cancel is None
    assert task.results == []


def test_unknown_fields_are_ignored() -> None:
    body = {
        **CREATE_EXAMPLE,
        "brand_new": {"x": 1},
        "usage": {**CREATE_EXAMPLE["usage"], "estimated_cost": 0.1},  # old quickstart field
        "task_info": {"can_cancel": True, "queue_position": 3},
    }
    task = Task.model_validate_json(_json(body))
    assert task.id == CREATE_EXAMPLE["id"]


def test_unknown_status_is_kept_and_not_terminal() -> None:
    task = Task.model_validate({"id": "task-unified-1-a", "status": "queued_upstream"})
    assert task.status is TaskStatus.UNKNOWN
    assert task.status_raw == "queued_upstream"
    assert not task.is_terminal


def test_cancelled_status_is_terminal() -> None:
    task = Task.model_validate({"id": "task-unified-1-a", "status": "cancelled"})
    assert task.status is TaskStatus.CANCELLED and task.is_terminal


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(-5, 0), (150, 100), (45.6, 46), (None, 0), ("37", 37), ("abc", 0), (float("nan"), 0)],
)
def test_progress_is_clamped(raw: Any, expected: int) -> None:
    task = Task.model_validate({"id": "task-unified-1-a", "status": "processing", "progress": raw})
    assert task.progress == expected


def test_null_collections_and_integer_error_code_are_tolerated() -> None:
    task = Task.model_validate(
        {
            "id": "task-unified-1-a",
            "status": "failed",
            "results": None,
            "task_info": None,
            "error": {"code": 500, "message": None},
        }
    )
    assert task.results == [] and task.task_info.can_cancel is None
    assert task.error is not None and task.error.code == "500" and task.error.message == ""


def test_usage_on_query_with_extra_fields_is_kept() -> None:
    body = {
        **COMPLETED_EXAMPLE,
        "task_info": {"can_cancel": False, "video_duration": 12},
        "usage": {
            "billing_rule": "per_second",
            "credits_reserved": 144.5,
            "user_group": "vip",
            "estimated_cost": 0.42,
        },
    }
    task = Task.model_validate_json(_json(body))
    assert task.usage is not None
    assert task.usage.billing_rule == "per_second" and task.usage.user_group == "vip"
    assert task.credits_reserved == 144.5 and task.video_duration == 12
    # The legacy dollar figure survives for whoever records the provider's side.
    assert task.usage.model_extra == {"estimated_cost": 0.42}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"usage": None, "task_info": None},
        {"usage": {}, "task_info": {}},
        {"usage": "per_second", "task_info": ["can_cancel"]},  # garbled: dropped, logged
        {"usage": {"credits_reserved": "lots"}, "task_info": {"video_duration": "long"}},
    ],
)
def test_usage_and_duration_may_be_absent_or_garbled(extra: dict[str, Any]) -> None:
    # A create answer must stay readable (it carries the id of a paid task) even when
    # the informational parts are missing or odd.
    body = {"id": "task-unified-1-a", "status": "pending", **extra}
    task = Task.model_validate_json(_json(body))
    assert task.id == "task-unified-1-a"
    assert task.credits_reserved is None and task.video_duration is None


@pytest.mark.parametrize("results", [{}, {"results": []}, {"results": None}])
def test_completed_without_results_parses(results: dict[str, Any]) -> None:
    body = {k: v for k, v in COMPLETED_EXAMPLE.items() if k != "results"} | results
    task = Task.model_validate_json(_json(body))
    assert task.status is TaskStatus.COMPLETED and task.is_terminal
    assert task.results == [] and task.result_url is None


def test_bare_result_string_is_one_result() -> None:
    task = Task.model_validate({**COMPLETED_EXAMPLE, "results": "https://cdn.example/a.mp4"})
    assert task.result_url == "https://cdn.example/a.mp4"


def test_retryable_task_error_codes() -> None:
    task = Task.model_validate(
        {"id": "task-unified-1-a", "status": "failed", "error": {"code": "service_error"}}
    )
    assert task.error is not None and task.error.retryable


def test_task_without_id_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Task.model_validate({"status": "pending"})


# --- requests ------------------------------------------------------------------------


def _request(**overrides: Any) -> EditTaskRequest:
    fields: dict[str, Any] = {
        "model": "kling-o1-video-edit",
        "prompt": "make it snow",
        "video_url": "https://media.example/in.mp4",
    }
    return EditTaskRequest(**(fields | overrides))


def test_payload_minimal_shape() -> None:
    assert _request().to_payload() == {
        "model": "kling-o1-video-edit",
        "prompt": "make it snow",
        "video_urls": ["https://media.example/in.mp4"],
        "keep_original_sound": True,
    }


def test_payload_full_shape_never_has_aspect_ratio() -> None:
    payload = _request(
        image_urls=["https://media.example/a.png"],
        keep_original_sound=False,
        callback_url="https://bot.example/cb/secret",
    ).to_payload()
    assert payload["image_urls"] == ["https://media.example/a.png"]
    assert payload["keep_original_sound"] is False
    assert payload["callback_url"] == "https://bot.example/cb/secret"
    assert "aspect_ratio" not in payload


def test_request_refuses_aspect_ratio() -> None:
    with pytest.raises(ValidationError):
        _request(aspect_ratio="16:9")


@pytest.mark.parametrize(
    "overrides",
    [
        {"prompt": ""},
        {"prompt": " \n\t "},
        {"prompt": "x" * 5001},
        {"image_urls": [f"https://media.example/{i}.png" for i in range(5)]},
        {"video_url": ""},
    ],
)
def test_request_bounds(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _request(**overrides)


def test_prompt_of_exactly_5000_chars_is_allowed() -> None:
    assert len(_request(prompt="é" * 5000).to_payload()["prompt"]) == 5000


# --- credits -------------------------------------------------------------------------


def test_credits_example_parses() -> None:
    credits = Credits.model_validate_json(_json(CREDITS_EXAMPLE))
    assert credits.success is True and credits.message == ""
    assert credits.remaining_credits == pytest.approx(99416.4429)
    assert not credits.unlimited
    token, user = credits.data.token, credits.data.user
    assert token is not None and token.used_credits == pytest.approx(583.5571)
    assert user is not None and user.remaining_credits == pytest.approx(1095.3996)
    # The account holds less than the key may spend: the account is the limit.
    assert credits.spendable_credits == pytest.approx(1095.3996)


@pytest.mark.parametrize(
    ("body", "remaining", "spendable", "unlimited"),
    [
        ({"token": {"remaining_credits": 5}}, 5, 5, False),
        ({"success": True, "data": None}, None, None, False),
        ({"data": {"user": {"remaining_credits": 12.5}}}, None, 12.5, False),
        (
            {"success": True, "data": {"token": {"unlimited_credits": True}}, "extra": 1},
            None,
            None,
            True,
        ),
        (
            {
                "data": {
                    "token": {"remaining_credits": 0, "unlimited_credits": True, "new": 1},
                    "user": {"remaining_credits": "40", "used_credits": 2, "more": {}},
                    "team": {},
                }
            },
            None,
            40,
            True,
        ),
        (
            {"data": {"token": {"remaining_credits": 3}, "user": {"remaining_credits": 9}}},
            3,
            3,
            False,
        ),
    ],
)
def test_credits_tolerant_shapes(
    body: dict[str, Any], remaining: float | None, spendable: float | None, unlimited: bool
) -> None:
    credits = Credits.model_validate(body)
    assert credits.remaining_credits == remaining
    assert credits.spendable_credits == spendable
    assert credits.unlimited is unlimited


# --- HTTP errors ---------------------------------------------------------------------

LEGACY = {
    400: ("invalid_request_error", "Invalid request parameter", None),
    401: ("authentication_error", "Invalid or expired token", None),
    402: ("insufficient_quota_error", "Insufficient quota", "https://evolink.ai/dashboard/billing"),
    403: ("permission_error", "Access denied for this model", None),
    404: ("not_found_error", "Task not found or expired", None),
    413: ("request_too_large_error", "Request body too large", None),
    429: ("rate_limit_error", "Rate limit exceeded", "retry after 60 seconds"),
    500: ("internal_server_error", "Internal server error", "try again later"),
    502: ("upstream_error", "Upstream AI service unavailable", "try different model"),
    503: ("service_unavailable_error", "Service temporarily unavailable", "retry after 30 seconds"),
}
CURRENT = {
    400: ("invalid_request", "invalid_request_error"),
    401: ("unauthorized", "authentication_error"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("model_access_denied", "invalid_request_error"),
    404: ("task_not_found", "invalid_request_error"),
    429: ("rate_limit_exceeded", "rate_limit_error"),
    500: ("internal_error", "api_error"),
    503: ("service_unavailable", "api_error"),
}
EXPECTED_CLASS: dict[int, type[EvolinkError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    402: InsufficientCredits,
    403: AccessDenied,
    404: NotFound,
    413: InvalidRequest,
    429: RateLimited,
    500: ServerError,
    502: UpstreamUnavailable,
    503: UpstreamUnavailable,
}


@pytest.mark.parametrize("status", sorted(LEGACY))
def test_legacy_envelope(status: int) -> None:
    err_type, message, fallback = LEGACY[status]
    body = {"error": {"code": status, "message": message, "type": err_type, "param": "model"}}
    if fallback:
        body["error"]["fallback_suggestion"] = fallback
    exc = error_from_response(status, _json(body), {})
    assert type(exc) is EXPECTED_CLASS[status]
    assert exc.status == status
    assert exc.code is None  # legacy codes only repeat the HTTP status
    assert exc.error_type == err_type and exc.param == "model"
    assert exc.message == message


@pytest.mark.parametrize("status", sorted(CURRENT))
def test_current_envelope(status: int) -> None:
    code, err_type = CURRENT[status]
    body = {"error": {"code": code, "message": "Something", "type": err_type}}
    exc = error_from_response(status, _json(body), {})
    assert type(exc) is EXPECTED_CLASS[status]
    assert exc.code == code and exc.error_type == err_type


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (502, UpstreamUnavailable),
        (503, UpstreamUnavailable),
        (500, ServerError),
        (504, ServerError),
        (429, RateLimited),
        (418, InvalidRequest),
        (302, MalformedResponse),
    ],
)
@pytest.mark.parametrize("raw", [b"<html><body>Bad Gateway</body></html>", b"", b"[1, 2]"])
def test_unreadable_error_body_maps_by_status(
    status: int, cls: type[EvolinkError], raw: bytes
) -> None:
    exc = error_from_response(status, raw, {})
    assert type(exc) is cls
    assert exc.status == status
    assert "<html>" not in exc.message


def test_retry_after_sources() -> None:
    legacy = {
        "error": {"code": 429, "message": "m", "fallback_suggestion": "retry after 60 seconds"}
    }
    assert error_from_response(429, _json(legacy), {}).retry_after == 60
    # The header wins over the body hint.
    assert error_from_response(429, _json(legacy), {"Retry-After": "2"}).retry_after == 2
    assert error_from_response(429, b"busy", {"Retry-After": "1.5"}).retry_after == 1.5
    assert error_from_response(429, b"", {}).retry_after is None
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    from_date = parse_retry_after({"Retry-After": future}, None)
    assert from_date is not None and 100 < from_date <= 120
    assert parse_retry_after({"Retry-After": "soon"}, None) is None


def test_error_text_never_contains_the_key() -> None:
    key = "sk-evo-SECRET123"
    body = {"error": {"code": "unauthorized", "message": f"Invalid token {key}" + " pad" * 200}}
    exc = error_from_response(401, _json(body), {}, secret=key)
    for text in (str(exc), repr(exc), exc.message):
        assert key not in text
    assert len(exc.message) <= 300


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequest),
        (401, AuthenticationFailed),
        (402, InsufficientCredits),
        (403, AccessDenied),
        (404, NotFound),
        (413, InvalidRequest),
        (429, RateLimited),
    ],
)
@pytest.mark.parametrize(
    "raw", [b"<html>Forbidden</html>", b"", _json({"error": {"code": "x", "message": "m"}})]
)
def test_create_refusals_keep_their_class(status: int, cls: type[EvolinkError], raw: bytes) -> None:
    assert type(create_error_from_response(status, raw, {})) is cls


@pytest.mark.parametrize("status", [500, 501, 502, 503, 504, 520, 301, 304, 405, 408, 409, 422])
def test_other_create_answers_are_uncertain(status: int) -> None:
    key = "sk-evo-SECRET123"
    raw = b"<html>\n  <title>Bad   Gateway</title> " + key.encode() + b"x" * 5000 + b"</html>"
    exc = create_error_from_response(status, raw, {}, secret=key)
    assert type(exc) is SubmissionOutcomeUnknown
    assert exc.status == status and not exc.retryable
    assert exc.body_excerpt is not None
    assert exc.body_excerpt.startswith("<html> <title>Bad Gateway</title> [redacted]")
    assert len(exc.body_excerpt) == 200
    for text in (str(exc), repr(exc), exc.body_excerpt):
        assert key not in text
    empty = create_error_from_response(status, b"", {})
    assert isinstance(empty, SubmissionOutcomeUnknown) and empty.body_excerpt is None


# --- retry policy --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "on_create", "on_get"),
    [
        (RateLimited(status=429), True, True),
        # Never raised by a create any more, and not retried by it if it were.
        (UpstreamUnavailable(status=502), False, True),
        (UpstreamUnavailable(status=503), False, True),
        (ProviderUnreachable(), True, True),
        (ServerError(status=500), False, True),
        (SubmissionOutcomeUnknown(), False, False),
        (MalformedResponse(status=200), False, False),
        (InvalidRequest(status=400), False, False),
        (AuthenticationFailed(status=401), False, False),
        (InsufficientCredits(status=402), False, False),
        (NotFound(status=404), False, False),
        (ValueError("bug"), False, False),
    ],
)
def test_retry_predicates(exc: BaseException, on_create: bool, on_get: bool) -> None:
    assert create_may_retry(exc) is on_create
    assert get_may_retry(exc) is on_get


def _failed_state(exc: BaseException, attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def test_wait_is_full_jitter_capped() -> None:
    wait = RetryAfterAwareWait(initial=1.0, maximum=4.0)
    delays = [wait(_failed_state(ServerError(), attempt=10)) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 1  # jittered, not fixed


def test_wait_honours_retry_after_as_floor_capped_by_max() -> None:
    wait = RetryAfterAwareWait(initial=0.001, maximum=30.0)
    assert wait(_failed_state(RateLimited(retry_after=7), attempt=1)) == 7
    assert wait(_failed_state(RateLimited(retry_after=600), attempt=1)) == 30
    assert wait(_failed_state(RateLimited(), attempt=1)) <= 0.001
