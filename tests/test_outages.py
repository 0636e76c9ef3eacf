"""A service the extension depends on is down: the rate-limit storage, the
notifier's Redis, the database.

Each outage is logged once when it starts and once when it ends, never with a
phone number; the database and a limiter without fallback answer 503
``NoConnectionException``; the rest keeps working. "Dead" services are a port where
nothing listens; a Redis that goes away and comes back is a ``redis-server`` of our
own on a free port.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

from flask_sdkauth import Channel, NoConnectionException, SdkAuth
from flask_sdkauth.notifier import RedisNotifier

from .conftest import AppFactory, FakeClock, Outbox, bearer
from .flow import RECIPIENT, WidgetClient, started, wrong
from .spec import error_body

DEAD_REDIS = "redis://127.0.0.1:1/0"
DEAD_POSTGRESQL = "postgresql+psycopg://postgres@127.0.0.1:1/test"
NO_CONNECTION = error_body("NoConnectionException")
IP = "198.51.100.7"


# -- helpers ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class RedisProcess:
    """A redis-server of our own that a test can stop and start again."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.025)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A Redis URL whose host takes no connection: its accept queue is full, so a
    connect hangs until the client gives up (as with a host that drops packets)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    yield f"redis://127.0.0.1:{port}/0"
    for filler in fillers:
        filler.close()
    listener.close()


@pytest.fixture
def notifiers() -> Iterator[list[RedisNotifier]]:
    """Redis notifiers to close at teardown, so that no listener thread of this test
    reconnects (and logs) during another."""
    opened: list[RedisNotifier] = []
    yield opened
    for notifier in opened:
        notifier.close()


def _outage_records(caplog: pytest.LogCaptureFixture, what: str) -> list[tuple[int, str]]:
    return [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if what in record.getMessage() and "reachable" in record.getMessage()
    ]


def _assert_logged_once(
    caplog: pytest.LogCaptureFixture, what: str, *, ended: bool
) -> None:
    levels = [level for level, _ in _outage_records(caplog, what)]
    assert levels == ([logging.ERROR, logging.WARNING] if ended else [logging.ERROR]), (
        _outage_records(caplog, what)
    )


def _assert_no_number_logged(caplog: pytest.LogCaptureFixture) -> None:
    digits = RECIPIENT.lstrip("+")
    for record in caplog.records:
        assert digits not in record.getMessage()
        assert record.exc_info is None or record.exc_info[0] is None
        assert digits not in str(record.args)


def _until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition never became true")
        time.sleep(0.02)


def _long_poll(api: WidgetClient, path: str, **kwargs: Any) -> Future[Any]:
    client = api.client.application.test_client()
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(client.get, path, headers=api.headers, **kwargs)
    pool.shutdown(wait=False)
    return future


def _waiting(app: Flask, sdkauth: SdkAuth, count: int = 1) -> None:
    with app.app_context():
        notifier = sdkauth.engine.notifier
    _until(lambda: notifier.waiting >= count, 5)  # type: ignore[attr-defined]


def _client(app: Flask, sdkauth: SdkAuth, widget_id: uuid.UUID) -> WidgetClient:
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget_id))
    api.client.environ_base["REMOTE_ADDR"] = IP
    return api


# -- rate-limit storage -------------------------------------------------------------

#: Free captcha requests per IP make getWidget ask the limiter whether one is left.
CAPTCHA = {
    "SDKAUTH_CAPTCHA_PROVIDER": "google",
    "SDKAUTH_CAPTCHA_SECRET": "s3cret",
    "SDKAUTH_CAPTCHA_VERIFY_URL": "http://127.0.0.1:1/never-called",
    "SDKAUTH_CAPTCHA_FIRST_FREE_REQUESTS_PER_IP": 5,
}


def test_limiter_storage_down_counts_in_memory(make_app, outbox, caplog, clock):
    app, sdkauth = make_app({"SDKAUTH_RATELIMIT_STORAGE_URL": DEAD_REDIS, **CAPTCHA})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
    api = _client(app, sdkauth, widget.id)

    assert api.widget(widget.id).json["captchaIsRequired"] is False
    request_id = started(api, widget.id)
    assert api.check_code(request_id, wrong(outbox.last.code)).status_code == 400
    clock.advance(300)  # the code expired: resend needs no cooldown
    assert api.resend(request_id).json == {"success": True}
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}
    with app.app_context():
        assert sdkauth.engine.guards.limiter.storage_is_down
        other = sdkauth.send(widget.id, "+79990000001")
        assert sdkauth.engine.check_code(other, outbox.last.code) is True

    # The limits still hold, counted in this process: 3/minute per number.
    assert api.send(widget.id).status_code == 201
    assert api.send(widget.id).status_code == 201
    assert api.send(widget.id).status_code == 429
    _assert_logged_once(caplog, "rate-limit storage", ended=False)
    _assert_no_number_logged(caplog)


@pytest.fixture
def two_limiters(make_app, shared_database_uri):
    """A healthy app that starts sessions, and an app over the same database whose
    limiter storage is dead and has no fallback."""

    def build() -> tuple[WidgetClient, WidgetClient, Flask, SdkAuth, Any]:
        healthy_app, healthy = make_app({"SQLALCHEMY_DATABASE_URI": shared_database_uri})
        with healthy_app.app_context():
            widget = healthy.create_widget("W", [Channel("sms"), Channel("voice")])
        app, sdkauth = make_app(
            {
                "SQLALCHEMY_DATABASE_URI": shared_database_uri,
                "SDKAUTH_RATELIMIT_STORAGE_URL": DEAD_REDIS,
                "SDKAUTH_RATELIMIT_FALLBACK_TO_MEMORY": False,
                **CAPTCHA,
            },
            reset_database=False,
        )
        return (
            _client(healthy_app, healthy, widget.id),
            _client(app, sdkauth, widget.id),
            app,
            sdkauth,
            widget,
        )

    return build


@pytest.mark.parametrize("operation", ["send", "getWidget", "checkCode", "resend"])
def test_limiter_storage_down_without_fallback_is_503(
    two_limiters, outbox, caplog, clock, operation
):
    healthy, api, app, sdkauth, widget = two_limiters()
    request_id = started(healthy, widget.id)
    calls = {
        "send": lambda: api.send(widget.id),
        "getWidget": lambda: api.widget(widget.id),
        "checkCode": lambda: api.check_code(request_id, outbox.last.code),
        "resend": lambda: api.resend(request_id),
    }
    for _ in range(3):
        response = calls[operation]()
        assert (response.status_code, response.data) == (503, NO_CONNECTION)
    # Nothing was done: the session still takes its code through the healthy app.
    assert healthy.check_code(request_id, outbox.last.code).json == {"success": True}
    _assert_logged_once(caplog, "rate-limit storage", ended=False)
    _assert_no_number_logged(caplog)


def test_limiter_storage_down_without_fallback_raises_from_python(
    two_limiters, outbox, caplog
):
    healthy, api, app, sdkauth, widget = two_limiters()
    request_id = started(healthy, widget.id)
    with app.app_context():
        with pytest.raises(NoConnectionException):
            sdkauth.send(widget.id, RECIPIENT)
        with pytest.raises(NoConnectionException):
            sdkauth.engine.check_code(uuid.UUID(request_id), outbox.last.code)
    _assert_logged_once(caplog, "rate-limit storage", ended=False)


def test_limiter_outage_logged_once_and_limits_count_meanwhile(
    make_app, redis_server, outbox, caplog, monkeypatch
):
    # The limiter retries its storage every 5 s (monotonic): let the test move time.
    skew = [0.0]
    monkeypatch.setattr(
        "flask_sdkauth.ratelimits.monotonic", lambda: time.monotonic() + skew[0]
    )
    app, sdkauth = make_app({"SDKAUTH_RATELIMIT_STORAGE_URL": redis_server.url})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    api = _client(app, sdkauth, widget.id)
    assert api.send(widget.id, "+79990000001").status_code == 201

    redis_server.stop()
    assert api.send(widget.id).status_code == 201
    with app.app_context():
        assert sdkauth.engine.guards.limiter.storage_is_down  # noticed by that send
    request_id = api.send(widget.id).json["requestId"]
    assert api.check_code(request_id, wrong(outbox.last.code)).status_code == 400
    assert api.send(widget.id).status_code == 201
    assert api.send(widget.id).status_code == 429  # 3/minute per number, in memory
    skew[0] += 6  # the storage is tried again: still down, still one record
    assert api.send(widget.id, "+79990000002").status_code == 201
    with app.app_context():
        assert sdkauth.engine.guards.limiter.storage_is_down

    redis_server.start()
    skew[0] += 6
    assert api.send(widget.id, "+79990000003").status_code == 201
    with app.app_context():
        assert not sdkauth.engine.guards.limiter.storage_is_down
    _assert_logged_once(caplog, "rate-limit storage", ended=True)
    _assert_no_number_logged(caplog)


def test_limiter_storage_that_does_not_answer_costs_seconds_not_minutes(
    make_app, silent_host, caplog
):
    app, sdkauth = make_app({"SDKAUTH_RATELIMIT_STORAGE_URL": silent_host})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    api = _client(app, sdkauth, widget.id)
    with app.app_context():
        limiter = sdkauth.engine.guards.limiter
    # Our timeouts, not redis-py's (which, before version 6, waits as long as the OS).
    options = limiter._storage.storage.connection_pool.connection_kwargs
    assert (options["socket_connect_timeout"], options["socket_timeout"]) == (2.0, 2.0)
    assert api.send(widget.id).status_code == 201  # given up after the timeout
    assert limiter.storage_is_down
    tries = []
    client = limiter._storage.storage
    real_command = client.execute_command
    client.execute_command = lambda *args, **kwargs: (
        tries.append(args) or real_command(*args, **kwargs)
    )
    assert api.send(widget.id, "+79990000001").status_code == 201
    assert tries == []  # known down: the next requests do not wait on it again
    _assert_logged_once(caplog, "rate-limit storage", ended=False)


# -- notifier's Redis -----------------------------------------------------------------


def _polling_app(
    make_app: AppFactory, notifiers: list[RedisNotifier], url: str, database: str, **config: Any
) -> tuple[Flask, SdkAuth]:
    app, sdkauth = make_app(
        {
            "SDKAUTH_NOTIFIER_URL": url,
            "SDKAUTH_LONG_POLLING_TIMEOUT": 10,
            "SDKAUTH_LONG_POLLING_INTERVAL": 60,  # only a wake-up answers in time
            "SQLALCHEMY_DATABASE_URI": database,
            # These tests start many sessions for one number from one IP.
            "SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT": None,
            "SDKAUTH_RATELIMIT_SEND_PER_IP": None,
            **config,
        },
        reset_database=not notifiers,
    )
    with app.app_context():
        notifiers.append(sdkauth.engine.notifier)  # type: ignore[arg-type]
    return app, sdkauth


def test_notifier_on_dead_redis(
    make_app, notifiers, shared_database_uri, outbox, caplog, monkeypatch
):
    app, sdkauth = _polling_app(make_app, notifiers, DEAD_REDIS, shared_database_uri)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    api = _client(app, sdkauth, widget.id)
    request_id = started(api, widget.id)
    code = outbox.last.code
    # A send publishes nothing (nobody can wait on a session before it exists):
    # start the listener, which finds Redis down.
    assert not notifiers[0].wait_until_subscribed(0)
    _until(lambda: notifiers[0].is_down)

    # Long polls that have news answer at once: none waits for a subscription that
    # cannot come (were one to wait, it would wait out this minute).
    monkeypatch.setattr(notifiers[0], "_SUBSCRIBE_SECONDS", 60.0)
    started_at = time.monotonic()
    for _ in range(5):
        other = api.send(widget.id, "+79990000001").json["requestId"]
        assert api.client.get(f"/longPolling/{other}/channel", headers=api.headers).status_code == 200
    assert time.monotonic() - started_at < 60

    # A waiter of this process is woken directly by a change made here.
    future = _long_poll(api, f"/longPolling/{request_id}/channel")
    _waiting(app, sdkauth)
    assert api.check_code(request_id, wrong(code)).status_code == 400
    assert future.result(timeout=5).json["remainingCodeAttempts"] == 2
    assert api.check_code(request_id, code).json == {"success": True}
    _assert_logged_once(caplog, "notifier Redis", ended=False)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING and
            "notifier" not in r.getMessage()] == []


def test_notifier_down_long_polls_answer_through_the_periodic_read(
    make_app, notifiers, shared_database_uri, outbox, caplog
):
    """Two workers on a dead Redis: the waiter on one hears nothing of a change made
    on the other, and finds it by re-reading the database."""
    waiter_app, sdkauth = _polling_app(
        make_app, notifiers, DEAD_REDIS, shared_database_uri,
        SDKAUTH_LONG_POLLING_INTERVAL=0.2,
    )
    with waiter_app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    other_app, other = _polling_app(make_app, notifiers, DEAD_REDIS, shared_database_uri)
    api = _client(waiter_app, sdkauth, widget.id)
    request_id = started(api, widget.id)
    future = _long_poll(api, f"/longPolling/{request_id}/channel")
    _waiting(waiter_app, sdkauth)

    other_api = _client(other_app, other, widget.id)
    assert other_api.check_code(request_id, wrong(outbox.last.code)).status_code == 400
    assert future.result(timeout=5).json["remainingCodeAttempts"] == 2
    # One record per notifier (each process has its own).
    assert len(_outage_records(caplog, "notifier Redis")) == 2


def _wrong_code_wakes_the_waiter(app, sdkauth, api, widget, outbox) -> None:
    """A fresh session's channel long poll answers the wrong code that follows it."""
    request_id = started(api, widget.id)
    future = _long_poll(api, f"/longPolling/{request_id}/channel")
    _waiting(app, sdkauth)
    api.check_code(request_id, wrong(outbox.last.code))
    assert future.result(timeout=5).json["remainingCodeAttempts"] == 2


def test_notifier_outage_logged_once_and_wake_ups_return(
    make_app, notifiers, redis_server, shared_database_uri, outbox, caplog
):
    app, sdkauth = _polling_app(make_app, notifiers, redis_server.url, shared_database_uri)
    notifier = notifiers[0]
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
    api = _client(app, sdkauth, widget.id)
    assert notifier.wait_until_subscribed(5)
    _wrong_code_wakes_the_waiter(app, sdkauth, api, widget, outbox)

    redis_server.stop()
    _until(lambda: notifier.is_down)
    for _ in range(3):  # requests during the outage: work, and log nothing more
        _wrong_code_wakes_the_waiter(app, sdkauth, api, widget, outbox)

    redis_server.start()
    assert notifier.wait_until_subscribed(40)
    assert not notifier.is_down
    # Wake-ups travel through Redis again: a change made by another worker.
    other_app, other = _polling_app(make_app, notifiers, redis_server.url, shared_database_uri)
    with other_app.app_context():
        assert other.engine.notifier.wait_until_subscribed(5)  # type: ignore[attr-defined]
    after = started(api, widget.id)
    future = _long_poll(api, f"/longPolling/{after}/channel")
    _waiting(app, sdkauth)
    _client(other_app, other, widget.id).check_code(after, wrong(outbox.last.code))
    assert future.result(timeout=5).json["remainingCodeAttempts"] == 2
    _assert_logged_once(caplog, "notifier Redis", ended=True)
    _assert_no_number_logged(caplog)


# -- database -------------------------------------------------------------------------


def _app_on(
    database_uri: str, clock: FakeClock, outbox: Outbox, **config: Any
) -> tuple[Flask, SdkAuth, SQLAlchemy]:
    """An app whose tables are not created (the database may not be reachable)."""
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="test-secret-key-of-enough-length-for-hs256",
        SQLALCHEMY_DATABASE_URI=database_uri,
        **config,
    )
    db = SQLAlchemy()
    db.init_app(app)
    JWTManager(app)
    sdkauth = SdkAuth(db=db, clock=clock)
    sdkauth.add_channel_sender("sms", outbox)
    sdkauth.init_app(app)
    return app, sdkauth, db


@pytest.fixture(params=["postgresql", "sqlite"])
def dead_database(request, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return DEAD_POSTGRESQL
    return f"sqlite:///{tmp_path / 'no-such-directory' / 'sdkauth.db'}"


ROUTES: dict[str, Callable[[WidgetClient, uuid.UUID, str], Any]] = {
    "send": lambda api, widget_id, request_id: api.send(widget_id),
    "getWidget": lambda api, widget_id, request_id: api.widget(widget_id),
    "getChannel": lambda api, widget_id, request_id: api.channel(request_id),
    "getStatus": lambda api, widget_id, request_id: api.status(request_id),
    "getChannelLongPolling": lambda api, widget_id, request_id: api.client.get(
        f"/longPolling/{request_id}/channel", headers=api.headers
    ),
    "getStatusLongPolling": lambda api, widget_id, request_id: api.client.get(
        f"/longPolling/{request_id}/status",
        query_string={"recipient": RECIPIENT},
        headers=api.headers,
    ),
    "checkCode": lambda api, widget_id, request_id: api.check_code(request_id, "123456"),
    "resend": lambda api, widget_id, request_id: api.resend(request_id),
    "complete": lambda api, widget_id, request_id: api.complete(request_id),
    "checkStatusAndComplete": lambda api, widget_id, request_id: (
        api.check_status_and_complete(request_id)
    ),
}


def test_unreachable_database_is_503_from_every_route(dead_database, clock, outbox, caplog):
    app, sdkauth, db = _app_on(dead_database, clock, outbox)
    widget_id = uuid.uuid4()
    api = _client(app, sdkauth, widget_id)
    request_id = str(uuid.uuid4())
    for operation, call in ROUTES.items():
        response = call(api, widget_id, request_id)
        assert (response.status_code, response.data) == (503, NO_CONNECTION), operation
        assert response.content_type == "application/json"
    with app.app_context():
        with pytest.raises(NoConnectionException):
            sdkauth.check_status_and_complete(request_id, RECIPIENT)
        with pytest.raises(NoConnectionException) as raised:
            sdkauth.send(widget_id, RECIPIENT)
        assert RECIPIENT.lstrip("+") not in str(raised.value)
        db.engine.dispose()
    _assert_logged_once(caplog, "database", ended=False)
    _assert_no_number_logged(caplog)


def test_database_outage_logged_once_when_it_starts_and_ends(tmp_path, clock, outbox, caplog):
    directory = tmp_path / "later"
    app, sdkauth, db = _app_on(f"sqlite:///{directory / 'sdkauth.db'}", clock, outbox)
    widget_id = uuid.uuid4()
    api = _client(app, sdkauth, widget_id)
    for i in range(3):
        assert api.send(widget_id, f"+7999000000{i}").data == NO_CONNECTION

    directory.mkdir()  # the database is back
    with app.app_context():
        db.create_all()
        widget = sdkauth.create_widget("W", [Channel("sms")])
    api = _client(app, sdkauth, widget.id)
    request_id = started(api, widget.id)
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}
    _assert_logged_once(caplog, "database", ended=True)
    _assert_no_number_logged(caplog)
    with app.app_context():
        db.engine.dispose()


def test_exhausted_pool_is_503(make_app, shared_database_uri, outbox, caplog):
    app, sdkauth = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": shared_database_uri,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.1},
        }
    )
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    api = _client(app, sdkauth, widget.id)
    request_id = started(api, widget.id)
    with app.app_context():
        held = sdkauth.db.engine.connect()  # the pool's only connection
    try:
        assert api.channel(request_id).data == NO_CONNECTION
        assert api.check_code(request_id, outbox.last.code).data == NO_CONNECTION
    finally:
        held.close()
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}
    _assert_logged_once(caplog, "database", ended=True)
    _assert_no_number_logged(caplog)


def test_lost_connection_is_503(make_app, database_uri, outbox, caplog):
    if not database_uri.startswith("postgresql"):
        pytest.skip("needs a server whose connections can be terminated")
    app, sdkauth = make_app()
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        engine = sdkauth.db.engine
    api = _client(app, sdkauth, widget.id)
    request_id = started(api, widget.id)
    with engine.connect() as admin:  # end every other connection to our database
        admin.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ))
    # Pooled connections that the server closed fail once, then are replaced.
    responses = [api.channel(request_id) for _ in range(3)]
    assert {r.data for r in responses if r.status_code != 200} <= {NO_CONNECTION}
    assert responses[-1].status_code == 200
    _assert_no_number_logged(caplog)


def test_errors_of_the_statement_are_not_outages(tmp_path, clock, outbox, caplog):
    """A database without our tables is a mistake to see, not a 503."""
    app, sdkauth, db = _app_on(f"sqlite:///{tmp_path / 'empty.db'}", clock, outbox)
    with app.app_context():
        with pytest.raises(sa.exc.OperationalError, match="no such table"):
            sdkauth.check_status_and_complete(uuid.uuid4(), RECIPIENT)
        db.engine.dispose()
    assert _outage_records(caplog, "database") == []
