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
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app
import minimal_app
from _common import (
    argument_parser,
    FIXED_CODE,
    RECIPIENT,
    LoadResult,
    Reply,
    Server,
    Workdir,
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, time_limit=600)
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
    parser.add_argument("--concurrency", type=int, default=8,
                        help="keep-alive connections of the load client "
                             "(default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2,
                        help="gunicorn workers per server (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per gthread worker (default: %(default)s)")
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


def measure(server: Server, requests: list[bytes], warmup: int,
            concurrency: int) -> Measurement:
    workers = len(server.pids)
    warm = load(server.port, requests[:warmup], concurrency, workers).replies if warmup else []
    server_before = sum(cpu_seconds(pid) for pid in server.pids)
    client_before = sum(os.times()[:2])
    busy_before, total_before = machine_busy_seconds()
    result = load(server.port, requests[warmup:], concurrency, workers)
    busy_after, total_after = machine_busy_seconds()
    return Measurement(
        result=result,
        warmup=warm,
        server_cpu=sum(cpu_seconds(pid) for pid in server.pids) - server_before,
        client_cpu=sum(os.times()[:2]) - client_before,
        machine_busy=(busy_after - busy_before) / max(total_after - total_before, 1e-9),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_time_limit(args.time_limit)
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    for name in databases:
        if name not in ("sqlite", "postgresql"):
            raise SystemExit(f"unknown database {name!r}")
    if "postgresql" in databases:
        check_database(args.postgres_url)
    print(machine_summary())
    print(
        f"gunicorn --worker-class {args.worker_class} --workers {args.workers}"
        + (f" --threads {args.threads}" if args.worker_class == "gthread" else "")
        + f"; client: {args.concurrency} keep-alive connections; "
        f"{args.requests} measured requests x {args.rounds} rounds per cell\n"
    )
    workdir = Workdir(keep=args.keep_logs)
    secret = secrets.token_urlsafe(32)
    # runs[(database, operation, app)] -> one Measurement per round
    runs: dict[tuple[str, str, str], list[Measurement]] = defaultdict(list)
    errors: dict[tuple[str, str, str], int] = defaultdict(int)
    servers: list[Server] = []
    try:
        for database in databases:
            url = sqlite_file_url(workdir.path) if database == "sqlite" else args.postgres_url
            widget_id, token = prepare_database(url, secret)
            env = {"BENCH_DATABASE_URL": url, "BENCH_SECRET_KEY": secret}
            options: dict[str, Any] = {
                "worker_class": args.worker_class,
                "workers": args.workers,
                "threads": args.threads,
                "log_dir": workdir.path,
            }
            by_app = {
                "ours": Server(f"{database}-ours", "bench_app:create_app()", env=env, **options),
                "minimal": Server(f"{database}-minimal", "minimal_app:create_app()",
                                  env=env, **options),
            }
            servers += by_app.values()
            for server in by_app.values():
                server.wait_ready(args.workers)
            print(f"[{database}] servers ready; flask_sdkauth from {by_app['ours'].package}",
                  flush=True)
            send = build_request("POST", "/", token=token,
                                 body={"widgetId": widget_id, "recipient": RECIPIENT})
            total = args.warmup + args.requests
            for round_number in range(args.rounds):
                order = APPS if round_number % 2 == 0 else APPS[::-1]
                created: dict[str, list[str]] = {}
                for app in order:
                    run = measure(by_app[app], [send] * total, args.warmup, args.concurrency)
                    replies = run.warmup + run.result.replies
                    created[app] = [r.json()["requestId"] for r in replies if r.status == 201]
                    errors[(database, "send", app)] += sum(
                        1 for r in run.result.replies if r.status != 201)
                    runs[(database, "send", app)].append(run)
                    print(f"[{database}] round {round_number + 1} send {app}: "
                          f"{run.result.throughput:.0f} req/s", flush=True)
                for app in order:
                    # One check per session created above, each with the right code.
                    checks = [
                        build_request("POST", f"/{request_id}/checkCode", token=token,
                                      body={"code": FIXED_CODE})
                        for request_id in created[app]
                    ]
                    run = measure(by_app[app], checks, args.warmup, args.concurrency)
                    errors[(database, "checkCode", app)] += sum(
                        1 for r in run.result.replies
                        if r.status != 201 or r.json() != {"success": True})
                    runs[(database, "checkCode", app)].append(run)
                    print(f"[{database}] round {round_number + 1} checkCode {app}: "
                          f"{run.result.throughput:.0f} req/s", flush=True)
            for server in by_app.values():
                server.stop()
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
        for operation in OPERATIONS:
            throughput = {}
            cpu = {}
            for app in APPS:
                cell = runs[(database, operation, app)]
                latencies = [value for run in cell for value in run.result.latencies()]
                count = sum(len(run.result.replies) for run in cell)
                wall = sum(run.result.wall for run in cell)
                throughput[app] = count / wall
                cpu[app] = sum(run.server_cpu for run in cell) / count
                busy = sum(run.machine_busy * run.result.wall for run in cell) / wall
                rows.append([
                    operation, database, app, f"{throughput[app]:.0f}",
                    ms(percentile(latencies, 0.5)), ms(percentile(latencies, 0.99)),
                    ms(cpu[app]), ms(sum(run.client_cpu for run in cell) / count),
                    f"{busy * 100:.0f}%", count, errors[(database, operation, app)],
                ])
            ratio = throughput["ours"] / throughput["minimal"]
            per_round = [
                ours.result.throughput / minimal.result.throughput
                for ours, minimal in zip(runs[(database, operation, "ours")],
                                         runs[(database, operation, "minimal")])
            ]
            ratios.append([operation, database, f"{ratio:.2f}",
                           f"{min(per_round):.2f}-{max(per_round):.2f}",
                           "yes" if ratio >= 0.8 else "no",
                           f"{cpu['ours'] / cpu['minimal']:.2f}"])
    print_table(["operation", "database", "app", "req/s", "p50 ms", "p99 ms",
                 "server CPU ms/req", "client CPU ms/req", "machine busy", "requests",
                 "errors"], rows)
    print_table(["operation", "database", "ours/minimal req/s", "range over rounds",
                 ">= 0.8", "ours/minimal server CPU"], ratios)
    return 0 if not any(errors.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
