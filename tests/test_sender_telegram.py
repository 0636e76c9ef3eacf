"""The Telegram Gateway sender and its delivery-report webhook, against a local
fake of the Gateway API."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import pytest

from flask_sdkauth import Channel, RetryDelivery, State
from flask_sdkauth.senders.base import GatewayError
from flask_sdkauth.senders.telegram import TelegramGatewaySender

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient, sample_message, started
from .gateway_server import Answer, closed_port_url, running

TOKEN = "AAE-test-gateway-token"
CALLBACK = "https://example.test/webhooks/telegram"


def _request_status(received, status="sent"):
    body = received.json
    return {
        "request_id": "req-" + body["payload"][:8],
        "phone_number": body["phone_number"],
        "request_cost": 0.01,
        "delivery_status": {"status": status, "updated_at": int(time.time())},
        "payload": body["payload"],
    }


def gateway_api(received):
    """The documented answers of sendVerificationMessage."""
    if received.method != "POST" or received.path != "/sendVerificationMessage":
        return Answer(404, {"ok": False, "error": "METHOD_NOT_FOUND"})
    if received.headers.get("Authorization") != f"Bearer {TOKEN}":
        return Answer(401, {"ok": False, "error": "ACCESS_TOKEN_INVALID"})
    return Answer(200, {"ok": True, "result": _request_status(received)})


@pytest.fixture
def gateway():
    with running(gateway_api) as fake:
        yield fake


def _message(code="123456", channel="telegramcode"):
    return sample_message(
        channel=channel, label="Telegram", code=code, text=f"Код подтверждения: {code}"
    )


def _sender(gateway, **options):
    return TelegramGatewaySender(TOKEN, api_url=gateway.url, **options)


def _assert_clean(text, message):
    assert message.code not in text
    assert RECIPIENT.lstrip("+") not in text and "9991234567" not in text
    assert TOKEN not in text


# -- sending ------------------------------------------------------------------------


def test_the_request_carries_the_code_number_and_message_id(gateway):
    message = _message()
    _sender(gateway, callback_url=CALLBACK, ttl=300)(message)
    received = gateway.last
    assert received.headers["Authorization"] == f"Bearer {TOKEN}"
    assert received.headers["Content-Type"] == "application/json"
    assert received.json == {
        "phone_number": RECIPIENT,
        "code": "123456",
        "payload": message.id,
        "ttl": 300,
        "callback_url": CALLBACK,
    }


def test_ttl_and_callback_are_left_out_unless_set(gateway):
    _sender(gateway)(_message())
    assert set(gateway.last.json) == {"phone_number", "code", "payload"}


@pytest.mark.parametrize("code", [None, "123", "123456789", "12a4"])
def test_codes_the_gateway_does_not_take_fail_without_a_call(gateway, code):
    with pytest.raises(GatewayError, match="4 to 8 digits"):
        _sender(gateway)(_message(code=code))
    assert gateway.received == []


def test_ok_false_fails_the_channel_with_the_gateway_error(gateway):
    gateway.queue.append(Answer(400, {"ok": False, "error": "PHONE_NUMBER_INVALID"}))
    message = _message()
    with pytest.raises(GatewayError) as caught:
        _sender(gateway)(message)
    assert str(caught.value) == "Telegram Gateway answered 400: PHONE_NUMBER_INVALID"
    _assert_clean(str(caught.value), message)


def test_ok_false_with_200_fails_the_channel(gateway):
    gateway.queue.append(Answer(200, {"ok": False, "error": "CODE_INVALID"}))
    with pytest.raises(GatewayError, match="^Telegram Gateway refused the message: CODE_INVALID$"):
        _sender(gateway)(_message())


def test_a_wrong_token_is_401(gateway):
    sender = TelegramGatewaySender("wrong-token", api_url=gateway.url)
    with pytest.raises(GatewayError, match="^Telegram Gateway answered 401: ACCESS_TOKEN_INVALID$"):
        sender(_message())


def test_an_error_text_naming_the_number_or_code_is_redacted(gateway):
    gateway.queue.append(
        Answer(400, {"ok": False, "error": f"BAD_NUMBER {RECIPIENT} code 123456 token {TOKEN}"})
    )
    message = _message()
    with pytest.raises(GatewayError) as caught:
        _sender(gateway)(message)
    _assert_clean(str(caught.value), message)


def test_429_asks_for_a_retry_after_retry_after(gateway):
    gateway.queue.append(Answer(429, {"ok": False, "error": "TOO_MANY_REQUESTS"}, {"Retry-After": "3"}))
    with pytest.raises(RetryDelivery) as caught:
        _sender(gateway)(_message())
    assert caught.value.after == 3.0
    assert str(caught.value) == "Telegram Gateway answered 429: TOO_MANY_REQUESTS"


def test_500_asks_for_a_retry(gateway):
    gateway.queue.append(Answer(500, b"<html>oops</html>"))
    with pytest.raises(RetryDelivery, match="^Telegram Gateway answered 500$"):
        _sender(gateway)(_message())


def test_a_gateway_that_never_answers_fails_within_the_timeout(gateway):
    gateway.queue.append(Answer(hang=True))
    began = time.monotonic()
    with pytest.raises(GatewayError, match="did not answer in time"):
        _sender(gateway, timeout=0.3)(_message())
    assert time.monotonic() - began < 2


def test_an_unreachable_gateway_asks_for_a_retry():
    sender = TelegramGatewaySender(TOKEN, api_url=closed_port_url(), timeout=1)
    with pytest.raises(RetryDelivery, match="unreachable"):
        sender(_message())


@pytest.mark.parametrize("options", [{"ttl": 29}, {"ttl": 3601}, {"ttl": True},
                                     {"callback_url": "https://x.test/" + "a" * 250}])
def test_settings_out_of_the_documented_limits_are_refused(options):
    with pytest.raises(ValueError):
        TelegramGatewaySender(TOKEN, **options)


def test_the_token_stays_out_of_repr():
    assert TOKEN not in repr(TelegramGatewaySender(TOKEN))


# -- end to end: a widget of Telegram, then SMS ---------------------------------------


def _signed(body, timestamp=None, token=TOKEN):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    secret = hashlib.sha256(token.encode()).digest()
    signature = hmac.new(secret, f"{timestamp}\n".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Request-Timestamp": timestamp, "X-Request-Signature": signature,
            "Content-Type": "application/json"}


@pytest.fixture
def telegram_app(make_app, gateway):
    app, sdkauth = make_app()
    sender = _sender(gateway, callback_url=CALLBACK)
    sdkauth.add_channel_sender("telegramcode", sender)
    app.add_url_rule("/webhooks/telegram", view_func=sender.webhook_view(), methods=["POST"])
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("telegramcode"), Channel("sms")])
    return app, sdkauth, widget


def _session(app, sdkauth, request_id):
    with app.app_context():
        return sdkauth.engine.sessions.get(uuid.UUID(str(request_id)))


def _report(gateway, status):
    return json.dumps(_request_status(gateway.last, status)).encode()


def test_send_reaches_the_gateway_and_its_code_confirms(telegram_app, gateway):
    app, sdkauth, widget = telegram_app
    with app.app_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
    body = gateway.last.json
    assert body["phone_number"] == RECIPIENT
    assert body["code"].isdigit()
    assert body["callback_url"] == CALLBACK
    session = _session(app, sdkauth, request_id)
    assert session.state is State.SENT
    assert [(e["channel"], e["outcome"]) for e in session.history] == [("telegramcode", "sent")]
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    assert api.check_code(str(request_id), body["code"]).json == {"success": True}


def test_an_expired_report_moves_the_session_to_sms(telegram_app, gateway, outbox):
    app, sdkauth, widget = telegram_app
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = started(api, widget.id)
    body = _report(gateway, "expired")
    response = app.test_client().post("/webhooks/telegram", data=body, headers=_signed(body))
    assert response.status_code == 200
    assert outbox.last.channel == "sms"
    assert api.channel(request_id).json["type"] == "sms"
    report = _session(app, sdkauth, request_id).history[1]
    assert (report["outcome"], report["status"], report["current"]) == ("report", "failed", True)
    assert report["reason"] == "Telegram Gateway: expired"
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}


def test_a_delivered_report_is_recorded_and_a_repeat_changes_nothing(telegram_app, gateway):
    app, sdkauth, widget = telegram_app
    with app.app_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
    body = _report(gateway, "delivered")
    client = app.test_client()
    assert client.post("/webhooks/telegram", data=body, headers=_signed(body)).status_code == 200
    session = _session(app, sdkauth, request_id)
    assert session.history[-1]["status"] == "delivered"
    # The Gateway resends a report it thinks was lost: recorded, nothing else.
    assert client.post("/webhooks/telegram", data=body, headers=_signed(body)).status_code == 200
    again = _session(app, sdkauth, request_id)
    assert again.state is session.state is State.SENT
    assert [e.get("status") for e in again.history] == [None, "delivered", "delivered"]


@pytest.mark.parametrize("status, expected", [("sent", "sent"), ("read", "read"),
                                              ("revoked", "failed")])
def test_the_other_delivery_statuses(telegram_app, gateway, status, expected):
    app, sdkauth, widget = telegram_app
    with app.app_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
    body = _report(gateway, status)
    app.test_client().post("/webhooks/telegram", data=body, headers=_signed(body))
    assert _session(app, sdkauth, request_id).history[1]["status"] == expected


def test_a_verification_status_alone_is_not_a_delivery_report(telegram_app, gateway):
    app, sdkauth, widget = telegram_app
    with app.app_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
    report = _request_status(gateway.last)
    del report["delivery_status"]
    report["verification_status"] = {"status": "code_valid", "updated_at": int(time.time())}
    body = json.dumps(report).encode()
    assert app.test_client().post(
        "/webhooks/telegram", data=body, headers=_signed(body)
    ).status_code == 200
    assert len(_session(app, sdkauth, request_id).history) == 1


@pytest.mark.parametrize(
    "headers",
    [
        lambda body: _signed(body, token="another-token"),
        lambda body: {**_signed(body), "X-Request-Signature": "00" * 32},
        lambda body: {"Content-Type": "application/json"},
        lambda body: {k: v for k, v in _signed(body).items() if k != "X-Request-Timestamp"},
        lambda body: _signed(body + b" "),  # signed another body
        lambda body: _signed(body, timestamp=int(time.time()) - 301),  # a replay
        lambda body: _signed(body, timestamp=int(time.time()) + 301),
        lambda body: {**_signed(body), "X-Request-Signature": "é" * 64},
    ],
    ids=["other-token", "wrong-signature", "unsigned", "no-timestamp", "other-body",
         "stale", "future", "non-ascii"],
)
def test_a_report_not_signed_now_by_the_gateway_is_403_and_changes_nothing(
    telegram_app, gateway, outbox, headers
):
    app, sdkauth, widget = telegram_app
    with app.app_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
    before = _session(app, sdkauth, request_id)
    body = _report(gateway, "expired")
    response = app.test_client().post("/webhooks/telegram", data=body, headers=headers(body))
    assert response.status_code == 403
    after = _session(app, sdkauth, request_id)
    assert after.history == before.history
    assert after.state is State.SENT
    assert outbox.messages == []


def test_a_report_for_no_message_of_ours_is_acknowledged(telegram_app):
    app, _, _ = telegram_app
    body = json.dumps({"request_id": "x", "payload": "not-ours",
                       "delivery_status": {"status": "read", "updated_at": 1}}).encode()
    assert app.test_client().post(
        "/webhooks/telegram", data=body, headers=_signed(body)
    ).status_code == 200
