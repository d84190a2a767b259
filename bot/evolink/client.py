"""Async client for the EvoLink video-task API (shared/EVOLINK_API.md).

The one rule that shapes this module: ``POST /v1/videos/generations`` is not
idempotent and costs money, so every failure of it is classified as either
"provably nothing was created" (retried) or "may have created a task" (raised,
never retried). See DESIGN.md §4.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
from pydantic import BaseModel, SecretStr, ValidationError
from tenacity import AsyncRetrying

from .errors import (
    MalformedResponse,
    ProviderUnreachable,
    SubmissionOutcomeUnknown,
    body_excerpt,
    create_error_from_response,
    error_from_response,
    sanitize_message,
)
from .models import Credits, EditTaskRequest, Task
from .retry import Sleep, build_retrying, create_may_retry, get_may_retry

ModelT = TypeVar("ModelT", bound=BaseModel)

CREATE_PATH: Final = "/v1/videos/generations"
CREDITS_PATH: Final = "/v1/credits"
# Task and credit bodies are a few hundred bytes; anything near this is not EvoLink.
_MAX_BODY_BYTES: Final = 1024 * 1024
_USER_AGENT: Final = "kling-edit-bot (+aiohttp)"

# Which aiohttp failures happen before the request leaves this process (aiohttp 3.14,
# ClientSession._request -> _connect_and_send_request):
#   1. ``connector.connect()`` resolves the host, opens the TCP socket and does the TLS
#      handshake. Everything it raises is a ClientConnectorError (refused/unreachable,
#      ClientConnectorDNSError, ClientConnectorSSLError/CertificateError,
#      ClientProxyConnectionError) or ServerFingerprintMismatch, and a timeout there
#      (connect/sock_connect, including the wait for a pooled connection) is re-raised
#      as ConnectionTimeoutError. No HTTP byte has been written yet: nothing can exist
#      at the provider, so even a create may be retried.
#   2. ``req.send(conn)`` then writes the headers and starts the body writer; a write
#      failure surfaces as ClientOSError ("Can not write request body"),
#      ClientConnectionResetError ("Cannot write to closing transport") or a bare
#      ClientConnectionError. Part of the request may already be at the provider.
#   3. ``resp.start(conn)`` waits for the status line: a peer that closes the socket
#      gives ServerDisconnectedError, a reset gives ClientOSError, a garbled answer a
#      ClientResponseError, and sock_read (armed once the body is fully written) gives
#      SocketTimeoutError. Reading the body can add ClientPayloadError.
# Phases 2 and 3 are "after sending": the request may have been acted on. The class
# hierarchy does not follow the phases (ClientConnectorError is itself a ClientOSError),
# so only the phase-1 classes below count as "before", and they are caught first.
# One false alarm remains on the safe side: a pooled keep-alive connection the server
# closed just before reuse fails in phase 2/3 although nothing arrived; aiohttp retries
# that itself only for idempotent methods, so a create reports it as an uncertain outcome.
_BEFORE_SEND_ERRORS: Final = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    aiohttp.ServerFingerprintMismatch,
)


@dataclass(frozen=True, slots=True)
class _Answer:
    """Status, headers and (capped) body of one HTTP exchange."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class RateLimiter(Protocol):
    """Waits until one more provider call is allowed: aiolimiter's `AsyncLimiter` in one
    process, a bucket in the database for several (bot/provider_rate.py)."""

    async def acquire(self) -> None: ...


class EvolinkClient:
    """EvoLink API calls with the retry policy of DESIGN.md §4.

    GETs retry 429/5xx/network failures up to ``get_attempts``. The create call retries
    only 429 and failures to connect (up to ``create_attempts``), then raises RateLimited
    or ProviderUnreachable; 400/401/402/403/404/413 raise their refusal class at once.
    Every other failure of a create (any 5xx or unlisted status, a timeout or dropped
    connection after sending, a 2xx it cannot read) raises SubmissionOutcomeUnknown at
    once and is never retried: the task may exist and be billed (EVOLINK_API.md §4.1).
    Backoff is full-jitter exponential from ``backoff_initial`` up to ``backoff_max``,
    never shorter than a provider's Retry-After (itself capped at ``backoff_max``).
    ``limiter`` is acquired before every HTTP attempt, retries included.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str | SecretStr,
        connect_timeout: float = 10,
        read_timeout: float = 30,
        get_attempts: int = 5,
        create_attempts: int = 3,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        limiter: RateLimiter | None = None,
        sleep: Sleep = asyncio.sleep,
        on_call: Callable[[str, str], None] | None = None,
    ) -> None:
        if get_attempts < 1 or create_attempts < 1:
            raise ValueError("attempt counts must be at least 1")
        if backoff_initial < 0 or backoff_max < 0:
            raise ValueError("backoff values must not be negative")
        parsed = urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            # Caught here because aiohttp would only fail inside the request, where a
            # create error would be misread as an uncertain submission.
            raise ValueError("base_url must be an absolute http(s) URL")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        if not self._api_key.get_secret_value():
            raise ValueError("api_key must not be empty")
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=connect_timeout,
            sock_connect=connect_timeout,
            sock_read=read_timeout,
        )
        self._get_attempts = get_attempts
        self._create_attempts = create_attempts
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._limiter = limiter
        self._on_call = on_call  # (endpoint template, status or error kind), for metrics
        # Injectable so tests can observe the chosen waits without patching asyncio.
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    async def create_edit_task(self, request: EditTaskRequest) -> Task:
        """Submit an edit. Raises SubmissionOutcomeUnknown when the task may exist."""
        retrying = self._retrying("POST", CREATE_PATH, self._create_attempts, create_may_retry)
        async for attempt in retrying:
            with attempt:
                answer = await self._exchange(
                    "POST", CREATE_PATH, request.to_payload(), creating=True
                )
                return self._parse(answer, Task, creating=True)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def get_task(self, task_id: str) -> Task:
        if not task_id:
            raise ValueError("task_id must not be empty")
        return await self._get(f"/v1/tasks/{quote(task_id, safe='')}", Task)

    async def get_credits(self) -> Credits:
        """``GET /v1/credits`` (§3): the key's and the account's balance."""
        credits = await self._get(CREDITS_PATH, Credits)
        if credits.success is False:
            # Not documented on a 2xx; without this the balance would just read "unknown".
            detail = sanitize_message(credits.message or "no message", self._secret)
            raise MalformedResponse(f"EvoLink reported a failure: {detail}", status=200)
        return credits

    async def _get(self, path: str, model: type[ModelT]) -> ModelT:
        retrying = self._retrying("GET", path, self._get_attempts, get_may_retry)
        async for attempt in retrying:
            with attempt:
                answer = await self._exchange("GET", path, None, creating=False)
                return self._parse(answer, model, creating=False)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _retrying(
        self, method: str, path: str, attempts: int, may_retry: Callable[[BaseException], bool]
    ) -> AsyncRetrying:
        return build_retrying(
            method=method,
            path=path,
            attempts=attempts,
            may_retry=may_retry,
            backoff_initial=self._backoff_initial,
            backoff_max=self._backoff_max,
            sleep=self._sleep,
        )

    async def _exchange(
        self, method: str, path: str, payload: dict[str, Any] | None, *, creating: bool
    ) -> _Answer:
        """One HTTP call, classified into an answer or a typed transport error."""
        status: int | None = None
        headers: Mapping[str, str] = {}
        outcome = "unreachable"
        async with self._rate_limit():
            try:
                async with self._session.request(
                    method,
                    self._base_url + path,
                    json=payload,
                    headers=self._headers(),
                    timeout=self._timeout,
                    allow_redirects=False,
                    raise_for_status=False,
                ) as response:
                    status, headers = response.status, response.headers
                    outcome = str(status)
                    return _Answer(status, headers, await _read_capped(response))
            except _BEFORE_SEND_ERRORS as exc:
                raise ProviderUnreachable(
                    f"Could not connect to EvoLink ({type(exc).__name__})"
                ) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                if status is not None and not 200 <= status < 300:
                    # The status line arrived before the body broke: it is the answer.
                    return _Answer(status, headers, b"")
                kind = type(exc).__name__
                # aiohttp response errors carry request_info, whose headers hold the key.
                cause = None if isinstance(exc, aiohttp.ClientResponseError) else exc
                if creating:
                    raise SubmissionOutcomeUnknown(
                        f"Create request was sent but no usable answer came back ({kind})",
                        status=status,
                    ) from cause
                raise ProviderUnreachable(
                    f"No usable answer from EvoLink ({kind})", status=status
                ) from cause
            finally:
                if self._on_call is not None:
                    self._on_call(_endpoint_template(method, path), outcome)

    def _parse(self, answer: _Answer, model: type[ModelT], *, creating: bool) -> ModelT:
        if not 200 <= answer.status < 300:
            classify = create_error_from_response if creating else error_from_response
            raise classify(answer.status, answer.body, answer.headers, secret=self._secret)
        try:
            return model.model_validate_json(answer.body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            problem = f"{model.__name__} did not parse at {where}: {first['type']}"
            if creating:
                # A 2xx on create means the provider accepted the task; we just cannot
                # read its id. That is an uncertain outcome, never a plain failure.
                raise SubmissionOutcomeUnknown(
                    f"EvoLink accepted the create request but its answer is unreadable ({problem})",
                    status=answer.status,
                    body_excerpt=body_excerpt(answer.body, self._secret),
                ) from None
            raise MalformedResponse(
                sanitize_message(problem, self._secret), status=answer.status
            ) from None

    @property
    def _secret(self) -> str:
        return self._api_key.get_secret_value()

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._secret}",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }

    @contextlib.asynccontextmanager
    async def _rate_limit(self) -> AsyncIterator[None]:
        if self._limiter is not None:
            await self._limiter.acquire()
        yield


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """Read the body, stopping at _MAX_BODY_BYTES (the excess then fails to parse)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > _MAX_BODY_BYTES:
            break
    return b"".join(chunks)


def _endpoint_template(method: str, path: str) -> str:
    """A bounded label: task ids would make one metric series per task."""
    if path.startswith("/v1/tasks/"):
        return f"{method} /v1/tasks/{{id}}"
    return f"{method} {path}"
