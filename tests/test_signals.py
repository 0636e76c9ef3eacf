"""The blinker signals of spec §9, sent with the app and the request id."""

from __future__ import annotations

import uuid
from contextlib import ExitStack

import pytest

from flask_sdkauth import (
    ChannelChangedException,
    InvalidCodeException,
    ResendChannelException,
    SessionNotFoundException,
    signals,
)

from .conftest import bearer
from .flow import WidgetClient, started, wrong

NAMES = [
    "session_created",
    "message_sent",
    "channel_changed",
    "resend_channel",
    "success_confirmation",
    "auth_error",
]


@pytest.fixture
def received(app):
    events = []
    with ExitStack() as stack:
        for name in NAMES:
            def receiver(sender, _name=name, **kwargs):
                assert sender is app
                events.append((_name, kwargs))

            stack.enter_context(getattr(signals, name).connected_to(receiver, app))
        yield events


def test_signals_through_a_whole_flow(app, sdkauth, widget, outbox, clock, received):
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = uuid.UUID(started(api, widget.id))
    api.check_code(request_id, wrong(outbox.last.code))
    clock.advance(300)
    api.channel(request_id)
    api.resend(request_id)
    api.status(request_id)
    api.channel(request_id)
    api.check_code(request_id, outbox.last.code)
    api.check_code(request_id, outbox.last.code)

    names = [name for name, _ in received]
    assert names == [
        "session_created",
        "message_sent",
        "auth_error",  # wrong code
        "resend_channel", "auth_error",  # code expired
        "message_sent",  # resend
        "channel_changed", "auth_error",  # status before re-fetching the channel
        "success_confirmation",
        "auth_error",  # the code again, after confirmation
    ]
    assert all(kwargs["request_id"] == request_id for _, kwargs in received)
    errors = [kwargs["error"] for name, kwargs in received if name == "auth_error"]
    assert [type(error) for error in errors][:3] == [
        InvalidCodeException, ResendChannelException, ChannelChangedException,
    ]
    assert received[3][1]["error"] is errors[1]
    assert "error" not in dict(received)["success_confirmation"]


def test_error_signal_for_an_unknown_session(app, sdkauth, received):
    request_id = uuid.uuid4()
    with app.app_context(), pytest.raises(SessionNotFoundException):
        sdkauth.engine.get_channel(request_id)
    assert received == [("auth_error", {"request_id": request_id, "error": received[0][1]["error"]})]
    assert isinstance(received[0][1]["error"], SessionNotFoundException)
