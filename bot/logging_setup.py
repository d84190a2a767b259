"""Process-wide logging: one line per event, key=value or JSON, secrets redacted.

Logs leave the machine (container log drivers, support tickets), so the redaction
happens in a filter on our handler, before any formatter sees the record: the
message is rendered with its arguments first (a `%r` of a header dict is caught),
and the traceback text is rendered and cleaned once and cached on the record.
"""

from __future__ import annotations

import json as jsonlib
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

from pydantic import SecretStr

REDACTED = "[redacted]"

# Shorter "secrets" are not real credentials, and redacting them would shred
# ordinary words out of every line.
MIN_SECRET_LENGTH = 6

# Libraries whose INFO chatter drowns the bot's own lines; DEBUG shows everything.
NOISY_LOGGERS = ("discord", "aiohttp", "alembic")

_CREDENTIAL_CHARS = r"[A-Za-z0-9._~+/=-]"
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # The value of an Authorization header, however it is printed: `Authorization: Bot x`,
    # `{'Authorization': 'Bearer x'}`, `authorization=Bearer x`.
    (
        re.compile(
            r"""(?i)(authorization["']?\s*[:=]\s*["']?)(?:(?:bearer|bot|basic)\s+)?[^\s"',}]+"""
        ),
        rf"\g<1>{REDACTED}",
    ),
    # A bare credential after the scheme word. The lookahead asks for a digit so that
    # prose such as "Bot connected" is left alone; real tokens always carry digits.
    (
        re.compile(rf"\b((?i:bearer)|Bot)\s+(?={_CREDENTIAL_CHARS}*\d){_CREDENTIAL_CHARS}{{16,}}"),
        rf"\g<1> {REDACTED}",
    ),
    # EvoLink keys.
    (re.compile(r"\bsk-evo-[A-Za-z0-9_-]+"), REDACTED),
    # Discord bot tokens: base64 user id . timestamp . HMAC.
    (re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"), REDACTED),
    # Interaction tokens: the path segment after the id in webhook and interaction-callback
    # URLs (discord.http and discord.webhook log them at DEBUG), however the URL is quoted.
    (re.compile(r"(/(?:webhooks|interactions)/\d+/)[^/?#\s\"',}]+"), rf"\g<1>{REDACTED}"),
    # ...and the `token` field of a gateway payload (discord.gateway logs each event at DEBUG).
    (re.compile(r"""(["']token["']\s*:\s*["'])[^"']+"""), rf"\g<1>{REDACTED}"),
)


class Redactor:
    """Replaces configured secret values and credential-shaped strings in text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is removed whole.
        ordered = sorted(values, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        return text


class RedactingFilter(logging.Filter):
    """Cleans a record in place; attach it to a handler so propagated records pass it too."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not cost the line, nor leak the args
            message = f"{record.msg!s} args={record.args!r}"
        record.msg, record.args = self._redactor.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redactor.redact(record.stack_info)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _details(record: logging.LogRecord) -> str | None:
    """Traceback and stack text (already redacted by the filter), or None."""
    parts = [part for part in (record.exc_text, record.stack_info) if part]
    return "\n".join(parts) if parts else None


_BARE = re.compile(r"^[^\s\"=\\]+$")


def _logfmt_value(value: str) -> str:
    if _BARE.match(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


class KeyValueFormatter(logging.Formatter):
    """`ts=… level=INFO logger=bot.jobs.engine msg="job received job=12 guild=1"` (logfmt).

    The message is quoted as a whole so the key=value pairs the code already writes
    into messages stay readable and the line still splits unambiguously; newlines in
    tracebacks are escaped to keep one event on one line.
    """

    def format(self, record: logging.LogRecord) -> str:
        fields = [
            ("ts", _timestamp(record)),
            ("level", record.levelname),
            ("logger", record.name),
            ("msg", record.getMessage()),
        ]
        details = _details(record)
        if details is not None:
            fields.append(("exc_info", details))
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and exc_info when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, str] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        details = _details(record)
        if details is not None:
            event["exc_info"] = details
        # json.dumps escapes control characters, so the line never breaks.
        return jsonlib.dumps(event, ensure_ascii=False)


class _BotLogHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installed, so reconfiguring replaces it."""


def secrets_of(*values: SecretStr | str | None) -> list[str]:
    """Plain secret values for `configure_logging`, skipping unset ones."""
    plain = (v.get_secret_value() if isinstance(v, SecretStr) else v for v in values)
    return [value for value in plain if value]


def configure_logging(
    level: str,
    json: bool,
    secrets: Iterable[str],
    *,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Install the one root handler; safe to call again (the previous one is replaced)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = _BotLogHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if json else KeyValueFormatter())
    handler.addFilter(RedactingFilter(Redactor(secrets)))

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _BotLogHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in NOISY_LOGGERS:
        # NOTSET hands the decision back to the root level.
        quiet = logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING
        logging.getLogger(name).setLevel(quiet)
    return handler
