"""The testing kit: fixtures and helpers for a host's own tests.

Installed as a pytest plugin (the ``pytest11`` entry point ``flask_sdkauth``), so
its fixtures are there in every test session of an environment that has
flask-sdkauth installed; every fixture name starts with ``sdkauth_``. The module
imports pytest; the helpers themselves need no fixture. See ``docs/testing.rst``.

The captured messages hold the codes in clear: that is what they are for, and why
this module belongs in tests only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

from .extension import SdkAuth
from .hooks import ChannelSender
from .message import Message
from .widgets import CHANNEL_TYPES, Channel, Widget

__all__ = [
    "AppFactory",
    "CapturingSender",
    "confirm_session",
    "confirmed_session",
]

#: ``factory(config=None, **SdkAuth options) -> (app, sdkauth)``
AppFactory = Callable[..., tuple[Flask, SdkAuth]]


class CapturingSender:
    """A channel sender that keeps every message it is given, code included.

    Register it for the channel types under test (:meth:`install` does it for all
    of them and undoes it afterwards); :meth:`fail` makes a channel fail instead,
    to test the fallback.
    """

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.failing: dict[str, Exception] = {}

    def __call__(self, message: Message) -> None:
        failure = self.failing.get(message.channel)
        if failure is not None:
            raise failure
        self.messages.append(message)

    @property
    def last(self) -> Message:
        """The latest message; ``AssertionError`` when none was sent."""
        if not self.messages:
            raise AssertionError("no message was sent")
        return self.messages[-1]

    @property
    def codes(self) -> list[str]:
        """The codes of the messages sent so far, oldest first (codeless ones have none)."""
        return [message.code for message in self.messages if message.code is not None]

    def for_request(self, request_id: uuid.UUID | str) -> list[Message]:
        """The messages of one session, oldest first."""
        wanted = _as_uuid(request_id)
        return [message for message in self.messages if message.request_id == wanted]

    def last_for(self, request_id: uuid.UUID | str) -> Message:
        """The latest message of one session; ``AssertionError`` when it has none."""
        messages = self.for_request(request_id)
        if not messages:
            raise AssertionError(f"no message was sent for session {request_id}")
        return messages[-1]

    def fail(self, channel: str, error: Exception | None = None) -> None:
        """Make every message of ``channel`` raise ``error`` (a ``RuntimeError`` by
        default), so that the engine falls back to the next channel."""
        self.failing[channel] = error or RuntimeError(f"{channel} fails in this test")

    def clear(self) -> None:
        """Forget the messages and the failing channels."""
        self.messages.clear()
        self.failing.clear()

    @contextmanager
    def install(
        self, sdkauth: SdkAuth, channel_types: Iterable[str] = CHANNEL_TYPES
    ) -> Iterator[CapturingSender]:
        """Be the sender of ``channel_types`` on ``sdkauth`` for the ``with`` block,
        then give the host's senders back."""
        senders = sdkauth.hooks.channel_senders
        bounded = sdkauth.hooks.bounded_senders
        saved: dict[str, ChannelSender] = dict(senders)
        saved_bounded = set(bounded)
        for channel_type in channel_types:
            sdkauth.add_channel_sender(channel_type, self)
        try:
            yield self
        finally:
            senders.clear()
            senders.update(saved)
            bounded.clear()
            bounded.update(saved_bounded)


def confirm_session(
    sdkauth: SdkAuth, request_id: uuid.UUID | str, outbox: CapturingSender
) -> bool:
    """Confirm a session as its user would, with what its latest message carried.

    A code goes through the engine's checkCode (the same hashing, attempts and
    limits as over HTTP); a codeless message is confirmed with its token and, with
    number matching, the number the widget shows. Needs an application context.
    The session is then ``confirmed``: the host's backend completes it with
    :meth:`SdkAuth.check_status_and_complete`.
    """
    message = outbox.last_for(request_id)
    wanted = _as_uuid(request_id)
    engine = sdkauth.engine
    if message.code is not None:
        return engine.check_code(wanted, message.code)
    assert message.confirmation_token is not None
    session = engine.sessions.get(wanted)
    number = session.payload.get("matchNumber") if session is not None else None
    return engine.confirm(wanted, message.confirmation_token, number)


def confirmed_session(
    sdkauth: SdkAuth,
    widget_id: uuid.UUID | str,
    recipient: str,
    outbox: CapturingSender,
) -> uuid.UUID:
    """Start a session with :meth:`SdkAuth.send` and confirm it; its request id.

    For tests of the host's own final step (the view that calls
    ``check_status_and_complete``). Needs an application context.
    """
    request_id = sdkauth.send(widget_id, recipient)
    confirm_session(sdkauth, request_id, outbox)
    return request_id


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# -- fixtures ------------------------------------------------------------------


@pytest.fixture
def sdkauth_outbox() -> CapturingSender:
    """A fresh :class:`CapturingSender`; the apps of ``sdkauth_app_factory`` use it
    for every channel type."""
    return CapturingSender()


@pytest.fixture
def sdkauth_config() -> dict[str, Any]:
    """Extra config for ``sdkauth_app``; override this fixture to change it (e.g.
    ``{"SDKAUTH_TEST_NUMBERS": {"+79990000000": "123456"}}``)."""
    return {}


@pytest.fixture
def sdkauth_app_factory(sdkauth_outbox: CapturingSender) -> Iterator[AppFactory]:
    """Build minimal apps with the extension: ``factory(config=None, **options)``
    returns ``(app, sdkauth)``, where ``options`` go to :class:`SdkAuth` (e.g.
    ``clock=``). Each app has ``TESTING`` on, its own in-memory SQLite database
    with the tables created, and ``sdkauth_outbox`` as the sender of every channel
    type."""
    built: list[tuple[Flask, SQLAlchemy]] = []

    def factory(config: dict[str, Any] | None = None, **options: Any) -> tuple[Flask, SdkAuth]:
        app = Flask("sdkauth_test_app")
        app.config.update(
            TESTING=True,
            SECRET_KEY="sdkauth-testing-secret-key-long-enough-for-hs256",
            SQLALCHEMY_DATABASE_URI="sqlite://",
        )
        app.config.update(config or {})
        db = SQLAlchemy()
        db.init_app(app)
        JWTManager(app)
        sdkauth = SdkAuth(db=db, **options)
        for channel_type in CHANNEL_TYPES:
            sdkauth.add_channel_sender(channel_type, sdkauth_outbox)
        sdkauth.init_app(app)
        with app.app_context():
            db.create_all()
        built.append((app, db))
        return app, sdkauth

    yield factory
    for app, db in built:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def sdkauth_app(sdkauth_app_factory: AppFactory, sdkauth_config: dict[str, Any]) -> Flask:
    """A minimal app from ``sdkauth_app_factory`` with ``sdkauth_config``."""
    return sdkauth_app_factory(sdkauth_config)[0]


@pytest.fixture
def sdkauth_extension(sdkauth_app: Flask) -> SdkAuth:
    """The :class:`SdkAuth` of ``sdkauth_app``."""
    extension: SdkAuth = sdkauth_app.extensions["sdkauth"]
    return extension


@pytest.fixture
def sdkauth_widget(sdkauth_app: Flask, sdkauth_extension: SdkAuth) -> Widget:
    """A built-in widget of ``sdkauth_app``: codes by SMS, then voice."""
    with sdkauth_app.app_context():
        return sdkauth_extension.create_widget("Test widget", [Channel("sms"), Channel("voice")])


@pytest.fixture
def sdkauth_headers(
    sdkauth_app: Flask, sdkauth_extension: SdkAuth, sdkauth_widget: Widget
) -> dict[str, str]:
    """The ``Authorization`` header of a widget token for ``sdkauth_widget``."""
    with sdkauth_app.app_context():
        token = sdkauth_extension.create_token([sdkauth_widget.id])
    return {"Authorization": f"Bearer {token}"}
