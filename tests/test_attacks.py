"""The guarantees under attack: concurrent guesses, bursts against every limit, and
one widget's token against another's session.

Every race runs real threads against a database they really share (a file for
SQLite; PostgreSQL when ``SDKAUTH_TEST_DATABASE_URL`` is set) and, for the rate
limits, against the memory storage and against Redis when ``SDKAUTH_TEST_REDIS_URL``
is set. Comparisons are counted where they happen (``code_matches``), not inferred
from the end state.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections import Counter

import pytest

import flask_sdkauth.confirming
from flask_sdkauth import Channel, SdkAuthError

from .conftest import bearer
from .flow import WidgetClient, race, wrong

REDIS_URL = os.environ.get("SDKAUTH_TEST_REDIS_URL")
STORAGES = ["memory://"] + ([REDIS_URL] if REDIS_URL else [])

#: Rounds of the guessing race: each is a fresh session and a burst of guesses.
ROUNDS = 15
GUESSES = 10
BURST = 20

_NO_LIMITS = {
    key: None
    for key in (
        "SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT",
        "SDKAUTH_RATELIMIT_SEND_PER_IP",
        "SDKAUTH_RATELIMIT_SEND_PER_WIDGET",
        "SDKAUTH_RATELIMIT_CHECK_CODE_PER_SESSION",
        "SDKAUTH_RATELIMIT_CHECK_CODE_PER_IP",
        "SDKAUTH_RATELIMIT_RESEND_PER_SESSION",
        "SDKAUTH_RATELIMIT_RESEND_PER_IP",
        "SDKAUTH_RATELIMIT_FAILED_CODES_PER_RECIPIENT",
    )
}


def _number() -> str:
    """A number of its own, so counters in a shared Redis never mix between tests."""
    return f"+7999{secrets.randbelow(10**7):07d}"


@pytest.fixture(params=STORAGES, ids=lambda url: url.partition(":")[0])
def storage_url(request):
    return request.param


@pytest.fixture
def shared(make_app, shared_database_uri, storage_url):
    """``build(limits) -> (app, sdkauth)`` over a really shared database, every limit
    off but those given."""

    def build(limits=None):
        config = {
            **_NO_LIMITS,
            "SQLALCHEMY_DATABASE_URI": shared_database_uri,
            "SDKAUTH_RATELIMIT_STORAGE_URL": storage_url,
            **(limits or {}),
        }
        return make_app(config)

    return build


@pytest.fixture
def comparisons(monkeypatch):
    """Every code comparison, as the request id it was made for."""
    made: list[uuid.UUID] = []
    real = flask_sdkauth.confirming.code_matches

    def counting(key, request_id, generation, secret, code_hash):
        made.append(request_id)
        return real(key, request_id, generation, secret, code_hash)

    monkeypatch.setattr(flask_sdkauth.confirming, "code_matches", counting)
    return made


def _http_race(app, requests):
    """Each request is ``fn(client)``; every thread has its own test client."""
    clients = [app.test_client() for _ in requests]
    results = race(app, [lambda r=r, c=c: r(c) for r, c in zip(requests, clients, strict=False)])
    return [(response.status_code, response.json) for response in results]


def _widget(app, sdkauth, **options):
    with app.app_context():
        return sdkauth.create_widget("W", [Channel("sms", **options)])


def _session(app, sdkauth, widget, outbox, number=None):
    """A started session: ``(request_id, code)``."""
    with app.app_context():
        request_id = sdkauth.send(widget.id, number or _number())
    return request_id, outbox.last.code


# -- attempts ---------------------------------------------------------------------


def test_concurrent_guesses_never_compare_more_than_number_of_tries(
    shared, outbox, comparisons
):
    """10 guesses at once on a 3-try session, one of them right, many times over:
    never more than 3 comparisons per launch, and the right guess wins only when it
    was one of them."""
    app, sdkauth = shared()
    widget = _widget(app, sdkauth)
    wins = 0
    for _ in range(ROUNDS):
        request_id, code = _session(app, sdkauth, widget, outbox)
        guesses = [wrong(code)] * (GUESSES - 1) + [code]
        comparisons.clear()
        results = race(
            app, [lambda g=g, r=request_id: sdkauth.engine.check_code(r, g) for g in guesses]
        )
        assert 1 <= len(comparisons) <= 3, results
        assert set(comparisons) == {request_id}
        counts = Counter(results)
        assert counts[True] <= 1
        # Every guess that was not compared was refused without touching the code.
        assert counts["InvalidCodeException"] + counts[True] <= 3
        wins += counts[True]
        assert set(counts) <= {
            True,
            "InvalidCodeException",
            "AttemptsExpiredException",
            "SessionAlreadyConfirmedException",
        }
    # With 3 of 10 guesses compared the right one is compared in about 3 rounds of
    # 10: winning every round would mean the limit was not holding.
    assert wins < ROUNDS


def test_right_code_after_concurrent_wrong_ones_never_wins(shared, outbox, comparisons):
    app, sdkauth = shared()
    widget = _widget(app, sdkauth)
    for _ in range(3):
        request_id, code = _session(app, sdkauth, widget, outbox)
        comparisons.clear()
        results = race(
            app,
            [lambda r=request_id, c=code: sdkauth.engine.check_code(r, wrong(c))] * GUESSES,
        )
        assert len(comparisons) == 3
        assert Counter(results) == {
            "InvalidCodeException": 2,
            "AttemptsExpiredException": GUESSES - 2,
        }
        with app.app_context(), pytest.raises(SdkAuthError) as refused:
            sdkauth.engine.check_code(request_id, code)
        assert refused.value.type == "AttemptsExpiredException"
        assert len(comparisons) == 3  # the right code was not even compared


def test_concurrent_codeless_confirmations_are_limited_too(make_app, shared_database_uri, comparisons):
    config = {**_NO_LIMITS, "SQLALCHEMY_DATABASE_URI": shared_database_uri,
              "SDKAUTH_NUMBER_MATCHING": False}
    app, sdkauth = make_app(config)
    messages = []
    sdkauth.add_channel_sender("sim_push", messages.append)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sim_push")])
        request_id = sdkauth.send(widget.id, _number())
    token = messages[-1].confirmation_token
    results = race(
        app, [lambda: sdkauth.engine.confirm(request_id, token + "x")] * GUESSES
    )
    assert len(comparisons) == 3
    assert Counter(results)["InvalidCodeException"] == 2
    with app.app_context(), pytest.raises(SdkAuthError) as refused:
        sdkauth.engine.confirm(request_id, token)
    assert refused.value.type == "AttemptsExpiredException"


# -- rate limits --------------------------------------------------------------------


def _statuses(results):
    return Counter(status for status, _ in results)


def test_burst_of_sends_for_one_number_gets_exactly_the_limit(shared):
    app, sdkauth = shared({"SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT": "3/minute"})
    widget = _widget(app, sdkauth)
    headers = bearer(app, sdkauth, widget.id)
    body = {"widgetId": str(widget.id), "recipient": _number()}
    results = _http_race(
        app, [lambda c: c.post("/", json=body, headers=headers)] * BURST
    )
    assert _statuses(results) == {201: 3, 429: BURST - 3}


def test_burst_of_code_checks_on_one_session_gets_exactly_the_limit(
    shared, outbox, comparisons
):
    app, sdkauth = shared({"SDKAUTH_RATELIMIT_CHECK_CODE_PER_SESSION": "10/minute"})
    widget = _widget(app, sdkauth, settings={"numberOfTries": 100})
    request_id, code = _session(app, sdkauth, widget, outbox)
    headers = bearer(app, sdkauth, widget.id)
    results = _http_race(
        app,
        [lambda c: c.post(f"/{request_id}/checkCode", json={"code": wrong(code)},
                          headers=headers)] * BURST,
    )
    assert _statuses(results) == {400: 10, 429: BURST - 10}
    assert len(comparisons) == 10


def test_burst_of_resends_on_one_session_gets_exactly_the_limit(shared, outbox, clock):
    app, sdkauth = shared({"SDKAUTH_RATELIMIT_RESEND_PER_SESSION": "5/minute"})
    widget = _widget(app, sdkauth)
    request_id, _ = _session(app, sdkauth, widget, outbox)
    headers = bearer(app, sdkauth, widget.id)
    results = _http_race(
        app, [lambda c: c.post(f"/{request_id}/resend", headers=headers)] * BURST
    )
    statuses = _statuses(results)
    assert statuses[429] == BURST - 5
    assert statuses[409] == 5  # within the cooldown: RestartCooldownActiveException


def test_burst_of_wrong_codes_for_one_number_gets_exactly_the_cap(
    shared, outbox, comparisons
):
    app, sdkauth = shared(
        {"SDKAUTH_RATELIMIT_FAILED_CODES_PER_RECIPIENT": "10 per 15 minutes"}
    )
    widget = _widget(app, sdkauth, settings={"numberOfTries": 100})
    number = _number()
    sessions = [_session(app, sdkauth, widget, outbox, number) for _ in range(4)]
    calls = [
        lambda s=s: sdkauth.engine.check_code(s[0], wrong(s[1]))
        for s in sessions * (BURST // len(sessions))
    ]
    results = race(app, calls)
    assert Counter(results) == {"InvalidCodeException": 10, "RateLimitException": BURST - 10}
    assert len(comparisons) == 10


def test_another_widgets_token_cannot_spend_a_sessions_limits(shared, outbox):
    app, sdkauth = shared(
        {
            "SDKAUTH_RATELIMIT_CHECK_CODE_PER_SESSION": "10/minute",
            "SDKAUTH_RATELIMIT_RESEND_PER_SESSION": "5/minute",
            "SDKAUTH_RATELIMIT_FAILED_CODES_PER_RECIPIENT": "10 per 15 minutes",
        }
    )
    victim = _widget(app, sdkauth)
    attacker = _widget(app, sdkauth)
    request_id, code = _session(app, sdkauth, victim, outbox)
    stranger = bearer(app, sdkauth, attacker.id)
    results = _http_race(
        app,
        [lambda c: c.post(f"/{request_id}/checkCode", json={"code": wrong(code)},
                          headers=stranger)] * 12
        + [lambda c: c.post(f"/{request_id}/resend", headers=stranger)] * 6,
    )
    assert _statuses(results) == {403: 18}
    owner = WidgetClient(app.test_client(), bearer(app, sdkauth, victim.id))
    assert owner.channel(request_id).json["remainingCodeAttempts"] == 3
    assert owner.check_code(request_id, code).json == {"success": True}


def test_refused_sends_do_not_spend_the_widget_budget(shared):
    app, sdkauth = shared({"SDKAUTH_RATELIMIT_SEND_PER_WIDGET": "2/minute"})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")], allowed_regions=["RU"])
    blocked = _number()
    sdkauth.recipient_in_blocklist_loader(lambda recipient, widget: recipient == blocked)
    headers = bearer(app, sdkauth, widget.id)

    def send(recipient):
        body = {"widgetId": str(widget.id), "recipient": recipient}
        return lambda c: c.post("/", json=body, headers=headers)

    refused = [send("+12015550123")] * 10 + [send(blocked)] * 6  # region, blocklist
    legit = [send(_number()) for _ in range(4)]
    results = _http_race(app, refused + legit)
    assert _statuses(results[:16]) == {400: 10, 403: 6}
    assert _statuses(results[16:]) == {201: 2, 429: 2}


@pytest.mark.parametrize(
    "config",
    [
        {"SDKAUTH_DAILY_SEND_CAP_PER_WIDGET": 5},
        {"SDKAUTH_DAILY_SEND_CAP_PER_COUNTRY": {"7": 5, "*": 1000}},
        {"SDKAUTH_RATELIMIT_SEND_PER_WIDGET": "5/minute"},
        {"SDKAUTH_RATELIMIT_SEND_PER_IP": "5/minute"},
    ],
    ids=["daily-per-widget", "daily-per-country", "per-widget", "per-ip"],
)
def test_burst_of_sends_gets_exactly_each_cap(shared, config):
    app, sdkauth = shared({"SDKAUTH_DAILY_SEND_CAP_PER_COUNTRY": None, **config})
    # The country's counter is keyed by its calling code alone, which every run
    # shares: start it from zero.
    with app.app_context():
        sdkauth.engine.guards.limiter.reset()
    widget = _widget(app, sdkauth)
    headers = bearer(app, sdkauth, widget.id)
    address = f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(256)}"

    def send(recipient):
        body = {"widgetId": str(widget.id), "recipient": recipient}
        return lambda c: c.post(
            "/", json=body, headers=headers, environ_overrides={"REMOTE_ADDR": address}
        )

    results = _http_race(app, [send(_number()) for _ in range(BURST)])
    assert _statuses(results) == {201: 5, 429: BURST - 5}
