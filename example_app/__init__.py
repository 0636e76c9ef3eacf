"""A host app that uses flask-sdkauth the way an integrator would.

Run it with ``make run`` (or ``flask --app example_app run``). It keeps a SQLite
database in its instance folder (``DATABASE_URL`` overrides it), creates a demo
widget on first start and prints its id, and "delivers" codes by logging them.
Get a token for the demo widget with ``flask --app example_app sdkauth token <ID>``.
The API's OpenAPI document is served at ``/docs/openapi.json``, Swagger UI at
``/docs/swagger``.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from flask import Flask, request, url_for
from flask_jwt_extended import JWTManager
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from flask_sdkauth import CHANNEL_TYPES, Channel, Message, SdkAuth

logger = logging.getLogger("example_app")

db = SQLAlchemy()
jwt = JWTManager()
api = Api()
sdkauth = SdkAuth(db=db, api=api)

DEMO_WIDGET_NAME = "Demo widget"


def log_message(message: Message) -> None:
    """Development sender: writes the code (or the confirmation link) to the log."""
    text = message.text
    if message.confirmation_token is not None:
        text += f" — open {sdkauth.confirmation_url(message)}"
    logger.warning(
        "[dev sender] %s to %s (session %s): %s",
        message.channel,
        message.recipient,
        message.request_id,
        text,
    )


for channel_type in sorted(CHANNEL_TYPES):
    sdkauth.add_channel_sender(channel_type, log_message)


def create_app(config: dict | None = None, instance_path: str | None = None) -> Flask:
    app = Flask(__name__, instance_path=instance_path)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(
        SECRET_KEY=_instance_secret(app.instance_path),
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "DATABASE_URL", f"sqlite:///{Path(app.instance_path) / 'example.db'}"
        ),
        API_TITLE="flask-sdkauth example",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/docs",
        OPENAPI_SWAGGER_UI_PATH="/swagger",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
    )
    app.config.from_prefixed_env()
    app.config.update(config or {})
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    jwt.init_app(app)
    api.init_app(app)
    sdkauth.init_app(app)

    with app.app_context():
        db.create_all()
        widget = _demo_widget()
    logger.warning(
        "Demo widget id: %s — get a token with: flask --app example_app sdkauth token %s",
        widget.id,
        widget.id,
    )

    @app.post("/formSubmit")
    def form_submit() -> tuple[dict, int]:
        """The host's own final step: trust only the server-side check."""
        data = request.get_json(silent=True) or {}
        signed_in = sdkauth.check_status_and_complete(
            str(data.get("requestId", "")), str(data.get("recipient", ""))
        )
        return {"signedIn": signed_in}, 200 if signed_in else 400

    @app.get("/")
    def home() -> dict:
        return {
            "demoWidgetId": str(widget.id),
            "send": "POST / with {widgetId, recipient} and Authorization: Bearer <token>",
            "formSubmit": "POST /formSubmit with {requestId, recipient} once confirmed",
            "token": f"flask --app example_app sdkauth token {widget.id}",
            "openapi": url_for("api-docs.openapi_json"),
            "swaggerUi": url_for("api-docs.openapi_swagger_ui"),
        }

    return app


def _demo_widget():
    for widget in sdkauth.engine.widgets.all():
        if widget.name == DEMO_WIDGET_NAME:
            return widget
    return sdkauth.create_widget(DEMO_WIDGET_NAME, [Channel("sms"), Channel("voice")])


def _instance_secret(instance_path: str) -> str:
    """A random key kept in the instance folder, so restarts keep tokens valid."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
