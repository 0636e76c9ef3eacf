"""What one rate-limit decision costs in the ``limits`` library, in-process.

For each storage (``memory://`` and ``--redis-url``) the script times, on one
thread, ``--calls`` calls of each of:

- ``hit``: ``MovingWindowRateLimiter.hit(item, *keys)``, the one atomic call per
  limit (a lock in memory, a Lua script in Redis), on one shared key;
- ``test + hit``: a ``test`` then a ``hit`` on the same key, the two calls per
  limit of a check-then-count design;
- ``hit, new key``: ``hit`` on a key of its own each time (one per phone number or
  session).

The shared key's limit is large (``--calls`` never fills it) with a one-minute
window, so that every call is answered ``True``. It prints microseconds per call
(mean, p50, p99) and, for each storage, what a send (6 limits) and a checkCode
(3 limits) spend in these calls with one ``hit`` per limit.

``memory://`` also expires entries in a background thread: 10 ms after a call
finds no sweep scheduled, a ``threading.Timer`` walks every key the storage holds.
The script fills a storage with ``--keys`` live keys (a list, one entry each, in a
15-minute window, plus one shared key holding as many entries) and times one such
sweep: the CPU time, under the GIL, that a busy worker pays about every 10 ms.

Loopback only; in Redis the script deletes the ``limits`` keys (prefix ``LIMITS``)
of the database of ``--redis-url`` before and after (give it one of its own).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DEFAULT_REDIS_URL,
    argument_parser,
    install_time_limit,
    machine_summary,
    percentile,
    print_table,
)
from limits import parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

#: Limits a request takes with the extension's default settings.
LIMITS_PER_REQUEST = {"send": 6, "checkCode": 3}


def parse_args(argv: list[str] | None = None) -> Any:
    parser = argument_parser(__doc__, time_limit=180)
    parser.add_argument("--storages", default="memory,redis",
                        help="comma-separated: memory, redis (default: %(default)s)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL,
                        help="Redis for the redis storage; its limits keys are "
                             "deleted before and after (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=5000,
                        help="timed calls per kind and storage (default: %(default)s)")
    parser.add_argument("--keys", default="1000,3000,10000",
                        help="live keys for the memory sweep, comma-separated "
                             "(default: %(default)s)")
    return parser.parse_args(argv)


def timed(calls: int, operation: Any) -> list[float]:
    durations = []
    for index in range(calls):
        started = time.perf_counter()
        operation(index)
        durations.append(time.perf_counter() - started)
    return durations


def measure_calls(limiter: MovingWindowRateLimiter, calls: int, run: str) -> dict[str, list[float]]:
    shared = parse(f"{calls * 10}/minute")
    own = parse("10 per 15 minutes")
    # Unmeasured warm-up (connections, Lua scripts loaded).
    for _index in range(200):
        limiter.hit(shared, "warmup", run)
        limiter.test(shared, "warmup", run)

    def hit(index: int) -> None:
        assert limiter.hit(shared, "shared", run, "hit")

    def test_and_hit(index: int) -> None:
        assert limiter.test(shared, "shared", run, "test")
        assert limiter.hit(shared, "shared", run, "test")

    def hit_new_key(index: int) -> None:
        assert limiter.hit(own, "own", run, str(index))

    return {
        "hit": timed(calls, hit),
        "test + hit": timed(calls, test_and_hit),
        "hit, new key": timed(calls, hit_new_key),
    }


def sweep_ms(keys: int) -> float:
    """Mean duration of one expiry sweep of a MemoryStorage holding ``keys`` keys."""
    storage = MemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    own = parse("10 per 15 minutes")
    shared = parse(f"{keys * 10}/hour")
    for index in range(keys):
        limiter.hit(own, "own", str(index))
        limiter.hit(shared, "shared")
    sweep = getattr(storage, "_MemoryStorage__expire_events", None)
    storage.timer.cancel()
    if sweep is None:
        return float("nan")
    repeats = 20
    started = time.perf_counter()
    for _ in range(repeats):
        sweep()
    duration = (time.perf_counter() - started) / repeats
    storage.timer.cancel()
    return duration * 1000


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_time_limit(args.time_limit)
    storages = [name.strip() for name in args.storages.split(",") if name.strip()]
    for name in storages:
        if name not in ("memory", "redis"):
            raise SystemExit(f"unknown storage {name!r}")
    print(machine_summary())
    print(f"{args.calls} timed calls per kind and storage, one thread\n", flush=True)
    rows = []
    per_request = []
    run = str(time.time_ns())
    for name in storages:
        if name == "memory":
            storage = MemoryStorage()
        else:
            storage = storage_from_string(args.redis_url)
            storage.reset()
        try:
            results = measure_calls(MovingWindowRateLimiter(storage), args.calls, run)
        finally:
            if name == "redis":
                storage.reset()
            else:
                storage.timer.cancel()
        for kind, durations in results.items():
            rows.append([name, kind, f"{statistics.fmean(durations) * 1e6:.1f}",
                         f"{percentile(durations, 0.5) * 1e6:.1f}",
                         f"{percentile(durations, 0.99) * 1e6:.1f}"])
        hit = statistics.fmean(results["hit"])
        both = statistics.fmean(results["test + hit"])
        for operation, limits in LIMITS_PER_REQUEST.items():
            per_request.append([name, operation, limits, f"{limits * hit * 1000:.3f}",
                                f"{limits * both * 1000:.3f}"])
        print(f"[{name}] done", flush=True)
    print()
    print_table(["storage", "call", "mean us", "p50 us", "p99 us"], rows)
    print_table(["storage", "operation", "limits", "one hit each ms", "test + hit each ms"],
                per_request)
    if "memory" in storages:
        sweeps = [[f"{keys:,}", f"{sweep_ms(keys):.2f}"]
                  for keys in (int(k) for k in args.keys.split(",") if k.strip())]
        print("memory:// expiry sweep (one Timer run over every key):")
        print_table(["live keys", "one sweep ms"], sweeps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
