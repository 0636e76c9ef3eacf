"""Several moving-window limits taken in one Redis round trip.

The ``limits`` library's Redis storage takes the slot of one limit per call, each
call a Lua script (``acquire_moving_window``) on one list. A send counts up to six
limits, so six round trips. :class:`RedisLimitBatch` runs the same steps for a list
of limits in one script: on the very keys the library uses, with the same entries,
trimming and expiry, so the library's own ``test``, ``get_window_stats`` and
``reset`` see every slot taken here. Redis runs a script atomically, so each limit
is still decided by one atomic operation.

It goes through the limits in order and stops at the first one without a slot, as
consecutive ``hit`` calls that stop at the first refusal do: the limits before it
are taken, it and those after it are not. It answers that limit's position and its
oldest entry, from which the refusal's ``Retry-After`` follows without another
round trip.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import RedisClusterStorage, RedisStorage

__all__ = ["BatchRefusal", "RedisLimitBatch"]

#: KEYS: one list per limit. ARGV[1]: the time now; then each limit's amount and
#: its window in seconds. The body of each step is acquire_moving_window's, for
#: one slot.
_SCRIPT = b"""
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
    local limit = tonumber(ARGV[2 * i])
    local expiry = tonumber(ARGV[2 * i + 1])
    local oldest = redis.call('lindex', KEYS[i], limit - 1)
    if oldest and tonumber(oldest) >= now - expiry then
        return {i, oldest}
    end
    redis.call('lpush', KEYS[i], now)
    redis.call('ltrim', KEYS[i], 0, limit - 1)
    redis.call('expire', KEYS[i], expiry)
end
return 0
"""


@dataclass(frozen=True)
class BatchRefusal:
    """The limit of a batch that had no slot left."""

    position: int  #: its index in the batch
    retry_after: int  #: whole seconds until one of its slots is free again


class RedisLimitBatch:
    """Takes a slot of several limits of one Redis storage in one round trip."""

    def __init__(self, storage: RedisStorage) -> None:
        self._storage = storage
        self._script = storage.get_connection().register_script(_SCRIPT)

    @classmethod
    def for_storage(cls, storage: object) -> RedisLimitBatch | None:
        """A batch for ``storage`` if one script can reach all its keys: a single
        Redis server or a Sentinel's master, not a cluster (keys in other slots)."""
        if isinstance(storage, RedisStorage) and not isinstance(storage, RedisClusterStorage):
            return cls(storage)
        return None

    def take(
        self, limits: Sequence[tuple[RateLimitItem, Sequence[str]]]
    ) -> BatchRefusal | None:
        """Take one slot of each ``(item, identifiers)`` in order; ``None`` if all
        were taken.

        :raises StorageError: Redis could not be reached.
        """
        keys = [self._storage.prefixed_key(item.key_for(*ids)) for item, ids in limits]
        now = time.time()
        arguments: list[Any] = [now]
        for item, _ in limits:
            arguments += (item.amount, item.get_expiry())
        try:
            answer = self._script(keys, arguments)
        except self._storage.base_exceptions as exc:
            raise StorageError(exc) from exc
        if answer == 0:
            return None
        position, oldest = answer
        item = limits[position - 1][0]
        # The oldest entry leaves the window strictly after oldest + expiry.
        reset = float(oldest) + item.get_expiry()
        return BatchRefusal(position - 1, max(1, math.floor(reset - time.time()) + 1))
