from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.logging_setup import (
    NOISY_LOGGERS,
    REDACTED,
    Redactor,
    configure_logging,
    secrets_of,
)

DISCORD_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GaBcDe.abcdefghijklmnopqrstuvwxyz012345"
EVOLINK_KEY = "sk-evo-0123456789abcdefABCDEF"
# A configured secret with no recognisable shape: only the configured value can catch it.
PLAIN_SECRET = "correct-horse-battery-staple"
SECRETS = (DISCORD_TOKEN, EVOLINK_KEY, PLAIN_SECRET)

_LOGFMT_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]+)(?:\s|$)')


def parse_logfmt(line: str) -> dict[str, str]:
    """A strict logfmt reader: the whole line must be key=value pairs."""
    fields: dict[str, str] = {}
    position = 0
    while position < len(line):
        match = _LOGFMT_PAIR.match(line, position)
        assert match is not None, f"not logfmt at {position}: {line!r}"
        key, raw = match.groups()
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(
                m.group(1), m.group(1)), raw[1:-1])
        fields[key] = raw
        position = match.end()
    return fields


def parse(line: str, as_json: bool) -> dict[str, str]:
    if as_json:
        event = json.loads(line)
        assert isinstance(event, dict)
        return event
    return parse_logfmt(line)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)


def capture(as_json: bool, level: str = "INFO") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level, as_json, SECRETS, stream=stream)
    return stream


def lines_of(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


@pytest.mark.parametrize("as_json", [False, True], ids=["keyvalue", "json"])
def test_each_event_is_one_parseable_line(as_json: bool) -> None:
    stream = capture(as_json)
    log = logging.getLogger("bot.jobs.engine")
    log.info("job received job=%d guild=%d user=%d", 12, 1, 7)
    log.warning('odd "quoted" text\nsecond line\tand a tab')
    [first, second] = [parse(line, as_json) for line in lines_of(stream)]
    assert first["level"] == "INFO"
    assert first["logger"] == "bot.jobs.engine"
    assert first["msg"] == "job received job=12 guild=1 user=7"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert second["msg"] == 'odd "quoted" text\nsecond line\tand a tab'
    assert second["level"] == "WARNING"
    assert "exc_info" not in first


def test_key_value_lines_stay_readable() -> None:
    stream = capture(as_json=False)
    logging.getLogger("bot.jobs.engine").info("job received job=%d guild=%d user=%d", 12, 1, 7)
    [line] = lines_of(stream)
    expected = ' level=INFO logger=bot.jobs.engine msg="job received job=12 guild=1 user=7"'
    assert line.endswith(expected)
    assert line.startswith("ts=")


@pytest.mark.parametrize("as_json", [False, True], ids=["keyvalue", "json"])
def test_secrets_never_reach_the_output(as_json: bool) -> None:
    stream = capture(as_json)
    log = logging.getLogger("bot.evolink.client")
    log.info("starting with token %s and key %s", DISCORD_TOKEN, EVOLINK_KEY)
    log.info("request headers=%r", {"Authorization": f"Bearer {EVOLINK_KEY}", "X": PLAIN_SECRET})
    log.info("args as repr %r", (PLAIN_SECRET.encode(), [DISCORD_TOKEN]))
    log.info(f"already formatted {PLAIN_SECRET}")
    try:
        raise RuntimeError(f"provider refused key {EVOLINK_KEY} for {PLAIN_SECRET}")
    except RuntimeError:
        log.exception("create failed token=%s", DISCORD_TOKEN)
    try:
        secret_local = DISCORD_TOKEN
        raise ValueError("wrapped") from KeyError(secret_local)
    except ValueError as error:
        log.error("chained", exc_info=error)
    log.info("stack too %s", PLAIN_SECRET, stack_info=True)

    output = stream.getvalue()
    for secret in SECRETS:
        assert secret not in output
    assert "0123456789abcdef" not in output  # no tail of the key survives either
    events = [parse(line, as_json) for line in lines_of(stream)]
    assert len(events) == 7  # tracebacks included, still one line each
    assert events[0]["msg"] == f"starting with token {REDACTED} and key {REDACTED}"
    assert "Traceback (most recent call last)" in events[4]["exc_info"]
    assert "RuntimeError: provider refused key" in events[4]["exc_info"]
    assert "KeyError" in events[5]["exc_info"]
    assert "Stack (most recent call last)" in events[6]["exc_info"]


def test_credential_shapes_are_redacted_without_being_configured() -> None:
    redactor = Redactor([])
    other_key = "sk-evo-ZZZZ9999yyyy8888"
    other_token = "ODc2NTQzMjEwOTg3NjU0MzIx.YbCdEf.zyxwvutsrqponmlkjihgfedcba98765"
    for text in (
        f"Authorization: Bearer {other_key}",
        "{'Authorization': 'Bot short'}",
        "authorization=Basic dXNlcjpwYXNz",
        f"header Bot {other_token}",
        "bearer abcdef0123456789abcdef",
        f"key is {other_key}.",
        f"token {other_token} leaked",
    ):
        cleaned = redactor.redact(text)
        assert REDACTED in cleaned, text
        for fragment in (other_key, other_token, "short", "dXNlcjpwYXNz", "abcdef0123456789"):
            assert fragment not in cleaned, (text, cleaned)


def test_ordinary_prose_is_left_alone() -> None:
    redactor = Redactor(["abc"])  # too short to be a credential: ignored
    for text in (
        "Bot connected as kling#1234 to 3 guilds",
        "job received job=12 guild=1 user=7",
        "the abc of video editing",
        "task created job=3 task=task-unified-1757156493-abcdefgh estimated=40",
    ):
        assert redactor.redact(text) == text


def test_a_broken_format_string_neither_crashes_nor_leaks() -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", True, SECRETS, stream=stream)
    # Handed to our handler directly: pytest's own capture handler raises on such records.
    record = logging.LogRecord(
        "bot", logging.INFO, __file__, 1, "two placeholders %s %s", (PLAIN_SECRET,), None
    )
    handler.handle(record)
    [line] = lines_of(stream)
    event = json.loads(line)
    assert PLAIN_SECRET not in line
    assert event["msg"].startswith("two placeholders")


def test_library_loggers_are_quiet_unless_debugging() -> None:
    stream = capture(as_json=False, level="INFO")
    logging.getLogger("discord.gateway").info("heartbeat")
    logging.getLogger("aiohttp.access").info("GET /healthz")
    logging.getLogger("discord.client").warning("rate limited")
    logging.getLogger("bot").debug("hidden at INFO")
    assert [parse_logfmt(line)["msg"] for line in lines_of(stream)] == ["rate limited"]

    stream = capture(as_json=False, level="debug")
    logging.getLogger("discord.gateway").debug("heartbeat")
    assert [parse_logfmt(line)["msg"] for line in lines_of(stream)] == ["heartbeat"]
    assert all(logging.getLogger(name).level == logging.NOTSET for name in NOISY_LOGGERS)


def test_reconfiguring_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", False, SECRETS, stream=first)
    configure_logging("INFO", True, SECRETS, stream=second)
    logging.getLogger("bot").info("once")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["msg"] == "once"


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("LOUD", False, [])


def test_secrets_of_skips_unset_values() -> None:
    assert secrets_of(SecretStr("abcdef"), None, "", "xyz123", SecretStr("")) == [
        "abcdef",
        "xyz123",
    ]


# An interaction token as Discord hands it out (base64 of "interaction:<id>:<random>"): no
# configured secret knows it, it lives 15 minutes, and anyone holding it can answer as the bot.
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTI4NzY1NDMyMTA5ODc2NTQzMjpRbWxKY0VGeFpYUnZhMlZ1"


@pytest.mark.parametrize("as_json", [False, True], ids=["keyvalue", "json"])
def test_interaction_tokens_never_reach_the_output_even_at_debug(as_json: bool) -> None:
    stream = capture(as_json, level="DEBUG")
    api = "https://discord.com/api/v10"
    callback = f"{api}/interactions/1287654321098765432/{INTERACTION_TOKEN}/callback"
    followup = f"{api}/webhooks/1098765432109876543/{INTERACTION_TOKEN}/messages/@original"
    # The records discord.py itself writes (discord/http.py, webhook/async_.py, gateway.py).
    logging.getLogger("discord.http").debug(
        "%s %s with %s has returned %s", "POST", callback, '{"type":5,"data":{"flags":64}}', 204
    )
    logging.getLogger("discord.http").debug("%s %s has received %s", "PATCH", followup, {"id": 1})
    logging.getLogger("discord.webhook.async_").debug(
        "Webhook ID %s with %s %s has returned status code %s",
        1098765432109876543, "POST", f"{api}/webhooks/1098765432109876543/{INTERACTION_TOKEN}",
        200,
    )
    logging.getLogger("discord.gateway").debug(
        "For Shard ID %s: WebSocket Event: %s", None,
        {"t": "INTERACTION_CREATE", "op": 0, "d": {"id": "1287654321098765432", "type": 2,
                                                  "token": INTERACTION_TOKEN, "version": 1}},
    )
    logging.getLogger("bot.x").warning('payload {"token": "%s"}', INTERACTION_TOKEN)
    # Whoever logs it, at any level, with the URL in a traceback too.
    try:
        raise RuntimeError(f"404 Not Found (error code: 10015) for {followup}")
    except RuntimeError:
        logging.getLogger("cogs.errors").exception("followup failed")

    output = stream.getvalue()
    assert INTERACTION_TOKEN not in output and INTERACTION_TOKEN[:24] not in output
    events = [parse(line, as_json) for line in lines_of(stream)]
    assert len(events) == 6
    # What an operator debugs with stays: method, route, ids, status.
    assert events[0]["msg"] == (
        f"POST {api}/interactions/1287654321098765432/{REDACTED}/callback with "
        '{"type":5,"data":{"flags":64}} has returned 204'
    )
    assert f"/webhooks/1098765432109876543/{REDACTED}/messages/@original" in events[1]["msg"]
    assert "INTERACTION_CREATE" in events[3]["msg"] and "1287654321098765432" in events[3]["msg"]
    assert "error code: 10015" in events[5]["exc_info"]
