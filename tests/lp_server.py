"""A minimal host app served in a subprocess by the multi-process long-poll test.

Configuration comes from the environment: LP_DATABASE_URL, LP_SECRET_KEY,
LP_NOTIFIER_URL. Usage: python -m tests.lp_server PORT
"""

from __future__ import annotations

import os
import sys

from flask import Flask
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy
from werkzeug.serving import run_simple

from flask_sdkauth import SdkAuth


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ["LP_SECRET_KEY"],
        SQLALCHEMY_DATABASE_URI=os.environ["LP_DATABASE_URL"],
        SDKAUTH_NOTIFIER_URL=os.environ["LP_NOTIFIER_URL"],
        SDKAUTH_LONG_POLLING_TIMEOUT=10,
        SDKAUTH_LONG_POLLING_INTERVAL=60,  # only a notification can wake a waiter
    )
    db = SQLAlchemy(app)
    JWTManager(app)
    sdkauth = SdkAuth(app, db=db)
    sdkauth.add_channel_sender("sms", lambda message: None)
    with app.app_context():
        notifier = sdkauth.engine.notifier
        if not notifier.wait_until_subscribed(10):
            raise SystemExit("could not subscribe to Redis")
    return app


if __name__ == "__main__":
    run_simple("127.0.0.1", int(sys.argv[1]), create_app(), threaded=True)
