"""What the metrics and the audit log cost per send and per checkCode, in-process.

Builds five copies of ``bench_app`` in this process, on one database: ``off`` (``SDKAUTH_METRICS`` and ``SDKAUTH_AUDIT_LOG`` off), ``metrics``
(Prometheus counters on the global registry), ``audit, records`` (the audit
records made, then dropped by a ``logging.NullHandler``: the extension's own
share), ``audit`` (the records written as JSON lines to a file by a
``logging.FileHandler``) and ``both`` (metrics, and records written to the file). Each
round calls every copy's WSGI app directly (no HTTP server) with a batch of
``--requests`` sends, then as many checkCodes with the right code, the copies in an
order shuffled per round, and takes the process's CPU time per request. It prints,
per operation and copy, the median over ``--rounds`` rounds and the overhead
against ``off``: of the medians, and the median of each round's ratio. Since a
difference of two request times moves with the machine's load, it also adds up
the CPU time spent inside the receivers of ``auth_event`` (the observers' own
cost, measured around each signal's dispatch) and gives it as a share of
``off``'s CPU per request; the target is checked on that share. The target is an overhead under 5 % of the request's CPU.

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
    add_database_argument,
    argument_parser,
    check_database,
    install_time_limit,
    machine_summary,
    print_table,
    sqlite_file_url,
)
from profile_requests import call, environ

from flask_sdkauth import Channel, signals
from flask_sdkauth.observers.audit import AUDIT_FIELDS, audit_logger

VARIANTS = {
    "off": {"SDKAUTH_METRICS": False, "SDKAUTH_AUDIT_LOG": False},
    "metrics": {"SDKAUTH_METRICS": True, "SDKAUTH_AUDIT_LOG": False},
    "audit, records": {"SDKAUTH_METRICS": False, "SDKAUTH_AUDIT_LOG": True},
    "audit": {"SDKAUTH_METRICS": False, "SDKAUTH_AUDIT_LOG": True},
    "both": {"SDKAUTH_METRICS": True, "SDKAUTH_AUDIT_LOG": True},
}
#: Copies whose audit records are made but dropped by a handler that does nothing:
#: the extension's own share, without the formatting and writing a host chooses.
NO_OUTPUT = {"audit, records"}
TARGET = 0.05


class JsonLines(logging.Formatter):
    """One JSON object per record, with the audit fields: what a log shipper reads."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {name: getattr(record, name, None) for name in AUDIT_FIELDS}
        return json.dumps({"time": record.created, "message": record.getMessage(), **fields})


class TimedSignal:
    """Wraps ``auth_event.send`` to add up the CPU time spent in its receivers: the
    cost of observing measured from inside, which the machine's noise touches less
    than a difference of two request times."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._send = signals.auth_event.send

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return self._send(*args, **kwargs)
        finally:
            self.seconds += time.thread_time() - started

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, time_limit=300)
    add_database_argument(parser, "the copies")
    parser.add_argument("--requests", type=int, default=100,
                        help="sends (and checkCodes) per batch (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=25,
                        help="rounds of one batch per copy; medians are reported "
                             "(default: %(default)s)")
    return parser.parse_args(argv)


def build(name: str, url: str, secret: str) -> Any:
    """One copy of the app on ``url`` (the tables are shared; see :func:`prepare`)."""
    config = {"SECRET_KEY": secret, "SQLALCHEMY_DATABASE_URI": url, **VARIANTS[name]}
    return bench_app.build(config)


def prepare(copy: Any) -> tuple[str, str]:
    """Create the tables afresh with one widget through ``copy``; (widget id, token)."""
    app, db, sdkauth = copy
    with app.app_context():
        db.drop_all()
        db.create_all()
        widget = sdkauth.create_widget("Benchmark", [Channel("sms")])
        return str(widget.id), sdkauth.create_token([widget.id], expires_in=3600)


def one_round(
    app: Any, widget_id: str, token: str, count: int, inside: TimedSignal
) -> tuple[float, float, float, float]:
    """CPU seconds per send and per checkCode over ``count`` of each, and of those
    the seconds spent in the receivers of ``auth_event``."""
    body = {"widgetId": widget_id, "recipient": RECIPIENT}
    sends = [environ("POST", "/", token, body) for _ in range(count)]
    cpu = time.process_time()
    answers = [call(app, env) for env in sends]
    send_cpu = (time.process_time() - cpu) / count
    send_inside = inside.take() / count
    ids = [json.loads(answer)["requestId"] for status, answer in answers
           if status.startswith("201")]
    if len(ids) != count:
        raise SystemExit(f"send failed: {answers[0]}")
    checks = [environ("POST", f"/{request_id}/checkCode", token, {"code": FIXED_CODE})
              for request_id in ids]
    cpu = time.process_time()
    answers = [call(app, env) for env in checks]
    check_cpu = (time.process_time() - cpu) / count
    check_inside = inside.take() / count
    if any(not status.startswith("201") for status, _ in answers):
        raise SystemExit(f"checkCode failed: {answers[0]}")
    return send_cpu, check_cpu, send_inside, check_inside


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_time_limit(args.time_limit)
    workdir = Path(tempfile.mkdtemp(prefix="sdkauth-observing-"))
    secret = secrets.token_urlsafe(32)
    handler = logging.FileHandler(workdir / "audit.jsonl")
    handler.setFormatter(JsonLines())
    dropped = logging.NullHandler()
    audit_logger.setLevel(logging.INFO)
    audit_logger.propagate = False
    if args.database == "postgresql":
        url = args.postgres_url
        check_database(url)
    else:
        url = sqlite_file_url(workdir)
    # The copies share one database, its tables and its widget (same key, so
    # one token serves them all); batches of each run in turn, shuffled per round,
    # so that the machine's drift falls on all of them alike.
    copies = {name: build(name, url, secret) for name in VARIANTS}
    widget_id, token = prepare(copies["off"])
    print(machine_summary())
    print(f"database: {args.database}; batches of {args.requests} requests per "
          f"operation, {args.rounds} rounds of every copy\n")
    times: dict[str, dict[str, list[float]]] = {
        name: {"send": [], "checkCode": []} for name in VARIANTS
    }
    inside_times: dict[str, dict[str, list[float]]] = {
        name: {"send": [], "checkCode": []} for name in VARIANTS
    }
    inside = TimedSignal()
    signals.auth_event.send = inside  # type: ignore[method-assign]
    order = list(VARIANTS)
    for round_number in range(args.rounds + 1):  # round 0 warms up
        random.shuffle(order)
        for name in order:
            audit_logger.handlers = [dropped if name in NO_OUTPUT else handler]
            measured = one_round(copies[name][0], widget_id, token, args.requests, inside)
            if round_number:
                for operation, cpu, spent in zip(("send", "checkCode"), measured[:2],
                                                 measured[2:], strict=True):
                    times[name][operation].append(cpu)
                    inside_times[name][operation].append(spent)
    signals.auth_event.send = inside._send  # type: ignore[method-assign]
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
            spent = statistics.median(inside_times[name][operation])
            rows.append([operation, name, f"{median * 1000:.3f}", f"{overhead:+.1%}",
                         f"{paired:+.1%}", f"{spent * 1e6:.0f}", f"{spent / base:.1%}"])
            if name == "both":
                verdicts.append(
                    f"{operation}: {spent / base:.1%} measured inside, {paired:+.1%} by "
                    f"difference ({'met' if spent / base < TARGET else 'NOT met'}, "
                    "target < 5 %)"
                )
    print_table(["operation", "copy", "CPU ms/req", "vs off (medians)", "vs off (paired)",
                 "µs/req in receivers", "of off's CPU"], rows)
    print("metrics and audit log together: " + "; ".join(verdicts))
    audit_logger.handlers = []
    handler.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
