"""Proxy mode (``SDKAUTH_UPSTREAM_URL``): what stays in front of SIGMA's service
and what is passed through, against a fake upstream (what it receives, its
failures) and against this project's own engine served on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from contextlib import ExitStack

import pytest

from flask_sdkauth import Channel
from flask_sdkauth.authenticator import NoLocalEngine

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient, race
from .gateway_server import Answer, closed_port_url, running
from .proxy import proxy_app, served, upstream_token
from .spec import error_body

WIDGET = uuid.UUID("7f0c2a52-0000-4000-8000-000000000001")
CHANNEL = {
    "type": "sms", "status": "sent", "label": "SMS", "codeType": "code", "payload": {},
    "settings": {"code": {"length": 6, "beautify": False}, "lifetime": 300,
                 "numberOfTries": 3, "numberOfRestart": 2, "restartCooldown": 300},
    "remainingCodeAttempts": 3,
}


def _upstream(received):
    """A fake otp-handler that answers every operation successfully."""
    path = received.path.partition("?")[0]
    if path == "/" and received.method == "POST":
        return Answer(201, {"requestId": str(uuid.uuid4())})
    if path.startswith("/widget/"):
        return Answer(200, {"isBlocked": False, "isActive": True, "name": "Sigma"})
    if path.endswith("/channel"):
        return Answer(200, CHANNEL)
    return Answer(201 if received.method == "POST" else 200, {"success": True})


@pytest.fixture
def fake(make_app):
    """``(app, sdkauth, api, gateway)``: an app proxying a fake upstream."""
    with running(_upstream) as gateway:
        app, sdkauth = proxy_app(make_app, gateway.url.rstrip("/"), "upstream-token")
        api = WidgetClient(app.test_client(), bearer(app, sdkauth, WIDGET))
        yield app, sdkauth, api, gateway


def _started(api, gateway):
    answer = api.send(WIDGET, "+7 (999) 123-45-67")
    assert answer.status_code == 201, answer.json
    return answer.json["requestId"]


def test_send_forwards_the_widget_and_the_number_only(fake):
    app, sdkauth, api, gateway = fake
    body = {"widgetId": str(WIDGET), "recipient": "+7 999 123 45 67", "captchaToken": "t"}
    answer = api.client.post("/", json=body, headers=api.headers)
    assert answer.status_code == 201
    uuid.UUID(answer.json["requestId"])
    assert answer.headers["Sdkauth-Recipient"] == RECIPIENT
    sent = gateway.last
    assert (sent.method, sent.path) == ("POST", "/")
    assert sent.json == {"widgetId": str(WIDGET), "recipient": RECIPIENT}
    assert sent.headers["Authorization"] == "Bearer upstream-token"
    assert not any("forwarded" in name.lower() or "real-ip" in name.lower()
                   for name in sent.headers)


def test_get_widget_adds_the_captcha_fields_here(make_app):
    with running(_upstream) as gateway:
        app, sdkauth = proxy_app(
            make_app, gateway.url, "k",
            {"SDKAUTH_CAPTCHA_PROVIDER": "yandex", "SDKAUTH_CAPTCHA_SECRET": "s",
             "SDKAUTH_CAPTCHA_VERIFY_URL": "http://127.0.0.1:1/never-called"},
        )
        api = WidgetClient(app.test_client(), bearer(app, sdkauth, WIDGET))
        assert api.widget(WIDGET).json == {
            "isBlocked": False, "isActive": True, "name": "Sigma",
            "captchaIsRequired": True, "captchaProvider": "yandex",
        }
        # The captcha is checked here: a send without its token never leaves.
        refused = api.send(WIDGET)
        assert refused.data == error_body("CaptchaNotConfirmedException")
        assert [r.path for r in gateway.received] == [f"/widget/{WIDGET}"]


def test_every_operation_reaches_the_same_path(fake):
    app, sdkauth, api, gateway = fake
    request_id = _started(api, gateway)
    REQUEST = request_id  # noqa: N806
    calls = [
        (api.channel(request_id), "GET", f"/{REQUEST}/channel"),
        (api.status(request_id), "GET", f"/{REQUEST}/status?recipient=%2B79991234567"),
        (api.check_code(request_id, "123456"), "POST", f"/{REQUEST}/checkCode"),
        (api.resend(request_id), "POST", f"/{REQUEST}/resend"),
        (api.complete(request_id), "POST", f"/{REQUEST}/complete"),
        (api.check_status_and_complete(request_id), "POST",
         f"/{REQUEST}/checkStatusAndComplete?recipient=%2B79991234567"),
        (api.client.get(f"/longPolling/{request_id}/channel", headers=api.headers), "GET",
         f"/longPolling/{REQUEST}/channel"),
        (api.client.get(f"/longPolling/{request_id}/status",
                        query_string={"recipient": RECIPIENT}, headers=api.headers),
         "GET", f"/longPolling/{REQUEST}/status?recipient=%2B79991234567"),
    ]
    for (answer, method, path), received in zip(calls, gateway.received[1:], strict=True):
        assert answer.status_code in (200, 201), (path, answer.json)
        assert (received.method, received.path) == (method, path)
    assert calls[0][0].json == CHANNEL
    assert gateway.received[3].json == {"code": "123456"}


def test_a_session_not_started_here_is_not_forwarded(fake):
    app, sdkauth, api, gateway = fake
    answer = api.channel(str(uuid.uuid4()))
    assert (answer.status_code, answer.data) == (404, error_body("SessionNotFoundException"))
    assert gateway.received == []


def test_another_widgets_token_is_refused_here(fake):
    app, sdkauth, api, gateway = fake
    request_id = _started(api, gateway)
    stranger = WidgetClient(app.test_client(), bearer(app, sdkauth, uuid.uuid4()))
    for answer in (stranger.channel(request_id), stranger.check_code(request_id, "1"),
                   stranger.check_status_and_complete(request_id)):
        assert (answer.status_code, answer.data) == (403, error_body("ForbiddenException"))
    assert len(gateway.received) == 1  # the send only


def test_rate_limits_are_counted_here(fake):
    app, sdkauth, api, gateway = fake
    assert [api.send(WIDGET).status_code for _ in range(4)] == [201, 201, 201, 429]
    assert len(gateway.received) == 3


@pytest.mark.parametrize(
    "answer",
    [
        Answer(400, "{\"type\":\"InvalidCodeException\",\"message\":\"Другой текст\","
                    "\"httpStatus\":400}".encode()),
        Answer(402, json.dumps({"type": "QuotaExceededException", "message": "Квота",
                                "httpStatus": 402}, ensure_ascii=False).encode()),
        Answer(429, b'{"type":"RateLimitException","message":"x","httpStatus":429}',
               headers={"Retry-After": "17"}),
    ],
    ids=["known-type-other-text", "unknown-type", "retry-after"],
)
def test_upstream_errors_pass_through_byte_for_byte(fake, answer):
    app, sdkauth, api, gateway = fake
    request_id = _started(api, gateway)
    gateway.queue.append(answer)
    proxied = api.check_code(request_id, "123456")
    assert (proxied.status_code, proxied.data) == (answer.status, answer.body)
    for name, value in answer.headers.items():
        assert proxied.headers[name] == value


@pytest.mark.parametrize(
    ("answer", "status", "kind"),
    [
        (Answer(502, b"<html>bad gateway</html>"), 500, "InternalServerErrorException"),
        (Answer(200, b"<html>login</html>"), 500, "InternalServerErrorException"),
        (Answer(401, None), 401, "Unauthorized"),
    ],
    ids=["5xx", "html", "401"],
)
def test_broken_upstream_answers_are_mapped(fake, answer, status, kind):
    app, sdkauth, api, gateway = fake
    request_id = _started(api, gateway)
    gateway.queue.append(answer)
    proxied = api.channel(request_id)
    assert (proxied.status_code, proxied.data) == (status, error_body(kind))


def test_an_unreachable_upstream_is_no_connection(make_app, caplog):
    app, sdkauth = proxy_app(make_app, closed_port_url(), "k")
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, WIDGET))
    with caplog.at_level(logging.DEBUG):
        answer = api.send(WIDGET)
    assert (answer.status_code, answer.data) == (503, error_body("NoConnectionException"))
    assert "9991234567" not in caplog.text


def test_the_token_loader_is_read_at_each_call(fake):
    app, sdkauth, api, gateway = fake
    tokens = iter(["first", "second"])
    sdkauth.upstream_token_loader(lambda: next(tokens))
    request_id = _started(api, gateway)
    api.channel(request_id)
    assert [r.headers["Authorization"] for r in gateway.received] == [
        "Bearer first", "Bearer second"
    ]


def test_no_token_at_all_is_a_logged_internal_error(make_app, caplog):
    with running(_upstream) as gateway:
        app, sdkauth = proxy_app(make_app, gateway.url, None, {"PROPAGATE_EXCEPTIONS": False})
        api = WidgetClient(app.test_client(), bearer(app, sdkauth, WIDGET))
        answer = api.send(WIDGET)
    assert (answer.status_code, answer.data) == (500, error_body("InternalServerErrorException"))
    assert "SDKAUTH_UPSTREAM_TOKEN" in caplog.text
    assert gateway.received == []


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"SDKAUTH_UPSTREAM_URL": "ftp://example"}, ValueError),
        ({"SDKAUTH_UPSTREAM_URL": 5}, TypeError),
        ({"SDKAUTH_UPSTREAM_URL": "http://h", "SDKAUTH_UPSTREAM_TOKEN": 5}, TypeError),
        ({"SDKAUTH_UPSTREAM_URL": "http://h", "SDKAUTH_UPSTREAM_TIMEOUT": 0}, ValueError),
    ],
)
def test_bad_upstream_settings_fail_init(make_app, config, error):
    with pytest.raises(error, match="SDKAUTH_UPSTREAM"):
        make_app(config, reset_database=False)


def test_what_has_no_meaning_in_proxy_mode_refuses_plainly(fake, clock):
    app, sdkauth, api, gateway = fake
    request_id = _started(api, gateway)
    with app.app_context(), pytest.raises(NoLocalEngine):
        sdkauth.engine  # noqa: B018
    listed = app.test_cli_runner().invoke(args=["sdkauth", "widget", "list"])
    assert listed.exit_code == 1 and "SDKAUTH_UPSTREAM_URL" in listed.output
    page = api.client.get(f"/{request_id}/confirm?token=abc")
    assert (page.status_code, page.data) == (404, error_body("RequestNotFoundException"))
    clock.advance(1)
    purged = app.test_cli_runner().invoke(args=["sdkauth", "purge", "--older-than", "0"])
    assert purged.exit_code == 0 and "Deleted 1" in purged.output
    assert api.channel(request_id).status_code == 404


# -- against this project's own engine ----------------------------------------


@pytest.fixture
def proxied(make_app, shared_database_uri, outbox):
    """``(front, front_sdkauth, api, upstream_app, upstream_sdkauth, widget)``."""
    app, sdkauth = make_app({"SQLALCHEMY_DATABASE_URI": shared_database_uri,
                             "SDKAUTH_LONG_POLLING_TIMEOUT": 5})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    with ExitStack() as stack:
        url = stack.enter_context(served(app))
        front, front_sdkauth = proxy_app(
            make_app, url, upstream_token(app, sdkauth, widget.id),
            {"SQLALCHEMY_DATABASE_URI": shared_database_uri},
        )
        api = WidgetClient(front.test_client(), bearer(front, front_sdkauth, widget.id))
        yield front, front_sdkauth, api, app, sdkauth, widget


def test_the_python_api_works_the_same_in_proxy_mode(proxied, outbox):
    front, front_sdkauth, api, app, sdkauth, widget = proxied
    with front.test_request_context():
        request_id = front_sdkauth.send(widget.id, RECIPIENT)
        assert front_sdkauth.verified_number(request_id) is None
    assert api.check_code(str(request_id), outbox.last.code).json == {"success": True}
    with front.test_request_context():
        assert front_sdkauth.verified_number(request_id) == RECIPIENT
        assert front_sdkauth.check_status_and_complete(request_id, "+7 999 123 45 67") is True
        assert front_sdkauth.check_status_and_complete(request_id, RECIPIENT) is False
        assert front_sdkauth.verified_number(uuid.uuid4()) is None
    with front.app_context():
        proxied = front_sdkauth.audit_number_hash("+7 999 123-45-67")
    with app.app_context():
        assert proxied == sdkauth.audit_number_hash(RECIPIENT)  # the same key here


def test_a_long_poll_through_the_proxy_wakes_on_confirmation(proxied, outbox):
    front, front_sdkauth, api, app, sdkauth, widget = proxied
    request_id = api.send(widget.id).json["requestId"]
    assert api.channel(request_id).status_code == 200  # the widget's first call
    code = outbox.last.code
    answers = []
    poll = threading.Thread(target=lambda: answers.append(front.test_client().get(
        f"/longPolling/{request_id}/status", query_string={"recipient": RECIPIENT},
        headers=api.headers,
    )))
    poll.start()
    assert api.check_code(request_id, code).json == {"success": True}
    poll.join(10)
    assert [(a.status_code, a.json) for a in answers] == [(200, {"success": True})]


def test_completion_through_the_proxy_happens_exactly_once(proxied, outbox):
    front, front_sdkauth, api, app, sdkauth, widget = proxied
    request_id = api.send(widget.id).json["requestId"]
    api.check_code(request_id, outbox.last.code)
    url = f"/{request_id}/checkStatusAndComplete?recipient=%2B79991234567"
    clients = [front.test_client() for _ in range(10)]
    answers = race(front, [lambda c=c: c.post(url, headers=api.headers).json for c in clients])
    assert sorted(answer["success"] for answer in answers) == [False] * 9 + [True]


def test_wrong_codes_through_the_proxy_end_the_session(proxied, outbox):
    front, front_sdkauth, api, app, sdkauth, widget = proxied
    request_id = api.send(widget.id).json["requestId"]
    code = outbox.last.code
    wrong = str((int(code) + 1) % 10**6).zfill(6)
    answers = [api.check_code(request_id, wrong).data for _ in range(3)]
    assert answers[:2] == [error_body("InvalidCodeException")] * 2
    assert answers[2] == error_body("AttemptsExpiredException")
    assert api.check_code(request_id, code).data == error_body("AttemptsExpiredException")


def test_the_settings_repr_shows_no_secret(make_app):
    app, sdkauth = make_app(
        {"SDKAUTH_UPSTREAM_URL": "http://127.0.0.1:1", "SDKAUTH_UPSTREAM_TOKEN": "tok-SECRET",
         "SDKAUTH_CODE_SECRET": "code-SECRET"},
        reset_database=False,
    )
    with app.app_context():
        shown = repr(sdkauth.settings)
    assert "SECRET" not in shown and "http://127.0.0.1:1" in shown


# -- the limits of proxy mode, as docs/upstream.rst states them ------------------


def test_a_send_the_service_refuses_has_spent_the_widget_budget(make_app):
    refused = Answer(404, b'{"type":"WidgetNotFoundException","message":"x","httpStatus":404}')
    with running(lambda received: refused) as gateway:
        app, sdkauth = proxy_app(
            make_app, gateway.url, "k", {"SDKAUTH_RATELIMIT_SEND_PER_WIDGET": "2/minute"}
        )
        api = WidgetClient(app.test_client(), bearer(app, sdkauth, WIDGET))
        answers = [api.send(WIDGET, f"+7999000000{i}").status_code for i in range(3)]
    assert answers == [404, 404, 429]
    assert len(gateway.received) == 2


def test_a_send_whose_session_cannot_be_remembered_is_503(fake, monkeypatch):
    from flask_sdkauth import NoConnectionException
    from flask_sdkauth.upstream import ProxiedSessions

    app, sdkauth, api, gateway = fake

    def database_down(self, session, created_at):
        raise NoConnectionException()

    monkeypatch.setattr(ProxiedSessions, "insert", database_down)
    answer = api.send(WIDGET)
    assert (answer.status_code, answer.data) == (503, error_body("NoConnectionException"))
    assert [r.path for r in gateway.received] == ["/"]  # the service was asked


def test_proxy_mode_sends_the_contracts_signals(fake):
    from flask_sdkauth import signals

    app, sdkauth, api, gateway = fake
    seen = []

    def record(name):
        return lambda sender, **extra: seen.append((name, extra.get("error") and extra["error"].type))

    receivers = {name: record(name) for name in
                 ("session_created", "success_confirmation", "channel_changed",
                  "resend_channel", "auth_error")}
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver, app)
    try:
        request_id = _started(api, gateway)
        assert api.check_code(request_id, "123456").status_code == 201
        for kind in ("ChannelChangedException", "ResendChannelException"):
            body = {"type": kind, "message": "m", "httpStatus": 400}
            gateway.queue.append(Answer(400, json.dumps(body).encode()))
            assert api.status(request_id).status_code == 400
    finally:
        for name, receiver in receivers.items():
            getattr(signals, name).disconnect(receiver, app)
    assert seen == [
        ("session_created", None),
        ("success_confirmation", None),
        ("channel_changed", "ChannelChangedException"),
        ("auth_error", "ChannelChangedException"),
        ("resend_channel", "ResendChannelException"),
        ("auth_error", "ResendChannelException"),
    ]
