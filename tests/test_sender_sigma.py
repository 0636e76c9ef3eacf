"""The SIGMA sender and its status-callback webhook, against a local fake of
SIGMA's sending API."""

from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from flask_sdkauth import Channel, RetryDelivery, State
from flask_sdkauth.senders.base import GatewayError
from flask_sdkauth.senders.sigma import CHANNEL_TYPES, SigmaSender

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient, sample_message, started
from .gateway_server import Answer, closed_port_url, running

API_KEY = "sigma-api-key-0123456789"
USERNAME, PASSWORD = "shop", "pa55word-long"
SECRET = "callback-secret-of-the-host"
CALLBACK = "https://example.test/webhooks/sigma?tenant=a"


class FakeSigma:
    """SIGMA's login and sendings, as its clients use them."""

    def __init__(self):
        self.tokens = {API_KEY}
        self.logins = 0

    def __call__(self, received):
        if received.method == "POST" and received.path == "/api/login":
            body = received.json
            if (body.get("username"), body.get("password")) != (USERNAME, PASSWORD):
                return Answer(401, {"error": "Unauthorized", "message": "Invalid login"})
            self.logins += 1
            token = f"token-{self.logins}"
            self.tokens.add(token)
            return Answer(200, {"id": "user-1", "username": USERNAME, "token": token})
        if received.method == "POST" and received.path == "/api/sendings":
            if received.headers.get("Authorization") not in self.tokens:
                return Answer(401, {"error": "Unauthorized"})
            body = received.json
            return Answer(200, {"id": str(uuid.uuid4()), "recipient": body["recipient"],
                                "status": "pending", "error": None})
        return Answer(404, {"error": "Not found"})


@pytest.fixture
def sigma():
    api = FakeSigma()
    with running(api) as fake:
        fake.api = api
        yield fake


def _sender(gateway, **options):
    options.setdefault("sender", "Shop")
    if "username" not in options:
        options.setdefault("api_key", API_KEY)
    return SigmaSender(api_url=gateway.url + "api/", **options)


def _message(channel="sms", code="123456"):
    return sample_message(
        channel=channel, label=channel, code=code, text=f"Код подтверждения: {code}"
    )


def _assert_clean(text, message):
    assert message.code not in text
    assert "9991234567" not in text
    assert API_KEY not in text and PASSWORD not in text


# -- sending ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel, kind, text",
    [
        ("sms", "sms", "Код подтверждения: 123456"),
        ("viber", "viber", "Код подтверждения: 123456"),
        ("whatsapp", "whatsapp", "Код подтверждения: 123456"),
        ("vk", "vk", "Код подтверждения: 123456"),
        ("telegramcode", "telegram", "Код подтверждения: 123456"),
        ("voice", "voice", "Код подтверждения: 1, 2, 3, 4, 5, 6"),
    ],
)
def test_each_channel_is_sent_as_its_sigma_type(sigma, channel, kind, text):
    _sender(sigma)(_message(channel))
    received = sigma.last
    assert (received.method, received.path) == ("POST", "/api/sendings")
    assert received.headers["Authorization"] == API_KEY
    assert received.json == {
        "recipient": RECIPIENT, "type": kind, "payload": {"sender": "Shop", "text": text},
    }


def test_a_flash_call_carries_the_code_as_its_text(sigma):
    _sender(sigma, sender={"flashcall": "79001234567"})(_message("flashcall", code="4821"))
    assert sigma.last.json == {
        "recipient": RECIPIENT, "type": "flashcall",
        "payload": {"sender": "79001234567", "text": "4821"},
    }


def test_voice_calls_get_the_configured_voice(sigma):
    _sender(sigma, tts="aws:tatyana")(_message("voice"))
    assert sigma.last.json["payload"]["tts"] == "aws:tatyana"
    _sender(sigma, tts="aws:tatyana")(_message("sms"))
    assert "tts" not in sigma.last.json["payload"]


def test_every_channel_type_sigma_offers_is_mapped():
    assert set(CHANNEL_TYPES.values()) == {
        "sms", "voice", "flashcall", "viber", "whatsapp", "vk", "telegram",
    }


def test_a_channel_without_a_sender_name_fails_without_a_call(sigma):
    with pytest.raises(GatewayError, match="no SIGMA sender name for the channel 'viber'"):
        _sender(sigma, sender={"sms": "Shop"})(_message("viber"))
    assert sigma.received == []


def test_a_channel_sigma_does_not_offer_fails(sigma):
    with pytest.raises(GatewayError, match="no type"):
        _sender(sigma)(_message("sim_push"))


def test_the_callback_url_names_the_message(sigma):
    message = _message()
    sender = _sender(sigma, callback_url=CALLBACK, callback_secret=SECRET)
    sender(message)
    url = sigma.last.json["webhook"]["url"]
    parts = urlsplit(url)
    assert url.startswith("https://example.test/webhooks/sigma?")
    query = parse_qs(parts.query)
    assert query["tenant"] == ["a"]
    assert query["message"] == [message.id]
    assert len(query["sig"][0]) == 64
    assert url == sender.message_callback_url(message.id)


def test_login_credentials_are_exchanged_for_a_token_once(sigma):
    sender = _sender(sigma, username=USERNAME, password=PASSWORD)
    sender(_message())
    sender(_message())
    paths = [r.path for r in sigma.received]
    assert paths == ["/api/login", "/api/sendings", "/api/sendings"]
    assert sigma.received[0].json == {"username": USERNAME, "password": PASSWORD}
    assert sigma.last.headers["Authorization"] == "token-1"


def test_a_lapsed_token_is_renewed_once(sigma):
    sender = _sender(sigma, username=USERNAME, password=PASSWORD)
    sender(_message())
    sigma.api.tokens.discard("token-1")
    sender(_message())
    assert [r.path for r in sigma.received] == [
        "/api/login", "/api/sendings", "/api/sendings", "/api/login", "/api/sendings",
    ]
    assert sigma.last.headers["Authorization"] == "token-2"


def test_a_refused_login_fails_the_channel(sigma):
    message = _message()
    with pytest.raises(GatewayError, match="^SIGMA login answered 401: Unauthorized$"):
        _sender(sigma, username=USERNAME, password="wrong")(message)


def test_a_refused_api_key_is_401(sigma):
    with pytest.raises(GatewayError, match="^SIGMA answered 401: Unauthorized$"):
        _sender(sigma, api_key="not-a-key")(_message())
    assert len(sigma.received) == 1


def test_400_fails_the_channel_with_sigmas_words(sigma):
    sigma.queue.append(Answer(400, {"error": "Sender name is not approved"}))
    with pytest.raises(GatewayError, match="^SIGMA answered 400: Sender name is not approved$"):
        _sender(sigma)(_message())


def test_a_failed_answer_fails_the_channel(sigma):
    sigma.queue.append(Answer(200, {"id": "s-1", "recipient": RECIPIENT,
                                    "status": "failed", "error": "Insufficient funds"}))
    with pytest.raises(GatewayError, match="^SIGMA refused the message: Insufficient funds$"):
        _sender(sigma)(_message())


def test_an_error_text_naming_the_number_or_code_is_redacted(sigma):
    sigma.queue.append(Answer(400, {"message": f"bad {RECIPIENT} / 8 (999) 123-45-67 "
                                               f"text 123456 key {API_KEY}"}))
    message = _message()
    with pytest.raises(GatewayError) as caught:
        _sender(sigma)(message)
    _assert_clean(str(caught.value), message)


def test_429_asks_for_a_retry_after_retry_after(sigma):
    sigma.queue.append(Answer(429, {"error": "Too Many Requests"}, {"Retry-After": "2"}))
    with pytest.raises(RetryDelivery) as caught:
        _sender(sigma)(_message())
    assert caught.value.after == 2.0


def test_500_asks_for_a_retry(sigma):
    sigma.queue.append(Answer(500, b"Internal Server Error"))
    with pytest.raises(RetryDelivery, match="^SIGMA answered 500$"):
        _sender(sigma)(_message())


def test_a_gateway_that_never_answers_fails_within_the_timeout(sigma):
    sigma.queue.append(Answer(hang=True))
    began = time.monotonic()
    with pytest.raises(GatewayError, match="did not answer in time"):
        _sender(sigma, timeout=0.3)(_message())
    assert time.monotonic() - began < 2


def test_an_unreachable_gateway_asks_for_a_retry():
    sender = SigmaSender(sender="Shop", api_key=API_KEY, api_url=closed_port_url(), timeout=1)
    with pytest.raises(RetryDelivery, match="unreachable"):
        sender(_message())


@pytest.mark.parametrize(
    "options",
    [{}, {"api_key": API_KEY, "username": USERNAME, "password": PASSWORD},
     {"username": USERNAME}, {"api_key": API_KEY, "callback_url": CALLBACK}],
)
def test_incomplete_settings_are_refused(options):
    with pytest.raises(ValueError):
        SigmaSender(sender="Shop", **options)


def test_credentials_stay_out_of_repr():
    text = repr(SigmaSender(sender="Shop", username=USERNAME, password=PASSWORD))
    assert PASSWORD not in text


# -- end to end: SMS through SIGMA, then voice ---------------------------------------


@pytest.fixture
def sigma_app(make_app, sigma):
    app, sdkauth = make_app()
    sender = _sender(sigma, callback_url="http://localhost/webhooks/sigma", callback_secret=SECRET)
    sdkauth.add_channel_sender("sms", sender)
    app.add_url_rule("/webhooks/sigma", view_func=sender.webhook_view(), methods=["POST"])
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
    return app, sdkauth, widget


def _session(app, sdkauth, request_id):
    with app.app_context():
        return sdkauth.engine.sessions.get(uuid.UUID(str(request_id)))


def _callback(app, sigma, body, url=None):
    parts = urlsplit(url or sigma.last.json["webhook"]["url"])
    return app.test_client().post(f"{parts.path}?{parts.query}", data=json.dumps(body),
                                  content_type="application/json")


def test_send_reaches_sigma_and_its_code_confirms(sigma_app, sigma):
    app, sdkauth, widget = sigma_app
    with app.app_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
    body = sigma.last.json
    assert (body["recipient"], body["type"]) == (RECIPIENT, "sms")
    code = re.search(r"\d+$", body["payload"]["text"]).group()
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    assert _session(app, sdkauth, request_id).state is State.SENT
    assert api.check_code(str(request_id), code).json == {"success": True}


def test_a_failed_callback_moves_the_session_to_voice(sigma_app, sigma, outbox):
    app, sdkauth, widget = sigma_app
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = started(api, widget.id)
    response = _callback(app, sigma, {"id": "s-1", "status": "failed", "error": "Undelivered"})
    assert response.status_code == 200
    assert outbox.last.channel == "voice"
    assert api.channel(request_id).json["type"] == "voice"
    report = _session(app, sdkauth, request_id).history[1]
    assert (report["outcome"], report["status"], report["current"]) == ("report", "failed", True)
    assert report["reason"] == "SIGMA: failed"


def test_a_delivered_callback_is_recorded_and_a_repeat_changes_nothing(sigma_app, sigma):
    app, sdkauth, widget = sigma_app
    with app.app_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
    assert _callback(app, sigma, {"state": {"status": "delivered"}}).status_code == 200
    session = _session(app, sdkauth, request_id)
    assert session.history[-1]["status"] == "delivered"
    assert _callback(app, sigma, {"state": {"status": "delivered"}}).status_code == 200
    again = _session(app, sdkauth, request_id)
    assert again.state is session.state is State.SENT
    assert [e.get("status") for e in again.history] == [None, "delivered", "delivered"]


@pytest.mark.parametrize("status, expected", [("sent", "sent"), ("seen", "read")])
def test_the_other_statuses(sigma_app, sigma, status, expected):
    app, sdkauth, widget = sigma_app
    with app.app_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
    _callback(app, sigma, {"status": status})
    assert _session(app, sdkauth, request_id).history[1]["status"] == expected


def test_a_pending_callback_reports_nothing(sigma_app, sigma):
    app, sdkauth, widget = sigma_app
    with app.app_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
    assert _callback(app, sigma, {"status": "pending"}).status_code == 200
    assert len(_session(app, sdkauth, request_id).history) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url, other: url.replace("sig=", "sig=0"),
        lambda url, other: url.split("&sig=")[0] + "&sig=%C3%A9",
        lambda url, other: url.split("&sig=")[0],
        lambda url, other: url.split("?")[0],
        # a valid sig for one message does not report on another
        lambda url, other: re.sub(r"message=[^&]+", f"message={other}", url),
        lambda url, other: SigmaSender(
            sender="x", api_key="k", callback_url=url.split("?")[0], callback_secret="guess"
        ).message_callback_url(parse_qs(urlsplit(url).query)["message"][0]),
    ],
    ids=["wrong-sig", "non-ascii-sig", "no-sig", "no-query", "other-message", "other-secret"],
)
def test_a_callback_without_the_right_sig_is_403_and_changes_nothing(
    sigma_app, sigma, outbox, tamper
):
    app, sdkauth, widget = sigma_app
    with app.app_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
        other = sdkauth.send(widget.id, "+79991234568")
    other_id = parse_qs(urlsplit(sigma.last.json["webhook"]["url"]).query)["message"][0]
    url = sigma.received[-2].json["webhook"]["url"]
    before = _session(app, sdkauth, request_id)
    response = _callback(app, sigma, {"status": "failed"}, url=tamper(url, other_id))
    assert response.status_code == 403
    after = _session(app, sdkauth, request_id)
    assert after.history == before.history and after.state is State.SENT
    assert len(_session(app, sdkauth, other).history) == 1
    assert outbox.messages == []
