"""Rate limits on calls without a valid token: per client address, and for all such calls together.

Every recorded call writes an event into a trail locked for years, and
callers without a token can be anyone; the limits bound what they can write.
Moving windows in memory, from the ``limits`` package. A refused call is
answered 429 and is not recorded one by one: the first refusal of a window
(per address, or for all) is recorded as ``trail.rate_limited`` and carries
how many refusals since the previous such event went unrecorded, so a flood
costs the trail one small event per address and window. Callers with a valid
token are never limited: their calls are the trail's purpose.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from sealtrail.errors import ConfigError
from sealtrail.evidence.api.caller import limit_key

TRACKED_MAX = 10_000  # addresses whose unrecorded refusals are counted (all of them are in the metrics)


def parse_limit(setting: str, text: str) -> RateLimitItem | None:
    """``60/minute`` as a limit; empty is no limit; anything else a ConfigError naming SETTING."""
    if not text.strip():
        return None
    try:
        return parse(text)
    except ValueError as e:
        raise ConfigError(setting, f"not a rate limit such as 60/minute: {text!r}") from e


@dataclass(frozen=True)
class Refusal:
    """A call over a limit: when to come back, and whether this refusal is the one the trail records."""

    limit: str  # "per address: 60 per 1 minute"
    retry_after_s: int
    record: bool
    unrecorded: int  # refusals since the previous recorded one for the same key (this one not counted)


class Throttle:
    def __init__(self, per_address: str, total: str) -> None:
        self._limits = [(item, scope) for item, scope in (
            (parse_limit("serve.anonymous_rate_limit", per_address), "address"),
            (parse_limit("serve.anonymous_rate_limit_total", total), "all"),
        ) if item is not None]
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._unrecorded: dict[str, int] = {}

    def check(self, ip: str | None) -> Refusal | None:
        """Count one call without a valid token from IP; a Refusal if it is over a limit."""
        for item, scope in self._limits:
            key = limit_key(ip) if scope == "address" else "*"
            if self._limiter.hit(item, "anonymous", scope, key):
                continue
            reset = self._limiter.get_window_stats(item, "anonymous", scope, key).reset_time
            marker = type(item)(1, item.multiples)  # one recorded refusal per key and window
            if self._limiter.hit(marker, "recorded", scope, key):
                unrecorded, record = self._unrecorded.pop(key, 0), True
            else:
                unrecorded, record = 0, False
                if key in self._unrecorded or len(self._unrecorded) < TRACKED_MAX:
                    self._unrecorded[key] = self._unrecorded.get(key, 0) + 1
            return Refusal(f"per {scope}: {item}", max(1, math.ceil(reset - time.time())), record, unrecorded)
        return None
