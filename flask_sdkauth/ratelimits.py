"""Named rate limits on top of the ``limits`` library, stored by URI.

Every decision is the answer of one atomic operation per limit (a lock in memory,
a Lua script in Redis), so concurrent requests can never both take the last slot.
:meth:`RateLimiter.take` counts several limits in order; on Redis that is one script,
one round trip (:mod:`~flask_sdkauth.limit_script`), elsewhere the library's ``hit``
for each. When the storage cannot be reached the limiter either
keeps counting in this process until the storage is back (the default, like
Flask-Limiter's in-memory fallback) or refuses with ``NoConnectionException``.
A Redis storage gets connect and read timeouts (``_REDIS_TIMEOUTS``; the URL's
``?socket_connect_timeout=…&socket_timeout=…`` override them), so a host that does
not answer costs a request seconds, not minutes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import methodcaller
from time import monotonic
from typing import TypeVar

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from limits.util import WindowStats

from .errors import NoConnectionException, RateLimitException
from .limit_script import RedisLimitBatch
from .outages import Outage

__all__ = ["RateLimiter", "Refusal", "parse_limits"]

T = TypeVar("T")

#: Seconds for redis-py, whose older releases wait as long as the OS lets a connect
#: or a read hang (recent ones 5 s); the storage URL's query arguments take precedence.
_REDIS_TIMEOUTS = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}
_REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+unix"})


#: One limit of a batch: the item, the identifiers of its key, and its rule's name.
_Counted = tuple[RateLimitItem, tuple[str, ...], str]


@dataclass(frozen=True)
class Refusal:
    """The rule of a :meth:`RateLimiter.take` that had a limit without a slot."""

    rule: str
    retry_after: int  #: whole seconds until that limit has a slot again

    def error(self) -> RateLimitException:
        """The contract's error for it, with ``Retry-After``."""
        return RateLimitException(headers={"Retry-After": str(self.retry_after)})


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
        options = _REDIS_TIMEOUTS if storage_url.partition("://")[0] in _REDIS_SCHEMES else {}
        try:
            self._storage = storage_from_string(storage_url, wrap_exceptions=True, **options)
        except Exception as exc:
            raise ValueError(f"SDKAUTH_RATELIMIT_STORAGE_URL {storage_url!r}: {exc}") from exc
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._batch = RedisLimitBatch.for_storage(self._storage)
        self._rules = dict(rules)
        self._fallback_to_memory = fallback_to_memory
        self._retry_seconds = retry_seconds
        self._memory_limiter = MovingWindowRateLimiter(MemoryStorage())
        self._outage = Outage(
            "rate-limit storage",
            "counting in this process until it is back"
            if fallback_to_memory
            else "limited operations answer NoConnectionException",
        )
        self._lock = threading.Lock()
        self._next_retry = 0.0

    def hit(self, rule: str, *key: str) -> None:
        """Take one slot of every limit of ``rule``, atomically per limit.

        :raises RateLimitException: a limit had no slot left (with ``Retry-After``).
        :raises NoConnectionException: the storage is down and there is no fallback.
        """
        refusal = self.take((rule, *key))
        if refusal is not None:
            raise refusal.error()

    def take(self, *hits: tuple[str, ...]) -> Refusal | None:
        """Take one slot of every limit of each rule, in order, as consecutive
        :meth:`hit` calls would: ``take(("send_per_ip", ip), ("send_per_recipient",
        number))``. Each hit is a rule's name followed by its key.

        The first limit without a slot stops the batch: the limits before it are
        taken, it and the limits after it are not. On Redis the batch is one round
        trip.

        :returns: ``None`` if every slot was taken, else the refusing rule.
        :raises NoConnectionException: the storage is down and there is no fallback.
        """
        counted = [
            (item, (rule, *key), rule)
            for rule, *key in hits
            for item in self._rules[rule]
        ]
        if not counted:
            return None
        return self._call(partial(self._take_on, counted))

    def _take_on(
        self, counted: Sequence[_Counted], limiter: MovingWindowRateLimiter
    ) -> Refusal | None:
        if limiter is self._limiter and self._batch is not None:
            refused = self._batch.take([(item, ids) for item, ids, _ in counted])
            if refused is None:
                return None
            return Refusal(counted[refused.position][2], refused.retry_after)
        for item, ids, rule in counted:
            if not limiter.hit(item, *ids):
                return Refusal(rule, _retry_after(limiter, item, ids))
        return None

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
            self._call(methodcaller("test", item, rule, *key))
            for item in self._rules[rule]
        )

    def reset(self) -> None:
        """Forget every counter (for tests and maintenance)."""
        self._call(lambda limiter: limiter.storage.reset())
        self._memory_limiter.storage.reset()

    @property
    def storage_is_down(self) -> bool:
        """Whether the last call found the storage unreachable."""
        return self._outage.ongoing

    def _call(self, operation: Callable[[MovingWindowRateLimiter], T]) -> T:
        """Run ``operation`` on the storage, or on the fallback while it is down."""
        if self._outage.ongoing and not self._claim_retry():
            return self._fallback(operation)
        try:
            result = operation(self._limiter)
        except StorageError as exc:
            with self._lock:
                self._next_retry = monotonic() + self._retry_seconds
            self._outage.began(type(exc.storage_error).__name__)
            return self._fallback(operation)
        self._outage.ended()
        return result

    def _claim_retry(self) -> bool:
        """While the storage is down: whether this caller is the one to try it again.
        One caller per ``retry_seconds`` does, so that a storage which hangs until
        its timeout delays one request, not every request arriving meanwhile."""
        with self._lock:
            now = monotonic()
            if now < self._next_retry:
                return False
            self._next_retry = now + self._retry_seconds
            return True

    def _fallback(self, operation: Callable[[MovingWindowRateLimiter], T]) -> T:
        if not self._fallback_to_memory:
            raise NoConnectionException()
        return operation(self._memory_limiter)


def _retry_after(
    limiter: MovingWindowRateLimiter, item: RateLimitItem, ids: tuple[str, ...]
) -> int:
    """Whole seconds after which a slot is free again (the window frees a slot
    strictly after its reset time, hence the floor plus one)."""
    stats: WindowStats = limiter.get_window_stats(item, *ids)
    return max(1, math.floor(stats.reset_time - time.time()) + 1)
