"""Long polls on one gevent worker: memory per waiter and wake-up latency.

For each notifier (``memory://``, then Redis) and each N of ``--waiters``, the script
starts a fresh gunicorn serving ``bench_app`` with ``--worker-class gevent --workers 1
--worker-connections max(1000, N + 100)``, ``SDKAUTH_LONG_POLLING_INTERVAL=60`` and
``SDKAUTH_LONG_POLLING_TIMEOUT=120`` (so a waiter wakes up only when notified), and:

1. creates N sessions (``send``) and fetches each one's channel (``getChannel``), so
   that a long poll on it has to wait;
2. reads the worker's RSS (``VmRSS`` in ``/proc/PID/status``), opens N
   ``GET /longPolling/{id}/channel``, one connection each, waits until the worker
   reports N waiters (``/_bench/waiting``) and has gone idle (every poll has read
   its session once and sleeps; the time this takes is reported as "settle"), and
   reads the RSS again: the difference over N is the memory per waiter;
3. changes each session with a wrong ``checkCode`` (which uses an attempt, so the
   channel snapshot changes), ``--trigger-concurrency`` at a time: through the same
   worker with ``memory://``; through a second gunicorn process (one gthread
   worker) sharing the database with Redis, so the news has to cross processes;
4. measures, for each session, the time from the change's response (and from the
   change's request) to the long poll's response: p50 and p99.

The load client is one asyncio process; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app
from _common import (
    DEFAULT_REDIS_URL,
    RECIPIENT,
    WRONG_CODE,
    Connection,
    Reply,
    Server,
    Workdir,
    add_database_argument,
    argument_parser,
    build_request,
    check_database,
    cpu_seconds,
    install_time_limit,
    machine_summary,
    ms,
    percentile,
    print_table,
    raise_open_files_limit,
    rss_kib,
    run_load,
    sqlite_file_url,
)

WARMUP_SESSIONS = 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, time_limit=600)
    parser.add_argument("--waiters", default="2000",
                        help="comma-separated numbers of concurrent long polls "
                             "(default: %(default)s)")
    parser.add_argument("--notifiers", default="memory,redis",
                        help="comma-separated: memory, redis (default: %(default)s)")
    add_database_argument(parser, "the app")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL,
                        help="Redis for the redis notifier (default: %(default)s)")
    parser.add_argument("--trigger-concurrency", type=int, default=1,
                        help="changes (wrong checkCodes) in flight at once "
                             "(default: %(default)s)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the servers' logs")
    return parser.parse_args(argv)


@dataclass
class LevelResult:
    notifier: str
    waiters: int
    rss_before: int  # KiB
    rss_waiting: int  # KiB
    rss_after: int  # KiB
    after_answer: list[float]  # long poll answered - change answered, seconds
    after_request: list[float]  # long poll answered - change sent, seconds
    get_channel: list[float]  # plain getChannel latencies, one at a time, seconds
    wrong: int  # long polls or changes that did not answer as expected
    full_gc: dict[str, float]  # the worker's full collections while waking up
    settled: float  # seconds from opening the long polls to the worker going idle


async def get_json(port: int, path: str) -> Any:
    connection = Connection(port)
    try:
        reply = await connection.request(build_request("GET", path))
    finally:
        await connection.close()
    return json.loads(reply.body)


async def wait_for_waiters(port: int, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await get_json(port, "/_bench/waiting"))["waiting"] >= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{count} long polls not waiting after {timeout} s")


async def wait_until_idle(pid: int, timeout: float, window: float = 0.5,
                          busy: float = 0.03) -> None:
    """Wait until the worker uses less than ``busy`` of a CPU over ``window`` seconds:
    every long poll has then done its first read and sleeps."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(window)
        if cpu_seconds(pid) - before < busy * window:
            return
    raise RuntimeError(f"worker {pid} still busy after {timeout} s")


async def round_trip(
    waiter_port: int, change_port: int, token: str, widget_id: str, count: int,
    trigger_concurrency: int, worker_pid: int,
) -> tuple[list[float], list[float], list[float], int, dict[str, float], float,
           tuple[int, int, int]]:
    """Create ``count`` sessions, make them wait, change them; see the module doc."""
    send = build_request("POST", "/", token=token,
                         body={"widgetId": widget_id, "recipient": RECIPIENT})
    created = await run_load(waiter_port, [send] * count, 8)
    ids = [reply.json()["requestId"] for reply in created.replies if reply.status == 201]
    if len(ids) != count:
        raise RuntimeError(f"send failed: {created.statuses()}")
    # One at a time: their latency is the reference for a wake-up, which does the
    # same work (read the session, record the snapshot, answer the channel).
    channels = [build_request("GET", f"/{request_id}/channel", token=token) for request_id in ids]
    seen = await run_load(waiter_port, channels, 1)
    if seen.statuses() != {200: count}:
        raise RuntimeError(f"getChannel failed: {seen.statuses()}")

    await asyncio.sleep(1)
    await wait_until_idle(worker_pid, timeout=60)
    rss_before = rss_kib(worker_pid)

    # One connection per long poll, opened 100 at a time.
    connections = [Connection(waiter_port) for _ in ids]
    for start in range(0, count, 100):
        await asyncio.gather(*(c.connect() for c in connections[start:start + 100]))
    polls = [
        asyncio.create_task(
            connection.request(build_request("GET", f"/longPolling/{request_id}/channel",
                                              token=token))
        )
        for connection, request_id in zip(connections, ids, strict=False)
    ]
    opened = time.perf_counter()
    # The worker counts a waiter as soon as it subscribes, before its first read of
    # the session: wait for the count, then for the worker to go idle.
    await wait_for_waiters(waiter_port, count, timeout=60)
    await wait_until_idle(worker_pid, timeout=60)
    settled = time.perf_counter() - opened
    rss_waiting = rss_kib(worker_pid)

    changes = [
        build_request("POST", f"/{request_id}/checkCode", token=token,
                      body={"code": WRONG_CODE})
        for request_id in ids
    ]
    await get_json(waiter_port, "/_bench/gc?reset=1")
    changed = await run_load(change_port, changes, trigger_concurrency)
    answers: list[Reply] = await asyncio.wait_for(asyncio.gather(*polls), timeout=60)
    full_gc = await get_json(waiter_port, "/_bench/gc")
    for connection in connections:
        await connection.close()
    await wait_until_idle(worker_pid, timeout=60)
    rss_after = rss_kib(worker_pid)

    wrong = sum(1 for reply in answers if reply.status != 200)
    wrong += sum(1 for reply in changed.replies
                 if reply.status != 400 or reply.json()["type"] != "InvalidCodeException")
    after_answer = [poll.done_at - change.done_at
                    for poll, change in zip(answers, changed.replies, strict=False)]
    after_request = [poll.done_at - change.sent_at
                     for poll, change in zip(answers, changed.replies, strict=False)]
    return (after_answer, after_request, seen.latencies(), wrong, full_gc, settled,
            (rss_before, rss_waiting, rss_after))


def run_level(args: argparse.Namespace, notifier: str, waiters: int, url: str,
              workdir: Workdir) -> LevelResult:
    secret = secrets.token_urlsafe(32)
    widget_id, token = bench_app.prepare_database(url, secret)
    env = {
        "BENCH_DATABASE_URL": url,
        "BENCH_SECRET_KEY": secret,
        "BENCH_NOTIFIER_URL": "memory://" if notifier == "memory" else args.redis_url,
        "BENCH_LONG_POLLING_INTERVAL": "60",
        "BENCH_LONG_POLLING_TIMEOUT": "120",
    }
    servers = []
    try:
        waiter = Server(f"lp-{notifier}-{waiters}", "bench_app:create_app()", env=env,
                        worker_class="gevent", workers=1,
                        worker_connections=max(1000, waiters + 100), log_dir=workdir.path)
        servers.append(waiter)
        changer = waiter
        if notifier == "redis":
            changer = Server(f"lp-{notifier}-{waiters}-changes", "bench_app:create_app()",
                             env=env, worker_class="gthread", workers=1, threads=4,
                             log_dir=workdir.path)
            servers.append(changer)
        for server in servers:
            server.wait_ready(1)
        worker_pid = waiter.pids[0]

        async def scenario() -> LevelResult:
            # Warm up every code path (and the Redis subscription) first.
            await round_trip(waiter.port, changer.port, token, widget_id, WARMUP_SESSIONS,
                             args.trigger_concurrency, worker_pid)
            (after_answer, after_request, get_channel, wrong, full_gc, settled,
             rss) = await round_trip(waiter.port, changer.port, token, widget_id, waiters,
                                     args.trigger_concurrency, worker_pid)
            return LevelResult(notifier, waiters, *rss, after_answer, after_request,
                               get_channel, wrong, full_gc, settled)

        return asyncio.run(scenario())
    finally:
        for server in servers:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_time_limit(args.time_limit)
    levels = [int(value) for value in args.waiters.split(",") if value.strip()]
    notifiers = [name.strip() for name in args.notifiers.split(",") if name.strip()]
    for name in notifiers:
        if name not in ("memory", "redis"):
            raise SystemExit(f"unknown notifier {name!r}")
    limit = raise_open_files_limit(max(levels) * 2 + 200)
    if limit < max(levels) + 200:
        raise SystemExit(f"open files limit {limit} is too low for {max(levels)} waiters")
    if "redis" in notifiers:
        import redis

        redis.Redis.from_url(args.redis_url).ping()
    workdir = Workdir(keep=args.keep_logs)
    url = args.postgres_url
    if args.database == "sqlite":
        url = sqlite_file_url(workdir.path)
    else:
        check_database(url)
    print(machine_summary())
    print(f"gunicorn --worker-class gevent --workers 1; database {args.database}; "
          f"changes {args.trigger_concurrency} at a time\n")
    results = []
    try:
        for notifier in notifiers:
            for waiters in levels:
                result = run_level(args, notifier, waiters, url, workdir)
                results.append(result)
                print(f"[{notifier}] {waiters} waiters: "
                      f"{(result.rss_waiting - result.rss_before) / waiters:.1f} KiB each, "
                      f"wake-up p50 {ms(percentile(result.after_answer, 0.5))} ms", flush=True)
    finally:
        if args.keep_logs:
            print(f"logs kept in {workdir.path}")
        workdir.cleanup()

    print()
    print_table(
        ["notifier", "waiters", "RSS before MiB", "RSS waiting MiB", "KiB/waiter",
         "RSS after MiB", "settle s"],
        [[r.notifier, r.waiters, f"{r.rss_before / 1024:.1f}", f"{r.rss_waiting / 1024:.1f}",
          f"{(r.rss_waiting - r.rss_before) / r.waiters:.1f}", f"{r.rss_after / 1024:.1f}",
          f"{r.settled:.1f}"]
         for r in results],
    )
    print_table(
        ["notifier", "waiters", "wake-up p50 ms", "wake-up p99 ms",
         "from change sent p50 ms", "from change sent p99 ms", "getChannel p50 ms",
         "getChannel p99 ms", "full GCs", "longest GC ms", "wrong answers"],
        [[r.notifier, r.waiters, ms(percentile(r.after_answer, 0.5)),
          ms(percentile(r.after_answer, 0.99)), ms(percentile(r.after_request, 0.5)),
          ms(percentile(r.after_request, 0.99)), ms(percentile(r.get_channel, 0.5)),
          ms(percentile(r.get_channel, 0.99)), int(r.full_gc["count"]),
          ms(r.full_gc["longest"]), r.wrong]
         for r in results],
    )
    print("settle: from opening the long polls until the worker is idle (every poll "
          "has read its session once and waits)")
    print("wake-up: from the change's response to the long poll's response "
          "(negative when the long poll answered first);\n"
          "from change sent: from the change's request to the long poll's response;\n"
          "getChannel: a plain getChannel on the same worker, one at a time, before "
          "the long polls (the work a wake-up repeats);\n"
          "full GCs: generation-2 garbage collections of the waiting worker while the "
          "changes ran, and the longest one")
    return 0 if not any(r.wrong for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
