"""The host app a real Celery worker runs in the worker tests.

Started as ``python -m celery -A tests.celery_worker worker …``, it builds the
Flask app with ``flask_sdkauth.dispatchers.celery.celery_init_app`` (Flask's
"Background Tasks with Celery" pattern), with ``SDKAUTH_DISPATCHER = "celery"`` and senders of its
own. Configuration comes from the environment:

- ``CW_DATABASE_URL``, ``CW_SECRET_KEY``, ``CW_NOTIFIER_URL``: shared with the test;
- ``CW_BROKER_URL`` and ``CW_QUEUE``: where the launches are queued;
- ``CW_OUTBOX``: a file the senders append one JSON line to when they start and
  when they finish, code included, for the test to read;
- ``CW_SENDERS``: JSON, channel type to ``{"sleep": seconds}``;
- ``CW_SENDER_TIMEOUT``, ``CW_LAUNCH_DEADLINE`` (the beat schedule sweeps every
  half of it, when the worker runs with ``--beat``).
"""

from __future__ import annotations

import json
import os
import time

from flask import Flask
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

from flask_sdkauth import Message, SdkAuth
from flask_sdkauth.dispatchers.celery import celery_init_app


def record(event: str, message: Message) -> None:
    line = json.dumps(
        {
            "event": event,
            "id": message.id,
            "request_id": str(message.request_id),
            "channel": message.channel,
            "code": message.code,
            "pid": os.getpid(),
        }
    )
    with open(os.environ["CW_OUTBOX"], "a", encoding="utf-8") as outbox:
        outbox.write(line + "\n")


def sender(message: Message) -> None:
    record("start", message)
    behaviour = json.loads(os.environ.get("CW_SENDERS", "{}")).get(message.channel, {})
    time.sleep(behaviour.get("sleep", 0))
    record("done", message)


def create_app() -> Flask:
    app = Flask("celery_worker")
    app.config.update(
        SECRET_KEY=os.environ["CW_SECRET_KEY"],
        SQLALCHEMY_DATABASE_URI=os.environ["CW_DATABASE_URL"],
        SDKAUTH_NOTIFIER_URL=os.environ["CW_NOTIFIER_URL"],
        SDKAUTH_DISPATCHER="celery",
        SDKAUTH_SENDER_TIMEOUT=float(os.environ.get("CW_SENDER_TIMEOUT", "10")),
        SDKAUTH_LAUNCH_DEADLINE=float(os.environ.get("CW_LAUNCH_DEADLINE", "60")),
        CELERY={
            "broker_url": os.environ["CW_BROKER_URL"],
            "task_default_queue": os.environ["CW_QUEUE"],
            "task_ignore_result": True,
        },
    )
    db = SQLAlchemy(app)
    JWTManager(app)
    sdkauth = SdkAuth(app, db=db)
    for channel_type in ("sms", "voice"):
        sdkauth.add_channel_sender(channel_type, sender)
    celery_init_app(app)
    return app


flask_app = create_app()
celery_app = flask_app.extensions["celery"]
