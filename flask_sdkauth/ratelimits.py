"""Named rate limits on top of the ``limits`` library, stored by URI."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .errors import RateLimitException

__all__ = ["RateLimiter", "parse_limits"]


def parse_limits(key: str, text: str | None) -> tuple[RateLimitItem, ...]:
    """Parse a config value such as ``"3/minute;10/hour"``; ``None``/``""`` is none."""
    if text is None or text == "":
        return ()
    if not isinstance(text, str):
        raise TypeError(f"{key} must be a rate limit string such as '3/minute', got {text!r}")
    try:
        return tuple(parse_many(text))
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from exc


class RateLimiter:
    """Moving-window limits, each known by a rule name and keyed by identifiers."""

    def __init__(self, storage_url: str, rules: Mapping[str, tuple[RateLimitItem, ...]]) -> None:
        try:
            self._storage = storage_from_string(storage_url)
        except Exception as exc:
            raise ValueError(f"SDKAUTH_RATELIMIT_STORAGE_URL {storage_url!r}: {exc}") from exc
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._rules = dict(rules)

    def hit(self, rule: str, *key: str) -> None:
        """Count one request against every limit of ``rule``.

        :raises RateLimitException: a limit is already used up; nothing is counted.
        """
        self.check(rule, *key)
        for item in self._rules[rule]:
            self._limiter.hit(item, rule, *key)

    def check(self, rule: str, *key: str) -> None:
        """Raise :class:`RateLimitException` if a limit of ``rule`` is used up."""
        for item in self._rules[rule]:
            if not self._limiter.test(item, rule, *key):
                reset_at = self._limiter.get_window_stats(item, rule, *key).reset_time
                retry_after = max(1, math.ceil(reset_at - time.time()))
                raise RateLimitException(headers={"Retry-After": str(retry_after)})

    def count(self, rule: str, *key: str) -> None:
        """Count one event against ``rule`` without refusing anything."""
        for item in self._rules[rule]:
            self._limiter.hit(item, rule, *key)

    def reset(self) -> None:
        """Forget every counter (for tests and maintenance)."""
        self._storage.reset()
