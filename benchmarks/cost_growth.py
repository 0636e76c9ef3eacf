"""checkCode cost as the session table grows (PostgreSQL).

The script measures in-process, through ``sdkauth.engine.check_code`` (the engine
call the checkCode route makes, without HTTP and without the token check), so
that only the database work and the engine's own code are timed:

1. empties ``sdkauth_session``, fills it up to ``--small`` rows, then creates
   ``--checks`` live sessions with ``sdkauth.send`` (their latency is reported too)
   and times one right-code checkCode on each, after a short warm-up;
2. bulk-inserts rows (``INSERT ... SELECT ... generate_series``: old sessions in
   final states, spread over the last 7 days) up to ``--large`` rows, runs
   ``VACUUM ANALYZE`` and ``CHECKPOINT`` (so that writing the new rows out does not
   land in the measurement), and measures again on new live sessions;
3. prints both, the ratio large/small, and the plan PostgreSQL picks for the
   session lookup.

The rows stay in the table with ``--keep``; by default the table is emptied at the
end. The default ``--large`` (200,000) keeps a run near a minute; ``--large
1000000`` is the documented case.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app  # noqa: E402
from _common import (  # noqa: E402
    DEFAULT_POSTGRES_URL,
    FIXED_CODE,
    RECIPIENT,
    check_database,
    install_time_limit,
    machine_summary,
    ms,
    percentile,
    print_table,
)
from flask_sdkauth import Channel  # noqa: E402

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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="PostgreSQL database to use (default: %(default)s)")
    parser.add_argument("--small", type=int, default=10_000,
                        help="rows in the table for the first measurement "
                             "(default: %(default)s)")
    parser.add_argument("--large", type=int, default=200_000,
                        help="rows in the table for the second measurement "
                             "(default: %(default)s)")
    parser.add_argument("--checks", type=int, default=2000,
                        help="sessions created and checked per measurement "
                             "(default: %(default)s)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the rows in sdkauth_session at the end")
    parser.add_argument("--time-limit", type=int, default=900,
                        help="stop after this many seconds whatever happens "
                             "(default: %(default)s)")
    return parser.parse_args(argv)


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
    if not args.checks + WARMUP < args.small < args.large:
        raise SystemExit("need --checks + 100 < --small < --large")
    check_database(args.postgres_url)
    print(machine_summary())
    app, db, sdkauth = bench_app.build({
        "SECRET_KEY": secrets.token_urlsafe(32),
        "SQLALCHEMY_DATABASE_URI": args.postgres_url,
    })
    rows = []
    plans = []
    ok = True
    with app.app_context():
        engine = db.engine
        db.create_all()
        with engine.begin() as connection:
            connection.execute(sa.text("TRUNCATE sdkauth_session, sdkauth_widget"))
        widget = sdkauth.create_widget("Benchmark", [Channel("sms")])
        try:
            for target in (args.small, args.large):
                live = args.checks + WARMUP
                already = count_rows(engine)
                seconds = fill(engine, widget.id, target - already - live, already)
                sends = []
                ids = []
                for _ in range(live):
                    started = time.perf_counter()
                    ids.append(sdkauth.send(widget.id, RECIPIENT))
                    sends.append(time.perf_counter() - started)
                checks = []
                for index, request_id in enumerate(ids):
                    started = time.perf_counter()
                    confirmed = sdkauth.engine.check_code(request_id, FIXED_CODE)
                    if index >= WARMUP:
                        checks.append(time.perf_counter() - started)
                    ok = ok and confirmed is True
                total = count_rows(engine)
                plans.append((total, lookup_plan(engine, ids[-1])))
                rows.append((total, seconds, sends[WARMUP:], checks))
                print(f"{total} rows: filled in {seconds:.1f} s, checkCode p50 "
                      f"{ms(percentile(checks, 0.5))} ms", flush=True)
        finally:
            if not args.keep:
                with engine.begin() as connection:
                    connection.execute(sa.text("TRUNCATE sdkauth_session, sdkauth_widget"))
            engine.dispose()

    print()
    print_table(
        ["rows", "fill s", "send p50 ms", "send p99 ms", "checkCode p50 ms",
         "checkCode p99 ms", "checkCode mean ms"],
        [[f"{total:,}", f"{seconds:.1f}", ms(percentile(sends, 0.5)),
          ms(percentile(sends, 0.99)), ms(percentile(checks, 0.5)),
          ms(percentile(checks, 0.99)), ms(sum(checks) / len(checks))]
         for total, seconds, sends, checks in rows],
    )
    (small, _, small_sends, small_checks), (large, _, large_sends, large_checks) = rows
    print_table(
        ["ratio", "checkCode p50", "checkCode p99", "send p50"],
        [[f"{large:,} / {small:,} rows",
          f"{percentile(large_checks, 0.5) / percentile(small_checks, 0.5):.2f}",
          f"{percentile(large_checks, 0.99) / percentile(small_checks, 0.99):.2f}",
          f"{percentile(large_sends, 0.5) / percentile(small_sends, 0.5):.2f}"]],
    )
    for total, plan in plans:
        print(f"plan of the session lookup at {total:,} rows: {plan}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
