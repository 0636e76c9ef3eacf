"""Completion and confirmation succeed exactly once under concurrent callers."""

from __future__ import annotations

import uuid

import pytest

from flask_sdkauth import Channel
from flask_sdkauth.signals import success_confirmation

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient, race, started

CALLERS = 24


@pytest.fixture
def shared_app(make_app, shared_database_uri):
    """An app whose database really is shared between threads (a file for SQLite).

    The per-session limits and the cap on wrong codes per number are off: these
    races test the state machine, and 24 calls on one session would otherwise
    mostly get 429."""
    config = {
        "SDKAUTH_RATELIMIT_CHECK_CODE_PER_SESSION": None,
        "SDKAUTH_RATELIMIT_RESEND_PER_SESSION": None,
        "SDKAUTH_RATELIMIT_FAILED_CODES_PER_RECIPIENT": None,
        "SQLALCHEMY_DATABASE_URI": shared_database_uri,
    }
    return make_app(config)


def _race(app, call):
    return race(app, [call] * CALLERS)


def _started_session(app, sdkauth, outbox):
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = started(api, widget.id)
    return api, request_id


def test_check_status_and_complete_is_true_exactly_once(shared_app, outbox):
    app, sdkauth = shared_app
    api, request_id = _started_session(app, sdkauth, outbox)
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}

    results = _race(app, lambda: sdkauth.check_status_and_complete(request_id, RECIPIENT))

    assert results.count(True) == 1
    assert results.count(False) == CALLERS - 1


def test_the_right_code_confirms_exactly_once(shared_app, outbox):
    app, sdkauth = shared_app
    api, request_id = _started_session(app, sdkauth, outbox)
    code = outbox.last.code

    confirmations = []
    with success_confirmation.connected_to(lambda sender, **kw: confirmations.append(kw), app):
        results = _race(app, lambda: sdkauth.engine.check_code(uuid.UUID(request_id), code))

    assert results.count(True) == 1
    # Of 24 callers only 3 take an attempt; one that finds them all taken while the
    # session is still being checked is told the attempts are used up.
    assert set(results) - {True} <= {
        "SessionAlreadyConfirmedException",
        "InvalidCodeException",
        "AttemptsExpiredException",
    }
    assert len(confirmations) == 1


def test_concurrent_wrong_codes_never_grant_extra_attempts(shared_app, outbox):
    app, sdkauth = shared_app
    api, request_id = _started_session(app, sdkauth, outbox)
    wrong = str((int(outbox.last.code) + 1) % 10**6).zfill(6)
    results = _race(app, lambda: sdkauth.engine.check_code(uuid.UUID(request_id), wrong))

    assert results.count("InvalidCodeException") == 2  # numberOfTries 3: two wrong, then over
    assert results.count("AttemptsExpiredException") == CALLERS - 2
    assert api.check_code(request_id, outbox.last.code).json["type"] == "AttemptsExpiredException"


def test_concurrent_resends_relaunch_once(shared_app, outbox, clock):
    app, sdkauth = shared_app
    api, request_id = _started_session(app, sdkauth, outbox)
    clock.advance(300)  # the code expired: resend needs no cooldown

    results = _race(app, lambda: sdkauth.engine.resend(uuid.UUID(request_id)))

    assert results.count(True) == 1
    assert set(results) - {True} == {"RestartCooldownActiveException"}
    assert len(outbox.messages) == 2
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}
