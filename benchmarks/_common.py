"""Shared parts of the benchmark scripts: a small HTTP/1.1 load client, gunicorn
servers started and stopped by the script, statistics and table printing.

Only loopback traffic: every server binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/sdkauth_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
RECIPIENT = "+79991234567"
#: The code every launch of the benchmark app sends (see bench_app.py).
FIXED_CODE = "123456"
WRONG_CODE = "000000"


# -- time limit ----------------------------------------------------------------


class TimeLimitExceeded(SystemExit):
    pass


def argument_parser(doc: str | None, *, time_limit: int) -> argparse.ArgumentParser:
    """A parser with the flags every script shares: --postgres-url, --time-limit."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="PostgreSQL database to use (default: %(default)s)")
    parser.add_argument("--time-limit", type=int, default=time_limit,
                        help="stop after this many seconds whatever happens "
                             "(default: %(default)s)")
    return parser


def add_database_argument(parser: argparse.ArgumentParser, of_what: str) -> None:
    """--database: ``postgresql`` (the default, at --postgres-url) or ``sqlite``."""
    parser.add_argument("--database", default="postgresql", choices=("postgresql", "sqlite"),
                        help=f"database of {of_what} (default: %(default)s)")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the scripts that load gunicorn servers: --concurrency,
    --workers, --threads."""
    parser.add_argument("--concurrency", type=int, default=8,
                        help="keep-alive connections of the load client "
                             "(default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2,
                        help="gunicorn workers per server (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per gthread worker (default: %(default)s)")


def install_time_limit(seconds: int) -> None:
    """Stop the script (through its ``finally`` blocks) after ``seconds``."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded(f"time limit of {seconds} s exceeded; stopping")

    signal.signal(signal.SIGALRM, expire)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    signal.alarm(seconds)


def raise_open_files_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


# -- databases -------------------------------------------------------------------


def check_database(url: str) -> None:
    """Exit with a hint when the database is unreachable or missing."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        name = sa.engine.make_url(url).database
        raise SystemExit(
            f"cannot connect to {url}: {exc.orig}\n"
            f"create the database first, e.g.: createdb -h 127.0.0.1 -U postgres {name}"
        ) from None
    finally:
        engine.dispose()


def sqlite_file_url(directory: Path) -> str:
    """A fresh SQLite file in WAL mode (set once, kept by the file)."""
    path = directory / "bench.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    engine.dispose()
    return f"sqlite:///{path}"


# -- gunicorn --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A gunicorn master serving ``app`` on 127.0.0.1, stopped by :meth:`stop`."""

    def __init__(
        self,
        name: str,
        app: str,
        *,
        env: dict[str, str],
        worker_class: str = "gthread",
        workers: int = 2,
        threads: int = 4,
        worker_connections: int = 1000,
        log_dir: Path,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = log_dir / f"{name}.log"
        command = [
            sys.executable, "-m", "gunicorn",
            "--bind", f"127.0.0.1:{self.port}",
            "--chdir", str(HERE),
            "--worker-class", worker_class,
            "--workers", str(workers),
            "--timeout", "120",
            "--graceful-timeout", "5",
            "--log-level", "warning",
        ]  # fmt: skip
        if worker_class == "gthread":
            command += ["--threads", str(threads)]
        if worker_class == "gevent":
            command += ["--worker-connections", str(worker_connections)]
        command.append(app)
        self.command = command
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **env},
                cwd=HERE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, workers: int, timeout: float = 60) -> list[int]:
        """Wait until the app answers and the master has ``workers`` workers;
        return their pids (also kept in :attr:`pids`)."""
        deadline = time.monotonic() + timeout
        self.package: str | None = None
        self.pids: list[int] = []
        answered = False
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}:\n{self.log()}")
            if not answered:
                try:
                    with urllib.request.urlopen(f"{self.url}/_bench/pid", timeout=2) as reply:
                        self.package = json.loads(reply.read()).get("package")
                    answered = True
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(0.1)
                    continue
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            self.pids = [int(pid) for pid in children.read_text().split()]
            if len(self.pids) >= workers:
                return self.pids
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout} s; see {self.log_path}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` (VmRSS of /proc/PID/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid`` (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (from /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


# -- HTTP client -----------------------------------------------------------------


def build_request(
    method: str, path: str, *, token: str | None = None, body: Any = None
) -> bytes:
    """An HTTP/1.1 request with keep-alive, as bytes ready to write."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode()
        lines.append("Content-Type: application/json")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@dataclass
class Reply:
    status: int
    body: bytes
    sent_at: float  # perf_counter() before the request was written
    done_at: float  # perf_counter() once the whole response was read

    @property
    def latency(self) -> float:
        return self.done_at - self.sent_at

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.port, limit=1 << 20
        )

    async def request(self, raw: bytes) -> Reply:
        if self.writer is None:
            await self.connect()
        assert self.reader is not None and self.writer is not None
        sent_at = time.perf_counter()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        length = 0
        close = False
        chunked = False
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            body = await self._read_chunked()
        else:
            body = await self.reader.readexactly(length) if length else b""
        done_at = time.perf_counter()
        if close:
            await self.close()
        return Reply(status, body, sent_at, done_at)

    async def _read_chunked(self) -> bytes:
        assert self.reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except ConnectionError:
                pass
        self.reader = self.writer = None


@dataclass
class LoadResult:
    replies: list[Reply]
    wall: float

    @property
    def throughput(self) -> float:
        return len(self.replies) / self.wall

    def latencies(self) -> list[float]:
        return [reply.latency for reply in self.replies]

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for reply in self.replies:
            counts[reply.status] = counts.get(reply.status, 0) + 1
        return counts


async def open_connections(port: int, count: int, workers: int = 1) -> list[Connection]:
    """``count`` keep-alive connections, spread evenly over the server's ``workers``.

    Which worker accepts a connection is up to the kernel; with several workers the
    connections are asked ``/_bench/pid`` and reopened until each worker holds its
    share, so that every run loads the workers alike.
    """
    if workers <= 1:
        connections = [Connection(port) for _ in range(count)]
        await asyncio.gather(*(connection.connect() for connection in connections))
        return connections
    shares = [count // workers + (1 if index < count % workers else 0)
              for index in range(workers)]
    by_pid: dict[int, list[Connection]] = {}
    kept = 0
    for _ in range(count * 50):
        connection = Connection(port)
        reply = await connection.request(build_request("GET", "/_bench/pid"))
        pid = reply.json()["pid"]
        held = by_pid.setdefault(pid, [])
        share = shares[list(by_pid).index(pid)] if len(by_pid) <= workers else 0
        if len(held) < share:
            held.append(connection)
            kept += 1
            if kept == count:
                return [c for held in by_pid.values() for c in held]
        else:
            await connection.close()
    raise RuntimeError(f"could not spread {count} connections over {workers} workers")


async def run_load(
    port: int, requests: Sequence[bytes], concurrency: int, workers: int = 1
) -> LoadResult:
    """Send every request, ``concurrency`` at a time over as many keep-alive
    connections (closed-loop: each connection sends its next request as soon as it
    has read the previous response), spread over ``workers`` (see
    :func:`open_connections`). Replies come back in request order."""
    replies: list[Reply | None] = [None] * len(requests)
    next_index = 0
    connections = await open_connections(port, min(concurrency, len(requests)), workers)

    async def worker(connection: Connection) -> None:
        nonlocal next_index
        while next_index < len(requests):
            index = next_index
            next_index += 1
            replies[index] = await connection.request(requests[index])

    started = time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in connections))
    wall = time.perf_counter() - started
    await asyncio.gather(*(connection.close() for connection in connections))
    return LoadResult([reply for reply in replies if reply is not None], wall)


def load(port: int, requests: Sequence[bytes], concurrency: int, workers: int = 1) -> LoadResult:
    return asyncio.run(run_load(port, requests, concurrency, workers))


# -- statistics and output -------------------------------------------------------


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    line = "  ".join("-" * width for width in widths)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)))
    print(line)
    for row in cells:
        print("  ".join(cell.rjust(w) if _numeric(cell) else cell.ljust(w)
                        for cell, w in zip(row, widths, strict=False)))
    print()


def _numeric(cell: str) -> bool:
    try:
        float(cell.rstrip("x%"))
    except ValueError:
        return False
    return True


def machine_summary() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for name in ("flask-sdkauth", "Flask", "SQLAlchemy", "gunicorn", "gevent", "psycopg",
                 "redis", "limits", "PyJWT", "phonenumbers", "marshmallow",
                 "flask-smorest"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return (
        f"machine: {os.cpu_count()} CPUs ({cpu}), {memory:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}\n"
        f"python {platform.python_version()}; " + ", ".join(versions)
    )


@dataclass
class Workdir:
    """A temporary directory for server logs and SQLite files."""

    keep: bool = False
    path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="sdkauth-bench-"))

    def cleanup(self) -> None:
        if not self.keep:
            for item in sorted(self.path.rglob("*"), reverse=True):
                item.unlink() if item.is_file() else item.rmdir()
            self.path.rmdir()
