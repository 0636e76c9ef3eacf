"""Codeless channels: a confirmation token, number matching, the confirmation page."""

from __future__ import annotations

import re

import pytest

from flask_sdkauth import (
    AttemptsExpiredException,
    Channel,
    InvalidCodeException,
    ResendChannelException,
    SessionAlreadyConfirmedException,
)

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient, session_state, started
from .spec import error_body


@pytest.fixture
def push(make_app, outbox):
    def build(config=None, channels=None):
        app, sdkauth = make_app(config)
        sdkauth.add_channel_sender("sim_push", outbox)
        with app.app_context():
            widget = sdkauth.create_widget("Push", channels or [Channel("sim_push")])
        api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
        return app, sdkauth, api, started(api, widget.id)

    return build


def test_confirm_with_the_matching_number(push, outbox):
    app, sdkauth, api, request_id = push()
    channel = api.channel(request_id).json
    assert channel["codeType"] == "codeless" and channel["status"] == "sent"
    number = channel["payload"]["matchNumber"]
    message = outbox.last
    assert number in message.choices

    assert api.status(request_id).json == {"success": False}
    with app.app_context():
        assert sdkauth.confirm(request_id, message.confirmation_token, number) is True
        with pytest.raises(SessionAlreadyConfirmedException):
            sdkauth.confirm(request_id, message.confirmation_token, number)
    assert api.status(request_id).json == {"success": True}
    with app.app_context():
        assert sdkauth.check_status_and_complete(request_id, RECIPIENT) is True


def test_check_code_on_a_codeless_channel(push):
    app, sdkauth, api, request_id = push()
    response = api.check_code(request_id, "123456")
    assert response.status_code == 403
    assert response.data == error_body("IsCodelessChannelException")


def test_wrong_number_ends_the_session(push, outbox):
    app, sdkauth, api, request_id = push()
    number = api.channel(request_id).json["payload"]["matchNumber"]
    other = next(choice for choice in outbox.last.choices if choice != number)
    with app.app_context(), pytest.raises(AttemptsExpiredException):
        sdkauth.confirm(request_id, outbox.last.confirmation_token, other)
    assert session_state(app, sdkauth, request_id) == "attempts_expired"
    assert api.status(request_id).data == error_body("AttemptsExpiredException")


def test_wrong_token_uses_an_attempt(push, outbox):
    app, sdkauth, api, request_id = push()
    number = api.channel(request_id).json["payload"]["matchNumber"]
    with app.app_context():
        for _ in range(2):
            with pytest.raises(InvalidCodeException):
                sdkauth.confirm(request_id, "forged-token", number)
        assert api.channel(request_id).json["remainingCodeAttempts"] == 1
        with pytest.raises(AttemptsExpiredException):
            sdkauth.confirm(request_id, "forged-token", number)
        with pytest.raises(AttemptsExpiredException):
            sdkauth.confirm(request_id, outbox.last.confirmation_token, number)


def test_confirm_refuses_code_channels(app, sdkauth, widget, outbox):
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = started(api, widget.id)
    with app.app_context(), pytest.raises(InvalidCodeException):
        sdkauth.confirm(request_id, outbox.last.code)


def test_without_number_matching(push, outbox):
    app, sdkauth, api, request_id = push({"SDKAUTH_NUMBER_MATCHING": False})
    assert api.channel(request_id).json["payload"] == {}
    assert outbox.last.choices == ()
    with app.app_context():
        assert sdkauth.confirm(request_id, outbox.last.confirmation_token) is True


def test_any_channel_can_be_configured_codeless(push, outbox):
    app, sdkauth, api, request_id = push(channels=[Channel("whatsapp", code_type="codeless")])
    assert outbox.last.channel == "whatsapp" and outbox.last.code is None
    assert api.channel(request_id).json["codeType"] == "codeless"


def test_expired_confirmation_token(push, outbox, clock):
    app, sdkauth, api, request_id = push()
    number = api.channel(request_id).json["payload"]["matchNumber"]
    clock.advance(300)
    with app.app_context(), pytest.raises(ResendChannelException):
        sdkauth.confirm(request_id, outbox.last.confirmation_token, number)


def test_confirmation_page(push, outbox):
    app, sdkauth, api, request_id = push()
    number = api.channel(request_id).json["payload"]["matchNumber"]
    message = outbox.last
    with app.test_request_context():
        url = sdkauth.confirmation_url(message)
    assert url.startswith(f"http://localhost/{request_id}/confirm?")
    path = url.removeprefix("http://localhost")

    page = app.test_client().get(path)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    buttons = re.findall(r'name="number" value="(\d+)"', page.get_data(as_text=True))
    assert sorted(buttons) == sorted(message.choices)
    # Opening the link (as a link preview would) confirms nothing.
    assert session_state(app, sdkauth, request_id) == "sent"

    confirmed = app.test_client().post(
        f"/{request_id}/confirm", data={"token": message.confirmation_token, "number": number}
    )
    assert confirmed.status_code == 200
    assert "Вход подтверждён" in confirmed.get_data(as_text=True)
    assert api.status(request_id).json == {"success": True}

    again = app.test_client().post(
        f"/{request_id}/confirm", data={"token": message.confirmation_token, "number": number}
    )
    assert again.status_code == 409
    assert "Этот вход уже подтверждён" in again.get_data(as_text=True)


def test_confirmation_page_bad_input(push):
    app, sdkauth, api, request_id = push()
    client = app.test_client()
    assert client.get(f"/{request_id}/confirm").json["type"] == "ValidateError"
    assert client.post(f"/{request_id}/confirm", data={}).json["type"] == "ValidateError"
    assert client.post("/nope/confirm", data={"token": "x"}).json["type"] == "ValidateError"
    missing = client.post(f"/{'0' * 8}-0000-4000-8000-{'0' * 12}/confirm", data={"token": "x"})
    assert missing.status_code == 404


def test_confirmation_url_only_for_codeless_messages(app, sdkauth, widget, outbox):
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    started(api, widget.id)
    with app.test_request_context(), pytest.raises(ValueError):
        sdkauth.confirmation_url(outbox.last)
