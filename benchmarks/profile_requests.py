"""Where the time of one send and one checkCode goes, in-process.

Builds ``bench_app`` (flask-sdkauth) and ``minimal_app`` in this process on the same
database, and calls each WSGI app directly with prepared environs (no HTTP server,
no test client), ``--requests`` times per operation after a warm-up. For each app
and operation it prints:

- wall and CPU milliseconds per request, measured without the profiler;
- the database round trips per request (statements and BEGIN, COMMIT, ROLLBACK,
  counted with SQLAlchemy events);
- with cProfile: the self time per request grouped by library, ours next to the
  minimal handler's, then flask-sdkauth's ``--top`` functions by cumulative time
  and the ``--top`` functions of any library by self time.

cProfile slows Python code more than C code, so its shares are a guide to where
the time goes, not a measurement of it; the per-request times above come from the
unprofiled run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import pstats
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from werkzeug.test import EnvironBuilder

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app
import minimal_app
from _common import (
    FIXED_CODE,
    add_database_argument,
    argument_parser,
    check_database,
    install_time_limit,
    machine_summary,
    print_table,
    sqlite_file_url,
)
from bench_limits import recipient

from flask_sdkauth import Channel

#: Self time is grouped by the first of these path fragments found in the file name.
AREAS = [
    ("/flask_sdkauth/", "flask-sdkauth"),
    ("/flask_smorest/", "flask-smorest/webargs/marshmallow"),
    ("/webargs/", "flask-smorest/webargs/marshmallow"),
    ("/marshmallow/", "flask-smorest/webargs/marshmallow"),
    ("/apispec/", "flask-smorest/webargs/marshmallow"),
    ("/flask_jwt_extended/", "PyJWT/flask-jwt-extended"),
    ("/jwt/", "PyJWT/flask-jwt-extended"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/flask_sqlalchemy/", "SQLAlchemy"),
    ("/psycopg", "database driver (and waiting for the database)"),
    ("sqlite3", "database driver (and waiting for the database)"),
    ("/phonenumbers/", "phonenumbers"),
    ("/blinker/", "blinker (signals)"),
    ("/flask/", "Flask/Werkzeug"),
    ("/werkzeug/", "Flask/Werkzeug"),
    ("/json/", "json"),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, time_limit=600)
    add_database_argument(parser, "both apps")
    parser.add_argument("--requests", type=int, default=1000,
                        help="requests per operation, app and pass (default: %(default)s)")
    parser.add_argument("--top", type=int, default=12,
                        help="functions to list in each top list (default: %(default)s)")
    return parser.parse_args(argv)


def area_of(filename: str) -> str:
    for fragment, area in AREAS:
        if fragment in filename:
            return area
    if filename.startswith(("~", "<")):
        return "built-ins (C functions)"
    return "other Python"


def self_time_by_area(stats: pstats.Stats, requests: int) -> dict[str, float]:
    """Milliseconds of self time per request, by library."""
    by_area: dict[str, float] = defaultdict(float)
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_area[area_of(filename)] += tottime * 1000 / requests
    return dict(by_area)


def environ(method: str, path: str, token: str, body: Any) -> dict[str, Any]:
    return EnvironBuilder(
        path=path, method=method, json=body,
        headers=[("Authorization", f"Bearer {token}")],
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    ).get_environ()


def call(app: Callable[..., Any], env: dict[str, Any]) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> None:
        status.append(line)

    body = b"".join(app(env, start_response))
    return status[0], body


class RoundTrips:
    """Counts statements and transaction commands (each one a round trip with
    psycopg) on an engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine, "begin", lambda conn: self._bump("BEGIN"))
        sa.event.listen(engine, "commit", lambda conn: self._bump("COMMIT"))
        sa.event.listen(engine, "rollback", lambda conn: self._bump("ROLLBACK"))

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self._bump(statement.split(None, 1)[0].upper())

    def _bump(self, name: str) -> None:
        self.counts[name] += 1

    def reset(self) -> None:
        self.counts.clear()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_time_limit(args.time_limit)
    workdir = tempfile.TemporaryDirectory(prefix="sdkauth-profile-")
    if args.database == "sqlite":
        url = sqlite_file_url(Path(workdir.name))
    else:
        url = args.postgres_url
        check_database(url)
    secret = secrets.token_urlsafe(32)
    ours, db, sdkauth = bench_app.build({"SECRET_KEY": secret, "SQLALCHEMY_DATABASE_URI": url})
    with ours.app_context():
        # Dropped and created again, so that they match the installed version.
        db.drop_all()
        db.create_all()
        widget = sdkauth.create_widget("Benchmark", [Channel("sms")])
        token = sdkauth.create_token([widget.id], expires_in=3600)
        ours_engine = db.engine
    minimal, minimal_engine = minimal_app.build(url, secret)
    minimal_app.metadata.drop_all(minimal_engine)
    minimal_app.metadata.create_all(minimal_engine)

    print(machine_summary())
    print(f"database: {args.database}; {args.requests} requests per operation\n")
    apps = {"ours": (ours, RoundTrips(ours_engine)),
            "minimal": (minimal, RoundTrips(minimal_engine))}
    # Every send to a number of its own, as real traffic: no parse is saved by a
    # number seen before.
    numbers = itertools.count()
    timing_rows: list[list[str]] = []
    trip_rows: list[list[str]] = []
    reports: list[tuple[str, str, pstats.Stats]] = []
    for app_name, (app, trips) in apps.items():
        # Warm-up, then a timed pass and a profiled pass of each operation.
        for phase in ("warmup", "timed", "profiled"):
            count = 100 if phase == "warmup" else args.requests
            sends = [
                environ("POST", "/", token,
                        {"widgetId": str(widget.id), "recipient": recipient(next(numbers))})
                for _ in range(count)
            ]
            profiler = cProfile.Profile()
            results = run(app, sends, phase, profiler, trips)
            ids = [json.loads(body)["requestId"] for status, body, *_ in results
                   if status.startswith("201")]
            if len(ids) != count:
                raise SystemExit(f"{app_name} send failed: {results[0][:2]}")
            record(phase, app_name, "send", results, profiler, trips, timing_rows,
                   trip_rows, reports, count)
            checks = [environ("POST", f"/{request_id}/checkCode", token, {"code": FIXED_CODE})
                      for request_id in ids]
            profiler = cProfile.Profile()
            results = run(app, checks, phase, profiler, trips)
            if any(not status.startswith("201") for status, *_ in results):
                raise SystemExit(f"{app_name} checkCode failed: {results[0][:2]}")
            record(phase, app_name, "checkCode", results, profiler, trips, timing_rows,
                   trip_rows, reports, count)

    print_table(["operation", "app", "wall ms/req", "CPU ms/req"],
                sorted(timing_rows, key=lambda row: (row[0] != "send", row[1] != "ours")))
    print_table(["operation", "app", "round trips/req", "of which"],
                sorted(trip_rows, key=lambda row: (row[0] != "send", row[1] != "ours")))
    by_key = {(app_name, operation): stats for app_name, operation, stats in reports}
    for operation in ("send", "checkCode"):
        per_app = {app_name: self_time_by_area(by_key[(app_name, operation)], args.requests)
                   for app_name in apps}
        areas = sorted(set().union(*per_app.values()), key=lambda a: -per_app["ours"].get(a, 0))
        print(f"== {operation}: self time by library, ms per request under cProfile")
        print_table(
            ["library", "ours", "minimal", "difference"],
            [[area, f"{per_app['ours'].get(area, 0):.2f}",
              f"{per_app['minimal'].get(area, 0):.2f}",
              f"{per_app['ours'].get(area, 0) - per_app['minimal'].get(area, 0):+.2f}"]
             for area in areas]
            + [["total", f"{sum(per_app['ours'].values()):.2f}",
                f"{sum(per_app['minimal'].values()):.2f}",
                f"{sum(per_app['ours'].values()) - sum(per_app['minimal'].values()):+.2f}"]],
        )
        stats = by_key[("ours", operation)]
        for order, title in (("cumulative", "cumulative time, flask-sdkauth functions"),
                             ("tottime", "self time, all functions")):
            print(f"== {operation}, ours: top {args.top} by {title}")
            out = io.StringIO()
            stats.stream = out  # type: ignore[attr-defined]
            stats.sort_stats(order)
            if order == "cumulative":
                stats.print_stats("flask_sdkauth", args.top)
            else:
                stats.print_stats(args.top)
            lines = out.getvalue().splitlines()
            header = next(i for i, line in enumerate(lines) if "ncalls" in line)
            print("\n".join(line for line in lines[header:] if line.strip()))
            print()
    workdir.cleanup()
    return 0


def run(app: Any, environs: list[dict[str, Any]], phase: str, profiler: cProfile.Profile,
        trips: RoundTrips) -> list[tuple[str, bytes, float, float]]:
    trips.reset()
    results = []
    if phase == "profiled":
        profiler.enable()
    started, cpu = time.perf_counter(), time.process_time()
    for env in environs:
        status, body = call(app, env)
        results.append((status, body))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if phase == "profiled":
        profiler.disable()
    return [(status, body, wall, cpu) for status, body in results]


def record(phase: str, app_name: str, operation: str, results: list[Any],
           profiler: cProfile.Profile, trips: RoundTrips, timing_rows: list[Any],
           trip_rows: list[Any], reports: list[Any], count: int) -> None:
    if phase == "timed":
        _, _, wall, cpu = results[0]
        timing_rows.append([operation, app_name, f"{wall / count * 1000:.2f}",
                            f"{cpu / count * 1000:.2f}"])
        order = ["BEGIN", "SELECT", "INSERT", "UPDATE", "COMMIT", "ROLLBACK"]
        counts = sorted(trips.counts.items(),
                        key=lambda item: order.index(item[0]) if item[0] in order else 99)
        trip_rows.append([operation, app_name, f"{sum(trips.counts.values()) / count:g}",
                          ", ".join(f"{value / count:g} {name}" for name, value in counts)])
    elif phase == "profiled":
        reports.append((app_name, operation, pstats.Stats(profiler)))


if __name__ == "__main__":
    sys.exit(main())
