"""The Twilio sender against a local fake of Twilio's REST API, and its status
callback webhook end to end."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from twilio.request_validator import RequestValidator

from flask_sdkauth import Channel, Message, RetryDelivery, State
from flask_sdkauth.senders.base import GatewayError
from flask_sdkauth.senders.twilio import MESSAGE_ID_PARAM, TwilioSender

from .flow import RECIPIENT, sample_message

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
FROM = "+15017122661"
CALLBACK = "http://localhost/webhooks/twilio"
CODE = "482915"

_RESOURCE = re.compile(r"/2010-04-01/Accounts/([^/]+)/(Messages|Calls)\.json")
#: Twilio's documented error bodies, each quoting the number as Twilio's do.
ERRORS = {
    400: (21211, f"The 'To' number {RECIPIENT} is not a valid phone number."),
    401: (20003, "Authenticate"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


class FakeTwilio:
    """``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` and ``Calls.json``
    on 127.0.0.1: basic auth checked, the form recorded, the created resource or
    a queued error answered, or no answer at all while ``hanging``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.failures: list[int] = []
        self.hanging = False
        self.released = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode()
        form = {key: values[0] for key, values in parse_qs(body).items()}
        match = _RESOURCE.fullmatch(urlsplit(handler.path).path)
        if match is None:
            return self.answer_error(handler, 404)
        credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        authorized = handler.headers.get("Authorization") == f"Basic {credentials}"
        if not authorized or match[1] != ACCOUNT_SID:
            return self.answer_error(handler, 401)
        self.requests.append((match[2], form))
        if self.hanging:
            self.released.wait(30)
            return None
        if self.failures:
            return self.answer_error(handler, self.failures.pop(0))
        prefix = "SM" if match[2] == "Messages" else "CA"
        sid = prefix + uuid.uuid4().hex
        self.answer(handler, 201, {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "status": "queued",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": format_datetime(datetime.now(UTC), usegmt=True),
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/{match[2]}/{sid}.json",
        })
        return None

    def answer_error(self, handler: BaseHTTPRequestHandler, status: int) -> None:
        code, message = ERRORS[status]
        self.answer(handler, status, {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        })

    def answer(self, handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @property
    def last(self) -> tuple[str, dict[str, str]]:
        return self.requests[-1]


@pytest.fixture
def fake_twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    # The library would move the host to a region or edge named in the environment.
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    fake = FakeTwilio()
    fake.thread.start()
    yield fake
    fake.released.set()
    fake.server.shutdown()
    fake.server.server_close()


def _sender(fake: FakeTwilio, **options: Any) -> TwilioSender:
    options.setdefault("from_", FROM)
    options.setdefault("status_callback", CALLBACK)
    return TwilioSender(
        options.pop("account_sid", ACCOUNT_SID),
        options.pop("auth_token", AUTH_TOKEN),
        api_base_url=fake.url,
        **options,
    )


def _message(channel: str = "sms", code: str | None = CODE) -> Message:
    return sample_message(
        channel=channel,
        label=channel,
        code_type="code" if code else "codeless",
        code=code,
        text=f"Your Demo code is {code}. It expires in 5 minutes.",
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _assert_clean(text: str) -> None:
    """No code, no number (in any notation) in ``text``."""
    assert CODE not in text
    assert RECIPIENT.lstrip("+")[1:] not in re.sub(r"\D", "", text)


# -- sending ----------------------------------------------------------------------


def test_sms_is_posted_to_messages(fake_twilio):
    message = _message("sms")
    _sender(fake_twilio)(message)
    resource, form = fake_twilio.last
    assert resource == "Messages"
    assert (form["To"], form["From"], form["Body"]) == (RECIPIENT, FROM, message.text)
    assert "MessagingServiceSid" not in form


def test_sms_through_a_messaging_service(fake_twilio):
    service = "MG" + "a" * 32
    _sender(fake_twilio, messaging_service_sid=service)(_message("sms"))
    _, form = fake_twilio.last
    assert form["MessagingServiceSid"] == service
    # from_ serves calls; the service picks the SMS sender from its pool.
    assert "From" not in form


def test_voice_call_says_the_code_digit_by_digit(fake_twilio):
    _sender(fake_twilio, say_language="en-GB")(_message("voice"))
    resource, form = fake_twilio.last
    assert resource == "Calls"
    assert (form["To"], form["From"]) == (RECIPIENT, FROM)
    root = ElementTree.fromstring(form["Twiml"])
    assert root.tag == "Response"
    says = root.findall("Say")
    assert len(says) == 2
    assert {say.get("language") for say in says} == {"en-GB"}
    assert says[0].text == "Your Demo code is 4, 8, 2, 9, 1, 5. It expires in 5 minutes."
    # Read as digits, never as one number.
    assert CODE not in form["Twiml"]


def test_whatsapp_addresses_carry_the_prefix(fake_twilio):
    message = _message("whatsapp")
    _sender(fake_twilio, whatsapp_from="+14155238886")(message)
    resource, form = fake_twilio.last
    assert resource == "Messages"
    assert form["To"] == f"whatsapp:{RECIPIENT}"
    assert form["From"] == "whatsapp:+14155238886"
    assert form["Body"] == message.text


def test_whatsapp_with_a_template_sends_the_code_as_its_variable(fake_twilio):
    template = "HX" + "b" * 32
    _sender(fake_twilio, whatsapp_from="whatsapp:+14155238886", whatsapp_content_sid=template)(
        _message("whatsapp")
    )
    _, form = fake_twilio.last
    assert form["From"] == "whatsapp:+14155238886"
    assert form["ContentSid"] == template
    assert json.loads(form["ContentVariables"]) == {"1": CODE}
    assert "Body" not in form


@pytest.mark.parametrize("channel", ["sms", "voice", "whatsapp"])
def test_the_message_id_rides_in_the_status_callback_url(fake_twilio, channel):
    message = _message(channel)
    sender = _sender(
        fake_twilio,
        status_callback=f"{CALLBACK}?env=prod%20eu",
        whatsapp_from="+14155238886",
    )
    sender(message)
    _, form = fake_twilio.last
    callback = urlsplit(form["StatusCallback"])
    assert callback._replace(query="").geturl() == CALLBACK
    # The host's own query string is kept as written.
    assert callback.query.startswith("env=prod%20eu&")
    assert dict(parse_qsl(callback.query)) == {"env": "prod eu", MESSAGE_ID_PARAM: message.id}


def test_without_a_status_callback_none_is_asked_for(fake_twilio):
    _sender(fake_twilio, status_callback=None)(_message("sms"))
    assert "StatusCallback" not in fake_twilio.last[1]


# -- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_retry(fake_twilio, status):
    fake_twilio.failures.append(status)
    with pytest.raises(RetryDelivery) as caught:
        _sender(fake_twilio)(_message("sms"))
    assert str(caught.value) == f"Twilio answered {status}: error {ERRORS[status][0]}"
    assert caught.value.after is None


@pytest.mark.parametrize("status", [400, 401])
def test_refusals_fail_the_channel_without_the_number_or_code(fake_twilio, status):
    fake_twilio.failures.append(status)
    with pytest.raises(GatewayError) as caught:
        _sender(fake_twilio)(_message("sms"))
    text = str(caught.value)
    assert text == f"Twilio answered {status}: error {ERRORS[status][0]}"
    _assert_clean(text)
    # Twilio's own exception, whose text quotes the number, is not chained.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_wrong_credentials_are_refused(fake_twilio):
    with pytest.raises(GatewayError, match="^Twilio answered 401: error 20003$"):
        _sender(fake_twilio, auth_token="not-the-token")(_message("sms"))
    assert fake_twilio.requests == []


def test_a_server_that_never_answers_times_out_within_the_timeout(fake_twilio):
    fake_twilio.hanging = True
    started = time.monotonic()
    with pytest.raises(RetryDelivery, match="^Twilio unreachable: ReadTimeout$") as caught:
        _sender(fake_twilio, timeout=0.5)(_message("sms"))
    assert 0.4 < time.monotonic() - started < 2.0
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert len(fake_twilio.requests) == 1


def test_an_unreachable_server_is_retried():
    sender = TwilioSender(
        ACCOUNT_SID, AUTH_TOKEN, from_=FROM, api_base_url=f"http://127.0.0.1:{_free_port()}"
    )
    with pytest.raises(RetryDelivery, match="^Twilio unreachable: ConnectionError$"):
        sender(_message("sms"))


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"from_": None},
        {"timeout": 0},
        {"timeout": True},
        {"status_callback": "/webhooks/twilio"},
        {"status_callback": "ftp://example.com/twilio"},
        {"auth_token": ""},
    ],
)
def test_bad_configuration_is_refused_at_once(fake_twilio, options):
    with pytest.raises(ValueError):
        _sender(fake_twilio, **options)


@pytest.mark.parametrize(
    ("options", "message", "error"),
    [
        ({"from_": None, "messaging_service_sid": "MG" + "a" * 32}, _message("voice"), "from_"),
        ({}, _message("voice", code=None), "codeless"),
        ({}, _message("whatsapp"), "whatsapp_from"),
        ({}, _message("telegramcode"), "telegramcode"),
    ],
)
def test_what_the_configuration_cannot_send_fails_the_channel(
    fake_twilio, options, message, error
):
    with pytest.raises(ValueError, match=error):
        _sender(fake_twilio, **options)(message)
    assert fake_twilio.requests == []


def test_the_repr_hides_the_token(fake_twilio):
    assert AUTH_TOKEN not in repr(_sender(fake_twilio))


# -- the status callback, end to end ----------------------------------------------------


@pytest.fixture
def twilio_app(make_app, fake_twilio):
    """An app whose SMS goes to the fake Twilio, with the webhook registered, and a
    session sent on SMS (voice, the next channel, goes to the outbox)."""
    app, sdkauth = make_app()
    twilio = _sender(fake_twilio)
    sdkauth.add_channel_sender("sms", twilio)
    app.add_url_rule("/webhooks/twilio", view_func=twilio.webhook_view(), methods=["POST"])
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
    return app, sdkauth, request_id


def test_in_a_launch_a_500_is_retried_and_a_400_falls_over(make_app, fake_twilio, outbox):
    app, sdkauth = make_app()
    sdkauth.add_channel_sender("sms", _sender(fake_twilio))
    with app.app_context():
        sdkauth.engine.launcher.sleep = lambda seconds: None
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
        fake_twilio.failures.extend([500, 400])
        request_id = sdkauth.send(widget.id, RECIPIENT)
    session = _session(app, sdkauth, request_id)
    tries = [(entry["channel"], entry["outcome"], entry["reason"]) for entry in session.history]
    assert tries == [
        ("sms", "retry", "RetryDelivery: Twilio answered 500: error 20500"),
        ("sms", "failed", "GatewayError: Twilio answered 400: error 21211"),
        ("voice", "sent", None),
    ]
    # Both tries carried the same message: the same callback URL, the same text.
    (first, second) = [form for _, form in fake_twilio.requests]
    assert (first["StatusCallback"], first["Body"]) == (second["StatusCallback"], second["Body"])
    assert outbox.last.channel == "voice"


def _session(app, sdkauth, request_id):
    with app.app_context():
        return sdkauth.engine.sessions.get(request_id)


def _reports(session):
    return [
        (entry["status"], entry.get("reason"))
        for entry in session.history
        if entry["outcome"] == "report"
    ]


def _message_callback(fake, status, **extra):
    """What Twilio posts to the status callback of the last message created."""
    _, form = fake.last
    sid = "SM" + uuid.uuid4().hex
    fields = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": form["From"],
        "To": form["To"],
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        **extra,
    }
    return form["StatusCallback"], fields


def _post(app, url, fields, *, signed_url=None, token=AUTH_TOKEN, signature=None):
    if signature is None:
        signature = RequestValidator(token).compute_signature(signed_url or url, fields)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return app.test_client().post(url, data=fields, headers=headers)


def test_a_failed_callback_moves_the_session_to_the_next_channel(twilio_app, fake_twilio, outbox):
    app, sdkauth, request_id = twilio_app
    assert _session(app, sdkauth, request_id).channel["type"] == "sms"
    url, fields = _message_callback(fake_twilio, "undelivered", ErrorCode="30003")
    response = _post(app, url, fields)
    assert (response.status_code, response.data) == (204, b"")
    assert outbox.last.channel == "voice"
    session = _session(app, sdkauth, request_id)
    assert (session.state, session.channel["type"]) == (State.SENT, "voice")
    assert _reports(session) == [("failed", "Twilio undelivered: error 30003")]


def test_a_delivered_callback_is_recorded_and_a_replay_again(twilio_app, fake_twilio, outbox):
    app, sdkauth, request_id = twilio_app
    url, fields = _message_callback(fake_twilio, "delivered")
    assert _post(app, url, fields).status_code == 204
    session = _session(app, sdkauth, request_id)
    assert _reports(session) == [("delivered", None)]
    assert _post(app, url, fields).status_code == 204  # the same request, replayed
    replayed = _session(app, sdkauth, request_id)
    assert _reports(replayed) == [("delivered", None), ("delivered", None)]
    assert (replayed.state, replayed.generation, replayed.channel) == (
        session.state,
        session.generation,
        session.channel,
    )
    assert outbox.messages == []


def test_a_replayed_failure_falls_back_once(twilio_app, fake_twilio, outbox):
    app, sdkauth, request_id = twilio_app
    url, fields = _message_callback(fake_twilio, "failed", ErrorCode="30008")
    assert _post(app, url, fields).status_code == 204
    assert _post(app, url, fields).status_code == 204
    session = _session(app, sdkauth, request_id)
    assert [message.channel for message in outbox.messages] == ["voice"]
    assert _reports(session) == [("failed", "Twilio failed: error 30008")] * 2
    assert session.channel["type"] == "voice"


@pytest.mark.parametrize("status", ["sent", "read"])
def test_sent_and_read_are_recorded(twilio_app, fake_twilio, status):
    app, sdkauth, request_id = twilio_app
    assert _post(app, *_message_callback(fake_twilio, status)).status_code == 204
    assert _reports(_session(app, sdkauth, request_id)) == [(status, None)]


@pytest.mark.parametrize("status", ["queued", "sending", "accepted", "canceled", "unknown"])
def test_other_message_statuses_are_ignored(twilio_app, fake_twilio, status):
    app, sdkauth, request_id = twilio_app
    before = _session(app, sdkauth, request_id).history
    assert _post(app, *_message_callback(fake_twilio, status)).status_code == 204
    assert _session(app, sdkauth, request_id).history == before


@pytest.mark.parametrize(
    "signature",
    ["", "not-a-signature", RequestValidator("another-token").compute_signature("x", {})],
)
def test_a_callback_without_a_valid_signature_is_403_and_not_recorded(
    twilio_app, fake_twilio, outbox, signature
):
    app, sdkauth, request_id = twilio_app
    before = _session(app, sdkauth, request_id)
    url, fields = _message_callback(fake_twilio, "failed", ErrorCode="30003")
    response = _post(app, url, fields, signature=signature or "")
    assert response.status_code == 403
    after = _session(app, sdkauth, request_id)
    assert (after.history, after.state, after.generation) == (
        before.history,
        before.state,
        before.generation,
    )
    assert outbox.messages == []


def test_a_callback_signed_with_another_token_is_403(twilio_app, fake_twilio):
    app, sdkauth, request_id = twilio_app
    url, fields = _message_callback(fake_twilio, "failed")
    assert _post(app, url, fields, token="another-token").status_code == 403
    assert _reports(_session(app, sdkauth, request_id)) == []


def test_the_signature_covers_the_message_id_and_the_form(twilio_app, fake_twilio):
    app, sdkauth, request_id = twilio_app
    url, fields = _message_callback(fake_twilio, "delivered")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, fields)
    other_id = f"{uuid.uuid4().hex}-1-0"
    tampered_url = re.sub(f"{MESSAGE_ID_PARAM}=[^&]+", f"{MESSAGE_ID_PARAM}={other_id}", url)
    assert _post(app, tampered_url, fields, signature=signature).status_code == 403
    tampered_form = {**fields, "MessageStatus": "failed"}
    assert _post(app, url, tampered_form, signature=signature).status_code == 403
    assert _reports(_session(app, sdkauth, request_id)) == []


def test_no_number_reaches_the_history(twilio_app, fake_twilio):
    app, sdkauth, request_id = twilio_app
    url, fields = _message_callback(fake_twilio, "failed", ErrorCode=RECIPIENT)
    assert _post(app, url, fields).status_code == 204
    (report,) = _reports(_session(app, sdkauth, request_id))
    assert report == ("failed", "Twilio failed")
    _assert_clean(json.dumps(_session(app, sdkauth, request_id).history))


def test_behind_a_proxy_the_public_url_is_what_was_signed(make_app, fake_twilio):
    app, sdkauth = make_app()
    public = "https://auth.example.com/hooks/twilio"
    twilio = _sender(fake_twilio, status_callback=public)
    sdkauth.add_channel_sender("sms", twilio)
    # Twilio signs the https URL it calls; the app, behind TLS termination, sees http.
    app.add_url_rule("/hooks/twilio", "guessed", twilio.webhook_view(), methods=["POST"])
    app.add_url_rule("/hooks/twilio-public", "public", twilio.webhook_view(public_url=public),
                     methods=["POST"])
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
    signed_url, fields = _message_callback(fake_twilio, "delivered")
    query = urlsplit(signed_url).query
    assert _post(app, f"/hooks/twilio?{query}", fields, signed_url=signed_url).status_code == 403
    public_response = _post(app, f"/hooks/twilio-public?{query}", fields, signed_url=signed_url)
    assert public_response.status_code == 204
    assert _reports(_session(app, sdkauth, request_id)) == [("delivered", None)]


@pytest.fixture
def twilio_voice_app(make_app, fake_twilio):
    """A session whose first channel is a Twilio voice call, SMS next (outbox)."""
    app, sdkauth = make_app()
    twilio = _sender(fake_twilio)
    sdkauth.add_channel_sender("voice", twilio)
    app.add_url_rule("/webhooks/twilio", view_func=twilio.webhook_view(), methods=["POST"])
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("voice"), Channel("sms")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
    return app, sdkauth, request_id


def _call_callback(fake, status):
    _, form = fake.last
    return form["StatusCallback"], {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": "CA" + uuid.uuid4().hex,
        "CallStatus": status,
        "Direction": "outbound-api",
        "From": form["From"],
        "To": form["To"],
        "CallDuration": "14",
    }


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed", "canceled"])
def test_a_call_that_did_not_connect_moves_to_the_next_channel(
    twilio_voice_app, fake_twilio, outbox, status
):
    app, sdkauth, request_id = twilio_voice_app
    assert _post(app, *_call_callback(fake_twilio, status)).status_code == 204
    assert outbox.last.channel == "sms"
    assert _reports(_session(app, sdkauth, request_id)) == [("failed", f"Twilio call {status}")]


def test_a_completed_call_is_delivered(twilio_voice_app, fake_twilio, outbox):
    app, sdkauth, request_id = twilio_voice_app
    assert _post(app, *_call_callback(fake_twilio, "completed")).status_code == 204
    session = _session(app, sdkauth, request_id)
    assert _reports(session) == [("delivered", None)]
    assert (session.state, session.channel["type"]) == (State.SENT, "voice")
    assert outbox.messages == []


@pytest.mark.parametrize("status", ["queued", "ringing", "in-progress"])
def test_intermediate_call_statuses_are_ignored(twilio_voice_app, fake_twilio, status):
    app, sdkauth, request_id = twilio_voice_app
    assert _post(app, *_call_callback(fake_twilio, status)).status_code == 204
    assert _reports(_session(app, sdkauth, request_id)) == []
