"""A fake HTTP gateway on 127.0.0.1: records each request, answers what a test queued."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    delay: float = 0.0  # seconds before answering


class FakeGateway:
    """``route(request) -> Answer`` decides each answer; ``queue`` overrides it
    for the next requests, in order."""

    def __init__(self, route: Callable[[Received], Answer]) -> None:
        self.route = route
        self.queue: list[Answer] = []
        self.received: list[Received] = []
        self.release = threading.Event()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received = Received(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                gateway.received.append(received)
                answer = gateway.queue.pop(0) if gateway.queue else gateway.route(received)
                if answer.hang:
                    gateway.release.wait(30)
                    return
                if answer.delay:
                    gateway.release.wait(answer.delay)
                body = b"" if answer.body is None else (
                    answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                )
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    @property
    def last(self) -> Received:
        return self.received[-1]


@contextmanager
def running(route: Callable[[Received], Answer]) -> Iterator[FakeGateway]:
    gateway = FakeGateway(route)
    thread = threading.Thread(target=gateway.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        gateway.release.set()
        gateway.server.shutdown()
        gateway.server.server_close()
        thread.join(5)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
