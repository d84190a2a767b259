"""The :class:`DiscordEmulator` facade: lifecycle, configuration and read-back."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from aiohttp import web

from . import errors
from .cdn import DEFAULT_LIFETIME_S, CdnSigner
from .clock import Clock
from .driver import DriverMixin, ref_id
from .gateway import GatewayHub
from .interactions import InteractionRecord
from .models import Channel, Download, Message, RestCall
from .openapi import RequestBodyRules
from .ratelimit import DEFAULT_RULES, GLOBAL_RULE, RateLimiter, RateLimitHit, RateLimitRule
from .server import build_app
from .state import EmulatorState
from .world import WorldMixin


class DiscordEmulator(WorldMixin, DriverMixin):
    """A loopback Discord: REST (``/api/v10``), gateway, attachment CDN and control API.

    >>> emu = DiscordEmulator()
    >>> await emu.start()
    >>> app = emu.create_application("Kling", bot_token="test-token")
    >>> guild = emu.create_guild("Test"); channel = emu.create_text_channel(guild.id)
    >>> ...  # point discord.py at emu.api_base / emu.gateway_url and run the bot
    >>> await emu.stop()
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rate_limits: bool | Iterable[RateLimitRule] = True,
        clock: Callable[[], float] | None = None,
        ack_window: float = 3.0,
        token_lifetime: float = 15 * 60.0,
        heartbeat_interval_ms: int = 41_250,
        max_request_size: int = 256 * 1024 * 1024,
        body_rules: RequestBodyRules | None = None,
        cdn_url_lifetime: float = DEFAULT_LIFETIME_S,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = Clock(clock)
        self.state = EmulatorState(self.clock, CdnSigner(self.clock, cdn_url_lifetime))
        self.gateway = GatewayHub(self.state, heartbeat_interval_ms=heartbeat_interval_ms)
        self.ratelimiter = RateLimiter()
        self.set_rate_limits(rate_limits)
        self.ack_window = ack_window
        self.token_lifetime = token_lifetime
        #: Refuse to send commands a member could not see (``default_member_permissions``).
        self.enforce_command_permissions = True
        self.max_request_size = max_request_size
        #: A proxy in front of the API refusing larger uploads with a bare 413 (no code).
        self.proxy_body_limit: int | None = None
        #: `GET /gateway/bot` recommends one shard per this many guilds (Discord: ~1,000).
        self.guilds_per_recommended_shard = 1000
        #: Discord's OpenAPI description of request bodies (None: bodies are not checked).
        self.body_rules = body_rules or RequestBodyRules.load()
        self._runner: web.AppRunner | None = None
        self._faults: list[tuple[tuple[str, str], errors.DiscordError]] = []

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        app = build_app(self, max_request_size=self.max_request_size)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self.gateway.resume_url = self.gateway_url

    async def stop(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be set to."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """What ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` must be (as a yarl.URL)."""
        return f"ws://{self.host}:{self.port}/gateway"

    # -- configuration -------------------------------------------------------------------

    def fail_next(self, method: str, route: str, status: int, code: int, message: str) -> None:
        """The next `method` call on `route` (a template under /api/v10, e.g.
        ``/channels/{channel_id}/messages``) is answered with this Discord error, as when
        something changed on Discord's side between the bot's checks and its call."""
        self._faults.append(((method, route), errors.DiscordError(status, code, message)))

    def take_fault(self, method: str, route: str) -> errors.DiscordError | None:
        for index, (key, fault) in enumerate(self._faults):
            if key == (method, route):
                del self._faults[index]
                return fault
        return None

    def set_rate_limits(self, rules: bool | Iterable[RateLimitRule]) -> None:
        """``True``: :data:`~.ratelimit.DEFAULT_RULES`; ``False``: none; or your own rules."""
        if rules is True:
            self.ratelimiter.configure(DEFAULT_RULES, GLOBAL_RULE)
        elif rules is False:
            self.ratelimiter.configure(())
        else:
            self.ratelimiter.configure(rules)

    def advance(self, seconds: float) -> None:
        """Move the rule clock forward (ack window, token expiry, timestamps)."""
        self.clock.advance(seconds)
        self.state.changed()

    async def disconnect_gateway(
        self, code: int = 4000, *, invalidate: bool = False, app: Any = None
    ) -> int:
        """Close the bot's gateway connection(s) with ``code``.

        With ``invalidate`` the session cannot be resumed (RESUME gets op 9), so the client
        identifies again. Returns how many connections were closed.
        """
        app_id = ref_id(app) if app is not None else None
        closed = await self.gateway.disconnect(code, app_id=app_id, invalidate=invalidate)
        self.state.changed()
        return closed

    # -- read-back -----------------------------------------------------------------------

    def messages(
        self, channel: Any, *, include_deleted: bool = False, visible_to: Any = None
    ) -> list[Message]:
        """A channel's messages, oldest first. Ephemeral ones only with ``visible_to``."""
        viewer = ref_id(visible_to) if visible_to is not None else None
        return self.state.channel_history(
            ref_id(channel), include_deleted=include_deleted, visible_to=viewer
        )

    def message(self, message_id: int) -> Message:
        return self.state.messages[message_id]

    def threads(self, parent: Any = None) -> list[Channel]:
        return self.state.threads_of(ref_id(parent) if parent is not None else None)

    def channel(self, channel_id: int) -> Channel:
        return self.state.channels[channel_id]

    def interaction(self, interaction_id: int) -> InteractionRecord:
        return self.state.interactions[interaction_id]

    @property
    def interactions(self) -> list[InteractionRecord]:
        return list(self.state.interactions.values())

    def rest_calls(
        self, method: str | None = None, route: str | None = None, status: int | None = None
    ) -> list[RestCall]:
        """Recorded ``/api/v10`` calls; ``route`` is the template, e.g.
        ``"/channels/{channel_id}/messages"``."""
        return [
            c
            for c in self.state.rest_calls
            if (method is None or c.method == method)
            and (route is None or c.route == route)
            and (status is None or c.status == status)
        ]

    def gateway_events(self, name: str | None = None, *, app: Any = None) -> list[dict[str, Any]]:
        """Dispatch payloads (``d``) sent to the bot's sessions, oldest first.

        Only the most recent 2,000 events of each session are kept.
        """
        app_id = ref_id(app) if app is not None else None
        return [
            event.payload["d"]
            for session in self.gateway.sessions.values()
            if app_id is None or session.app.id == app_id
            for event in session.buffer
            if name is None or event.payload["t"] == name
        ]

    @property
    def rate_limit_hits(self) -> list[RateLimitHit]:
        return list(self.ratelimiter.hits)

    @property
    def downloads(self) -> list[Download]:
        return list(self.state.downloads)

    @property
    def thread_creations(self) -> list[Any]:
        return list(self.state.thread_creations)
