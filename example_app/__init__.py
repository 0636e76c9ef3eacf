"""A host app that uses flask-sdkauth the way an integrator would.

Run it with ``make run`` (or ``flask --app example_app run``) and open
http://127.0.0.1:5000: the home page embeds the browser widget. The app keeps a
SQLite database in its instance folder (``DATABASE_URL`` overrides it), creates two
demo widgets on first start (codes by SMS then voice; and a codeless push at
``/?demo=codeless``) and "delivers" codes by logging them (``ConsoleSender``).
``/formSubmit`` is the host's own final step: it trusts the user only after
``sdkauth.check_status_and_complete``.

For trying the API by hand: ``flask --app example_app sdkauth token <WIDGET_ID>``
prints a token, ``/info`` lists the demo widget ids, ``/docs/swagger`` shows the
OpenAPI document.

Development settings (``FLASK_``-prefixed environment variables work too):
``DEV_FAILING_CHANNELS`` (a list of channel types whose dev sender fails, to see
the fallback) and ``DEMO_CHANNEL_SETTINGS`` (channel settings for the demo widgets,
applied when they are first created).

Launches on Celery: set ``FLASK_SDKAUTH_DISPATCHER=celery`` (and, for a broker
other than the local Redis, ``FLASK_CELERY__broker_url``) for both the web app and
a worker started with ``celery -A example_app.worker worker --beat`` (see
``docs/deployment.rst``). It needs ``pip install 'flask-sdkauth[celery]'``.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, current_app, redirect, render_template, request, session, url_for
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

from flask_sdkauth import CHANNEL_TYPES, Channel, Message, SdkAuth, Widget
from flask_sdkauth.senders.console import ConsoleSender

logger = logging.getLogger("example_app")

db = SQLAlchemy()
jwt = JWTManager()
sdkauth = SdkAuth(db=db)

DEMO_WIDGETS = {
    "code": ("Demo widget", ("sms", "voice")),
    "codeless": ("Codeless demo", ("sim_push",)),
}


class GatewayDown(RuntimeError):
    """What the development sender raises for the channels in DEV_FAILING_CHANNELS."""


_console = ConsoleSender("example_app")


def log_message(message: Message) -> None:
    """Development sender: writes the code (or the confirmation link) to the log."""
    if message.channel in current_app.config["DEV_FAILING_CHANNELS"]:
        raise GatewayDown(f"the {message.channel} gateway is down (DEV_FAILING_CHANNELS)")
    _console(message)


for channel_type in sorted(CHANNEL_TYPES):
    sdkauth.add_channel_sender(channel_type, log_message)


def create_app(config: dict[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    app = Flask(__name__, instance_path=instance_path)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(
        SECRET_KEY=_instance_secret(app.instance_path),
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "DATABASE_URL", f"sqlite:///{Path(app.instance_path) / 'example.db'}"
        ),
        # The extension's own OpenAPI document, with Swagger UI's files served
        # from swagger-ui-bundle (no CDN: it works offline).
        SDKAUTH_API_TITLE="flask-sdkauth example",
        SDKAUTH_OPENAPI_URL_PREFIX="/docs",
        SDKAUTH_OPENAPI_SWAGGER_UI_PATH="/swagger",
        # Only a backend completes sessions, never the browser: this app's own
        # backend (below) through the Python API, another one over HTTP with a
        # backend key (`flask sdkauth key create`); widget tokens get 403 there.
        SDKAUTH_COMPLETION_NEEDS_KEY=True,
        DEV_FAILING_CHANNELS=[],
        DEMO_CHANNEL_SETTINGS={},
        CELERY={"broker_url": "redis://127.0.0.1:6379/0", "task_ignore_result": True},
    )
    app.config.from_prefixed_env()
    app.config.update(config or {})
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    jwt.init_app(app)
    sdkauth.init_app(app)
    if app.config["SDKAUTH_DISPATCHER"] == "celery":
        from flask_sdkauth.dispatchers.celery import celery_init_app

        celery_init_app(app)

    with app.app_context():
        db.create_all()
        widgets = {demo: _demo_widget(demo) for demo in DEMO_WIDGETS}
    # `flask run` reads the same variables, which `make run HOST=… PORT=…` sets.
    address = "http://{}:{}".format(
        os.environ.get("FLASK_RUN_HOST", "127.0.0.1"), os.environ.get("FLASK_RUN_PORT", "5000")
    )
    logger.warning(
        "Demo widget id: %s — open %s, or get a token with: "
        "flask --app example_app sdkauth token %s",
        widgets["code"].id,
        address,
        widgets["code"].id,
    )

    @app.get("/")
    def home() -> str:
        widget = widgets.get(request.args.get("demo", "code"), widgets["code"])
        token = sdkauth.create_token([widget.id], expires_in=900)
        return render_template(
            "home.html", widget=widget, token=token, phone=session.get("phone")
        )

    @app.get("/sigma")
    def sigma_page() -> str:
        """A page written for SIGMA's widget, with its script tag pointing here."""
        return render_template("sigma.html", widget=widgets["code"])

    @app.get("/widgetToken")
    def widget_token() -> dict[str, str]:
        """For pages that pass token_url= to the widget instead of a token."""
        return {"token": sdkauth.create_token([w.id for w in widgets.values()], expires_in=900)}

    @app.post("/formSubmit")
    def form_submit() -> tuple[dict[str, Any], int]:
        """The host's own final step: trust only the server-side check."""
        data = request.get_json(silent=True) or {}
        recipient = str(data.get("recipient", ""))
        request_id = str(data.get("requestId", ""))
        signed_in = sdkauth.check_status_and_complete(request_id, recipient)
        if signed_in:
            session["phone"] = sdkauth.verified_number(request_id)
        return {"signedIn": signed_in}, 200 if signed_in else 400

    @app.post("/signOut")
    def sign_out() -> Any:
        session.pop("phone", None)
        return redirect(url_for("home"))

    @app.get("/info")
    def info() -> dict[str, Any]:
        return {
            "demoWidgetId": str(widgets["code"].id),
            "codelessWidgetId": str(widgets["codeless"].id),
            "token": f"flask --app example_app sdkauth token {widgets['code'].id}",
            "openapi": url_for("sdkauth-api-docs.openapi_json"),
            "swaggerUi": url_for("sdkauth-api-docs.openapi_swagger_ui"),
        }

    return app


def _demo_widget(demo: str) -> Widget:
    name, channel_types = DEMO_WIDGETS[demo]
    for widget in sdkauth.engine.widgets.all():
        if widget.name == name:
            return widget
    settings = current_app.config["DEMO_CHANNEL_SETTINGS"] or None
    channels = [Channel(channel_type, settings=settings) for channel_type in channel_types]
    return sdkauth.create_widget(name, channels)


def _instance_secret(instance_path: str) -> str:
    """A random key kept in the instance folder, so restarts keep tokens valid."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
