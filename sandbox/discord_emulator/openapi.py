"""Every request body the bot sends, checked against Discord's own OpenAPI description.

The description is `discord/discord-api-spec` (`specs/openapi.json`, MIT licence), kept
outside this project at ``../shared/discord-openapi.json`` (or ``$DISCORD_OPENAPI_SPEC``).
It states the limits Discord enforces on request bodies (text input ``max_length`` ≤ 4000,
labels ≤ 45, ≤ 5 buttons a row, command names and descriptions, …); a body that breaks
one is answered as Discord answers it: 400, code 50035 "Invalid Form Body", with the
failing field in Discord's nested error layout
(https://discord.com/developers/docs/reference#error-messages).

One leniency, as Discord has it: the spec types snowflakes as strings only, but Discord's
API accepts them as JSON integers too (discord.py sends some ids as integers).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match, relevance
from jsonschema.protocols import Validator
from jsonschema.validators import extend
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from . import errors

log = logging.getLogger(__name__)

SPEC_ENV: Final = "DISCORD_OPENAPI_SPEC"
_SPEC_URI: Final = "urn:discord-openapi"
_METHODS: Final = ("get", "post", "put", "patch", "delete")


def default_spec_path() -> Path:
    """``$DISCORD_OPENAPI_SPEC``, else ``../shared/discord-openapi.json`` beside the repo."""
    configured = os.environ.get(SPEC_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "shared" / "discord-openapi.json"


def _accepts_integer_snowflake(schema: dict[str, Any], instance: Any) -> bool:
    return (
        schema.get("format") == "snowflake"
        and isinstance(instance, int)
        and not isinstance(instance, bool)
        and instance >= 0
    )


def _lenient(keyword: str) -> Any:
    strict = Draft202012Validator.VALIDATORS[keyword]

    def check(
        validator: Validator, value: Any, instance: Any, schema: dict[str, Any]
    ) -> Iterator[ValidationError]:
        if _accepts_integer_snowflake(schema, instance):
            return iter(())
        return strict(validator, value, instance, schema)  # type: ignore[no-any-return]

    return check


def _discriminated(keyword: str, spec: dict[str, Any]) -> Any:
    """A union of kinds (component types, interaction callback types) checked against the
    kind the body's ``type`` names, as Discord does: the same verdict, an error that names
    the real mistake instead of "not any of 12 kinds", and far less work."""
    strict = Draft202012Validator.VALIDATORS[keyword]

    def check(
        validator: Validator, alternatives: list[Any], instance: Any, schema: dict[str, Any]
    ) -> Iterator[ValidationError]:
        if isinstance(instance, dict) and "type" in instance:
            chosen = [
                alt for alt in alternatives if instance["type"] in _type_enum(spec, alt)
            ]
            if len(chosen) == 1:
                return validator.descend(instance, chosen[0])  # type: ignore[no-any-return]
        return strict(validator, alternatives, instance, schema)  # type: ignore[no-any-return]

    return check


def _type_enum(spec: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/"):
        schema = _resolve(spec, ref)
    enum: list[Any] = schema.get("properties", {}).get("type", {}).get("enum", [])
    return enum


def _resolve(spec: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: Any = spec
    for token in pointer.removeprefix("#/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Operation:
    method: str
    pattern: re.Pattern[str]
    literal_chars: int  # a literal segment (`@original`) beats a `{message_id}` one
    schema_pointer: str


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _operations(spec: dict[str, Any]) -> list[_Operation]:
    found = []
    for path, item in spec["paths"].items():
        for method in _METHODS:
            body = item.get(method, {}).get("requestBody", {}).get("content", {})
            if "application/json" not in body:
                continue
            pattern = re.compile(
                "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"
            )
            literal = len(re.sub(r"\{[^/]+?\}", "", path))
            pointer = "/".join(
                ("#", "paths", _escape(path), method, "requestBody", "content",
                 _escape("application/json"), "schema")
            )
            found.append(_Operation(method.upper(), pattern, literal, pointer))
    return found


class RequestBodyRules:
    """Validators for the request bodies of every operation in the description."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._registry: Registry[Any] = Registry().with_resource(
            _SPEC_URI, Resource(contents=spec, specification=DRAFT202012)
        )
        self._operations = _operations(spec)
        self._validators: dict[str, Validator] = {}
        self._validator_class = extend(
            Draft202012Validator,
            {
                "type": _lenient("type"),
                "pattern": _lenient("pattern"),
                "anyOf": _discriminated("anyOf", spec),
                "oneOf": _discriminated("oneOf", spec),
            },
        )

    @classmethod
    def load(cls, path: Path | None = None) -> RequestBodyRules | None:
        """The rules from ``path`` (default :func:`default_spec_path`); None when absent."""
        return _load_cached(path or default_spec_path())

    def check(self, method: str, path: str, body: Any) -> None:
        """Raise Discord's 50035 error for a body the operation at ``path`` refuses.

        ``path`` is relative to ``/api/v10``. Operations the description lacks pass.
        """
        operation = self._operation(method, path)
        if operation is None:
            return
        validator = self._validator(operation.schema_pointer)
        error = best_match(validator.iter_errors(body))
        while error is not None and error.context:
            # best_match stops at a union whose branches fail alike, such as a followup's
            # body (`POST /webhooks/{id}/{token}`: a create or an update body, nothing to
            # tell them apart): the deepest failure names the field, as Discord does.
            error = min(error.context, key=relevance)
        if error is not None:
            raise _invalid_form_body(error)

    def _operation(self, method: str, path: str) -> _Operation | None:
        matches = [
            op for op in self._operations if op.method == method and op.pattern.match(path)
        ]
        return max(matches, key=lambda op: op.literal_chars, default=None)

    def _validator(self, pointer: str) -> Validator:
        validator = self._validators.get(pointer)
        if validator is None:
            validator = self._validator_class(
                {"$ref": _SPEC_URI + pointer}, registry=self._registry
            )
            self._validators[pointer] = validator
        return validator


@functools.cache
def _load_cached(path: Path) -> RequestBodyRules | None:
    # The description is read-only and 1.2 MB: parse it once per process, not per emulator.
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        log.warning("Discord's OpenAPI description is missing at %s: request bodies "
                    "are NOT checked against it", path)
        return None
    return RequestBodyRules(spec)


# Discord's error codes for the JSON-schema keywords that can fail
# (as Discord answers them, e.g. `BASE_TYPE_MAX_LENGTH` "Must be 4000 or fewer in length.").
def _describe(error: ValidationError) -> tuple[str, str]:
    limit = error.validator_value
    match error.validator:
        case "maxLength" | "maxItems":
            return "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
        case "minLength" | "minItems":
            return "BASE_TYPE_MIN_LENGTH", f"Must be {limit} or more in length."
        case "maximum":
            return "NUMBER_TYPE_MAX", f"int value should be less than or equal to {limit}."
        case "minimum":
            return "NUMBER_TYPE_MIN", f"int value should be greater than or equal to {limit}."
        case "required":
            return "BASE_TYPE_REQUIRED", "This field is required"
        case "enum" | "const":
            return "BASE_TYPE_CHOICES", f"Value must be one of {limit}."
        case "pattern":
            return "STRING_TYPE_REGEX", f"String value did not match validation regex {limit}."
        case _:
            return "BASE_TYPE_INVALID", error.message


def _invalid_form_body(error: ValidationError) -> errors.DiscordError:
    code, message = _describe(error)
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required":
        missing = re.match(r"'([^']+)'", error.message)
        path.append(missing.group(1) if missing else "_root")
    return errors.invalid_form(".".join(path) or "_root", code, message)
