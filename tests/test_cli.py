"""flask sdkauth …: tables, built-in widgets and tokens."""

from __future__ import annotations

import uuid

import jwt
import pytest
import sqlalchemy as sa
from flask import Flask
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

from flask_sdkauth import SdkAuth

from .conftest import bearer
from .flow import WidgetClient


def _run(app, *args):
    result = app.test_cli_runner().invoke(args=["sdkauth", *args])
    return result


def test_widget_lifecycle_through_the_cli(app, sdkauth):
    created = _run(app, "widget", "create", "Shop", "--channel", "sms", "--channel", 'voice:{"lifetime": 120}')
    assert created.exit_code == 0, created.output
    widget_id = uuid.UUID(created.output.strip())
    with app.app_context():
        widget = sdkauth.engine.find_widget(widget_id)
    assert widget.name == "Shop"
    assert [c.type for c in widget.channels] == ["sms", "voice"]
    assert widget.channels[1].settings.lifetime == 120

    listing = _run(app, "widget", "list")
    assert str(widget_id) in listing.output and "active" in listing.output and "[sms,voice]" in listing.output

    for command, field, value in [
        ("block", "is_blocked", True),
        ("unblock", "is_blocked", False),
        ("deactivate", "is_active", False),
        ("activate", "is_active", True),
    ]:
        result = _run(app, "widget", command, str(widget_id))
        assert result.exit_code == 0, result.output
        with app.app_context():
            assert getattr(sdkauth.engine.find_widget(widget_id), field) is value


def test_create_inactive_and_blocked(app, sdkauth):
    result = _run(app, "widget", "create", "Off", "--inactive", "--blocked")
    with app.app_context():
        widget = sdkauth.engine.find_widget(uuid.UUID(result.output.strip()))
    assert widget.is_active is False and widget.is_blocked is True and widget.channels == ()


def test_bad_channel_option_is_a_usage_error(app, sdkauth):
    for value in ["fax", "sms:{bad json", 'sms:{"lifetime": 0}', 'sms:{"nope": 1}']:
        result = _run(app, "widget", "create", "W", "--channel", value)
        assert result.exit_code == 2, (value, result.output)


def test_flag_commands_on_an_unknown_widget_fail(app):
    result = _run(app, "widget", "block", str(uuid.uuid4()))
    assert result.exit_code == 1
    assert "no widget" in result.output


def test_token_command_prints_a_usable_token(app, sdkauth, widget, outbox):
    result = _run(app, "token", str(widget.id), "--expires-in", "60")
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60
    response = app.test_client().post(
        "/", json={"widgetId": str(widget.id), "recipient": "+79991234567"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201


def test_create_tables(make_app):
    app, sdkauth = make_app()
    with app.app_context():
        sdkauth.db.drop_all()
    result = _run(app, "create-tables")
    assert result.exit_code == 0, result.output
    with app.app_context():
        names = set(sa.inspect(sdkauth.db.engine).get_table_names())
    assert {"sdkauth_widget", "sdkauth_session"} <= names


def test_purge_deletes_sessions_past_retention(app, sdkauth, widget, clock):
    with app.app_context():
        old = sdkauth.send(widget.id, "+79991234567")
        clock.advance(3600)
        recent = sdkauth.send(widget.id, "+79991234567")
    clock.advance(7 * 24 * 3600 - 1800)

    result = _run(app, "purge")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Deleted 1 session(s)."
    with app.app_context():
        assert sdkauth.engine.sessions.get(old) is None
        assert sdkauth.engine.sessions.get(recent) is not None

    assert _run(app, "purge", "--older-than", "0").output.strip() == "Deleted 1 session(s)."
    with app.app_context():
        assert sdkauth.engine.sessions.get(recent) is None


def test_purge_keeps_live_sessions_until_their_lifetime_is_over(app, sdkauth, widget, clock):
    with app.app_context():
        request_id = sdkauth.send(widget.id, "+79991234567")
    clock.advance(1)
    assert _run(app, "purge", "--older-than", "0").output.strip() == "Deleted 0 session(s)."
    clock.advance(1799)  # SDKAUTH_SESSION_LIFETIME
    assert _run(app, "purge", "--older-than", "0").output.strip() == "Deleted 1 session(s)."
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    assert api.channel(request_id).json["type"] == "SessionNotFoundException"


def test_purge_deletes_finished_sessions_at_once(app, sdkauth, widget, outbox, clock):
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = api.send(widget.id).json["requestId"]
    api.check_code(request_id, outbox.last.code)
    with app.app_context():
        assert sdkauth.check_status_and_complete(request_id, "+79991234567") is True
    clock.advance(1)
    assert _run(app, "purge", "--older-than", "0").output.strip() == "Deleted 1 session(s)."


def test_create_with_allowed_regions(app, sdkauth):
    result = _run(app, "widget", "create", "RU", "--channel", "sms", "--region", "ru", "--region", "KZ")
    with app.app_context():
        widget = sdkauth.engine.find_widget(uuid.UUID(result.output.strip()))
    assert widget.allowed_regions == {"RU", "KZ"}


@pytest.mark.parametrize("args", [["stats"], ["purge"], ["session", "show", str(uuid.uuid4())]])
def test_an_unreachable_database_is_one_line_not_a_traceback(args):
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k" * 32,
        SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/closed",
    )
    JWTManager(app)
    SdkAuth(app, db=SQLAlchemy(app))
    result = app.test_cli_runner().invoke(args=["sdkauth", *args])
    assert result.exit_code == 1
    assert result.output.startswith("Error: NoConnectionException: ")
    assert "Traceback" not in result.output


def test_audit_hash_prints_the_records_hash_of_a_number(app, sdkauth):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["sdkauth", "audit-hash", "+7 (999) 123-45-67"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert result.output.strip() == sdkauth.audit_number_hash("+79991234567")
    assert len(result.output.strip()) == 32 and "9991234567" not in result.output
    refused = runner.invoke(args=["sdkauth", "audit-hash", "not a number"])
    assert refused.exit_code == 1 and refused.output.startswith("Error: ValidateError")
