"""What the metrics and the audit log cost per send and per checkCode, in-process.

Builds four copies of ``bench_app`` in this process: ``off`` (``SDKAUTH_METRICS`` and ``SDKAUTH_AUDIT_LOG`` off), ``metrics``
(Prometheus counters on a registry of its own), ``audit`` (the audit records,
written as JSON lines to a file by a ``logging.FileHandler``) and ``both``. Each
round calls every copy's WSGI app directly (no HTTP server) with ``--requests``
sends, then as many checkCodes with the right code, in an order shuffled per round,
and takes the process's CPU time per request. It prints, per operation and copy,
the median over ``--rounds`` rounds and the overhead against ``off`` measured in
the same rounds. The target is an overhead under 5 % of the request's CPU.

On PostgreSQL (the default) the database server's own CPU is not in this process's
time, so the ratio is against the work of the app alone; on SQLite, SQLite's work
is in it.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app
from _common import (
    FIXED_CODE,
    RECIPIENT,
    argument_parser,
    check_database,
    install_time_limit,
    machine_summary,
    print_table,
    sqlite_file_url,
)
from profile_requests import call, environ

from flask_sdkauth import Channel
from flask_sdkauth.observers.audit import AUDIT_FIELDS, audit_logger

VARIANTS = {
    "off": {"SDKAUTH_METRICS": False, "SDKAUTH_AUDIT_LOG": False},
    "metrics": {"SDKAUTH_METRICS": True, "SDKAUTH_AUDIT_LOG": False},
    "audit": {"SDKAUTH_METRICS": False, "SDKAUTH_AUDIT_LOG": True},
    "both": {"SDKAUTH_METRICS": True, "SDKAUTH_AUDIT_LOG": True},
}
TARGET = 0.05


class JsonLines(logging.Formatter):
    """One JSON object per record, with the audit fields: what a log shipper reads."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {name: getattr(record, name, None) for name in AUDIT_FIELDS}
        return json.dumps({"time": record.created, "message": record.getMessage(), **fields})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, time_limit=300)
    parser.add_argument("--database", default="postgresql", choices=("postgresql", "sqlite"),
                        help="database of the four apps (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=300,
                        help="sends (and checkCodes) per copy and round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="rounds; the median is reported (default: %(default)s)")
    return parser.parse_args(argv)


def build(name: str, url: str, secret: str) -> tuple[Any, str, str]:
    """One copy of the app on ``url``, with its tables made afresh; (app, widget, token)."""
    config = {"SECRET_KEY": secret, "SQLALCHEMY_DATABASE_URI": url, **VARIANTS[name]}
    app, db, sdkauth = bench_app.build(config)
    with app.app_context():
        db.drop_all()
        db.create_all()
        widget = sdkauth.create_widget("Benchmark", [Channel("sms")])
        token = sdkauth.create_token([widget.id], expires_in=3600)
    return app, str(widget.id), token


def one_round(app: Any, widget_id: str, token: str, count: int) -> tuple[float, float]:
    """CPU seconds per send and per checkCode over ``count`` of each."""
    body = {"widgetId": widget_id, "recipient": RECIPIENT}
    sends = [environ("POST", "/", token, body) for _ in range(count)]
    cpu = time.process_time()
    answers = [call(app, env) for env in sends]
    send_cpu = (time.process_time() - cpu) / count
    ids = [json.loads(answer)["requestId"] for status, answer in answers
           if status.startswith("201")]
    if len(ids) != count:
        raise SystemExit(f"send failed: {answers[0]}")
    checks = [environ("POST", f"/{request_id}/checkCode", token, {"code": FIXED_CODE})
              for request_id in ids]
    cpu = time.process_time()
    answers = [call(app, env) for env in checks]
    check_cpu = (time.process_time() - cpu) / count
    if any(not status.startswith("201") for status, _ in answers):
        raise SystemExit(f"checkCode failed: {answers[0]}")
    return send_cpu, check_cpu


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_time_limit(args.time_limit)
    workdir = Path(tempfile.mkdtemp(prefix="sdkauth-observing-"))
    secret = secrets.token_urlsafe(32)
    handler = logging.FileHandler(workdir / "audit.jsonl")
    handler.setFormatter(JsonLines())
    audit_logger.addHandler(handler)
    audit_logger.setLevel(logging.INFO)
    audit_logger.propagate = False
    if args.database == "postgresql":
        check_database(args.postgres_url)
    urls = {}
    for name in VARIANTS:
        if args.database == "postgresql":
            urls[name] = args.postgres_url
        else:
            (workdir / name).mkdir()
            urls[name] = sqlite_file_url(workdir / name)
    print(machine_summary())
    print(f"database: {args.database}; {args.requests} requests per operation, copy and "
          f"round; {args.rounds} rounds\n")
    times: dict[str, dict[str, list[float]]] = {
        name: {"send": [], "checkCode": []} for name in VARIANTS
    }
    order = list(VARIANTS)
    for round_number in range(args.rounds + 1):  # round 0 warms up
        random.shuffle(order)
        for name in order:
            # Built afresh (empty tables) for every measurement: each copy runs on
            # the same table sizes, and on PostgreSQL they share one database.
            app, widget_id, token = build(name, urls[name], secret)
            send_cpu, check_cpu = one_round(app, widget_id, token, args.requests)
            if round_number:
                times[name]["send"].append(send_cpu)
                times[name]["checkCode"].append(check_cpu)
    rows = []
    verdicts = []
    for operation in ("send", "checkCode"):
        base = statistics.median(times["off"][operation])
        for name in VARIANTS:
            median = statistics.median(times[name][operation])
            overhead = median / base - 1
            # Each round's ratio to the same round's "off": drift between rounds cancels.
            paired = statistics.median(
                value / off for value, off in zip(times[name][operation],
                                                  times["off"][operation], strict=True)
            ) - 1
            rows.append([operation, name, f"{median * 1000:.3f}", f"{overhead:+.1%}",
                         f"{paired:+.1%}"])
            if name == "both":
                verdicts.append(f"{operation}: {paired:+.1%} "
                                f"({'met' if paired < TARGET else 'NOT met'}, target < 5 %)")
    print_table(["operation", "copy", "CPU ms/req", "vs off (medians)", "vs off (paired)"],
                rows)
    print("metrics and audit log together: " + "; ".join(verdicts))
    audit_logger.removeHandler(handler)
    handler.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
