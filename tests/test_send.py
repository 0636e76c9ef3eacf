"""POST / (send) through the HTTP API: every documented response."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from flask_sdkauth import Channel, Widget
from flask_sdkauth.codes import code_matches

from .conftest import bearer
from .spec import error_body


def _send(client, widget, headers, recipient="+79991234567", path="/"):
    return client.post(
        path, json={"widgetId": str(widget.id), "recipient": recipient}, headers=headers
    )


def _session(app, sdkauth, request_id):
    with app.app_context():
        return sdkauth.engine.sessions.get(uuid.UUID(str(request_id)))


def _session_count(app, sdkauth):
    table = sdkauth.tables.session
    with app.app_context(), sdkauth.db.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def test_created_session_is_stored_with_a_hashed_code(
    app, sdkauth, client, widget, headers, outbox, clock
):
    response = _send(client, widget, headers, recipient="+7 (999) 123-45-67")

    assert response.status_code == 201
    assert set(response.json) == {"requestId"}
    # The number as the session holds it, for the widget to show and hand on.
    assert response.headers["Sdkauth-Recipient"] == "+79991234567"
    request_id = uuid.UUID(response.json["requestId"])
    assert request_id.version == 4
    message = outbox.last
    assert message.request_id == request_id
    assert message.widget_id == widget.id
    assert message.recipient == "+79991234567"
    assert message.channel == "sms" and message.code_type == "code"
    assert len(message.code) == 6 and message.code.isdigit()
    assert message.code in message.text
    assert message.expires_at == clock.now + timedelta(seconds=300)

    session = _session(app, sdkauth, request_id)
    assert session.widget_id == widget.id
    assert session.recipient == "+79991234567"
    assert session.status == "sent"
    assert session.channel["type"] == "sms" and session.channel_index == 0
    assert session.remaining_attempts == 3
    assert session.code_expires_at == message.expires_at
    assert session.client_ip == "127.0.0.1"
    assert session.created_at == clock.now
    assert [a["outcome"] for a in session.history] == ["sent"]
    # Only a keyed hash is stored, and it verifies against the delivered code.
    assert message.code not in {str(value) for value in session.__dict__.values()}
    assert len(session.code_hash) == 64
    secret = app.config["SECRET_KEY"].encode()
    assert code_matches(secret, request_id, session.generation, message.code, session.code_hash)
    assert not code_matches(b"other key", request_id, session.generation, message.code, session.code_hash)


def test_flashcall_codes_default_to_four_digits(app, sdkauth, client, outbox):
    sdkauth.add_channel_sender("flashcall", outbox)
    with app.app_context():
        widget = sdkauth.create_widget("Calls", [Channel("flashcall")])
    response = _send(client, widget, bearer(app, sdkauth, widget.id))
    assert response.status_code == 201
    assert len(outbox.last.code) == 4


def test_codeless_channel_gets_a_confirmation_token_instead_of_a_code(app, sdkauth, client, outbox):
    sdkauth.add_channel_sender("sim_push", outbox)
    with app.app_context():
        widget = sdkauth.create_widget("Push", [Channel("sim_push")])
    response = _send(client, widget, bearer(app, sdkauth, widget.id))
    assert response.status_code == 201
    message = outbox.last
    assert message.code is None and message.code_type == "codeless"
    assert len(message.confirmation_token) >= 40
    session = _session(app, sdkauth, response.json["requestId"])
    assert session.code_hash and message.confirmation_token not in session.code_hash
    # Number matching: the widget shows one of the numbers the message offers.
    assert session.payload["matchNumber"] in message.choices and len(message.choices) == 3


def test_failing_sender_falls_back_to_the_next_channel(
    app, sdkauth, client, widget, headers, outbox
):
    outbox.failing["sms"] = RuntimeError("gateway down")

    response = _send(client, widget, headers)

    assert response.status_code == 201
    assert outbox.last.channel == "voice"
    session = _session(app, sdkauth, response.json["requestId"])
    assert session.channel["type"] == "voice" and session.channel_index == 1
    assert [(a["channel"], a["outcome"]) for a in session.history] == [
        ("sms", "failed"),
        ("voice", "sent"),
    ]
    assert session.history[0]["reason"] == "RuntimeError: gateway down"


def test_channel_without_sender_is_skipped(app, sdkauth, client, outbox):
    with app.app_context():
        widget = sdkauth.create_widget("Viber first", [Channel("viber"), Channel("sms")])
    response = _send(client, widget, bearer(app, sdkauth, widget.id))
    assert response.status_code == 201
    assert outbox.last.channel == "sms"
    session = _session(app, sdkauth, response.json["requestId"])
    assert [(a["channel"], a["outcome"]) for a in session.history] == [
        ("viber", "skipped"),
        ("sms", "sent"),
    ]


def test_no_channel_delivers_gives_400_and_the_attempt_is_recorded(
    app, sdkauth, client, widget, headers, outbox, caplog
):
    outbox.failing["sms"] = RuntimeError("gateway down")
    outbox.failing["voice"] = TimeoutError("no answer")

    response = _send(client, widget, headers)

    assert response.status_code == 400
    assert response.data == error_body("NoAvailableChannelsException")
    with app.app_context(), sdkauth.db.engine.connect() as connection:
        row = connection.execute(sa.select(sdkauth.tables.session)).one()
    assert row.state == "no_channels"
    assert [(a["channel"], a["outcome"], a["reason"]) for a in row.history] == [
        ("sms", "failed", "RuntimeError: gateway down"),
        ("voice", "failed", "TimeoutError: no answer"),
    ]
    assert "gateway down" in caplog.text


def test_widget_without_channels_gives_400(app, sdkauth, client):
    with app.app_context():
        widget = sdkauth.create_widget("Empty", [])
    response = _send(client, widget, bearer(app, sdkauth, widget.id))
    assert response.status_code == 400
    assert response.data == error_body("NoAvailableChannelsException")
    assert _session_count(app, sdkauth) == 1


def test_unknown_widget_gives_404(app, sdkauth, client):
    missing = Widget(id=uuid.uuid4(), name="missing")
    response = _send(client, missing, bearer(app, sdkauth, missing.id))
    assert response.status_code == 404
    assert response.data == error_body("WidgetNotFoundException")


def test_blocked_widget_gives_403(app, sdkauth, client):
    with app.app_context():
        widget = sdkauth.create_widget("Blocked", [Channel("sms")], is_blocked=True)
    response = _send(client, widget, bearer(app, sdkauth, widget.id))
    assert response.status_code == 403
    assert response.data == error_body("WidgetIsBlockedException")
    assert _session_count(app, sdkauth) == 0


def test_inactive_widget_gives_403_forbidden(app, sdkauth, client):
    with app.app_context():
        widget = sdkauth.create_widget("Off", [Channel("sms")], is_active=False)
    response = _send(client, widget, bearer(app, sdkauth, widget.id))
    assert response.status_code == 403
    assert response.data == error_body("ForbiddenException")


def test_recipient_on_the_hosts_blocklist_gives_403(
    app, sdkauth, client, widget, headers, outbox
):
    seen = []

    @sdkauth.recipient_in_blocklist_loader
    def blocked(recipient, for_widget):
        seen.append((recipient, for_widget.id))
        return recipient == "+79990000000"

    refused = _send(client, widget, headers, recipient="+7 999 000-00-00")
    allowed = _send(client, widget, headers)

    assert refused.status_code == 403
    assert refused.data == error_body("WidgetIsBlockedException")
    assert allowed.status_code == 201
    assert seen == [("+79990000000", widget.id), ("+79991234567", widget.id)]
    assert [m.recipient for m in outbox.messages] == ["+79991234567"]


def test_token_for_another_widget_gives_403(app, sdkauth, client, widget):
    response = _send(client, widget, bearer(app, sdkauth, uuid.uuid4()))
    assert response.status_code == 403
    assert response.data == error_body("ForbiddenException")


def test_scope_is_checked_before_existence(app, sdkauth, client):
    # A token must not learn whether other widgets exist.
    missing = Widget(id=uuid.uuid4(), name="x")
    response = _send(client, missing, bearer(app, sdkauth, uuid.uuid4()))
    assert response.status_code == 403


def test_host_widget_loader_replaces_the_builtin_table(app, sdkauth, client, outbox):
    host_widget = Widget(id=uuid.uuid4(), name="Host", channels=[Channel("whatsapp")])
    calls = []

    @sdkauth.widget_loader
    def load(widget_id):
        calls.append(widget_id)
        return host_widget if widget_id == host_widget.id else None

    response = _send(client, host_widget, bearer(app, sdkauth, host_widget.id))

    assert response.status_code == 201
    assert outbox.last.channel == "whatsapp"
    assert calls[0] == host_widget.id and isinstance(calls[0], uuid.UUID)


def test_client_ip_loader(app, sdkauth, client, widget, headers):
    sdkauth.client_ip_loader(lambda: "203.0.113.7")
    response = _send(client, widget, headers)
    assert _session(app, sdkauth, response.json["requestId"]).client_ip == "203.0.113.7"


@pytest.mark.parametrize("prefix", ["sigma-otp-form", "/sigma-otp-form", "/sigma-otp-form/"])
@pytest.mark.parametrize("path", ["/sigma-otp-form", "/sigma-otp-form/"])
def test_url_prefix_with_and_without_trailing_slash(make_app, prefix, path):
    app, sdkauth = make_app({"SDKAUTH_URL_PREFIX": prefix})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    client = app.test_client()
    response = _send(client, widget, bearer(app, sdkauth, widget.id), path=path)
    assert response.status_code == 201
    assert client.post("/", json={}).status_code in (404, 405)


def test_error_bodies_ignore_the_hosts_json_settings(make_app):
    app, sdkauth = make_app()
    app.json.sort_keys = True
    app.json.ensure_ascii = True
    with app.app_context():
        widget = sdkauth.create_widget("Off", [Channel("sms")], is_active=False)
    response = _send(app.test_client(), widget, bearer(app, sdkauth, widget.id))
    assert response.data == error_body("ForbiddenException")
    assert response.content_type == "application/json"
