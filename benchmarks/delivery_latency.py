"""send latency and throughput with a slow sender: inline launches next to Celery.

The script starts, on PostgreSQL, two gunicorn servers configured the same way
(gthread workers) serving ``bench_app``: one with ``SDKAUTH_DISPATCHER = "inline"``
(the sender runs inside ``send``) and one with ``SDKAUTH_DISPATCHER = "celery"``
(``send`` stores the session, queues ``flask_sdkauth.launch`` on a Redis broker and
answers), and one real ``celery worker`` (``bench_worker.py``, ``--pool threads``,
``--worker-concurrency`` threads) consuming a queue of its own. The sender sleeps
as long as the widget it sends for says (``--sleeps``, 0, 0.2 and 2 seconds by
default: one widget per dispatcher and sleep), standing for a gateway's latency.

For each dispatcher and sleep it measures ``send`` (``POST /``): p50, p90 and p99
latency, sends/s and the CPU time of the server's workers per send, with the load
client of the other scripts (``--concurrency`` keep-alive connections, closed loop,
spread over the workers). After every Celery measurement it waits until the worker
has launched every session of that measurement ("drain": from the end of the load
until no session is ``pending``), so that one measurement's deliveries do not run
into the next; the worker keeps running meanwhile. Inline, a slow sender holds a
server thread per send, so with a sleep S a measurement makes at most
``workers x threads x --inline-seconds / S`` sends (80 for 2 s by default).

One more case (``--no-paused-worker`` leaves it out): Celery with the first sleep
and the worker stopped (SIGSTOP) during the load, let go (SIGCONT) before the
drain. On a small machine the worker's deliveries take CPU time from the server
while it answers; this case shows what ``send`` costs on Celery without them.

``--rounds`` rounds; in each, the dispatchers take turns (inline first in odd
rounds) and the order of the sleeps shifts by one, so that slow phases of a shared
machine hit every case; the rounds are pooled. The ratios are against the 0 s
sleep measured in the same run: of the same dispatcher, and of inline. The target:
with Celery, send p50 within 1.5x of the 0 s case whatever the sender's latency.

At the end the script reads every measured session back from the database: how
many the sender delivered (state ``sent``, which only a sender that returned can
set) out of the sends that answered 201, and the time from the session's
``created_at`` (stored by ``send``) to its ``updated_at`` (written once the sender
returned): the delivery latency. It exits non-zero if a send did not answer 201 or
a session was not delivered.

The broker is ``--redis-url``; the script uses a queue of its own
(``sdkauth-bench-<random>``) and deletes its keys at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app
import bench_limits
from _common import (
    DEFAULT_REDIS_URL,
    HERE,
    LoadResult,
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
)

DISPATCHERS = ("inline", "celery")
#: The extra case: Celery with the worker stopped (SIGSTOP) during the load.
PAUSED = "celery, worker paused"
TARGET = 1.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, time_limit=900)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL,
                        help="the Celery broker; only the script's own queue's keys are "
                             "used and deleted (default: %(default)s)")
    parser.add_argument("--sleeps", default="0,0.2,2",
                        help="comma-separated seconds the sender sleeps; the first is "
                             "the baseline of the ratios (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=400,
                        help="measured sends per case and round (default: %(default)s)")
    parser.add_argument("--inline-seconds", type=float, default=20,
                        help="inline with a sleeping sender, at most workers x threads x "
                             "this / sleep sends per case and round (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=100,
                        help="unmeasured sends per server before the first round "
                             "(default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measurement rounds; the cases take turns "
                             "(default: %(default)s)")
    add_server_arguments(parser)
    parser.add_argument("--worker-concurrency", type=int, default=100,
                        help="threads of the Celery worker's pool (default: %(default)s)")
    parser.add_argument("--paused-worker", action=argparse.BooleanOptionalAction,
                        default=True,
                        help="also measure Celery with the worker stopped (SIGSTOP) "
                             "during the load, the first sleep (default: %(default)s)")
    parser.add_argument("--drain-timeout", type=float, default=120,
                        help="seconds to wait for the worker to launch a measurement's "
                             "sessions (default: %(default)s)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the servers' and the worker's logs")
    return parser.parse_args(argv)


# -- the Celery worker -----------------------------------------------------------


class CeleryWorker:
    """A ``celery -A bench_worker worker`` with a threads pool, in a process group
    of its own, stopped (the whole group) by :meth:`stop`."""

    def __init__(self, *, env: dict[str, str], queue: str, concurrency: int,
                 log_dir: Path) -> None:
        self.log_path = log_dir / "celery-worker.log"
        self.ready = log_dir / "celery-worker.ready"
        command = [
            sys.executable, "-m", "celery", "-A", "bench_worker", "worker",
            "--pool", "threads", "--concurrency", str(concurrency),
            "--queues", queue, "--loglevel", "WARNING", "--hostname", f"{queue}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **env, "BENCH_WORKER_READY": str(self.ready)},
                cwd=HERE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited; see {self.log_path}:\n"
                                   + self.log_path.read_text(errors="replace")[-4000:])
            if self.ready.exists():
                return
            time.sleep(0.1)
        raise RuntimeError(f"the Celery worker not ready after {timeout} s; "
                           f"see {self.log_path}")

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.resume()
            self._signal(signal.SIGTERM)  # warm shutdown: running tasks finish
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(5)

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass


def delete_queue(redis_url: str, queue: str) -> None:
    """Delete the broker keys of ``queue`` (the list, its priority lists, the
    bindings of its exchange, which has its name) and the unacked entries of its
    messages."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        names = [queue, *(f"{queue}\x06\x16{priority}" for priority in range(10)),
                 f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
        client.delete(*names)
        client.zrem("_kombu.binding_deadlines", queue)
        for tag, raw in client.hgetall("unacked").items():
            try:
                routing = json.loads(raw)[2]  # [message, exchange, routing key]
            except (ValueError, IndexError, TypeError):
                continue
            if routing == queue:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    finally:
        client.close()


# -- measurements ----------------------------------------------------------------


@dataclass
class Run:
    result: LoadResult
    server_cpu: float  # CPU seconds of the server's workers during the load
    worker_cpu: float  # CPU seconds of the Celery worker, load and drain
    machine_busy: float  # share of the machine's CPU time that was busy
    drain: float  # seconds from the end of the load until no session is pending


def pending(engine: sa.Engine, widget_id: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT count(*) FROM sdkauth_session "
                    "WHERE widget_id = :widget AND state = 'pending'"),
            {"widget": widget_id},
        ).scalar_one()


def wait_drained(engine: sa.Engine, widget_id: str, timeout: float) -> float:
    """Seconds until no session of ``widget_id`` is pending."""
    started = time.perf_counter()
    while pending(engine, widget_id):
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"sessions of {widget_id} still pending after {timeout} s; "
                               "is the Celery worker running?")
        time.sleep(0.05)
    return time.perf_counter() - started


def measure(server: Server, worker: CeleryWorker, engine: sa.Engine, requests: list[bytes],
            concurrency: int, widget_id: str, drain_timeout: float,
            pause: bool = False) -> Run:
    """Send ``requests``, then wait until the worker has launched their sessions;
    with ``pause``, the worker is stopped (SIGSTOP) during the load."""
    workers = len(server.pids)
    server_before = sum(cpu_seconds(pid) for pid in server.pids)
    worker_before = cpu_seconds(worker.pid)
    if pause:
        worker.pause()
    try:
        busy_before, total_before = machine_busy_seconds()
        result = load(server.port, requests, concurrency, workers)
        busy_after, total_after = machine_busy_seconds()
    finally:
        if pause:
            worker.resume()
    server_cpu = sum(cpu_seconds(pid) for pid in server.pids) - server_before
    drain = wait_drained(engine, widget_id, drain_timeout)
    return Run(
        result=result,
        server_cpu=server_cpu,
        worker_cpu=cpu_seconds(worker.pid) - worker_before,
        machine_busy=(busy_after - busy_before) / max(total_after - total_before, 1e-9),
        drain=drain,
    )


def served_dispatcher(server: Server) -> str:
    with urllib.request.urlopen(f"{server.url}/_bench/pid", timeout=5) as reply:
        return str(json.loads(reply.read()).get("dispatcher", "inline"))


def delivered(engine: sa.Engine, widget_id: str) -> tuple[Counter[str], list[float]]:
    """The states of the widget's sessions, and for those sent, the seconds from
    ``created_at`` to ``updated_at`` (the sender had returned)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT state, EXTRACT(EPOCH FROM updated_at - created_at) "
                    "FROM sdkauth_session WHERE widget_id = :widget"),
            {"widget": widget_id},
        ).all()
    return Counter(state for state, _ in rows), [float(s) for state, s in rows
                                                 if state == "sent"]


def label(sleep: float) -> str:
    return f"{sleep:g} s"


def server_of(case: tuple[str, float]) -> str:
    """The server (dispatcher) that serves a case."""
    return "inline" if case[0] == "inline" else "celery"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_time_limit(args.time_limit)
    sleeps = [float(value) for value in args.sleeps.split(",") if value.strip()]
    if not sleeps or len(set(sleeps)) != len(sleeps) or min(sleeps) < 0:
        raise SystemExit("--sleeps: distinct seconds >= 0, the baseline first")
    check_database(args.postgres_url)
    print(machine_summary())
    print("load average before the run: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(
        f"gunicorn --worker-class gthread --workers {args.workers} --threads "
        f"{args.threads}; celery worker --pool threads --concurrency "
        f"{args.worker_concurrency} (broker {args.redis_url}); client: "
        f"{args.concurrency} keep-alive connections; {args.requests} measured sends "
        f"per case and round (inline with a sleeping sender: at most workers x threads "
        f"x {args.inline_seconds:g} s / sleep) x {args.rounds} rounds; sender sleeps: "
        + ", ".join(label(sleep) for sleep in sleeps) + "\n", flush=True,
    )
    workdir = Workdir(keep=args.keep_logs)
    secret = secrets.token_urlsafe(32)
    queue = f"sdkauth-bench-{secrets.token_hex(6)}"
    cases = [(dispatcher, sleep) for dispatcher in DISPATCHERS for sleep in sleeps]
    if args.paused_worker:
        cases.append((PAUSED, sleeps[0]))
    names = [f"{dispatcher} {label(sleep)}" for dispatcher, sleep in cases]
    names += [f"{dispatcher} warmup" for dispatcher in DISPATCHERS]
    widgets, token = bench_app.prepare_widgets(args.postgres_url, secret, names)
    sender_sleeps = {widgets[f"{dispatcher} {label(sleep)}"]: sleep
                     for dispatcher, sleep in cases if sleep}
    env = {
        "BENCH_DATABASE_URL": args.postgres_url,
        "BENCH_SECRET_KEY": secret,
        "BENCH_SENDER_SLEEPS": json.dumps(sender_sleeps),
        "BENCH_BROKER_URL": args.redis_url,
        "BENCH_CELERY_QUEUE": queue,
    }
    engine = sa.create_engine(args.postgres_url)
    runs: dict[tuple[str, float], list[Run]] = defaultdict(list)
    errors: dict[tuple[str, float], Counter[int]] = defaultdict(Counter)
    numbers = iter(range(10_000_000))  # every send goes to a number of its own
    servers: dict[str, Server] = {}
    worker: CeleryWorker | None = None

    def sends(widget_id: str, count: int) -> list[bytes]:
        return [build_request("POST", "/", token=token, body={
            "widgetId": widget_id, "recipient": bench_limits.recipient(next(numbers)),
        }) for _ in range(count)]

    try:
        for dispatcher in DISPATCHERS:
            servers[dispatcher] = Server(
                f"gunicorn-{dispatcher}", "bench_app:create_app()",
                env={**env, "BENCH_DISPATCHER": dispatcher}, workers=args.workers,
                threads=args.threads, log_dir=workdir.path,
            )
        worker = CeleryWorker(env={**env, "BENCH_DISPATCHER": "celery"}, queue=queue,
                              concurrency=args.worker_concurrency, log_dir=workdir.path)
        for dispatcher, server in servers.items():
            server.wait_ready(args.workers)
            if served_dispatcher(server) != dispatcher:
                raise SystemExit(f"{server.name} does not serve the {dispatcher} dispatcher")
        worker.wait_ready()
        print(f"servers and worker ready (queue {queue}); flask_sdkauth from "
              f"{servers['inline'].package}", flush=True)
        for dispatcher, server in servers.items():
            widget_id = widgets[f"{dispatcher} warmup"]
            warm = load(server.port, sends(widget_id, args.warmup), args.concurrency,
                        len(server.pids))
            errors[(dispatcher, -1)].update(r.status for r in warm.replies if r.status != 201)
            wait_drained(engine, widget_id, args.drain_timeout)
        capacity = args.workers * args.threads
        for round_number in range(args.rounds):
            order = DISPATCHERS if round_number % 2 == 0 else DISPATCHERS[::-1]
            shift = round_number % len(sleeps)
            for server_name in order:
                # Each server's cases, the order of the sleeps shifted by the round.
                turn = [case for case in cases if server_of(case) == server_name]
                turn = turn[shift:] + turn[:shift]
                for dispatcher, sleep in turn:
                    count = args.requests
                    if dispatcher == "inline" and sleep:
                        count = min(count, max(args.concurrency,
                                               int(capacity * args.inline_seconds / sleep)))
                    widget_id = widgets[f"{dispatcher} {label(sleep)}"]
                    run = measure(servers[server_name], worker, engine,
                                  sends(widget_id, count), args.concurrency, widget_id,
                                  args.drain_timeout, pause=dispatcher == PAUSED)
                    runs[(dispatcher, sleep)].append(run)
                    errors[(dispatcher, sleep)].update(
                        r.status for r in run.result.replies if r.status != 201)
                    print(f"round {round_number + 1} {dispatcher} {label(sleep)}: "
                          f"{run.result.throughput:.0f} sends/s, p50 "
                          f"{ms(percentile(run.result.latencies(), 0.5))} ms"
                          + (f", drained in {run.drain:.1f} s" if server_name == "celery"
                             else ""), flush=True)
        # Every measured session has left pending (see measure); read them back.
        states = {case: delivered(engine, widgets[f"{case[0]} {label(case[1])}"])
                  for case in cases}
    finally:
        for server in servers.values():
            server.stop()
        if worker is not None:
            worker.stop()
        engine.dispose()
        try:
            delete_queue(args.redis_url, queue)
        except Exception as exc:  # a broker gone at the end must not hide the results
            print(f"could not delete the queue {queue}: {exc}", file=sys.stderr)
        if args.keep_logs:
            print(f"logs kept in {workdir.path}")
        workdir.cleanup()

    def p50(case: tuple[str, float]) -> float:
        return percentile([v for run in runs[case] for v in run.result.latencies()], 0.5)

    def rate(case: tuple[str, float]) -> float:
        cell = runs[case]
        return sum(len(run.result.replies) for run in cell) / sum(run.result.wall
                                                                  for run in cell)

    print("\nload average after the run: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
          + " (1, 5, 15 min; the run's own processes included)\n")
    rows = []
    undelivered = 0
    for case in cases:
        dispatcher, sleep = case
        celery = server_of(case) == "celery"
        cell = runs[case]
        latencies = [value for run in cell for value in run.result.latencies()]
        count = len(latencies)
        wall = sum(run.result.wall for run in cell)
        counts, delivery = states[case]
        answered = count - sum(errors[case].values())
        undelivered += answered - counts["sent"]
        rows.append([
            dispatcher, label(sleep), count, f"{rate(case):.0f}",
            ms(percentile(latencies, 0.5)), ms(percentile(latencies, 0.9)),
            ms(percentile(latencies, 0.99)),
            ms(sum(run.server_cpu for run in cell) / count),
            ms(sum(run.worker_cpu for run in cell) / count) if celery else "-",
            f"{sum(run.machine_busy * run.result.wall for run in cell) / wall * 100:.0f}%",
            f"{max(run.drain for run in cell):.1f}" if celery else "-",
            f"{counts['sent']}/{answered}",
            ms(percentile(delivery, 0.5)), ms(percentile(delivery, 0.99)),
        ])
    print_table(["dispatcher", "sender", "sends", "sends/s", "p50 ms", "p90 ms", "p99 ms",
                 "server CPU ms/send", "worker CPU ms/send", "machine busy",
                 "drain s (max)", "delivered", "delivery p50 ms", "delivery p99 ms"], rows)

    baseline = sleeps[0]
    ratios = []
    for case in cases:
        dispatcher, sleep = case
        own = (server_of(case), baseline)
        per_round = [run.result.latencies() for run in runs[case]]
        base_rounds = [run.result.latencies() for run in runs[own]]
        round_ratios = [percentile(a, 0.5) / percentile(b, 0.5)
                        for a, b in zip(per_round, base_rounds, strict=False)]
        ratio = p50(case) / p50(own)
        ratios.append([
            dispatcher, label(sleep), f"{ratio:.2f}",
            f"{min(round_ratios):.2f}-{max(round_ratios):.2f}",
            f"{p50(case) / p50(('inline', baseline)):.2f}",
            f"{rate(case) / rate(own):.2f}",
            f"{rate(case) / rate(('inline', baseline)):.2f}",
            ("yes" if ratio <= TARGET else "no") if dispatcher == "celery" else "-",
        ])
    print(f"Ratios against the {label(baseline)} sender of the same run (the paused "
          f"worker's row: against Celery's):")
    print_table(["dispatcher", "sender", "p50 / dispatcher's baseline",
                 "range over rounds", "p50 / inline baseline",
                 "sends/s / dispatcher's baseline", "sends/s / inline baseline",
                 f"celery p50 <= {TARGET:g}x"], ratios)
    worst = max(p50(("celery", sleep)) / p50(("celery", baseline)) for sleep in sleeps)
    worst_inline = max(p50(("celery", sleep)) / p50(("inline", baseline)) for sleep in sleeps)
    print(f"target, Celery send p50 within {TARGET:g}x of the {label(baseline)} case at "
          f"every sleep: {'met' if worst <= TARGET else 'not met'} (worst "
          f"{worst:.2f}x of Celery's {label(baseline)} p50; {worst_inline:.2f}x of "
          f"inline's)\n")
    failed = {case: counts for case, counts in errors.items() if counts}
    for (dispatcher, sleep), counts in failed.items():
        what = "warmup" if sleep < 0 else label(sleep)
        print(f"unexpected answers: {dispatcher} {what}: "
              + ", ".join(f"{n} x {status}" for status, n in sorted(counts.items())))
    if undelivered:
        print(f"{undelivered} stored sessions were not delivered")
    return 0 if not failed and not undelivered else 1


if __name__ == "__main__":
    sys.exit(main())
