"""Validation of `POST /v1/videos/generations` bodies (EVOLINK_API.md §1.1, §5, §9).

Strict on purpose: types are never coerced (`"true"` is not a boolean, `5` is not a
string), explicit `null` is not "absent", and unknown fields are refused unless the
simulator is told otherwise. A client that passes here will not trip EvoLink's validator.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from yarl import URL

from .contract import MAX_CALLBACK_URL_CHARS, MAX_IMAGES, MAX_PROMPT_CHARS, ModelName
from .netguard import classify_host

_OPTIONAL_FIELDS = ("image_urls", "keep_original_sound", "callback_url")


class RequestInvalid(Exception):
    """The body breaks the contract; `detail` goes into the 400 message."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class CreateRequest(BaseModel):
    """A create body that EvoLink would accept."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    model: ModelName
    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    video_urls: list[str] = Field(min_length=1, max_length=1)
    image_urls: list[str] | None = Field(default=None, min_length=1, max_length=MAX_IMAGES)
    keep_original_sound: bool = True  # no documented default; §1.1 suggests true
    callback_url: str | None = None

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("prompt_blank", "must not be empty")
        return value

    @field_validator("video_urls", "image_urls")
    @classmethod
    def _fetchable_uris(cls, value: list[str] | None) -> list[str] | None:
        for item in value or ():
            if not _is_http_uri(item):
                raise PydanticCustomError(
                    "uri",
                    "each item must be an absolute http(s) URL, got {value!r}",
                    {"value": item},
                )
        return value

    @field_validator("callback_url")
    @classmethod
    def _callback_allowed(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        insecure = bool((info.context or {}).get("allow_insecure_callbacks", False))
        problem = callback_url_problem(value, allow_insecure=insecure)
        if problem:
            raise PydanticCustomError("callback_url", problem)
        return value


def _is_http_uri(value: str) -> bool:
    try:
        url = URL(value)
    except (ValueError, TypeError):
        return False
    return url.scheme in ("http", "https") and bool(url.host)


def callback_url_problem(value: str, *, allow_insecure: bool) -> str | None:
    """Why EvoLink would refuse this callback URL (§5), or None when it is acceptable."""
    if len(value) > MAX_CALLBACK_URL_CHARS:
        return f"must be at most {MAX_CALLBACK_URL_CHARS} characters"
    try:
        url = URL(value)
    except (ValueError, TypeError):
        return "must be a valid URL"
    allowed_schemes = ("https", "http") if allow_insecure else ("https",)
    if url.scheme not in allowed_schemes:
        return "must use https"
    if not url.host:
        return "must include a host"
    kind = classify_host(url.host)
    if kind == "private" or (kind == "loopback" and not allow_insecure):
        return "must not point to a private, loopback or internal address"
    return None


def _format_error(error: Any) -> str:
    loc = ""
    for part in error["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    if error["type"] == "extra_forbidden":
        return f"unknown field '{loc}'"
    return f"{loc}: {error['msg']}" if loc else str(error["msg"])


def validate_create(
    body: Any, *, allow_insecure_callbacks: bool = False, allow_unknown_fields: bool = False
) -> CreateRequest:
    """Return the parsed request or raise RequestInvalid with every problem found."""
    if not isinstance(body, dict):
        raise RequestInvalid("request body must be a JSON object")
    if "aspect_ratio" in body:
        # Removed from both model specs on 2026-01-20 ("not supported for now", §1.1).
        # Refusing it loudly beats a silently ignored ratio the user asked for.
        raise RequestInvalid("aspect_ratio is not supported by the Kling O1 edit models")
    nulls = [name for name in _OPTIONAL_FIELDS if name in body and body[name] is None]
    if nulls:
        raise RequestInvalid("; ".join(f"{name}: must not be null" for name in nulls))
    if allow_unknown_fields:
        body = {k: v for k, v in body.items() if k in CreateRequest.model_fields}
    try:
        return CreateRequest.model_validate(
            body, context={"allow_insecure_callbacks": allow_insecure_callbacks}
        )
    except ValidationError as exc:
        raise RequestInvalid("; ".join(_format_error(e) for e in exc.errors())) from None
