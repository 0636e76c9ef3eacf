"""Two app processes share the database and Redis: a change made through one wakes
a long poll waiting on the other."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flask_sdkauth import Channel

from .flow import RECIPIENT

REDIS_URL = os.environ.get("SDKAUTH_TEST_REDIS_URL")
ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.skipif(
    not REDIS_URL, reason="needs SDKAUTH_TEST_REDIS_URL (set by .ci/run)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(method, url, token, body=None, timeout=15):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def servers(make_app, shared_database_uri, tmp_path):
    database = shared_database_uri
    app, sdkauth = make_app({"SQLALCHEMY_DATABASE_URI": database})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        token = sdkauth.create_token([widget.id])
    env = {
        **os.environ,
        "LP_DATABASE_URL": database,
        "LP_SECRET_KEY": app.config["SECRET_KEY"],
        "LP_NOTIFIER_URL": REDIS_URL,
    }
    ports = [_free_port(), _free_port()]
    logs = [tmp_path / f"server-{port}.log" for port in ports]
    processes = []
    for port, log in zip(ports, logs, strict=False):
        with log.open("wb") as output:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tests.lp_server", str(port)],
                    cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                )
            )
    try:
        for port, process, log in zip(ports, processes, logs, strict=False):
            _wait_for_port(port, process, log)
        yield [f"http://127.0.0.1:{port}" for port in ports], widget, token
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def _wait_for_port(port, process, log):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server on port {port} did not start")


def test_a_change_on_one_process_wakes_a_long_poll_on_the_other(servers):
    (first, second), widget, token = servers
    status, body = _request(
        "POST", f"{second}/", token, {"widgetId": str(widget.id), "recipient": RECIPIENT}
    )
    assert status == 201, body
    request_id = body["requestId"]
    assert _request("GET", f"{first}/{request_id}/channel", token)[1]["remainingCodeAttempts"] == 3

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(_request, "GET", f"{first}/longPolling/{request_id}/channel", token)
        time.sleep(0.5)
        assert not waiting.done()
        status, body = _request("POST", f"{second}/{request_id}/checkCode", token, {"code": "x"})
        assert body["type"] == "InvalidCodeException"
        status, body = waiting.result(timeout=15)

    # The first process's poll interval is 60 s and its timeout 10 s: only the
    # message through Redis can have woken it with the new snapshot.
    assert status == 200, body
    assert body["remainingCodeAttempts"] == 2
