"""Fixtures: an app factory over every configured database backend.

SQLite (in memory) always; PostgreSQL too when ``SDKAUTH_TEST_DATABASE_URL`` is set,
in which case an unreachable server fails the tests rather than skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

from flask_sdkauth import Channel, SdkAuth
from flask_sdkauth.testing import CapturingSender

BACKENDS = {"sqlite": "sqlite://"}
if os.environ.get("SDKAUTH_TEST_DATABASE_URL"):
    BACKENDS["postgresql"] = os.environ["SDKAUTH_TEST_DATABASE_URL"]


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


#: The testing kit's capturing sender: records messages, or fails for chosen channels.
Outbox = CapturingSender


AppFactory = Callable[..., tuple[Flask, SdkAuth]]


@pytest.fixture(params=sorted(BACKENDS))
def database_uri(request: pytest.FixtureRequest) -> str:
    return BACKENDS[request.param]


@pytest.fixture
def shared_database_uri(database_uri: str, tmp_path: Any) -> str:
    """A database several apps and threads really share (a file for SQLite)."""
    if database_uri.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return database_uri


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def make_app(database_uri: str, clock: FakeClock, outbox: Outbox) -> Iterator[AppFactory]:
    """Build ``(app, sdkauth)`` from a config dict; senders for sms/voice/whatsapp."""
    built: list[tuple[Flask, SQLAlchemy]] = []

    def factory(
        config: dict[str, Any] | None = None, *, reset_database: bool = True, **options: Any
    ) -> tuple[Flask, SdkAuth]:
        app = Flask(__name__)
        app.config.update(
            TESTING=True,
            SECRET_KEY="test-secret-key-of-enough-length-for-hs256",
            SQLALCHEMY_DATABASE_URI=database_uri,
        )
        app.config.update(config or {})
        db = SQLAlchemy()
        db.init_app(app)
        JWTManager(app)
        sdkauth = SdkAuth(db=db, clock=clock, **options)
        for channel_type in ("sms", "voice", "whatsapp"):
            sdkauth.add_channel_sender(channel_type, outbox)
        sdkauth.init_app(app)
        if reset_database:
            with app.app_context():
                db.drop_all()
                db.create_all()
        built.append((app, db))
        return app, sdkauth

    yield factory
    for app, db in built:
        with app.app_context():
            db.drop_all()
            db.engine.dispose()


@pytest.fixture
def app_and_sdkauth(make_app: AppFactory) -> tuple[Flask, SdkAuth]:
    return make_app()


@pytest.fixture
def app(app_and_sdkauth: tuple[Flask, SdkAuth]) -> Flask:
    return app_and_sdkauth[0]


@pytest.fixture
def sdkauth(app_and_sdkauth: tuple[Flask, SdkAuth]) -> SdkAuth:
    return app_and_sdkauth[1]


@pytest.fixture
def widget(app: Flask, sdkauth: SdkAuth) -> Any:
    """A built-in widget with sms, then voice."""
    with app.app_context():
        return sdkauth.create_widget("Demo", [Channel("sms"), Channel("voice")])


def bearer(app: Flask, sdkauth: SdkAuth, *widget_ids: uuid.UUID | str, **kwargs: Any) -> dict[str, str]:
    with app.app_context():
        return {"Authorization": f"Bearer {sdkauth.create_token(widget_ids, **kwargs)}"}


@pytest.fixture
def headers(app: Flask, sdkauth: SdkAuth, widget: Any) -> dict[str, str]:
    return bearer(app, sdkauth, widget.id)
