"""Per-route, per-resource rate limits with Discord's headers.

Fixed windows in real monotonic time: the first request opens a window of ``per`` seconds,
``limit`` requests fit in it, the next one gets a 429 whose ``retry_after`` is the time left.
Every answer on a limited route carries coherent ``X-RateLimit-*`` headers, so discord.py's
own bucket tracking paces itself and a well-behaved client rarely sees a 429.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RateLimitRule:
    """``limit`` requests per ``per`` seconds on ``routes``, counted per ``scope`` value.

    ``routes`` holds ``(METHOD, template)`` pairs with templates relative to ``/api/v10``
    (for example ``("POST", "/channels/{channel_id}/messages")``); ``scope`` names the
    path parameter that splits the bucket (``""`` for one bucket for everything).
    """

    name: str
    routes: tuple[tuple[str, str], ...]
    limit: int
    per: float
    scope: str = "channel_id"

    @property
    def bucket_hash(self) -> str:
        return hashlib.sha1(self.name.encode()).hexdigest()[:32]


#: https://discord.com/developers/docs/topics/rate-limits#global-rate-limit: 50 requests per
#: second per bot; interaction endpoints are not bound to it.
GLOBAL_RULE = RateLimitRule("global", (), limit=50, per=1.0, scope="")

_WEBHOOK_MESSAGE = "/webhooks/{application_id}/{token}/messages/{message_id}"

#: Discord gives message creates and message edits separate buckets (seen in its
#: ``X-RateLimit-Bucket`` headers: a burst of edits does not delay a new post), 5 per 5 s per
#: channel each; 5 calls per 2 s per interaction webhook.
DEFAULT_RULES: tuple[RateLimitRule, ...] = (
    RateLimitRule(
        "channel-message-create",
        (("POST", "/channels/{channel_id}/messages"),),
        limit=5,
        per=5.0,
        scope="channel_id",
    ),
    RateLimitRule(
        "channel-message-edit",
        (("PATCH", "/channels/{channel_id}/messages/{message_id}"),),
        limit=5,
        per=5.0,
        scope="channel_id",
    ),
    RateLimitRule(
        "interaction-webhook",
        (
            ("POST", "/webhooks/{application_id}/{token}"),
            ("PATCH", _WEBHOOK_MESSAGE),
            ("DELETE", _WEBHOOK_MESSAGE),
        ),
        limit=5,
        per=2.0,
        scope="token",
    ),
)


@dataclass
class _Window:
    started: float
    count: int = 0


@dataclass
class RateLimitHit:
    """A request answered with 429."""

    bucket: str
    scope: str
    method: str
    path: str
    retry_after: float
    monotonic: float


@dataclass
class Decision:
    allowed: bool
    bucket: str
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float = 0.0


def _ceil_ms(seconds: float) -> float:
    return max(0.001, math.ceil(seconds * 1000) / 1000)


class RateLimiter:
    def __init__(self, rules: Iterable[RateLimitRule] = ()) -> None:
        self._rules: dict[tuple[str, str], RateLimitRule] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self.hits: list[RateLimitHit] = []
        #: The per-bot limit across all routes (None: unlimited).
        self.global_rule: RateLimitRule | None = None
        self.configure(rules)

    def configure(
        self, rules: Iterable[RateLimitRule], global_rule: RateLimitRule | None = None
    ) -> None:
        """Replace the rules (and forget open windows)."""
        self._rules = {route: rule for rule in rules for route in rule.routes}
        self.global_rule = global_rule
        self._windows.clear()

    @property
    def rules(self) -> list[RateLimitRule]:
        return list(dict.fromkeys(self._rules.values()))

    def rule_for(self, method: str, template: str) -> RateLimitRule | None:
        return self._rules.get((method, template))

    def check(self, rule: RateLimitRule, scope_value: str, method: str, path: str) -> Decision:
        """Count one request against ``rule``; say whether it may proceed, with headers."""
        now = time.monotonic()
        key = (rule.name, scope_value)
        window = self._windows.get(key)
        if window is None or now >= window.started + rule.per:
            window = self._windows[key] = _Window(started=now)
        reset_after = _ceil_ms(window.started + rule.per - now)
        headers = {
            "X-RateLimit-Limit": str(rule.limit),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": rule.bucket_hash,
        }
        if window.count >= rule.limit:
            headers["X-RateLimit-Remaining"] = "0"
            headers["X-RateLimit-Scope"] = "global" if rule is self.global_rule else "user"
            if rule is self.global_rule:
                headers["X-RateLimit-Global"] = "true"
            headers["Retry-After"] = str(math.ceil(reset_after))
            headers["Via"] = "1.1 google"
            self.hits.append(RateLimitHit(rule.name, scope_value, method, path, reset_after, now))
            return Decision(False, rule.name, headers, reset_after)
        window.count += 1
        headers["X-RateLimit-Remaining"] = str(rule.limit - window.count)
        return Decision(True, rule.name, headers)
