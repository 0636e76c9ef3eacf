"""The host app the benchmarks serve: flask-sdkauth as an integrator sets it up.

Configuration comes from the environment (the benchmark scripts set it):

``BENCH_DATABASE_URL``, ``BENCH_SECRET_KEY``
    the database and the key that signs widget tokens and hashes codes;
``BENCH_NOTIFIER_URL``
    ``SDKAUTH_NOTIFIER_URL`` (default ``memory://``);
``BENCH_LONG_POLLING_TIMEOUT``, ``BENCH_LONG_POLLING_INTERVAL``
    the long-poll settings (defaults 120 and 60 seconds, so that a waiter wakes up
    only when notified).

Two things here exist for the benchmarks only and are not part of the package:

- every launch sends the fixed code ``123456``: ``flask_sdkauth.launch.generate_code``
  is replaced in this process, so the load client knows the right code without
  reading any message. Everything else in a launch (hashing, the sender call, the
  ``UPDATE``) runs as usual; the sender does nothing.
- ``GET /_bench/pid`` answers the worker's pid (for its memory) and
  ``GET /_bench/waiting`` how many long polls wait in that worker.

Serve it with ``gunicorn 'bench_app:create_app()'`` from this folder.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

import flask_sdkauth.launch
from flask_sdkauth import Message, SdkAuth

FIXED_CODE = "123456"


def _fixed_code(length: int, *, beautify: bool = False) -> str:
    return (FIXED_CODE * (length // len(FIXED_CODE) + 1))[:length]


flask_sdkauth.launch.generate_code = _fixed_code  # type: ignore[attr-defined]


def _deliver(message: Message) -> None:
    """A sender that accepts every message and does nothing."""


def build(config: dict[str, Any]) -> tuple[Flask, SQLAlchemy, SdkAuth]:
    app = Flask("bench_app")
    app.config.update(config)
    db = SQLAlchemy()
    jwt = JWTManager()
    sdkauth = SdkAuth(db=db)
    sdkauth.add_channel_sender("sms", _deliver)
    db.init_app(app)
    jwt.init_app(app)
    sdkauth.init_app(app)

    @app.get("/_bench/pid")
    def bench_pid() -> dict[str, Any]:
        return {"pid": os.getpid(), "package": os.path.dirname(flask_sdkauth.__file__)}

    @app.get("/_bench/waiting")
    def bench_waiting() -> dict[str, int]:
        return {"waiting": sdkauth.engine.notifier.waiting}  # type: ignore[attr-defined]

    return app, db, sdkauth


def config_from_env() -> dict[str, Any]:
    return {
        "SECRET_KEY": os.environ["BENCH_SECRET_KEY"],
        "SQLALCHEMY_DATABASE_URI": os.environ["BENCH_DATABASE_URL"],
        "SDKAUTH_NOTIFIER_URL": os.environ.get("BENCH_NOTIFIER_URL", "memory://"),
        "SDKAUTH_LONG_POLLING_TIMEOUT": float(
            os.environ.get("BENCH_LONG_POLLING_TIMEOUT", "120")
        ),
        "SDKAUTH_LONG_POLLING_INTERVAL": float(
            os.environ.get("BENCH_LONG_POLLING_INTERVAL", "60")
        ),
    }


def create_app() -> Flask:
    app, _, sdkauth = build(config_from_env())
    with app.app_context():
        notifier = sdkauth.engine.notifier
        # With Redis, be listening before the first long poll arrives.
        if hasattr(notifier, "wait_until_subscribed") and not notifier.wait_until_subscribed(10):
            raise RuntimeError("could not subscribe to Redis")
    return app
