"""Every operation in every state (spec §7.4), each session driven there over HTTP."""

from __future__ import annotations

import pytest

from flask_sdkauth import Channel

from .conftest import bearer
from .flow import WidgetClient, session_state, started, wrong
from .spec import error_body

OK = "ok"

# operation -> state -> (HTTP status, expected success value or error type)
EXPECTED = {
    "getChannel": {
        "pending": (200, "wait"),
        "sent": (200, "sent"),
        "channel_failed": (400, "ResendChannelException"),
        "confirmed": (200, "confirmed"),
        "completed": (400, "SessionClosedException"),
        "attempts_expired": (400, "AttemptsExpiredException"),
        "no_channels": (400, "NoAvailableChannelsException"),
        "closed": (400, "SessionClosedException"),
    },
    "getStatus": {
        "pending": (200, False),
        "sent": (200, False),
        "channel_failed": (400, "ResendChannelException"),
        "confirmed": (200, True),
        "completed": (200, False),
        "attempts_expired": (400, "AttemptsExpiredException"),
        "no_channels": (400, "NoAvailableChannelsException"),
        "closed": (400, "SessionClosedException"),
    },
    "checkCode": {
        "pending": (400, "InvalidCodeException"),
        "sent": (400, "InvalidCodeException"),
        "channel_failed": (400, "ResendChannelException"),
        "confirmed": (409, "SessionAlreadyConfirmedException"),
        "completed": (400, "SessionClosedException"),
        "attempts_expired": (400, "AttemptsExpiredException"),
        "no_channels": (400, "NoAvailableChannelsException"),
        "closed": (400, "SessionClosedException"),
    },
    "checkStatusAndComplete": {
        "pending": (201, False),
        "sent": (201, False),
        "channel_failed": (400, "ResendChannelException"),
        "confirmed": (201, True),
        "completed": (201, False),
        "attempts_expired": (400, "AttemptsExpiredException"),
        "no_channels": (400, "NoAvailableChannelsException"),
        "closed": (201, False),
    },
    "complete": {
        "pending": (201, False),
        "sent": (201, False),
        "channel_failed": (201, False),
        "confirmed": (201, True),
        "completed": (201, False),
        "attempts_expired": (201, False),
        "no_channels": (201, False),
        "closed": (201, False),
    },
    "resend": {
        "pending": (409, "RestartCooldownActiveException"),
        "sent": (409, "RestartCooldownActiveException"),
        "channel_failed": (201, True),
        "confirmed": (409, "SessionAlreadyConfirmedException"),
        "completed": (409, "SessionAlreadyConfirmedException"),
        "attempts_expired": (400, "AttemptsExpiredException"),
        "no_channels": (400, "NoAvailableChannelsException"),
        "closed": (400, "SessionClosedException"),
    },
}

CASES = [(op, state) for op, states in EXPECTED.items() for state in states]


class Deferred:
    def dispatch(self, job, run):
        return None


def _prepare(make_app, outbox, clock, state):
    """A session in ``state``, reached only through the public API and the clock."""
    options = {"dispatcher": Deferred()} if state == "pending" else {}
    app, sdkauth = make_app(**options)
    channels = [Channel("sms", settings={"numberOfRestart": 1})]
    with app.app_context():
        widget = sdkauth.create_widget("W", channels)
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    if state == "pending":
        request_id = api.send(widget.id).json["requestId"]
        assert api.channel(request_id).json["status"] == "wait"
        return app, sdkauth, api, request_id, None
    request_id = started(api, widget.id)
    code = outbox.last.code
    if state == "channel_failed":
        clock.advance(300)  # the code's lifetime
    elif state in ("confirmed", "completed"):
        assert api.check_code(request_id, code).json == {"success": True}
        if state == "completed":
            assert api.complete(request_id).json == {"success": True}
    elif state == "attempts_expired":
        for _ in range(3):
            api.check_code(request_id, wrong(code))
    elif state == "no_channels":
        clock.advance(300)
        assert api.resend(request_id).json == {"success": True}  # the one restart
        clock.advance(300)
        assert api.resend(request_id).json["type"] == "NoAvailableChannelsException"
    elif state == "closed":
        clock.advance(1800)  # the session's lifetime
    if state not in ("channel_failed", "closed"):
        assert session_state(app, sdkauth, request_id) == state
    return app, sdkauth, api, request_id, code


def _call(api, operation, request_id, code):
    if operation == "getChannel":
        return api.channel(request_id)
    if operation == "getStatus":
        return api.status(request_id)
    if operation == "checkCode":
        return api.check_code(request_id, wrong(code) if code else "123456")
    if operation == "checkStatusAndComplete":
        return api.check_status_and_complete(request_id)
    if operation == "complete":
        return api.complete(request_id)
    return api.resend(request_id)


@pytest.mark.parametrize("operation, state", CASES)
def test_operation_in_state(make_app, outbox, clock, operation, state):
    app, sdkauth, api, request_id, code = _prepare(make_app, outbox, clock, state)

    response = _call(api, operation, request_id, code)

    status, expected = EXPECTED[operation][state]
    assert response.status_code == status, response.json
    if isinstance(expected, bool):
        assert response.json == {"success": expected}
    elif operation == "getChannel" and status == 200:
        assert response.json["status"] == expected
    else:
        assert response.data == error_body(expected)


@pytest.mark.parametrize("state", ["attempts_expired", "completed", "closed", "confirmed"])
@pytest.mark.parametrize("operation", ["getStatus", "checkStatusAndComplete"])
def test_recipient_is_checked_before_any_state_is_revealed(make_app, outbox, clock, state, operation):
    app, sdkauth, api, request_id, code = _prepare(make_app, outbox, clock, state)
    if operation == "getStatus":
        response = api.status(request_id, "+79990000000")
    else:
        response = api.check_status_and_complete(request_id, "+79990000000")
    assert response.status_code == 409
    assert response.data == error_body("PhoneNumberMismatchException")
