"""``OtpHandlerClient``: every operation against a real server on 127.0.0.1 (this
project's own engine, whose contract is otp-handler's), and the failure paths of
spec §11 against a fake upstream."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from flask_sdkauth import (
    Channel,
    InternalServerErrorException,
    InvalidCodeException,
    NoConnectionException,
    PhoneNumberMismatchException,
    SdkAuthError,
    SessionNotFoundException,
    UnauthorizedException,
)
from flask_sdkauth.upstream import OtpHandlerClient

from .conftest import bearer
from .flow import RECIPIENT, wrong
from .gateway_server import Answer, closed_port_url, running
from .spec import error_body


@pytest.fixture
def upstream(make_app, shared_database_uri, outbox) -> Iterator:
    """``(url, token, widget, sdkauth)``: this project's engine served on a free port."""
    app, sdkauth = make_app({"SQLALCHEMY_DATABASE_URI": shared_database_uri,
                             "SDKAUTH_LONG_POLLING_TIMEOUT": 2})
    with app.app_context():
        widget = sdkauth.create_widget("Upstream", [Channel("sms")])
    token = bearer(app, sdkauth, widget.id)["Authorization"].removeprefix("Bearer ")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", token, widget, sdkauth
    finally:
        server.shutdown()
        thread.join(5)


def test_every_operation_against_a_real_server(upstream, outbox):
    url, token, widget, _ = upstream
    with OtpHandlerClient(url, token) as client:
        assert client.get_widget(widget.id) == {
            "isBlocked": False, "isActive": True, "name": "Upstream",
            "captchaIsRequired": False,
        }
        request_id = client.send(widget.id, RECIPIENT)
        assert isinstance(request_id, uuid.UUID)
        channel = client.get_channel(request_id)
        assert channel["type"] == "sms" and channel["status"] == "sent"
        assert client.get_status(request_id, RECIPIENT) is False
        with pytest.raises(InvalidCodeException) as wrong_code:
            client.check_code(request_id, wrong(outbox.last.code))
        assert wrong_code.value.verbatim is not None
        assert wrong_code.value.verbatim[0] == 400
        assert json.loads(wrong_code.value.verbatim[1])["type"] == "InvalidCodeException"
        assert client.check_code(request_id, outbox.last.code) is True
        assert client.get_status(request_id, RECIPIENT) is True
        assert client.wait_for_status(request_id, RECIPIENT) is True
        with pytest.raises(PhoneNumberMismatchException):
            client.check_status_and_complete(request_id, "+79990000000")
        assert client.check_status_and_complete(request_id, RECIPIENT) is True
        assert client.check_status_and_complete(request_id, RECIPIENT) is False
        assert client.complete(request_id) is False


def test_resend_and_the_channel_long_poll(upstream, outbox, clock):
    url, token, widget, _ = upstream
    client = OtpHandlerClient(url, token)
    request_id = client.send(widget.id, RECIPIENT)
    assert len(outbox.for_request(request_id)) == 1
    clock.advance(301)  # past the restart cooldown
    assert client.resend(request_id) is True
    assert len(outbox.for_request(request_id)) == 2
    assert client.check_code(request_id, outbox.last_for(request_id).code) is True
    # The channel was seen by no long poll yet: the long poll answers it at once.
    assert client.wait_for_channel(request_id)["status"] == "confirmed"


def test_unknown_session_and_a_bad_token(upstream):
    url, token, widget, _ = upstream
    with pytest.raises(SessionNotFoundException) as unknown:
        OtpHandlerClient(url, token).get_channel(uuid.uuid4())
    assert unknown.value.verbatim == (404, error_body("SessionNotFoundException"))
    with pytest.raises(UnauthorizedException):
        OtpHandlerClient(url, "not-a-token").send(widget.id, RECIPIENT)


def test_the_token_is_read_at_each_call(upstream):
    url, token, widget, _ = upstream
    tokens = iter(["expired", token])
    client = OtpHandlerClient(url, lambda: next(tokens))
    with pytest.raises(UnauthorizedException):
        client.get_widget(widget.id)
    assert client.get_widget(widget.id)["name"] == "Upstream"


# -- failures of the upstream service (spec §11) -------------------------------


def test_every_call_carries_the_bearer_token_and_json():
    with running(lambda received: Answer(201, {"requestId": str(uuid.UUID(int=7))})) as fake:
        client = OtpHandlerClient(fake.url.rstrip("/") + "/api/n/otp-handler", "key-1")
        assert client.send(uuid.UUID(int=1), "+79991234567") == uuid.UUID(int=7)
    assert fake.last.method == "POST"
    assert fake.last.path == "/api/n/otp-handler/"
    assert fake.last.headers["Authorization"] == "Bearer key-1"
    assert fake.last.json == {"widgetId": str(uuid.UUID(int=1)), "recipient": "+79991234567"}


def test_the_recipient_goes_in_the_query():
    with running(lambda received: Answer(200, {"success": True})) as fake:
        OtpHandlerClient(fake.url, "k").get_status(uuid.UUID(int=2), "+79991234567")
    assert fake.last.path == f"/{uuid.UUID(int=2)}/status?recipient=%2B79991234567"


@pytest.mark.parametrize(
    "answer",
    [
        Answer(500, {"type": "InternalServerErrorException", "message": "x", "httpStatus": 500}),
        Answer(502, b"<html>Bad gateway</html>"),
        Answer(200, b"<html>a login page</html>"),
        Answer(200, b"[1, 2]"),
        Answer(400, {"error": "not the contract's shape"}),
        Answer(201, {"requestId": "not-a-uuid"}),
    ],
    ids=["500", "502-html", "200-html", "200-list", "400-other-shape", "bad-request-id"],
)
def test_a_broken_answer_is_an_internal_server_error(answer):
    with running(lambda received: answer) as fake:
        with pytest.raises(InternalServerErrorException):
            OtpHandlerClient(fake.url, "k").send(uuid.UUID(int=1), RECIPIENT)


def test_an_unknown_error_type_is_kept_as_it_is():
    body = {"type": "QuotaExceededException", "message": "Квота исчерпана", "httpStatus": 402}
    raw = json.dumps(body, ensure_ascii=False).encode()
    answer = Answer(402, raw, headers={"Retry-After": "30"})
    with running(lambda received: answer) as fake:
        with pytest.raises(SdkAuthError) as caught:
            OtpHandlerClient(fake.url, "k").check_code(uuid.UUID(int=1), "123456")
    error = caught.value
    assert (error.type, error.http_status, error.message) == (
        "QuotaExceededException", 402, "Квота исчерпана"
    )
    assert error.verbatim == (402, raw)
    assert error.headers == {"Retry-After": "30"}


def test_upstream_401_is_unauthorized():
    with running(lambda received: Answer(401, None)) as fake:
        with pytest.raises(UnauthorizedException):
            OtpHandlerClient(fake.url, "k").complete(uuid.UUID(int=1))


def test_an_unreachable_service_is_no_connection():
    client = OtpHandlerClient(closed_port_url(), "k")
    with pytest.raises(NoConnectionException) as caught:
        client.send(uuid.UUID(int=1), "+79991234567")
    # Neither the number nor the URL is in the error or its cause.
    chain = f"{caught.value!r} {caught.value.__cause__!r}"
    assert "79991234567" not in chain and "127.0.0.1" not in chain


def test_a_service_that_hangs_times_out_as_no_connection():
    with running(lambda received: Answer(hang=True)) as fake:
        client = OtpHandlerClient(fake.url, "k", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(NoConnectionException):
            client.get_channel(uuid.UUID(int=1))
        assert time.monotonic() - started < 5


def test_long_polls_wait_longer_than_ordinary_calls():
    channel = {"type": "sms"}
    with running(lambda received: Answer(200, channel, delay=1.0)) as fake:
        client = OtpHandlerClient(fake.url, "k", timeout=0.4, long_poll_timeout=10)
        with pytest.raises(NoConnectionException):
            client.get_channel(uuid.UUID(int=1))
        assert client.wait_for_channel(uuid.UUID(int=1)) == channel
    assert fake.last.path == f"/longPolling/{uuid.UUID(int=1)}/channel"


def test_an_empty_url_is_refused():
    with pytest.raises(ValueError):
        OtpHandlerClient("", "k")
