"""send and checkCode through gunicorn: flask-sdkauth next to a minimal handler.

For each database (SQLite file in WAL mode, PostgreSQL) the script starts two
gunicorn servers configured the same way, one serving ``bench_app`` (flask-sdkauth)
and one serving ``minimal_app`` (plain Flask + PyJWT + phonenumbers + one SQLAlchemy
Core statement), then measures, back to back in this one run:

1. ``send``: ``--requests`` ``POST /`` after ``--warmup`` unmeasured ones;
2. ``checkCode``: the right code for each session the sends created.

The load comes from an asyncio HTTP/1.1 client holding ``--concurrency`` keep-alive
connections (closed loop), spread evenly over the workers (each connection asks
``/_bench/pid`` and is reopened until every worker holds its share). The measurement is repeated ``--rounds`` times (4 by
default), the two apps taking turns (ours first in odd rounds, minimal first in
even ones), so that slow phases of a shared machine hit both; the rounds are
pooled. It prints req/s, p50 and p99 latency, the CPU time the server's workers
used per request, and the ratio ours/minimal of the throughputs (the target is
>= 0.8) with its range over the rounds.

``--protections`` chooses the abuse protection of both apps (see
``bench_limits.py``): ``off`` (the default) switches the extension's rate limits
and daily caps off, and the minimal handler has none; ``memory`` and ``redis``
keep the extension's default limits and caps (the amounts of those whose key every
request shares raised above the run's size) counted in ``memory://`` or in
``--redis-url``, and the minimal handler takes the same limits by hand with the
``limits`` library on the same storage. With several modes, each gets its own pair
of servers on the same database, the modes take turns within every round, and the
script also prints what the protections cost each app: protected req/s over
unprotected req/s of the same app, and the server CPU time they add per request.
In ``redis`` mode it also reads the Redis server's CPU time, scripts run (EVAL,
EVALSHA: one per ``limits`` call) and commands run (those of the scripts included)
around each measurement (``INFO``); all three include anything else that server
does meanwhile.
Every send goes to a phone number of its own, in every mode, so that the limits per
number and per session keep their default amounts; every request must succeed
(201), so that the run measures counting and not refusals. In ``redis`` mode the
script empties the Redis database of ``--redis-url`` before and after each
database's servers run (give it one of its own).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import sys
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app
import bench_limits
import minimal_app
from _common import (
    DEFAULT_REDIS_URL,
    FIXED_CODE,
    LoadResult,
    Reply,
    Server,
    Workdir,
    add_server_arguments,
    argument_parser,
    build_request,
    check_database,
    cpu_seconds,
    install_time_limit,
    load,
    machine_busy_seconds,
    machine_summary,
    ms,
    percentile,
    print_table,
    sqlite_file_url,
)

OPERATIONS = ("send", "checkCode")
APPS = ("ours", "minimal")
#: Default --time-limit per protection mode, in seconds.
TIME_LIMIT_PER_MODE = 600


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, time_limit=TIME_LIMIT_PER_MODE)
    for action in parser._actions:
        if action.dest == "time_limit":
            action.default = None
            action.help = (f"stop after this many seconds whatever happens (default: "
                           f"{TIME_LIMIT_PER_MODE} per protection mode)")
    parser.add_argument("--protections", default="off",
                        help="comma-separated: off, memory, redis: the apps' rate limits "
                             "and caps, and where they count (default: %(default)s)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL,
                        help="Redis for --protections redis; emptied before and after "
                             "use (default: %(default)s)")
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql (default: both)")
    parser.add_argument("--requests", type=int, default=750,
                        help="measured requests per operation, app and round "
                             "(default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=100,
                        help="unmeasured requests before each measurement "
                             "(default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="measurement rounds; the apps alternate their order "
                             "(default: %(default)s)")
    add_server_arguments(parser)
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "gevent"),
                        help="gunicorn worker class (default: %(default)s)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the servers' logs and the SQLite file")
    return parser.parse_args(argv)


def prepare_database(url: str, secret: str) -> tuple[str, str]:
    """Create both apps' tables afresh; return a widget id and its token."""
    widget_id, token = bench_app.prepare_database(url, secret)
    engine = sa.create_engine(url)
    minimal_app.metadata.drop_all(engine)
    minimal_app.metadata.create_all(engine)
    engine.dispose()
    return widget_id, token


@dataclass
class Measurement:
    result: LoadResult
    warmup: list[Reply]
    server_cpu: float  # CPU seconds used by the server's workers
    client_cpu: float  # CPU seconds used by this process (the load client)
    machine_busy: float  # share of the machine's CPU time that was busy
    redis_cpu: float | None  # CPU seconds of the whole Redis server (redis mode)
    redis_calls: tuple[int, int] | None  # (scripts, commands) of the Redis server


def redis_cpu_seconds(client: Any) -> float:
    """CPU seconds (user + system) the Redis server has used so far."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


SCRIPT_COMMANDS = ("cmdstat_eval", "cmdstat_evalsha", "cmdstat_eval_ro",
                   "cmdstat_evalsha_ro")


def redis_calls(client: Any) -> tuple[int, int]:
    """(scripts run, commands run) by the Redis server so far, INFO left out; the
    commands count those that scripts run too."""
    stats = client.info("commandstats")
    scripts = sum(int(stats[name]["calls"]) for name in SCRIPT_COMMANDS if name in stats)
    commands = sum(int(value["calls"]) for name, value in stats.items()
                   if name != "cmdstat_info")
    return scripts, commands


def measure(server: Server, requests: list[bytes], warmup: int,
            concurrency: int, redis_client: Any = None) -> Measurement:
    workers = len(server.pids)
    warm = load(server.port, requests[:warmup], concurrency, workers).replies if warmup else []
    server_before = sum(cpu_seconds(pid) for pid in server.pids)
    client_before = sum(os.times()[:2])
    busy_before, total_before = machine_busy_seconds()
    redis_before = redis_cpu_seconds(redis_client) if redis_client is not None else 0.0
    calls_before = redis_calls(redis_client) if redis_client is not None else (0, 0)
    result = load(server.port, requests[warmup:], concurrency, workers)
    busy_after, total_after = machine_busy_seconds()
    calls_after = redis_calls(redis_client) if redis_client is not None else (0, 0)
    redis_after = redis_cpu_seconds(redis_client) if redis_client is not None else 0.0
    return Measurement(
        result=result,
        warmup=warm,
        server_cpu=sum(cpu_seconds(pid) for pid in server.pids) - server_before,
        client_cpu=sum(os.times()[:2]) - client_before,
        machine_busy=(busy_after - busy_before) / max(total_after - total_before, 1e-9),
        redis_cpu=redis_after - redis_before if redis_client is not None else None,
        redis_calls=(calls_after[0] - calls_before[0], calls_after[1] - calls_before[1])
        if redis_client is not None else None,
    )


def check_protection_settings() -> None:
    """Exit if the installed extension has no rate limits; warn if the defaults that
    bench_limits.LIMITS keeps are no longer the extension's defaults."""
    from flask_sdkauth.config import DEFAULT_CONFIG

    if "SDKAUTH_RATELIMIT_STORAGE_URL" not in DEFAULT_CONFIG:
        raise SystemExit("the installed flask-sdkauth has no rate limits; "
                         "use --protections off")
    for key in bench_limits.DEFAULT_KEYS:
        if DEFAULT_CONFIG.get(key) != bench_limits.LIMITS[key]:
            print(f"warning: {key} is {DEFAULT_CONFIG.get(key)!r} in the extension's "
                  f"defaults, {bench_limits.LIMITS[key]!r} in bench_limits.LIMITS",
                  flush=True)


def served_protections(server: Server) -> str:
    with urllib.request.urlopen(f"{server.url}/_bench/pid", timeout=5) as reply:
        return str(json.loads(reply.read()).get("protections", "off"))


def storage_url(mode: str, redis_url: str) -> str:
    return "memory://" if mode == "memory" else redis_url


def pooled(cell: list[Measurement]) -> tuple[float, float, int]:
    """(req/s, server CPU s per request, requests) of the rounds of one cell."""
    count = sum(len(run.result.replies) for run in cell)
    wall = sum(run.result.wall for run in cell)
    return count / wall, sum(run.server_cpu for run in cell) / count, count


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    modes = [name.strip() for name in args.protections.split(",") if name.strip()]
    for name in modes:
        if name not in bench_limits.PROTECTIONS:
            raise SystemExit(f"unknown protections {name!r}")
    if len(set(modes)) != len(modes) or not modes:
        raise SystemExit("--protections: give each mode once")
    if args.time_limit is None:
        args.time_limit = TIME_LIMIT_PER_MODE * len(modes)
    install_time_limit(args.time_limit)
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    for name in databases:
        if name not in ("sqlite", "postgresql"):
            raise SystemExit(f"unknown database {name!r}")
    if "postgresql" in databases:
        check_database(args.postgres_url)
    if any(mode != "off" for mode in modes):
        check_protection_settings()
    redis_client = None
    if "redis" in modes:
        import redis

        redis_client = redis.Redis.from_url(args.redis_url)
        redis_client.ping()
    print(machine_summary())
    print(
        f"gunicorn --worker-class {args.worker_class} --workers {args.workers}"
        + (f" --threads {args.threads}" if args.worker_class == "gthread" else "")
        + f"; client: {args.concurrency} keep-alive connections; "
        f"{args.requests} measured requests x {args.rounds} rounds per cell; "
        f"protections: {', '.join(modes)}"
        + (f" (redis: {args.redis_url})" if redis_client is not None else "")
        + "\n"
    )
    workdir = Workdir(keep=args.keep_logs)
    secret = secrets.token_urlsafe(32)
    # runs[(database, mode, operation, app)] -> one Measurement per round
    runs: dict[tuple[str, str, str, str], list[Measurement]] = defaultdict(list)
    errors: dict[tuple[str, str, str, str], Counter[int]] = defaultdict(Counter)
    servers: list[Server] = []
    numbers = itertools.count()  # every send of the run goes to a number of its own
    try:
        for database in databases:
            url = sqlite_file_url(workdir.path) if database == "sqlite" else args.postgres_url
            widget_id, token = prepare_database(url, secret)
            if redis_client is not None:
                redis_client.flushdb()
            options: dict[str, Any] = {
                "worker_class": args.worker_class,
                "workers": args.workers,
                "threads": args.threads,
                "log_dir": workdir.path,
            }
            by_mode: dict[str, dict[str, Server]] = {}
            for mode in modes:
                env = {"BENCH_DATABASE_URL": url, "BENCH_SECRET_KEY": secret,
                       "BENCH_PROTECTIONS": mode,
                       "BENCH_RATELIMIT_STORAGE_URL": storage_url(mode, args.redis_url)}
                by_mode[mode] = {
                    "ours": Server(f"{database}-{mode}-ours", "bench_app:create_app()",
                                   env=env, **options),
                    "minimal": Server(f"{database}-{mode}-minimal",
                                      "minimal_app:create_app()", env=env, **options),
                }
                servers += by_mode[mode].values()
            for mode, by_app in by_mode.items():
                for server in by_app.values():
                    server.wait_ready(args.workers)
                    if served_protections(server) != mode:
                        raise SystemExit(f"{server.name} does not serve protections {mode}")
            print(f"[{database}] servers ready; flask_sdkauth from "
                  f"{by_mode[modes[0]]['ours'].package}", flush=True)
            total = args.warmup + args.requests
            for round_number in range(args.rounds):
                # The modes take turns, and so do the apps within each mode.
                shift = round_number % len(modes)
                for mode in modes[shift:] + modes[:shift]:
                    by_app = by_mode[mode]
                    order = APPS if round_number % 2 == 0 else APPS[::-1]
                    mode_redis = redis_client if mode == "redis" else None
                    created: dict[str, list[str]] = {}
                    for app in order:
                        sends = [
                            build_request("POST", "/", token=token, body={
                                "widgetId": widget_id,
                                "recipient": bench_limits.recipient(next(numbers)),
                            })
                            for _ in range(total)
                        ]
                        run = measure(by_app[app], sends, args.warmup, args.concurrency,
                                      mode_redis)
                        replies = run.warmup + run.result.replies
                        created[app] = [r.json()["requestId"] for r in replies
                                        if r.status == 201]
                        errors[(database, mode, "send", app)].update(
                            r.status for r in replies if r.status != 201)
                        runs[(database, mode, "send", app)].append(run)
                        print(f"[{database}] round {round_number + 1} {mode} send {app}: "
                              f"{run.result.throughput:.0f} req/s", flush=True)
                    for app in order:
                        # One check per session created above, each with the right code.
                        checks = [
                            build_request("POST", f"/{request_id}/checkCode", token=token,
                                          body={"code": FIXED_CODE})
                            for request_id in created[app]
                        ]
                        run = measure(by_app[app], checks, args.warmup, args.concurrency,
                                      mode_redis)
                        errors[(database, mode, "checkCode", app)].update(
                            r.status for r in run.warmup + run.result.replies
                            if r.status != 201 or r.json() != {"success": True})
                        runs[(database, mode, "checkCode", app)].append(run)
                        print(f"[{database}] round {round_number + 1} {mode} checkCode "
                              f"{app}: {run.result.throughput:.0f} req/s", flush=True)
            for by_app in by_mode.values():
                for server in by_app.values():
                    server.stop()
            if redis_client is not None:
                redis_client.flushdb()
    finally:
        for server in servers:
            server.stop()
        if args.keep_logs:
            print(f"logs kept in {workdir.path}")
        workdir.cleanup()

    print()
    rows = []
    ratios = []
    for database in databases:
        for mode in modes:
            for operation in OPERATIONS:
                throughput = {}
                cpu = {}
                for app in APPS:
                    cell = runs[(database, mode, operation, app)]
                    latencies = [value for run in cell for value in run.result.latencies()]
                    throughput[app], cpu[app], count = pooled(cell)
                    wall = sum(run.result.wall for run in cell)
                    busy = sum(run.machine_busy * run.result.wall for run in cell) / wall
                    redis_cpu = ("-" if mode != "redis" else
                                 ms(sum(run.redis_cpu or 0.0 for run in cell) / count))
                    scripts = ("-" if mode != "redis" else
                               f"{sum(run.redis_calls[0] for run in cell if run.redis_calls) / count:.2f}")
                    commands = ("-" if mode != "redis" else
                                f"{sum(run.redis_calls[1] for run in cell if run.redis_calls) / count:.2f}")
                    rows.append([
                        operation, database, mode, app, f"{throughput[app]:.0f}",
                        ms(percentile(latencies, 0.5)), ms(percentile(latencies, 0.99)),
                        ms(cpu[app]), redis_cpu, scripts, commands,
                        ms(sum(run.client_cpu for run in cell) / count),
                        f"{busy * 100:.0f}%", count,
                        sum(errors[(database, mode, operation, app)].values()),
                    ])
                ratio = throughput["ours"] / throughput["minimal"]
                per_round = [
                    ours.result.throughput / minimal.result.throughput
                    for ours, minimal in zip(runs[(database, mode, operation, "ours")],
                                             runs[(database, mode, operation, "minimal")], strict=False)
                ]
                ratios.append([operation, database, mode, f"{ratio:.2f}",
                               f"{min(per_round):.2f}-{max(per_round):.2f}",
                               "yes" if ratio >= 0.8 else "no",
                               f"{cpu['ours'] / cpu['minimal']:.2f}"])
    print_table(["operation", "database", "protections", "app", "req/s", "p50 ms",
                 "p99 ms", "server CPU ms/req", "Redis CPU ms/req",
                 "Redis scripts/req", "Redis commands/req",
                 "client CPU ms/req",
                 "machine busy", "requests", "errors"], rows)
    print_table(["operation", "database", "protections", "ours/minimal req/s",
                 "range over rounds", ">= 0.8", "ours/minimal server CPU"], ratios)
    if "off" in modes and len(modes) > 1:
        costs = []
        for database in databases:
            for operation in OPERATIONS:
                for mode in modes:
                    if mode == "off":
                        continue
                    for app in APPS:
                        protected = runs[(database, mode, operation, app)]
                        unprotected = runs[(database, "off", operation, app)]
                        (on_rate, on_cpu, _), (off_rate, off_cpu, _) = (
                            pooled(protected), pooled(unprotected))
                        per_round = [on.result.throughput / off.result.throughput
                                     for on, off in zip(protected, unprotected, strict=False)]
                        cpu_added = [
                            (on.server_cpu / len(on.result.replies)
                             - off.server_cpu / len(off.result.replies)) * 1000
                            for on, off in zip(protected, unprotected, strict=False)
                        ]
                        costs.append([
                            operation, database, mode, app, f"{on_rate / off_rate:.2f}",
                            f"{min(per_round):.2f}-{max(per_round):.2f}",
                            f"{(on_cpu - off_cpu) * 1000:+.2f}",
                            f"{min(cpu_added):+.2f}..{max(cpu_added):+.2f}",
                        ])
        print("What the protections cost each app (protected / unprotected, same app, "
              "same run):")
        print_table(["operation", "database", "protections", "app", "req/s ratio",
                     "range over rounds", "server CPU ms/req added", "range over rounds"],
                    costs)
    failed = {key: counts for key, counts in errors.items() if counts}
    for (database, mode, operation, app), counts in failed.items():
        print(f"unexpected answers: {operation} {database} {mode} {app}: "
              + ", ".join(f"{count} x {status}" for status, count in sorted(counts.items())))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
