"""Abuse protection over HTTP, each driven to its limit, one step past, and back.

The memory storage of the ``limits`` library reads ``time.time()``; the
``limits_clock`` fixture makes it read the tests' clock instead, so windows pass
without sleeping. Redis-backed limits run against the real Redis (where Redis
keeps the time) when ``SDKAUTH_TEST_REDIS_URL`` is set.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import types
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import limits.storage.memory
import limits.strategies
import pytest

import flask_sdkauth.ratelimits
from flask_sdkauth import Channel, signals

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient, started, wrong
from .spec import error_body

REDIS_URL = os.environ.get("SDKAUTH_TEST_REDIS_URL")


@pytest.fixture(autouse=True)
def limits_clock(monkeypatch, clock):
    fake_time = types.SimpleNamespace(time=lambda: clock.now.timestamp())
    for module in (limits.storage.memory, limits.strategies, flask_sdkauth.ratelimits):
        monkeypatch.setattr(module, "time", fake_time)


@pytest.fixture
def protected(make_app):
    """``(app, sdkauth, api, widget)`` with the given config over the defaults."""

    def build(config=None, channels=None, ip="198.51.100.7"):
        app, sdkauth = make_app(config)
        with app.app_context():
            widget = sdkauth.create_widget("W", channels or [Channel("sms"), Channel("voice")])
        api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
        api.client.environ_base["REMOTE_ADDR"] = ip
        return app, sdkauth, api, widget

    return build


def _number(i: int) -> str:
    return f"+7999{i:07d}"


def _assert_rate_limited(response, retry_after=None):
    assert response.status_code == 429, response.json
    assert response.data == error_body("RateLimitException")
    seconds = int(response.headers["Retry-After"])
    assert seconds >= 1
    if retry_after is not None:
        assert seconds == retry_after


class CaptchaServer:
    """A local stand-in for the providers' verify APIs, on a loopback port.

    Token ``good`` passes (with a score of 0.9 for Google), ``low`` passes with a
    score of 0.1, anything else fails. Every form received is recorded.
    """

    def __init__(self):
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                server.requests.append(form)
                token = form.get("response") or form.get("token")
                provider = self.path.strip("/")
                if provider == "yandex":
                    answer = {"status": "ok" if token == "good" else "failed"}
                else:
                    answer = {"success": token in ("good", "low")}
                    if provider == "google":
                        answer["score"] = 0.9 if token == "good" else 0.1
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def config(self, provider, **extra):
        port = self.httpd.server_address[1]
        return {
            "SDKAUTH_CAPTCHA_PROVIDER": provider,
            "SDKAUTH_CAPTCHA_SECRET": "s3cret",
            "SDKAUTH_CAPTCHA_VERIFY_URL": f"http://127.0.0.1:{port}/{provider}",
            **extra,
        }

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def captcha_server():
    server = CaptchaServer()
    yield server
    server.close()


# -- send ---------------------------------------------------------------------


def test_three_sends_a_minute_per_number(protected, clock):
    app, sdkauth, api, widget = protected()
    for _ in range(3):
        assert api.send(widget.id).status_code == 201
        clock.advance(10)
    # The first send's slot is free strictly after 60 s: Retry-After says 31.
    _assert_rate_limited(api.send(widget.id), retry_after=31)
    assert api.send(widget.id, _number(1)).status_code == 201  # another number
    clock.advance(31)
    assert api.send(widget.id).status_code == 201


def test_sends_per_ip(protected, clock):
    app, sdkauth, api, widget = protected({"SDKAUTH_RATELIMIT_SEND_PER_IP": "4/minute"})
    for i in range(4):
        assert api.send(widget.id, _number(i)).status_code == 201
    _assert_rate_limited(api.send(widget.id, _number(4)), retry_after=61)
    api.client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert api.send(widget.id, _number(5)).status_code == 201
    api.client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    clock.advance(61)
    assert api.send(widget.id, _number(6)).status_code == 201


def test_default_send_limit_per_ip_is_ten_a_minute(protected, clock):
    app, sdkauth, api, widget = protected()
    for i in range(10):
        assert api.send(widget.id, _number(i)).status_code == 201
    _assert_rate_limited(api.send(widget.id, _number(10)))


def test_sends_per_widget(protected, clock):
    app, sdkauth, api, widget = protected({"SDKAUTH_RATELIMIT_SEND_PER_WIDGET": "2/hour"})
    for i in range(2):
        assert api.send(widget.id, _number(i)).status_code == 201
    _assert_rate_limited(api.send(widget.id, _number(2)), retry_after=3601)
    clock.advance(3601)
    assert api.send(widget.id, _number(3)).status_code == 201


def test_client_ip_comes_from_the_hook(protected):
    app, sdkauth, api, widget = protected({"SDKAUTH_RATELIMIT_SEND_PER_IP": "1/minute"})
    addresses = iter(["192.0.2.1", "192.0.2.2", "192.0.2.1"])
    sdkauth.client_ip_loader(lambda: next(addresses))
    assert api.send(widget.id, _number(1)).status_code == 201
    assert api.send(widget.id, _number(2)).status_code == 201
    _assert_rate_limited(api.send(widget.id, _number(3)))


def _send_as(api, widget, number, remote_addr, **headers):
    body = {"widgetId": str(widget.id), "recipient": number}
    return api.client.post(
        "/", json=body, headers={**api.headers, **headers},
        environ_overrides={"REMOTE_ADDR": remote_addr},
    )


def test_proxy_fix_on_a_directly_reachable_app_lets_clients_pick_their_address(protected):
    """Why docs/deployment.rst says the app must not be reachable directly."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    app, sdkauth, api, widget = protected({"SDKAUTH_RATELIMIT_SEND_PER_IP": "1/minute"})
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)
    for i in range(4):  # straight from the client, no proxy in between
        forged = {"X-Forwarded-For": f"192.0.2.{i}"}
        assert _send_as(api, widget, _number(i), "203.0.113.50", **forged).status_code == 201


def test_proxy_fix_with_the_right_number_of_proxies_counts_the_client(protected):
    from werkzeug.middleware.proxy_fix import ProxyFix

    app, sdkauth, api, widget = protected({"SDKAUTH_RATELIMIT_SEND_PER_IP": "1/minute"})
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)
    proxy = "10.0.0.5"
    for i in range(3):
        # The client forges a first entry; the one proxy appends the real address.
        header = {"X-Forwarded-For": f"192.0.2.{i}, 203.0.113.50"}
        response = _send_as(api, widget, _number(i), proxy, **header)
        assert response.status_code == (201 if i == 0 else 429)


def test_client_ip_loader_of_the_docs_trusts_the_header_only_from_the_proxy(protected):
    from flask import request

    app, sdkauth, api, widget = protected({"SDKAUTH_RATELIMIT_SEND_PER_IP": "1/minute"})
    trusted_proxies = {"10.0.0.5"}

    @sdkauth.client_ip_loader
    def client_ip():
        if request.remote_addr in trusted_proxies:
            return request.headers.get("X-Real-IP", request.remote_addr)
        return request.remote_addr

    direct = [_send_as(api, widget, _number(i), "203.0.113.50", **{"X-Real-IP": f"192.0.2.{i}"})
              for i in range(2)]
    assert [r.status_code for r in direct] == [201, 429]
    proxied = [_send_as(api, widget, _number(5 + i), "10.0.0.5", **{"X-Real-IP": f"198.18.0.{i}"})
               for i in range(2)]
    assert [r.status_code for r in proxied] == [201, 201]


def test_limits_can_be_switched_off(protected):
    app, sdkauth, api, widget = protected({"SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT": None})
    for _ in range(6):
        assert api.send(widget.id).status_code == 201


# -- checkCode and resend -------------------------------------------------------


def test_check_code_per_session(protected, clock, outbox):
    app, sdkauth, api, widget = protected()
    request_id = started(api, widget.id)
    for _ in range(10):
        assert api.check_code(request_id, wrong(outbox.last.code)).status_code == 400
    _assert_rate_limited(api.check_code(request_id, outbox.last.code), retry_after=61)
    clock.advance(61)
    assert api.check_code(request_id, outbox.last.code).json["type"] == "AttemptsExpiredException"


def test_check_code_per_ip(protected, outbox):
    app, sdkauth, api, widget = protected({"SDKAUTH_RATELIMIT_CHECK_CODE_PER_IP": "2/minute"})
    first = started(api, widget.id)
    second = started(api, widget.id)
    assert api.check_code(first, "000000").status_code == 400
    assert api.check_code(second, "000000").status_code == 400
    _assert_rate_limited(api.check_code(second, "000000"))


def test_resend_per_session(protected, clock):
    app, sdkauth, api, widget = protected()
    request_id = started(api, widget.id)
    for _ in range(5):
        assert api.resend(request_id).json["type"] == "RestartCooldownActiveException"
    _assert_rate_limited(api.resend(request_id))
    clock.advance(300)
    assert api.resend(request_id).json == {"success": True}


def test_resend_per_ip(protected, clock):
    app, sdkauth, api, widget = protected({"SDKAUTH_RATELIMIT_RESEND_PER_IP": "1/minute"})
    first = started(api, widget.id)
    second = started(api, widget.id)
    assert api.resend(first).status_code == 409
    _assert_rate_limited(api.resend(second))


def test_wrong_codes_per_number_across_sessions(protected, clock, outbox):
    app, sdkauth, api, widget = protected({"SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT": None})
    for _ in range(3):  # three sessions, three wrong codes each
        request_id = started(api, widget.id)
        for _ in range(3):
            api.check_code(request_id, wrong(outbox.last.code))
    request_id = started(api, widget.id)
    assert api.check_code(request_id, wrong(outbox.last.code)).status_code == 400  # the 10th
    # The cap is reached: even the right code is refused, and no attempt is used.
    _assert_rate_limited(api.check_code(request_id, outbox.last.code))
    assert api.channel(request_id).json["remainingCodeAttempts"] == 2
    another = started(api, widget.id)
    _assert_rate_limited(api.check_code(another, outbox.last.code))
    # Another number is not affected.
    other = api.send(widget.id, _number(9)).json["requestId"]
    assert api.check_code(other, outbox.last.code).json == {"success": True}
    # The window is 15 minutes: then the real user gets in with a fresh session.
    clock.advance(15 * 60 + 1)
    fresh = started(api, widget.id)
    assert api.check_code(fresh, outbox.last.code).json == {"success": True}


# -- captcha ------------------------------------------------------------------


def test_captcha_after_the_free_requests(protected, captcha_server):
    app, sdkauth, api, widget = protected(captcha_server.config(
        "google", SDKAUTH_CAPTCHA_FIRST_FREE_REQUESTS_PER_IP=2,
    ))
    info = api.widget(widget.id).json
    assert (info["captchaIsRequired"], info["captchaProvider"]) == (False, "google")
    for i in range(2):
        assert api.send(widget.id, _number(i)).status_code == 201
    assert api.widget(widget.id).json["captchaIsRequired"] is True
    refused = api.send(widget.id, _number(2))
    assert refused.status_code == 400
    assert refused.data == error_body("CaptchaNotConfirmedException")
    body = {"widgetId": str(widget.id), "recipient": _number(3), "captchaToken": "good"}
    assert api.client.post("/", json=body, headers=api.headers).status_code == 201
    assert captcha_server.requests[-1] == {
        "secret": "s3cret", "response": "good", "remoteip": "198.51.100.7",
    }


@pytest.mark.parametrize(
    "provider, token, accepted",
    [
        ("google", "good", True),
        ("google", "low", False),
        ("google", "bad", False),
        ("yandex", "good", True),
        ("yandex", "bad", False),
        ("cloudflare", "good", True),
        ("cloudflare", "bad", False),
    ],
)
def test_captcha_providers(protected, captcha_server, provider, token, accepted):
    app, sdkauth, api, widget = protected(captcha_server.config(provider))
    assert api.widget(widget.id).json["captchaIsRequired"] is True
    body = {"widgetId": str(widget.id), "recipient": RECIPIENT, "captchaToken": token}
    response = api.client.post("/", json=body, headers=api.headers)
    assert response.status_code == (201 if accepted else 400)
    if not accepted:
        assert response.data == error_body("CaptchaNotConfirmedException")
    sent = captcha_server.requests[-1]
    assert sent["secret"] == "s3cret"
    assert sent["token" if provider == "yandex" else "response"] == token


def test_captcha_missing_token_is_not_sent_to_the_provider(protected, captcha_server):
    app, sdkauth, api, widget = protected(captcha_server.config("cloudflare"))
    response = api.send(widget.id)
    assert response.data == error_body("CaptchaNotConfirmedException")
    assert captcha_server.requests == []


def test_unreachable_provider_means_not_confirmed(protected, captcha_server):
    config = captcha_server.config("google")
    config["SDKAUTH_CAPTCHA_VERIFY_URL"] = "http://127.0.0.1:9/siteverify"  # discard port
    app, sdkauth, api, widget = protected(config)
    body = {"widgetId": str(widget.id), "recipient": RECIPIENT, "captchaToken": "good"}
    response = api.client.post("/", json=body, headers=api.headers)
    assert response.data == error_body("CaptchaNotConfirmedException")


def test_without_captcha_config(protected):
    app, sdkauth, api, widget = protected()
    assert api.widget(widget.id).json == {
        "isBlocked": False, "isActive": True, "name": "W", "captchaIsRequired": False,
    }


# -- SMS pumping ----------------------------------------------------------------


def test_region_allow_list(protected, make_app, outbox):
    app, sdkauth, api, widget = protected()
    with app.app_context():
        local = sdkauth.create_widget("RU only", [Channel("sms")], allowed_regions=["ru"])
    api.headers = bearer(app, sdkauth, local.id)
    refused = []
    with signals.send_refused.connected_to(lambda sender, **kw: refused.append(kw), app):
        response = api.send(local.id, "+12015550123")
    assert response.data == error_body("NoAvailableChannelsException")
    assert outbox.messages == []
    assert refused == [{"reason": "region", "widget_id": local.id}]
    assert api.send(local.id, RECIPIENT).status_code == 201


def test_daily_cap_per_widget(protected, clock):
    app, sdkauth, api, widget = protected({"SDKAUTH_DAILY_SEND_CAP_PER_WIDGET": 2})
    for i in range(2):
        assert api.send(widget.id, _number(i)).status_code == 201
    _assert_rate_limited(api.send(widget.id, _number(2)))
    clock.advance(24 * 3600 + 1)
    assert api.send(widget.id, _number(3)).status_code == 201


def test_daily_cap_per_country(protected, clock, outbox):
    app, sdkauth, api, widget = protected(
        {"SDKAUTH_DAILY_SEND_CAP_PER_COUNTRY": {"7": 1, "*": 100}}
    )
    assert api.send(widget.id, _number(1)).status_code == 201
    _assert_rate_limited(api.send(widget.id, _number(2)))
    assert api.send(widget.id, "+12015550123").status_code == 201
    assert len(outbox.messages) == 2


def test_caps_trip_before_any_sender_is_called(protected, outbox):
    app, sdkauth, api, widget = protected({"SDKAUTH_DAILY_SEND_CAP_PER_WIDGET": 1})
    api.send(widget.id, _number(1))
    api.send(widget.id, _number(2))
    assert len(outbox.messages) == 1


def test_sms_only_to_numbers_that_can_receive_it(protected, outbox):
    landline = "+74951234567"
    app, sdkauth, api, widget = protected()
    response = api.send(widget.id, landline)
    assert response.status_code == 201
    assert outbox.last.channel == "voice"  # a call can reach a landline
    with app.app_context():
        session = sdkauth.engine.sessions.get(uuid.UUID(response.json["requestId"]))
        assert sdkauth.engine.guards.refusals["number_type"] == 1
    assert [(a["channel"], a["outcome"], a["reason"]) for a in session.history[:1]] == [
        ("sms", "refused", "number type FIXED_LINE"),
    ]
    sms_only = protected(channels=[Channel("sms")])
    assert sms_only[2].send(sms_only[3].id, landline).data == error_body(
        "NoAvailableChannelsException"
    )


def test_sms_to_any_number_when_allowed(protected, outbox):
    app, sdkauth, api, widget = protected({"SDKAUTH_SMS_TO_MOBILE_ONLY": False})
    assert api.send(widget.id, "+74951234567").status_code == 201
    assert outbox.last.channel == "sms"


def test_refusals_are_counted_and_logged(protected, caplog):
    app, sdkauth, api, widget = protected({"SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT": "1/minute"})
    api.send(widget.id)
    api.send(widget.id)
    with app.app_context():
        assert sdkauth.engine.guards.refusals == {"rate_limit": 1}
    assert f"send refused (rate_limit) for widget {widget.id}" in caplog.text
    assert RECIPIENT not in caplog.text


# -- configuration ----------------------------------------------------------------


@pytest.mark.parametrize(
    "config, key",
    [
        ({"SDKAUTH_RATELIMIT_SEND_PER_IP": "lots"}, "SDKAUTH_RATELIMIT_SEND_PER_IP"),
        ({"SDKAUTH_RATELIMIT_SEND_PER_IP": 5}, "SDKAUTH_RATELIMIT_SEND_PER_IP"),
        ({"SDKAUTH_RATELIMIT_STORAGE_URL": "nowhere://"}, "SDKAUTH_RATELIMIT_STORAGE_URL"),
        ({"SDKAUTH_DAILY_SEND_CAP_PER_WIDGET": 0}, "SDKAUTH_DAILY_SEND_CAP_PER_WIDGET"),
        ({"SDKAUTH_DAILY_SEND_CAP_PER_COUNTRY": {"7": "many"}}, "SDKAUTH_DAILY_SEND_CAP_PER_COUNTRY"),
        ({"SDKAUTH_CAPTCHA_PROVIDER": "hcaptcha"}, "SDKAUTH_CAPTCHA_PROVIDER"),
        ({"SDKAUTH_CAPTCHA_PROVIDER": "google"}, "SDKAUTH_CAPTCHA_SECRET"),
        ({"SDKAUTH_CAPTCHA_FIRST_FREE_REQUESTS_PER_IP": -1}, "SDKAUTH_CAPTCHA_FIRST_FREE"),
    ],
)
def test_bad_protection_config_fails_at_init(make_app, config, key):
    with pytest.raises((TypeError, ValueError), match=key):
        make_app(config)


# -- Redis ---------------------------------------------------------------------


@pytest.mark.skipif(not REDIS_URL, reason="needs SDKAUTH_TEST_REDIS_URL (set by .ci/run)")
def test_limits_shared_through_redis(make_app, shared_database_uri):
    import time

    config = {
        "SQLALCHEMY_DATABASE_URI": shared_database_uri,
        "SDKAUTH_RATELIMIT_STORAGE_URL": REDIS_URL,
        # Wide enough that three sends fit in it on a loaded machine.
        "SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT": "2 per 5 seconds",
    }
    first, sdkauth = make_app(config)
    second, other = make_app(config, reset_database=False)
    with first.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    number = f"+7999{secrets.randbelow(10**7):07d}"
    apis = [
        WidgetClient(app.test_client(), bearer(app, ext, widget.id))
        for app, ext in ((first, sdkauth), (second, other))
    ]
    assert apis[0].send(widget.id, number).status_code == 201
    assert apis[1].send(widget.id, number).status_code == 201
    _assert_rate_limited(apis[0].send(widget.id, number))  # the count is shared
    time.sleep(5.1)
    assert apis[1].send(widget.id, number).status_code == 201
