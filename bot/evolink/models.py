"""Pydantic models of the EvoLink video-task contract (see shared/EVOLINK_API.md).

Response models ignore unknown fields and coerce odd-but-harmless values (null lists,
float progress, integer error codes) instead of failing: the provider has changed its
shapes before (§4.1) and a parse failure on a task we already paid for is worse than
a slightly lossy read.
"""

from __future__ import annotations

import logging
import math
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .spec import MAX_IMAGES, MAX_PROMPT_CHARS

logger = logging.getLogger(__name__)

_RESPONSE_CONFIG = ConfigDict(extra="ignore", frozen=True)
_SubModelT = TypeVar("_SubModelT", bound=BaseModel)


class EditTaskRequest(BaseModel):
    """What we send to ``POST /v1/videos/generations``.

    ``extra="forbid"`` so a stray field such as ``aspect_ratio`` (removed from the
    contract on 2026-01-20, §1.1) cannot sneak into a request.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    video_url: str = Field(min_length=1)
    image_urls: list[str] = Field(default_factory=list, max_length=MAX_IMAGES)
    keep_original_sound: bool = True
    callback_url: str | None = Field(default=None, max_length=2048)

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        # Length is checked on the raw text (that is what EvoLink counts), but a
        # whitespace-only instruction is refused upstream and would waste a submission.
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "prompt": self.prompt,
            "video_urls": [self.video_url],
            # Sent explicitly: EvoLink documents no default for this field (§1.1).
            "keep_original_sound": self.keep_original_sound,
        }
        # The contract allows 1-4 images when present; an empty list is a 400.
        if self.image_urls:
            payload["image_urls"] = list(self.image_urls)
        if self.callback_url is not None:
            payload["callback_url"] = self.callback_url
        return payload


class TaskStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    # Not in EvoLink's enum, but a reseller documents it and callbacks mention it (§2.2).
    CANCELLED = "cancelled"
    # Any status string we do not know. Deliberately non-terminal: the caller keeps
    # polling instead of settling or refunding money on a state it cannot interpret.
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

# Task error codes the docs list as safe to retry automatically (§4.2). A retry is a
# new, separately billed task, so this only informs the caller; the client never acts on it.
RETRYABLE_TASK_ERROR_CODES = frozenset(
    {
        "generation_failed_no_content",
        "service_error",
        "generation_timeout",
        "resource_exhausted",
        "quota_exceeded",
    }
)


class TaskInfo(BaseModel):
    model_config = _RESPONSE_CONFIG

    can_cancel: bool | None = None
    estimated_time: float | None = None
    video_duration: float | None = None


class TaskUsage(BaseModel):
    """``usage`` of a task (§1.2): what the provider holds for it.

    Unknown figures (e.g. the legacy ``estimated_cost``) are kept in ``model_extra`` so a
    caller can record the provider's side of the bill as it was sent.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    billing_rule: str | None = None  # per_call | per_token | per_second (a str: tolerant)
    credits_reserved: float | None = None
    user_group: str | None = None


class TaskError(BaseModel):
    model_config = _RESPONSE_CONFIG

    code: str = "unknown_error"
    message: str = ""
    type: str | None = None

    @field_validator("code", mode="before")
    @classmethod
    def _code_as_str(cls, value: Any) -> Any:
        # Legacy envelopes used integer codes; keep them readable rather than failing.
        if value is None:
            return "unknown_error"
        return str(value) if isinstance(value, int | float) else value

    @field_validator("message", mode="before")
    @classmethod
    def _message_or_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_TASK_ERROR_CODES



class Task(BaseModel):
    """A task as returned by create and by ``GET /v1/tasks/{id}``."""

    model_config = _RESPONSE_CONFIG

    id: str = Field(min_length=1)
    model: str | None = None
    status: TaskStatus
    # The status string exactly as the provider sent it (useful when status is UNKNOWN).
    status_raw: str = ""
    progress: int = 0
    created: int | None = None
    task_info: TaskInfo = Field(default_factory=TaskInfo)
    # Documented on create only; the query schema does not promise it (§2.1).
    usage: TaskUsage | None = None
    results: list[str] = Field(default_factory=list)
    error: TaskError | None = None

    @model_validator(mode="before")
    @classmethod
    def _keep_raw_status(cls, data: Any) -> Any:
        if isinstance(data, dict) and "status" in data:
            data = {**data, "status_raw": str(data["status"])}
        return data

    @field_validator("status", mode="before")
    @classmethod
    def _tolerant_status(cls, value: Any) -> Any:
        text = str(value).strip().lower() if value is not None else ""
        try:
            return TaskStatus(text)
        except ValueError:
            logger.warning("EvoLink returned an unknown task status %r", value)
            return TaskStatus.UNKNOWN

    @field_validator("progress", mode="before")
    @classmethod
    def _clamp_progress(cls, value: Any) -> int:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return 0
        if math.isnan(number):
            return 0
        return max(0, min(100, round(number)))

    @field_validator("created", mode="before")
    @classmethod
    def _int_seconds(cls, value: Any) -> Any:
        return int(value) if isinstance(value, float) and math.isfinite(value) else value

    @field_validator("task_info", mode="before")
    @classmethod
    def _task_info_or_empty(cls, value: Any) -> Any:
        # Informational only: a garbled task_info must not make a paid task unreadable.
        return _lenient(TaskInfo, value, "task_info") or TaskInfo()

    @field_validator("usage", mode="before")
    @classmethod
    def _usage_or_none(cls, value: Any) -> Any:
        return _lenient(TaskUsage, value, "usage")

    @field_validator("results", mode="before")
    @classmethod
    def _results_or_empty(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]  # one bare URL instead of a one-item list
        return value

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def result_url(self) -> str | None:
        """The output video, only once the task is completed (§2.1: one URL, valid 24 h).

        ``None`` on a completed task whose ``results`` is missing or empty: the caller
        must treat that as "completed without results", not as a failure.
        """
        if self.status is TaskStatus.COMPLETED and self.results:
            return self.results[0]
        return None

    @property
    def credits_reserved(self) -> float | None:
        """The provider's credit figure for this task (``usage``, create response)."""
        return self.usage.credits_reserved if self.usage is not None else None

    @property
    def video_duration(self) -> float | None:
        """The length in seconds the provider reports (``task_info.video_duration``)."""
        return self.task_info.video_duration


def _lenient(model: type[_SubModelT], value: Any, name: str) -> _SubModelT | None:
    """Parse an informational sub-object; log and drop it instead of failing the task."""
    if value is None or isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError:
        logger.warning("EvoLink sent an unreadable task %s; ignoring it", name)
        return None


class CreditBalance(BaseModel):
    model_config = _RESPONSE_CONFIG

    remaining_credits: float | None = None
    used_credits: float | None = None
    unlimited_credits: bool | None = None


class CreditsData(BaseModel):
    model_config = _RESPONSE_CONFIG

    token: CreditBalance | None = None
    user: CreditBalance | None = None


class Credits(BaseModel):
    """``GET /v1/credits``: ``{success, message, data: {token: {...}, user: {...}}}``."""

    model_config = _RESPONSE_CONFIG

    success: bool | None = None
    message: str | None = None
    data: CreditsData = Field(default_factory=CreditsData)

    @model_validator(mode="before")
    @classmethod
    def _accept_unwrapped(cls, data: Any) -> Any:
        # Tolerate a bare ``{token, user}`` body as well as the documented wrapper.
        if isinstance(data, dict) and "data" not in data and ("token" in data or "user" in data):
            return {**data, "data": {"token": data.get("token"), "user": data.get("user")}}
        if isinstance(data, dict) and data.get("data") is None and "data" in data:
            return {**data, "data": {}}
        return data

    @property
    def unlimited(self) -> bool:
        """The key has no credit cap of its own (``token.unlimited_credits``)."""
        return bool(self.data.token and self.data.token.unlimited_credits)

    @property
    def remaining_credits(self) -> float | None:
        """The key's (``token``'s) remaining credits.

        ``None`` when the key is unlimited (then its own figure means nothing; see
        ``unlimited`` and ``spendable_credits``) or the provider did not report it.
        """
        token = self.data.token
        if token is None or token.unlimited_credits:
            return None
        return token.remaining_credits

    @property
    def spendable_credits(self) -> float | None:
        """What this key can actually spend: the smaller of the key's and the account's
        balances, ignoring the key's when it is unlimited ([INFERRED]: an unlimited key
        draws on the account). ``None`` when neither figure was reported.
        """
        user = self.data.user
        known = [
            balance
            for balance in (
                self.remaining_credits,
                user.remaining_credits if user is not None else None,
            )
            if balance is not None
        ]
        return min(known) if known else None


class ApiErrorBody(BaseModel):
    """The ``error`` object of an HTTP error, either envelope generation (§4.1)."""

    model_config = _RESPONSE_CONFIG

    # Legacy: int equal to the HTTP status. Current: a string business code.
    code: int | str | None = None
    message: str | None = None
    type: str | None = None
    param: str | None = None
    fallback_suggestion: str | None = None

    @property
    def string_code(self) -> str | None:
        return self.code if isinstance(self.code, str) and self.code else None
