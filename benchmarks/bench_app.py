"""The host app the benchmarks serve: flask-sdkauth as an integrator sets it up.

Configuration comes from the environment (the benchmark scripts set it):

``BENCH_DATABASE_URL``, ``BENCH_SECRET_KEY``
    the database and the key that signs widget tokens and hashes codes;
``BENCH_NOTIFIER_URL``
    ``SDKAUTH_NOTIFIER_URL`` (default ``memory://``);
``BENCH_LONG_POLLING_TIMEOUT``, ``BENCH_LONG_POLLING_INTERVAL``
    the long-poll settings (defaults 120 and 60 seconds, so that a waiter wakes up
    only when notified).

``BENCH_DISPATCHER``, ``BENCH_BROKER_URL``, ``BENCH_CELERY_QUEUE``
    ``SDKAUTH_DISPATCHER``: ``inline`` (the default) or ``celery``; with
    ``celery``, the Celery app is set up as Flask's "Background Tasks with Celery"
    shows (a ``FlaskTask`` whose ``__call__`` enters ``app.app_context()``, at
    ``app.extensions["celery"]``), with that broker and default queue. The worker
    of ``delivery_latency.py`` runs the same app (``bench_worker.py``);
``BENCH_SENDER_SLEEPS``
    JSON, widget id to seconds: the sender sleeps that long for that widget's
    messages (default: no sleep), standing for a gateway's latency;

``BENCH_PROTECTIONS``, ``BENCH_RATELIMIT_STORAGE_URL``
    abuse protection: ``off`` (the default) switches the rate limits and daily
    caps off (see :data:`NO_ABUSE_PROTECTION`); ``memory`` or ``redis`` keeps them,
    with the values of :data:`bench_limits.LIMITS` (the defaults, with the amounts
    of the limits every request shares raised), counted in
    ``SDKAUTH_RATELIMIT_STORAGE_URL`` = ``BENCH_RATELIMIT_STORAGE_URL``.

Two things here exist for the benchmarks only and are not part of the package:

- every launch sends the fixed code ``123456``: ``flask_sdkauth.launch.generate_code``
  is replaced in this process, so the load client knows the right code without
  reading any message. Everything else in a launch (hashing, the sender call, the
  ``UPDATE``) runs as usual; the sender does nothing (but sleep, with
  ``BENCH_SENDER_SLEEPS``). Without sleeps it is registered ``bounded=True``
  (called in the request's thread, see ``SdkAuth.add_channel_sender``), as a host
  registers a sender that only puts the message on a queue.
- ``GET /_bench/pid`` answers the worker's pid (for its memory),
  ``GET /_bench/waiting`` how many long polls wait in that worker and
  ``GET /_bench/gc`` its full garbage collections and their pauses.

Serve it with ``gunicorn 'bench_app:create_app()'`` from this folder.
"""

from __future__ import annotations

import gc
import json
import os
import time
from typing import Any

from bench_limits import LIMITS, protections_from_env
from flask import Flask, current_app, request
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

import flask_sdkauth.launch
from flask_sdkauth import Channel, Message, SdkAuth

FIXED_CODE = "123456"

#: The load comes from one address, and the minimal handler it is compared with
#: has no abuse protection unless ``BENCH_PROTECTIONS`` asks for it: by default the
#: rate limits and daily caps are switched off (``None`` turns each one off;
#: versions without these settings ignore them).
NO_ABUSE_PROTECTION: dict[str, Any] = {
    "SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT": None,
    "SDKAUTH_RATELIMIT_SEND_PER_IP": None,
    "SDKAUTH_RATELIMIT_SEND_PER_WIDGET": None,
    "SDKAUTH_RATELIMIT_CHECK_CODE_PER_SESSION": None,
    "SDKAUTH_RATELIMIT_CHECK_CODE_PER_IP": None,
    "SDKAUTH_RATELIMIT_RESEND_PER_SESSION": None,
    "SDKAUTH_RATELIMIT_RESEND_PER_IP": None,
    "SDKAUTH_RATELIMIT_FAILED_CODES_PER_RECIPIENT": None,
    "SDKAUTH_DAILY_SEND_CAP_PER_WIDGET": None,
    "SDKAUTH_DAILY_SEND_CAP_PER_COUNTRY": None,
}


def _fixed_code(length: int, *, beautify: bool = False) -> str:
    return (FIXED_CODE * (length // len(FIXED_CODE) + 1))[:length]


flask_sdkauth.launch.generate_code = _fixed_code  # type: ignore[attr-defined]


#: Full (generation 2) garbage collections of this process and their pauses.
_FULL_GC: dict[str, float] = {"count": 0, "seconds": 0.0, "longest": 0.0, "started": 0.0}


def _time_full_gc(phase: str, info: dict[str, Any]) -> None:
    if info["generation"] != 2:
        return
    now = time.perf_counter()
    if phase == "start":
        _FULL_GC["started"] = now
    else:
        pause = now - _FULL_GC["started"]
        _FULL_GC["count"] += 1
        _FULL_GC["seconds"] += pause
        _FULL_GC["longest"] = max(_FULL_GC["longest"], pause)


gc.callbacks.append(_time_full_gc)


def _deliver(message: Message) -> None:
    """A sender that accepts every message and does nothing, after sleeping
    ``BENCH_SENDER_SLEEPS[widget id]`` seconds, if any."""
    delay = current_app.config.get("BENCH_SENDER_SLEEPS", {}).get(str(message.widget_id))
    if delay:
        time.sleep(delay)


def build(config: dict[str, Any]) -> tuple[Flask, SQLAlchemy, SdkAuth]:
    app = Flask("bench_app")
    app.config.update(NO_ABUSE_PROTECTION)
    app.config.update(config)
    db = SQLAlchemy()
    jwt = JWTManager()
    sdkauth = SdkAuth(db=db)
    # A sender that returns at once is registered as bounded, as a host registers
    # one that only enqueues: it runs in the request's thread. One that sleeps
    # stands for a gateway, whose calls run in sender threads under the timeout.
    sdkauth.add_channel_sender(
        "sms", _deliver, bounded=not config.get("BENCH_SENDER_SLEEPS")
    )
    db.init_app(app)
    jwt.init_app(app)
    sdkauth.init_app(app)
    if app.config["SDKAUTH_DISPATCHER"] == "celery":
        from flask_sdkauth.dispatchers.celery import celery_init_app

        celery_init_app(app)

    @app.get("/_bench/pid")
    def bench_pid() -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "package": os.path.dirname(flask_sdkauth.__file__),
            "protections": protections_from_env()[0],
            "dispatcher": app.config.get("SDKAUTH_DISPATCHER", "inline"),
        }

    @app.get("/_bench/waiting")
    def bench_waiting() -> dict[str, int]:
        return {"waiting": sdkauth.engine.notifier.waiting}  # type: ignore[attr-defined]

    @app.get("/_bench/gc")
    def bench_gc() -> dict[str, float]:
        """Full collections so far; ``?reset=1`` starts counting again."""
        answer = {key: value for key, value in _FULL_GC.items() if key != "started"}
        if request.args.get("reset"):
            _FULL_GC.update(count=0, seconds=0.0, longest=0.0)
        return answer

    return app, db, sdkauth


def config_from_env() -> dict[str, Any]:
    mode, storage_url = protections_from_env()
    protections: dict[str, Any] = {}
    if mode != "off":
        protections = {**LIMITS, "SDKAUTH_RATELIMIT_STORAGE_URL": storage_url}
    dispatcher: dict[str, Any] = {}
    if os.environ.get("BENCH_DISPATCHER", "inline") == "celery":
        dispatcher = {
            "SDKAUTH_DISPATCHER": "celery",
            "CELERY": {
                "broker_url": os.environ["BENCH_BROKER_URL"],
                "task_default_queue": os.environ["BENCH_CELERY_QUEUE"],
                "task_ignore_result": True,
                # No pidbox: the benchmark's Redis keys stay those of its queue.
                "worker_enable_remote_control": False,
            },
        }
    return {
        **protections,
        **dispatcher,
        "BENCH_SENDER_SLEEPS": json.loads(os.environ.get("BENCH_SENDER_SLEEPS", "{}")),
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


def prepare_database(url: str, secret: str) -> tuple[str, str]:
    """Create the extension's tables afresh with one widget; return its id and a token."""
    widgets, token = prepare_widgets(url, secret, ["Benchmark"])
    return widgets["Benchmark"], token


def prepare_widgets(url: str, secret: str, names: list[str]) -> tuple[dict[str, str], str]:
    """Create the extension's tables afresh with one ``sms`` widget per name; return
    their ids by name and a token for all of them."""
    app, db, sdkauth = build({"SECRET_KEY": secret, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        # Dropped and created again, so that they match the installed version.
        db.drop_all()
        db.create_all()
        widgets = {name: sdkauth.create_widget(name, [Channel("sms")]) for name in names}
        token = sdkauth.create_token([widget.id for widget in widgets.values()],
                                     expires_in=3600)
        db.engine.dispose()
    return {name: str(widget.id) for name, widget in widgets.items()}, token
