"""Named rate limits on top of the ``limits`` library, stored by URI.

Every decision is the answer of the library's own ``hit``: one atomic operation per
limit (a lock in memory, a Lua script in Redis), so concurrent requests can never
both take the last slot. When the storage cannot be reached the limiter either
keeps counting in this process until the storage is back (the default, like
Flask-Limiter's in-memory fallback) or refuses with ``NoConnectionException``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from time import monotonic
from collections.abc import Callable, Mapping
from typing import TypeVar

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .errors import NoConnectionException, RateLimitException

__all__ = ["RateLimiter", "parse_limits"]

logger = logging.getLogger("flask_sdkauth")

T = TypeVar("T")


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
    """Moving-window limits, each known by a rule name and keyed by identifiers.

    :param fallback_to_memory: while the storage is unreachable, count in this
        process instead of refusing; the storage is tried again every
        ``retry_seconds``.
    """

    def __init__(
        self,
        storage_url: str,
        rules: Mapping[str, tuple[RateLimitItem, ...]],
        *,
        fallback_to_memory: bool = True,
        retry_seconds: float = 5.0,
    ) -> None:
        try:
            self._storage = storage_from_string(storage_url, wrap_exceptions=True)
        except Exception as exc:
            raise ValueError(f"SDKAUTH_RATELIMIT_STORAGE_URL {storage_url!r}: {exc}") from exc
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._rules = dict(rules)
        self._fallback_to_memory = fallback_to_memory
        self._retry_seconds = retry_seconds
        self._memory_limiter = MovingWindowRateLimiter(MemoryStorage())
        self._lock = threading.Lock()
        self._down_since: float | None = None  # monotonic time the outage began
        self._next_retry = 0.0

    def hit(self, rule: str, *key: str) -> None:
        """Take one slot of every limit of ``rule``, atomically per limit.

        :raises RateLimitException: a limit had no slot left (with ``Retry-After``).
        :raises NoConnectionException: the storage is down and there is no fallback.
        """
        for item in self._rules[rule]:
            if not self._call(lambda limiter: limiter.hit(item, rule, *key)):
                raise RateLimitException(
                    headers={"Retry-After": str(self._retry_after(item, rule, key))}
                )

    def allows(self, rule: str, *key: str) -> bool:
        """Take one slot of every limit of ``rule``; ``False`` if one had none left."""
        try:
            self.hit(rule, *key)
        except RateLimitException:
            return False
        return True

    def check(self, rule: str, *key: str) -> bool:
        """Whether every limit of ``rule`` has a slot left, taking none (advisory:
        only :meth:`hit` decides)."""
        return all(
            self._call(lambda limiter: limiter.test(item, rule, *key))
            for item in self._rules[rule]
        )

    def reset(self) -> None:
        """Forget every counter (for tests and maintenance)."""
        self._call(lambda limiter: limiter.storage.reset())
        self._memory_limiter.storage.reset()

    @property
    def storage_is_down(self) -> bool:
        """Whether the last call found the storage unreachable."""
        return self._down_since is not None

    def _retry_after(self, item: RateLimitItem, rule: str, key: tuple[str, ...]) -> int:
        """Whole seconds after which a slot is free again (the window frees a slot
        strictly after its reset time, hence the floor plus one)."""
        stats = self._call(lambda limiter: limiter.get_window_stats(item, rule, *key))
        return max(1, math.floor(stats.reset_time - time.time()) + 1)

    def _call(self, operation: Callable[[MovingWindowRateLimiter], T]) -> T:
        """Run ``operation`` on the storage, or on the fallback while it is down."""
        if self._down_since is not None and monotonic() < self._next_retry:
            return self._fallback(operation)
        try:
            result = operation(self._limiter)
        except StorageError as exc:
            self._went_down(exc)
            return self._fallback(operation)
        if self._down_since is not None:
            self._came_back()
        return result

    def _fallback(self, operation: Callable[[MovingWindowRateLimiter], T]) -> T:
        if not self._fallback_to_memory:
            raise NoConnectionException()
        return operation(self._memory_limiter)

    def _went_down(self, exc: StorageError) -> None:
        with self._lock:
            self._next_retry = monotonic() + self._retry_seconds
            if self._down_since is not None:
                return
            self._down_since = monotonic()
        logger.error(
            "sdkauth: rate-limit storage unreachable (%s); %s",
            type(exc.storage_error).__name__,
            "counting in this process until it is back"
            if self._fallback_to_memory
            else "limited operations answer NoConnectionException",
        )

    def _came_back(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            seconds = monotonic() - self._down_since
            self._down_since = None
        logger.warning("sdkauth: rate-limit storage reachable again after %.0f s", seconds)
