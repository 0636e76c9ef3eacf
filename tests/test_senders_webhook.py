"""The webhook sender against a local HTTP server, and the signature check."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flask_sdkauth import Channel, RetryDelivery
from flask_sdkauth.senders.base import GatewayError
from flask_sdkauth.senders.webhook import (
    EVENT_TYPE,
    WebhookSender,
    generate_secret,
    sign,
    verify_signature,
)

from .flow import RECIPIENT
from .flow import sample_message as message

SECRET = generate_secret()


class Gateway:
    """A local receiver that records each request and answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                gateway.requests.append((dict(self.headers.items()), body))
                status, headers = gateway.answers.pop(0) if gateway.answers else (204, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/messages"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def gateway():
    server = Gateway()
    yield server
    server.close()


def test_the_body_and_headers_received_verify(gateway):
    sent = message()
    before = int(time.time())
    WebhookSender(gateway.url, SECRET, headers={"Authorization": "Bearer t"})(sent)
    ((headers, body),) = gateway.requests
    headers = {name.lower(): value for name, value in headers.items()}
    assert headers["webhook-id"] == sent.id
    assert before <= int(headers["webhook-timestamp"]) <= time.time()
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == "Bearer t"
    assert verify_signature(SECRET, headers, body)
    event = json.loads(body)
    assert event["type"] == EVENT_TYPE
    assert event["data"] == {
        "id": sent.id,
        "request_id": str(sent.request_id),
        "widget_id": str(sent.widget_id),
        "channel": "sms",
        "label": "SMS",
        "code_type": "code",
        "recipient": RECIPIENT,
        "code": "482913",
        "confirmation_token": None,
        "confirmation_url": None,
        "choices": [],
        "text": "Код подтверждения: 482913",
        "expires_at": "2026-01-01T12:05:00+00:00",
    }


def test_a_bad_secret_or_a_changed_body_does_not_verify(gateway):
    WebhookSender(gateway.url, SECRET)(message())
    ((headers, body),) = gateway.requests
    assert not verify_signature(generate_secret(), headers, body)
    assert not verify_signature(SECRET, headers, body.replace(b"482913", b"000000"))
    assert not verify_signature(SECRET, {**headers, "webhook-id": "other"}, body)
    without = {k: v for k, v in headers.items() if k.lower() != "webhook-signature"}
    assert not verify_signature(SECRET, without, body)


def test_a_stale_or_future_timestamp_is_rejected():
    body = b'{"x":1}'
    signature = sign(SECRET, "msg_1", 1_000_000, body)
    headers = {"Webhook-Id": "msg_1", "Webhook-Timestamp": "1000000", "Webhook-Signature": signature}
    assert verify_signature(SECRET, headers, body, now=1_000_000 + 300)
    assert not verify_signature(SECRET, headers, body, now=1_000_000 + 301)
    assert not verify_signature(SECRET, headers, body, now=1_000_000 - 301)
    assert verify_signature(SECRET, headers, body, tolerance=3600, now=1_000_000 + 3000)
    assert not verify_signature(SECRET, {**headers, "Webhook-Timestamp": "1e6"}, body, now=1_000_000)


def test_the_reference_vector_of_the_spec():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        # Several signatures (a key being rotated): one match is enough.
        "webhook-signature": f"v1,bm90IHRoaXMgb25l {expected}",
    }
    assert verify_signature(secret, headers, body, now=1614265330)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_ask_for_a_retry(gateway, status):
    gateway.answers.append((status, {"Retry-After": "3"}))
    with pytest.raises(RetryDelivery) as caught:
        WebhookSender(gateway.url, SECRET)(message())
    assert caught.value.after == 3.0
    assert str(caught.value) == f"webhook answered {status}"


@pytest.mark.parametrize("status", [400, 401, 302])
def test_other_answers_fail_the_channel_without_the_code_or_number(gateway, status):
    gateway.answers.append((status, {"Location": "/elsewhere"}))
    with pytest.raises(GatewayError) as caught:
        WebhookSender(gateway.url, SECRET)(message())
    assert str(caught.value) == f"webhook answered {status}"


def test_a_server_that_never_answers_fails_within_the_timeout():
    silent = socket.create_server(("127.0.0.1", 0))  # listens, never accepts
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        started = time.monotonic()
        with pytest.raises(RetryDelivery, match="did not answer in time"):
            WebhookSender(url, SECRET, timeout=0.5)(message())
        assert time.monotonic() - started < 2
    finally:
        silent.close()


def test_an_unreachable_server_asks_for_a_retry():
    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with pytest.raises(RetryDelivery, match="could not be reached"):
        WebhookSender(f"http://127.0.0.1:{port}/", SECRET)(message())


@pytest.mark.parametrize("secret", ["s3cret", "whsec_not base64!", "whsec_" + "YWJj", None])
def test_a_malformed_secret_is_refused_without_quoting_it(secret):
    with pytest.raises(ValueError) as caught:
        WebhookSender("http://127.0.0.1:1/", secret)
    assert "s3cret" not in str(caught.value) and "YWJj" not in str(caught.value)
    assert "***" in repr(WebhookSender("http://127.0.0.1:1/", SECRET))


def test_through_the_engine_a_retry_then_the_confirmation_link(make_app, gateway):
    app, sdkauth = make_app({"SERVER_NAME": "auth.test"})
    sender = WebhookSender(gateway.url, SECRET)
    sdkauth.add_channel_sender("sms", sender)
    sdkauth.add_channel_sender("sim_push", sender)
    gateway.answers.append((503, {"Retry-After": "0"}))
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
        history = sdkauth.engine.sessions.get(request_id).history
        push = sdkauth.create_widget("P", [Channel("sim_push")])
        sdkauth.send(push.id, RECIPIENT)
    assert [entry["outcome"] for entry in history] == ["retry", "sent"]
    first, retried, codeless = (json.loads(body)["data"] for _, body in gateway.requests)
    assert first["id"] == retried["id"] and first["code"] == retried["code"]
    assert codeless["code"] is None and codeless["confirmation_token"]
    assert codeless["confirmation_url"].startswith("http://auth.test/")
