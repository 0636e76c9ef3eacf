"""The Python API: send without HTTP, signals, and the dispatcher seam."""

from __future__ import annotations

import uuid

import pytest

from flask_sdkauth import (
    Channel,
    ForbiddenException,
    InlineDispatcher,
    LaunchJob,
    NoAvailableChannelsException,
    State,
    ValidateError,
    WidgetIsBlockedException,
    WidgetNotFoundException,
    signals,
)

from .conftest import bearer


def test_send_from_python(app, sdkauth, widget, outbox):
    with app.app_context():
        request_id = sdkauth.send(str(widget.id), "+7 999 123 45 67", client_ip="198.51.100.1")
        session = sdkauth.engine.sessions.get(request_id)
    assert outbox.last.request_id == request_id
    assert session.state is State.SENT and session.client_ip == "198.51.100.1"


@pytest.mark.parametrize(
    "setup, error",
    [
        ({"is_blocked": True}, WidgetIsBlockedException),
        ({"is_active": False}, ForbiddenException),
        ({"channels": []}, NoAvailableChannelsException),
    ],
)
def test_python_send_raises_the_contract_errors(app, sdkauth, setup, error):
    setup = dict(setup)
    channels = setup.pop("channels", [Channel("sms")])
    with app.app_context():
        widget = sdkauth.create_widget("W", channels, **setup)
        with pytest.raises(error):
            sdkauth.send(widget.id, "+79991234567")


def test_python_send_validates_its_arguments(app, sdkauth, widget):
    with app.app_context():
        with pytest.raises(WidgetNotFoundException):
            sdkauth.send(uuid.uuid4(), "+79991234567")
        with pytest.raises(ValidateError) as invalid_phone:
            sdkauth.send(widget.id, "12")
        with pytest.raises(ValidateError) as invalid_id:
            sdkauth.send("not-a-uuid", "+79991234567")
    assert invalid_phone.value.payload == {"recipient": ["Not a valid phone number."]}
    assert invalid_id.value.payload == {"widgetId": ["Not a valid UUID."]}


def test_signals_carry_the_app_and_request_id(app, sdkauth, widget, outbox):
    received = []

    def on_created(sender, **kwargs):
        received.append(("created", sender, kwargs))

    def on_sent(sender, **kwargs):
        received.append(("sent", sender, kwargs))

    with signals.session_created.connected_to(on_created, app), signals.message_sent.connected_to(on_sent, app):
        with app.app_context():
            request_id = sdkauth.send(widget.id, "+79991234567")

    assert received == [
        ("created", app, {"request_id": request_id, "widget_id": widget.id}),
        ("sent", app, {"request_id": request_id, "channel": "sms"}),
    ]


class DeferredDispatcher:
    """Collects launch jobs instead of running them, as a task queue would."""

    def __init__(self):
        self.jobs = []

    def dispatch(self, job, run):
        self.jobs.append(job)


def test_deferred_dispatcher_launches_later_through_the_engine(make_app, outbox):
    dispatcher = DeferredDispatcher()
    app, sdkauth = make_app(dispatcher=dispatcher)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        request_id = sdkauth.send(widget.id, "+79991234567")
        assert sdkauth.engine.sessions.get(request_id).state is State.PENDING
        assert outbox.messages == []
        assert dispatcher.jobs == [LaunchJob(request_id=request_id, generation=1)]

        session = sdkauth.engine.launch(dispatcher.jobs[0])

    assert session.state is State.SENT
    assert outbox.last.request_id == request_id


def test_deferred_send_answers_201_even_if_delivery_will_fail(make_app, outbox):
    app, sdkauth = make_app(dispatcher=DeferredDispatcher())
    with app.app_context():
        widget = sdkauth.create_widget("W", [])
        request_id = sdkauth.send(widget.id, "+79991234567")
        assert sdkauth.engine.launch(LaunchJob(request_id, generation=1)).state is State.NO_CHANNELS


def test_launch_of_an_unknown_session(app, sdkauth):
    from flask_sdkauth import SessionNotFoundException

    with app.app_context(), pytest.raises(SessionNotFoundException):
        sdkauth.engine.launch(LaunchJob(uuid.uuid4()))


def test_inline_dispatcher_runs_at_once():
    assert InlineDispatcher().dispatch(LaunchJob(uuid.uuid4()), lambda job: "ran") == "ran"


def test_message_repr_hides_the_code(app, sdkauth, widget, outbox):
    with app.app_context():
        sdkauth.send(widget.id, "+79991234567")
    assert outbox.last.code not in repr(outbox.last)


def test_message_id_names_its_launch_and_changes_with_each(app, sdkauth, widget, outbox, clock):
    from flask_sdkauth.message import MessageId

    with app.app_context():
        request_id = sdkauth.send(widget.id, "+79991234567")
        first = outbox.last.id
        clock.advance(300)  # the code expired: resend relaunches at once
        sdkauth.engine.resend(request_id)
    assert MessageId.parse(first) == MessageId(request_id, 1, 0)
    assert len(first) <= 48 and set(first) <= set("0123456789abcdef-")
    assert outbox.last.id != first
    assert MessageId.parse(outbox.last.id) == MessageId(request_id, 2, 0)
    assert MessageId.parse("not-an-id") is None
    assert outbox.last.id in repr(outbox.last)


def test_verified_number_is_the_e164_number_of_a_confirmed_session(app, sdkauth, widget, outbox, clock):
    from .flow import WidgetClient, started

    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = started(api, widget.id)
    with app.app_context():
        assert sdkauth.verified_number(request_id) is None  # sent, not confirmed
    api.check_code(request_id, outbox.last.code)
    with app.app_context():
        assert sdkauth.verified_number(request_id) == "+79991234567"
        # The notation the browser sent does not matter.
        assert sdkauth.check_status_and_complete(request_id, "+7 (999) 123-45-67")
        assert sdkauth.verified_number(uuid.UUID(request_id)) == "+79991234567"
        assert sdkauth.verified_number(uuid.uuid4()) is None
        with pytest.raises(ValidateError):
            sdkauth.verified_number("not-a-uuid")


def test_verified_number_of_a_closed_session_is_none(app, sdkauth, widget, outbox, clock):
    from .flow import WidgetClient, started

    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = started(api, widget.id)
    api.check_code(request_id, outbox.last.code)
    clock.advance(1800)  # SDKAUTH_SESSION_LIFETIME: confirmed but never completed
    with app.app_context():
        assert sdkauth.verified_number(request_id) is None
