"""Launches on a real Celery worker (``SDKAUTH_DISPATCHER = "celery"``).

Each test starts ``celery worker`` in a subprocess (``tests/celery_worker.py``)
against a real broker: Redis (``SDKAUTH_TEST_REDIS_URL``) and, when
``SDKAUTH_TEST_AMQP_URL`` is set, RabbitMQ. The test process is the web app: it
stores sessions and queues launches; the worker launches and its notifier wakes
the test's long polls through Redis. The database is shared (a SQLite file, or
PostgreSQL).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from celery import Celery

from flask_sdkauth import Channel, State

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient
from .spec import error_body

REDIS_URL = os.environ.get("SDKAUTH_TEST_REDIS_URL")
AMQP_URL = os.environ.get("SDKAUTH_TEST_AMQP_URL")
ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.skipif(
    not REDIS_URL, reason="needs SDKAUTH_TEST_REDIS_URL (set by .ci/run)"
)

BROKERS = ["redis"] + (["amqp"] if AMQP_URL else [])


def _broker_url(name: str) -> str:
    return {"redis": REDIS_URL, "amqp": AMQP_URL}[name]  # type: ignore[return-value]


def _wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Worker:
    """A ``celery worker`` subprocess of the Celery app in ``module``."""

    def __init__(self, env, log: Path, queue, *, module="tests.celery_worker", pool="threads",
                 beat=False):
        self.env = env
        self.log = log
        self.queue = queue
        self.module = module
        self.pool = pool
        self.beat = beat
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self):
        command = [
            sys.executable, "-m", "celery", "-A", self.module, "worker",
            "--pool", self.pool, "--concurrency", "1" if self.pool == "prefork" else "4",
            "--queues", self.queue, "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        if self.beat:
            command += ["--beat", "--schedule", str(self.log.with_suffix(".beat"))]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_for(lambda: self.ready() or self.process.poll() is not None, 60, "the worker")
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited: {self.log.read_text()[-3000:]}")
        except BaseException:
            self.kill()
            raise
        return self

    def ready(self):
        return b" ready." in self.log.read_bytes()

    def kill(self):
        """SIGKILL the worker and its pool's processes, as an OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __exit__(self, exc_type, *exc_info):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if exc_type is None:
            # A task that failed on the worker fails the test too.
            errors = [line for line in self.log.read_text().splitlines() if "ERROR/" in line]
            assert errors == [], errors


class Setup:
    """The web side (``app``, ``sdkauth``, a widget's client) and workers for it."""

    def __init__(self, app, sdkauth, widget, env, tmp_path):
        self.app = app
        self.sdkauth = sdkauth
        self.widget = widget
        self.env = env
        self.tmp_path = tmp_path
        self.api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
        self.outbox = Path(env["CW_OUTBOX"])

    def worker(self, *, senders=None, pool="threads", beat=False, **env):
        worker_env = {**self.env, "CW_SENDERS": json.dumps(senders or {}), **env}
        count = len(list(self.tmp_path.glob("worker-*.log")))
        log = self.tmp_path / f"worker-{count}.log"
        return Worker(worker_env, log, self.env["CW_QUEUE"], pool=pool, beat=beat)

    def lines(self, request_id, event=None):
        if not self.outbox.exists():
            return []
        lines = [json.loads(line) for line in self.outbox.read_text().splitlines()]
        return [
            line
            for line in lines
            if line["request_id"] == str(request_id) and event in (None, line["event"])
        ]

    def session(self, request_id):
        with self.app.app_context():
            return self.sdkauth.engine.sessions.get(uuid.UUID(str(request_id)))


@pytest.fixture
def celery_setup(make_app, shared_database_uri, clock, tmp_path):
    # The worker's clock is the real one: start the test's there too.
    clock.now = datetime.now(UTC)

    def build(broker="redis", channels=None, broker_url=None):
        channels = channels or (Channel("sms"), Channel("voice"))
        queue = f"sdkauth-test-{uuid.uuid4().hex[:12]}"
        broker_url = broker_url or _broker_url(broker)
        app, sdkauth = make_app(
            {
                "SQLALCHEMY_DATABASE_URI": shared_database_uri,
                "SDKAUTH_DISPATCHER": "celery",
                "SDKAUTH_NOTIFIER_URL": REDIS_URL,
                "SDKAUTH_LONG_POLLING_TIMEOUT": 20,
                "SDKAUTH_LONG_POLLING_INTERVAL": 60,  # only the notifier wakes a poll
            }
        )
        celery = Celery("sdkauth-tests", broker=broker_url, set_as_current=False)
        celery.conf.update(
            task_default_queue=queue,
            broker_connection_timeout=2,
            broker_transport_options={"max_retries": 1},
        )
        app.extensions["celery"] = celery
        with app.app_context():
            widget = sdkauth.create_widget("W", list(channels))
            assert sdkauth.engine.notifier.wait_until_subscribed(10)
        env = {
            **os.environ,
            "CW_DATABASE_URL": shared_database_uri,
            "CW_SECRET_KEY": app.config["SECRET_KEY"],
            "CW_NOTIFIER_URL": REDIS_URL,
            "CW_BROKER_URL": broker_url,
            "CW_QUEUE": queue,
            "CW_OUTBOX": str(tmp_path / "outbox.jsonl"),
        }
        return Setup(app, sdkauth, widget, env, tmp_path)

    return build


@pytest.mark.parametrize("broker", BROKERS)
def test_send_answers_before_a_slow_sender_and_the_worker_delivers_once(celery_setup, broker):
    setup = celery_setup(broker)
    api = setup.api
    with setup.worker(senders={"sms": {"sleep": 2}}):
        response = api.send(setup.widget.id)
        assert response.status_code == 201, response.json
        request_id = response.json["requestId"]
        # Answered while the worker has not delivered anything yet.
        assert setup.lines(request_id, "done") == []
        channel = api.channel(request_id).json
        assert (channel["type"], channel["status"]) == ("sms", "wait")
        # The worker's launch wakes the long poll (its interval is 60 s).
        polled = api.client.get(f"/longPolling/{request_id}/channel", headers=api.headers)
        assert polled.status_code == 200, polled.json
        assert (polled.json["type"], polled.json["status"]) == ("sms", "sent")
        started, done = setup.lines(request_id, "start"), setup.lines(request_id, "done")
        assert len(started) == len(done) == 1
        assert api.check_code(request_id, done[0]["code"]).json == {"success": True}
    # Nothing was delivered twice, even after the worker's shutdown.
    assert len(setup.lines(request_id)) == 2


def test_a_hanging_sender_times_out_on_the_worker(celery_setup):
    setup = celery_setup()
    api = setup.api
    with setup.worker(senders={"sms": {"sleep": 3600}}, CW_SENDER_TIMEOUT="1"):
        request_id = api.send(setup.widget.id).json["requestId"]
        api.channel(request_id)
        polled = api.client.get(f"/longPolling/{request_id}/channel", headers=api.headers)
        assert (polled.json["type"], polled.json["status"]) == ("voice", "sent")
    session = setup.session(request_id)
    assert [(entry["channel"], entry["outcome"]) for entry in session.history] == [
        ("sms", "timeout"),
        ("voice", "sent"),
    ]
    (voice,) = setup.lines(request_id, "done")
    assert api.check_code(request_id, voice["code"]).json == {"success": True}


def test_a_killed_workers_session_is_recovered_by_the_periodic_sweep(celery_setup):
    setup = celery_setup()
    api = setup.api
    with setup.worker(senders={"sms": {"sleep": 60}}, pool="prefork") as worker:
        request_id = api.send(setup.widget.id).json["requestId"]
        _wait_for(lambda: setup.lines(request_id, "start"), 30, "the slow sender to start")
        worker.kill()
    assert setup.session(request_id).state is State.PENDING
    assert setup.lines(request_id, "done") == []
    # A new worker with the beat schedule's sweep finds the lost launch.
    with setup.worker(beat=True, CW_LAUNCH_DEADLINE="2"):
        done = _wait_for(lambda: setup.lines(request_id, "done"), 45, "the relaunch")
    session = setup.session(request_id)
    assert session.state is State.SENT
    assert [entry["outcome"] for entry in session.history] == ["lost", "sent"]
    assert len(done) == 1
    assert api.status(request_id).data == error_body("ChannelChangedException")
    assert api.check_code(request_id, done[0]["code"]).json == {"success": True}


def test_fallback_after_runs_on_the_worker_with_nobody_polling(celery_setup):
    setup = celery_setup(channels=[Channel("sms", settings={"fallbackAfter": 2}), Channel("voice")])
    with setup.worker():
        request_id = setup.api.send(setup.widget.id).json["requestId"]
        done = _wait_for(
            lambda: [line for line in setup.lines(request_id, "done") if line["channel"] == "voice"],
            30,
            "the scheduled fallback",
        )
    session = setup.session(request_id)
    assert session.state is State.SENT
    assert session.channel["type"] == "voice"
    assert [line["channel"] for line in setup.lines(request_id, "done")] == ["sms", "voice"]
    assert setup.api.check_code(request_id, done[0]["code"]).json == {"success": True}


def test_a_broker_that_cannot_be_reached_is_503_and_no_session_lingers(celery_setup):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    setup = celery_setup(broker_url=dead)
    response = setup.api.send(setup.widget.id)
    assert response.status_code == 503
    assert response.data == error_body("NoConnectionException")
    with setup.app.app_context():
        rows = setup.sdkauth.db.session.execute(setup.sdkauth.tables.session.select()).all()
    assert [row.state for row in rows] == ["closed"]


def test_the_example_app_runs_its_launches_on_a_worker(tmp_path):
    from example_app import create_app

    queue = f"sdkauth-example-{uuid.uuid4().hex[:12]}"
    celery_config = {"broker_url": REDIS_URL, "task_default_queue": queue}
    app = create_app(
        {
            "SDKAUTH_DISPATCHER": "celery",
            "SDKAUTH_NOTIFIER_URL": REDIS_URL,
            "CELERY": celery_config,
            "TESTING": True,
        },
        instance_path=str(tmp_path),
    )
    widget_id = app.test_client().get("/info").json["demoWidgetId"]
    with app.app_context():
        sdkauth = app.extensions["sdkauth"]
        token = sdkauth.create_token([widget_id])
        assert sdkauth.engine.notifier.wait_until_subscribed(10)
    api = WidgetClient(app.test_client(), {"Authorization": f"Bearer {token}"})
    env = {
        **os.environ,
        "EXAMPLE_INSTANCE_PATH": str(tmp_path),
        "FLASK_SDKAUTH_DISPATCHER": "celery",
        "FLASK_SDKAUTH_NOTIFIER_URL": REDIS_URL,
        "FLASK_CELERY__broker_url": REDIS_URL,
        "FLASK_CELERY__task_default_queue": queue,
    }
    log = tmp_path / "worker.log"
    with Worker(env, log, queue, module="example_app.worker"):
        request_id = api.send(widget_id).json["requestId"]
        assert api.channel(request_id).json["status"] == "wait"
        polled = api.client.get(f"/longPolling/{request_id}/channel", headers=api.headers)
        assert polled.json["status"] == "sent"
    # The example's development sender logs the code, on the worker.
    match = re.search(rf"session {request_id}\): Код подтверждения: (\d+)", log.read_text())
    assert match is not None, log.read_text()[-3000:]
    assert api.check_code(request_id, match.group(1)).json == {"success": True}
    signed_in = api.client.post(
        "/formSubmit", json={"requestId": request_id, "recipient": RECIPIENT}
    )
    assert signed_in.json == {"signedIn": True}


def test_a_fallback_that_cannot_be_scheduled_is_logged_and_left_to_reads(
    celery_setup, caplog, clock
):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    setup = celery_setup(broker_url=dead)
    with setup.app.app_context():
        dispatcher = setup.sdkauth.engine.dispatcher
        dispatcher.schedule_fallback(uuid.uuid4(), 1, 30.0)
    assert "fallback not scheduled" in caplog.text
