"""checkCode cost as the session table grows (PostgreSQL).

Two copies of the extension's tables live side by side in two schemas of the
benchmark database, ``sdkauth_bench_small`` and ``sdkauth_bench_large``. The script
fills them with old sessions (``INSERT ... SELECT ... generate_series``: final
states, spread over the last 7 days) up to ``--small`` and ``--large`` rows, runs
``VACUUM ANALYZE`` and ``CHECKPOINT`` on them, then measures both **in turns**, so
that a slow moment of the machine hits both sizes alike: in each of ``--rounds``
rounds it creates ``--checks / --rounds`` live sessions in each schema with
``sdkauth.send`` (one here, one there; their latency is reported too), then times
one right-code checkCode on each, again one here, one there. The rounds only
change which table goes first, and give the range of the ratio.

The measurement is in-process, through ``sdkauth.engine.check_code`` (the engine
call the checkCode route makes, without HTTP and without the token check), so that
only the database work and the engine's own code are timed.

It prints both sizes, the ratio large/small (and its range over the rounds), and
the plan PostgreSQL picks for the session lookup. The schemas are dropped at the
end unless ``--keep``. The default ``--large`` (200,000) keeps a run near a minute;
``--large 1000000`` is the documented case.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app
from _common import (
    FIXED_CODE,
    RECIPIENT,
    argument_parser,
    check_database,
    install_time_limit,
    machine_summary,
    ms,
    percentile,
    print_table,
)

from flask_sdkauth import Channel

FILL_CHUNK = 250_000
WARMUP = 100

FILL = sa.text("""
INSERT INTO sdkauth_session (
    id, widget_id, recipient, state, channel_index, channel, payload, generation,
    seen_generation, seen_snapshot, restarts, launched_at, code_hash, code_expires_at,
    remaining_attempts, history, client_ip, created_at, updated_at, expires_at,
    confirmed_at, completed_at)
SELECT gen_random_uuid(), :widget_id,
       '+7999' || lpad((g % 10000000)::text, 7, '0'),
       (ARRAY['completed', 'closed', 'attempts_expired', 'no_channels'])[1 + g % 4],
       0, CAST(:channel AS json), CAST('{}' AS json), 1, 1, md5(g::text), 0,
       ts, NULL, ts + interval '5 minutes', 0, CAST(:history AS json), '127.0.0.1',
       ts, ts, ts + interval '30 minutes', NULL, NULL
FROM (SELECT g, (now() AT TIME ZONE 'utc') - (g % 604800) * interval '1 second' AS ts
      FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g) AS rows
""")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, time_limit=900)
    parser.add_argument("--small", type=int, default=10_000,
                        help="rows in the small table (default: %(default)s)")
    parser.add_argument("--large", type=int, default=200_000,
                        help="rows in the large table (default: %(default)s)")
    parser.add_argument("--checks", type=int, default=2000,
                        help="sessions created and checked per table, over all rounds "
                             "(default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternations between the tables (default: %(default)s)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the two schemas and their rows at the end")
    return parser.parse_args(argv)


@dataclass
class Side:
    """One schema, its app and what was measured on it."""

    name: str
    target: int
    app: Flask
    db: Any
    sdkauth: Any
    widget_id: uuid.UUID | None = None
    fill_seconds: float = 0.0
    sends: list[float] = field(default_factory=list)
    checks: list[list[float]] = field(default_factory=list)  # one list per round
    last_id: uuid.UUID | None = None

    @property
    def schema(self) -> str:
        return f"sdkauth_bench_{self.name}"

    def all_checks(self) -> list[float]:
        return [value for round_checks in self.checks for value in round_checks]


def make_side(name: str, target: int, url: str, secret: str) -> Side:
    app, db, sdkauth = bench_app.build({
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "connect_args": {"options": f"-csearch_path=sdkauth_bench_{name}"}
        },
    })
    return Side(name, target, app, db, sdkauth)


def create_sessions(sides: list[Side], count: int, *, timed: bool) -> list[list[uuid.UUID]]:
    """``count`` live sessions in each table, made in turns (one here, one there)."""
    ids: list[list[uuid.UUID]] = [[] for _ in sides]
    for _ in range(count):
        for side, side_ids in zip(sides, ids, strict=False):
            with side.app.app_context():
                started = time.perf_counter()
                side_ids.append(side.sdkauth.send(side.widget_id, RECIPIENT))
                if timed:
                    side.sends.append(time.perf_counter() - started)
    for side, side_ids in zip(sides, ids, strict=False):
        side.last_id = side_ids[-1]
    return ids


def check_sessions(sides: list[Side], ids: list[list[uuid.UUID]], *, timed: bool) -> bool:
    """One right-code checkCode on each session, in turns between the tables."""
    ok = True
    latencies: list[list[float]] = [[] for _ in sides]
    for index in range(len(ids[0])):
        for side, side_ids, side_latencies in zip(sides, ids, latencies, strict=False):
            with side.app.app_context():
                engine = side.sdkauth.engine
                started = time.perf_counter()
                ok = engine.check_code(side_ids[index], FIXED_CODE) is True and ok
                side_latencies.append(time.perf_counter() - started)
    if timed:
        for side, side_latencies in zip(sides, latencies, strict=False):
            side.checks.append(side_latencies)
    return ok


def fill(engine: sa.Engine, widget_id: uuid.UUID, rows: int, already: int) -> float:
    """Insert ``rows`` old sessions; return the seconds it took."""
    channel = json.dumps(Channel("sms").to_dict())
    started = time.perf_counter()
    first = already + 1
    while rows > 0:
        chunk = min(rows, FILL_CHUNK)
        with engine.begin() as connection:
            connection.execute(FILL, {"widget_id": widget_id, "channel": channel,
                                      "history": json.dumps([{"channel": "sms"}]),
                                      "first": first, "last": first + chunk - 1})
        first += chunk
        rows -= chunk
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE sdkauth_session"))
        # Write the filled pages out now rather than during the measurement.
        try:
            connection.execute(sa.text("CHECKPOINT"))
        except sa.exc.DBAPIError:
            pass  # CHECKPOINT needs a superuser (or pg_checkpoint); measure anyway
    return time.perf_counter() - started


def table_size(engine: sa.Engine) -> int:
    """Bytes of the table with its indexes and TOAST."""
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT pg_total_relation_size('sdkauth_session')")).scalar_one()


def count_rows(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM sdkauth_session")).scalar_one()


def lookup_plan(engine: sa.Engine, request_id: uuid.UUID) -> str:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                    "SELECT * FROM sdkauth_session WHERE id = :id"),
            {"id": request_id},
        )
        return " / ".join(row[0].strip() for row in rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_time_limit(args.time_limit)
    per_round = args.checks // args.rounds
    live = per_round * args.rounds + WARMUP
    if not live < args.small < args.large or per_round < 1:
        raise SystemExit("need --checks + 100 < --small < --large and --checks >= --rounds")
    check_database(args.postgres_url)
    print(machine_summary())
    secret = secrets.token_urlsafe(32)
    sides = [make_side("small", args.small, args.postgres_url, secret),
             make_side("large", args.large, args.postgres_url, secret)]
    ok = True
    try:
        for side in sides:
            with side.app.app_context():
                engine = side.db.engine
                with engine.begin() as connection:
                    connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {side.schema} CASCADE"))
                    connection.execute(sa.text(f"CREATE SCHEMA {side.schema}"))
                side.db.create_all()
                side.widget_id = side.sdkauth.create_widget("Benchmark", [Channel("sms")]).id
                side.fill_seconds = fill(engine, side.widget_id, side.target - live, 0)
            print(f"[{side.name}] {side.target - live:,} old sessions inserted in "
                  f"{side.fill_seconds:.1f} s", flush=True)
        ok = check_sessions(sides, create_sessions(sides, WARMUP, timed=False), timed=False)
        for round_number in range(args.rounds):
            order = sides if round_number % 2 == 0 else sides[::-1]
            created = create_sessions(order, per_round, timed=True)
            ok = check_sessions(order, created, timed=True) and ok
            print(f"round {round_number + 1}: checkCode p50 " + ", ".join(
                f"{side.name} {ms(percentile(side.checks[-1], 0.5))} ms" for side in sides),
                flush=True)
        rows = []
        plans = []
        for side in sides:
            with side.app.app_context():
                engine = side.db.engine
                total = count_rows(engine)
                assert side.last_id is not None
                plans.append((total, lookup_plan(engine, side.last_id)))
                rows.append([
                    f"{total:,}", f"{table_size(engine) / 2**20:.0f}",
                    f"{side.fill_seconds:.1f}", ms(percentile(side.sends, 0.5)),
                    ms(percentile(side.sends, 0.99)), ms(percentile(side.all_checks(), 0.5)),
                    ms(percentile(side.all_checks(), 0.99)),
                    ms(sum(side.all_checks()) / len(side.all_checks())),
                ])
    finally:
        for side in sides:
            with side.app.app_context():
                if not args.keep:
                    with side.db.engine.begin() as connection:
                        connection.execute(
                            sa.text(f"DROP SCHEMA IF EXISTS {side.schema} CASCADE"))
                side.db.engine.dispose()

    print()
    print_table(
        ["rows", "size MiB", "fill s", "send p50 ms", "send p99 ms", "checkCode p50 ms",
         "checkCode p99 ms", "checkCode mean ms"],
        rows,
    )
    small, large = sides
    per_round_ratios = [percentile(b, 0.5) / percentile(a, 0.5)
                        for a, b in zip(small.checks, large.checks, strict=False)]
    print_table(
        ["large / small", "checkCode p50", "p50 range over rounds", "checkCode p99",
         "send p50"],
        [[f"{rows[1][0]} / {rows[0][0]} rows",
          f"{percentile(large.all_checks(), 0.5) / percentile(small.all_checks(), 0.5):.2f}",
          f"{min(per_round_ratios):.2f}-{max(per_round_ratios):.2f}",
          f"{percentile(large.all_checks(), 0.99) / percentile(small.all_checks(), 0.99):.2f}",
          f"{percentile(large.sends, 0.5) / percentile(small.sends, 0.5):.2f}"]],
    )
    for total, plan in plans:
        print(f"plan of the session lookup at {total:,} rows: {plan}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
