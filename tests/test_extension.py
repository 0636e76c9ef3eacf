"""SdkAuth setup: init_app rules, several apps, config defaults, hooks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

from flask_sdkauth import Channel, SdkAuth
from flask_sdkauth.config import DEFAULT_CONFIG

from .conftest import bearer

DOCS = Path(__file__).parent.parent / "docs"


def _bare_app(**config):
    app = Flask(__name__)
    app.config.update({"SECRET_KEY": "k" * 32, "SQLALCHEMY_DATABASE_URI": "sqlite://", **config})
    return app


def test_second_init_app_on_the_same_app_is_refused():
    app = _bare_app()
    db = SQLAlchemy(app)
    JWTManager(app)
    sdkauth = SdkAuth(app, db=db)
    with pytest.raises(RuntimeError, match="already registered"):
        sdkauth.init_app(app)
    with pytest.raises(RuntimeError, match="already registered"):
        SdkAuth(app, db=db)


@pytest.mark.parametrize("missing", ["db", "jwt"])
def test_init_app_names_the_missing_setup_step(missing):
    app = _bare_app()
    db = SQLAlchemy()
    if missing != "db":
        db.init_app(app)
    if missing != "jwt":
        JWTManager(app)
    with pytest.raises(RuntimeError, match=f"{missing}.init_app"):
        SdkAuth(db=db).init_app(app)


def test_a_key_for_codes_is_required():
    app = _bare_app(SECRET_KEY=None)
    db = SQLAlchemy(app)
    JWTManager(app)
    with pytest.raises(RuntimeError, match="SDKAUTH_CODE_SECRET"):
        SdkAuth(app, db=db)


@pytest.mark.parametrize(
    "key, value",
    [
        ("SDKAUTH_TOKEN_EXPIRES", 0),
        ("SDKAUTH_TOKEN_EXPIRES", "3600"),
        ("SDKAUTH_MAX_BODY_SIZE", -1),
        ("SDKAUTH_URL_PREFIX", None),
    ],
)
def test_bad_config_values_fail_at_init(key, value):
    app = _bare_app(**{key: value})
    db = SQLAlchemy(app)
    JWTManager(app)
    with pytest.raises((TypeError, ValueError), match=key):
        SdkAuth(app, db=db)


def test_defaults_are_applied_without_overriding_the_host():
    app = _bare_app(SDKAUTH_URL_PREFIX="/otp")
    db = SQLAlchemy(app)
    JWTManager(app)
    SdkAuth(app, db=db)
    assert app.config["SDKAUTH_URL_PREFIX"] == "/otp"
    for key, value in DEFAULT_CONFIG.items():
        if key != "SDKAUTH_URL_PREFIX":
            assert app.config[key] == value


def test_code_secret_takes_precedence_over_secret_key(make_app):
    app, sdkauth = make_app({"SDKAUTH_CODE_SECRET": "codes-only"})
    with app.app_context():
        assert sdkauth.settings.code_secret == b"codes-only"


def test_one_extension_serves_several_apps_with_their_own_config(make_app, outbox):
    first, sdkauth = make_app({"SDKAUTH_URL_PREFIX": "/one"})
    db = sdkauth.db
    second = Flask(__name__)
    second.config.update(
        SECRET_KEY="another-secret-another-secret-1234",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        SDKAUTH_URL_PREFIX="/two",
    )
    db.init_app(second)
    JWTManager(second)
    sdkauth.init_app(second)
    with second.app_context():
        db.create_all()
        assert sdkauth.settings.url_prefix == "/two"
    with first.app_context():
        assert sdkauth.settings.url_prefix == "/one"

    for app, prefix in ((first, "/one"), (second, "/two")):
        with app.app_context():
            widget = sdkauth.create_widget("W", [Channel("sms")])
        response = app.test_client().post(
            prefix, json={"widgetId": str(widget.id), "recipient": "+79991234567"},
            headers=bearer(app, sdkauth, widget.id),
        )
        assert response.status_code == 201
    # A token from one app's key is worthless on the other.
    with first.app_context():
        token = sdkauth.create_token([widget.id])
    response = second.test_client().post(
        "/two", json={"widgetId": str(widget.id), "recipient": "+79991234567"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401


def test_engine_outside_an_initialised_app_explains_itself():
    app = _bare_app()
    sdkauth = SdkAuth(db=SQLAlchemy())
    with app.app_context(), pytest.raises(RuntimeError, match="init_app"):
        _ = sdkauth.engine


def test_hook_decorators_return_the_callback(sdkauth):
    def loader(widget_id):
        return None

    def sender(message):
        pass

    def blocklist(recipient, widget):
        return False

    def client_ip():
        return "1.2.3.4"

    assert sdkauth.widget_loader(loader) is loader
    assert sdkauth.channel_sender("viber")(sender) is sender
    assert sdkauth.recipient_in_blocklist_loader(blocklist) is blocklist
    assert sdkauth.client_ip_loader(client_ip) is client_ip
    assert sdkauth.hooks.channel_senders["viber"] is sender


def test_unknown_channel_type_for_a_sender_is_refused(sdkauth):
    with pytest.raises(ValueError, match="unknown channel type 'fax'"):
        sdkauth.add_channel_sender("fax", print)


def test_tables_are_created_by_the_hosts_create_all(app, sdkauth):
    import sqlalchemy as sa

    with app.app_context():
        names = set(sa.inspect(sdkauth.db.engine).get_table_names())
    assert {"sdkauth_widget", "sdkauth_session"} <= names


def test_every_config_key_is_documented():
    text = (DOCS / "configuration.rst").read_text("utf-8")
    documented = set(re.findall(r"SDKAUTH_[A-Z_]+", text))
    assert set(DEFAULT_CONFIG) <= documented


def test_disabled_operations_answer_404(make_app, outbox):
    from .flow import RECIPIENT, WidgetClient, started

    app, sdkauth = make_app({"SDKAUTH_DISABLED_OPERATIONS": ["complete", "checkStatusAndComplete"]})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = started(api, widget.id)
    api.check_code(request_id, outbox.last.code)
    from .spec import error_body

    # The contract's shape, not werkzeug's page.
    for response in (api.complete(request_id), api.check_status_and_complete(request_id)):
        assert response.status_code == 404
        assert response.data == error_body("RequestNotFoundException")
    # The backend's Python API still completes the session, exactly once.
    with app.app_context():
        assert sdkauth.check_status_and_complete(request_id, RECIPIENT) is True


@pytest.mark.parametrize("value", ["complete", ["completed"], [1]])
def test_disabled_operations_are_checked(value):
    app = _bare_app(SDKAUTH_DISABLED_OPERATIONS=value)
    db = SQLAlchemy(app)
    JWTManager(app)
    with pytest.raises((TypeError, ValueError), match="SDKAUTH_DISABLED_OPERATIONS"):
        SdkAuth(app, db=db)


def test_every_route_has_an_operation_id(app):
    from flask_sdkauth.config import OPERATION_IDS
    from flask_sdkauth.views import ENDPOINT_OPERATIONS

    endpoints = {
        rule.endpoint.rpartition(".")[2]
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("sdkauth.") and rule.endpoint != "sdkauth.static"
    }
    assert endpoints == set(ENDPOINT_OPERATIONS)
    assert set(ENDPOINT_OPERATIONS.values()) == OPERATION_IDS


def _host(prefix: str = "") -> tuple[Flask, SQLAlchemy]:
    app = Flask("host")
    app.config.update(
        TESTING=True,
        SECRET_KEY="test-secret-key-of-enough-length-for-hs256",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        SDKAUTH_URL_PREFIX=prefix,
    )
    db = SQLAlchemy(app)
    JWTManager(app)
    return app, db


def test_a_host_route_registered_first_that_shadows_ours_fails_init_app():
    from flask_sdkauth.shadowing import ShadowedRouteError

    app, db = _host()

    @app.post("/")
    def host_form():
        return "the host's"

    with pytest.raises(ShadowedRouteError) as caught:
        SdkAuth(app, db=db)
    message = str(caught.value)
    assert "'/' (endpoint 'host_form') answers POST /" in message
    assert "SDKAUTH_URL_PREFIX" in message


def test_a_host_route_registered_later_does_not_take_our_requests():
    app, db = _host()
    SdkAuth(app, db=db)

    @app.post("/")
    def host_form():
        return "the host's"

    # The rule registered first wins a tie: ours answers (401: no token).
    assert app.test_client().post("/", json={}).status_code == 401


def test_under_a_prefix_the_host_keeps_its_routes():
    app, db = _host(prefix="/auth")

    @app.post("/")
    def host_form():
        return "the host's"

    SdkAuth(app, db=db)
    client = app.test_client()
    assert client.post("/").data == b"the host's"
    assert client.post("/auth/", json={}).status_code == 401  # ours, behind the token


def test_the_same_path_with_another_method_is_no_shadow():
    app, db = _host()

    @app.get("/")
    def home():
        return "home"

    SdkAuth(app, db=db)
    assert app.test_client().get("/").data == b"home"
