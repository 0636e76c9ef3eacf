"""Delivery inline: sender timeouts, retries, delivery reports, time-driven fallback,
and the sweep of lost launches."""

from __future__ import annotations

import logging
import threading
import uuid

import pytest
from flask import current_app, request

from flask_sdkauth import (
    Channel,
    InlineDispatcher,
    LaunchJob,
    NoConnectionException,
    RetryDelivery,
    State,
)
from flask_sdkauth.dispatchers import DISPATCHERS

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient, race, started
from .spec import error_body


def _session(app, sdkauth, request_id):
    with app.app_context():
        return sdkauth.engine.sessions.get(uuid.UUID(str(request_id)))


def _outcomes(session):
    return [(entry["channel"], entry["outcome"]) for entry in session.history]


def _client(app, sdkauth, widget):
    return WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))


class Hanging:
    """A sender that blocks until released, then records that it returned."""

    def __init__(self):
        self.release = threading.Event()
        self.returned = threading.Event()
        self.messages = []

    def __call__(self, message):
        self.messages.append(message)
        self.release.wait(30)
        self.returned.set()


class Flaky:
    """Raises RetryDelivery ``failures`` times, then accepts."""

    def __init__(self, failures, after=0.0):
        self.failures = failures
        self.after = after
        self.messages = []

    def __call__(self, message):
        self.messages.append(message)
        if len(self.messages) <= self.failures:
            raise RetryDelivery("gateway answered 503", after=self.after)


# -- sender timeout -------------------------------------------------------------


def test_a_hanging_sender_times_out_and_the_next_channel_is_used(make_app, outbox):
    app, sdkauth = make_app({"SDKAUTH_SENDER_TIMEOUT": 0.3})
    hanging = Hanging()
    sdkauth.add_channel_sender("sms", hanging)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
    api = _client(app, sdkauth, widget)
    try:
        # send answers while the SMS gateway is still hanging.
        request_id = started(api, widget.id)
        assert not hanging.returned.is_set()
        channel = api.channel(request_id).json
        assert (channel["type"], channel["status"]) == ("voice", "sent")
        session = _session(app, sdkauth, request_id)
        assert _outcomes(session) == [("sms", "timeout"), ("voice", "sent")]
        assert session.history[0]["reason"] == "no answer within 0.3 s"
        assert api.check_code(request_id, outbox.last.code).json == {"success": True}
    finally:
        hanging.release.set()
    # The stuck call went on in its thread; its late return changes nothing.
    assert hanging.returned.wait(5)
    assert _session(app, sdkauth, request_id).state is State.CONFIRMED


def test_a_timeout_on_the_last_channel_is_no_available_channels(make_app):
    app, sdkauth = make_app({"SDKAUTH_SENDER_TIMEOUT": 0.2})
    hanging = Hanging()
    sdkauth.add_channel_sender("sms", hanging)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    try:
        response = _client(app, sdkauth, widget).send(widget.id)
    finally:
        hanging.release.set()
    assert response.status_code == 400
    assert response.data == error_body("NoAvailableChannelsException")


def test_the_sender_runs_with_the_callers_app_and_request(make_app, outbox):
    app, sdkauth = make_app()
    seen = {}

    def sender(message):
        seen["app"] = current_app.name
        seen["path"] = request.path
        seen["thread"] = threading.current_thread().name

    sdkauth.add_channel_sender("sms", sender)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    started(_client(app, sdkauth, widget), widget.id)
    assert seen["app"] == app.name
    assert seen["path"] == "/"
    assert seen["thread"] != threading.main_thread().name


# -- retries --------------------------------------------------------------------


def test_retry_delivery_tries_the_same_launch_again(make_app):
    app, sdkauth = make_app()
    flaky = Flaky(failures=2)
    sdkauth.add_channel_sender("sms", flaky)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
    api = _client(app, sdkauth, widget)
    request_id = started(api, widget.id)
    assert len(flaky.messages) == 3
    # Same id and code on every try: the gateway can deduplicate.
    assert len({(message.id, message.code) for message in flaky.messages}) == 1
    session = _session(app, sdkauth, request_id)
    assert _outcomes(session) == [("sms", "retry"), ("sms", "retry"), ("sms", "sent")]
    assert session.history[0]["reason"] == "RetryDelivery: gateway answered 503"
    assert api.check_code(request_id, flaky.messages[0].code).json == {"success": True}


def test_retries_used_up_fall_back_to_the_next_channel(make_app, outbox):
    app, sdkauth = make_app({"SDKAUTH_DELIVERY_RETRIES": 1})
    flaky = Flaky(failures=5)
    sdkauth.add_channel_sender("sms", flaky)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
    request_id = started(_client(app, sdkauth, widget), widget.id)
    assert len(flaky.messages) == 2
    assert _outcomes(_session(app, sdkauth, request_id)) == [
        ("sms", "retry"),
        ("sms", "failed"),
        ("voice", "sent"),
    ]


def test_inline_retries_fit_in_the_sender_timeout(make_app, outbox):
    app, sdkauth = make_app({"SDKAUTH_SENDER_TIMEOUT": 1})
    sleeps = []
    flaky = Flaky(failures=1, after=5)  # a backoff beyond the timeout: no retry
    sdkauth.add_channel_sender("sms", flaky)
    with app.app_context():
        sdkauth.engine.launcher.sleep = sleeps.append
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
    request_id = started(_client(app, sdkauth, widget), widget.id)
    assert sleeps == []
    assert len(flaky.messages) == 1
    assert _outcomes(_session(app, sdkauth, request_id)) == [("sms", "failed"), ("voice", "sent")]


class Deferred:
    """Keeps launch jobs, as a queue would, until the test runs them."""

    def __init__(self):
        self.jobs = []
        self.fallbacks = []

    def dispatch(self, job, run):
        self.jobs.append(job)

    def schedule_fallback(self, request_id, generation, delay):
        self.fallbacks.append((request_id, generation, delay))


def _queued_launch_sleeps(make_app, config, flaky):
    """Send through a queue, run the launch as a worker would with ``flaky`` as the
    SMS sender, and return the backoffs the launcher slept (it must end sent)."""
    app, sdkauth = make_app(config, dispatcher=Deferred())
    sleeps = []
    sdkauth.add_channel_sender("sms", flaky)
    with app.app_context():
        engine = sdkauth.engine
        engine.launcher.sleep = sleeps.append
        widget = sdkauth.create_widget("W", [Channel("sms")])
        sdkauth.send(widget.id, RECIPIENT)
        assert engine.launch(engine.dispatcher.jobs[0]).state is State.SENT
    return sleeps


def test_a_queued_launch_waits_out_the_backoff(make_app):
    # Off the request, a backoff longer than the inline budget is waited out...
    config = {"SDKAUTH_SENDER_TIMEOUT": 8}
    assert _queued_launch_sleeps(make_app, config, Flaky(failures=2, after=5)) == [5, 5]


def test_a_gateways_retry_after_is_capped_at_the_sender_timeout(make_app):
    # ...but never longer than the sender timeout: a worker must not sleep an hour.
    config = {"SDKAUTH_SENDER_TIMEOUT": 2}
    assert _queued_launch_sleeps(make_app, config, Flaky(failures=2, after=3600)) == [2, 2]


def test_default_backoff_doubles(make_app):
    config = {"SDKAUTH_DELIVERY_RETRIES": 3}
    flaky = Flaky(failures=3, after=None)
    assert _queued_launch_sleeps(make_app, config, flaky) == [1.0, 2.0, 4.0]


def test_retry_delivery_refuses_a_negative_backoff():
    with pytest.raises(ValueError):
        RetryDelivery("x", after=-1)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SDKAUTH_SENDER_TIMEOUT", 0),
        ("SDKAUTH_SENDER_TIMEOUT", "10"),
        ("SDKAUTH_DELIVERY_RETRIES", -1),
        ("SDKAUTH_DELIVERY_RETRIES", 1.5),
        ("SDKAUTH_LAUNCH_DEADLINE", True),
        ("SDKAUTH_DISPATCHER", "rq"),
    ],
)
def test_delivery_settings_are_checked(make_app, key, value):
    with pytest.raises(ValueError, match=key):
        make_app({key: value}, reset_database=False)


def test_dispatcher_names():
    assert DISPATCHERS == {"inline", "celery"}


# -- delivery reports -------------------------------------------------------------


@pytest.fixture
def two_channels(app, sdkauth):
    with app.app_context():
        return sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])


def test_a_failed_report_moves_the_session_to_the_next_channel(app, sdkauth, two_channels, outbox):
    api = _client(app, sdkauth, two_channels)
    request_id = started(api, two_channels.id)
    sms = outbox.last
    with app.app_context():
        sdkauth.report_delivery(sms.id, "failed", reason=f"unreachable {RECIPIENT}")
    assert outbox.last.channel == "voice"
    # The widget follows the switch it did not ask for.
    response = api.status(request_id)
    assert response.data == error_body("ChannelChangedException")
    assert api.channel(request_id).json["type"] == "voice"
    session = _session(app, sdkauth, request_id)
    report = session.history[1]
    assert report["outcome"] == "report"
    assert (report["status"], report["message"], report["current"]) == ("failed", sms.id, True)
    assert RECIPIENT.lstrip("+") not in report["reason"]
    assert _outcomes(session)[-1] == ("voice", "sent")
    # The old code is dead, the new one works.
    assert api.check_code(request_id, sms.code).status_code == 400
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}


def test_a_failed_report_on_the_last_channel_waits_for_resend(app, sdkauth, outbox):
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    api = _client(app, sdkauth, widget)
    request_id = started(api, widget.id)
    with app.app_context():
        sdkauth.report_delivery(outbox.last.id, "failed")
    assert api.channel(request_id).data == error_body("ResendChannelException")
    assert api.resend(request_id).json == {"success": True}
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}


@pytest.mark.parametrize("status", ["sent", "delivered", "read"])
def test_other_reports_are_recorded_only(app, sdkauth, two_channels, outbox, status):
    api = _client(app, sdkauth, two_channels)
    request_id = started(api, two_channels.id)
    with app.app_context():
        sdkauth.report_delivery(outbox.last.id, status)
        sdkauth.report_delivery(outbox.last.id, status)  # a repeat
    session = _session(app, sdkauth, request_id)
    assert session.state is State.SENT
    assert [entry.get("status") for entry in session.history] == [None, status, status]
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}


def test_a_report_for_an_earlier_launch_changes_nothing(app, sdkauth, two_channels, outbox, clock):
    api = _client(app, sdkauth, two_channels)
    request_id = started(api, two_channels.id)
    first = outbox.last
    clock.advance(300)
    assert api.resend(request_id).json == {"success": True}
    with app.app_context():
        sdkauth.report_delivery(first.id, "failed")
    session = _session(app, sdkauth, request_id)
    assert session.state is State.SENT
    assert session.history[-1]["current"] is False
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}


@pytest.mark.parametrize(
    "message_id",
    ["", "nonsense", f"{uuid.uuid4().hex}-1-0", f"{uuid.uuid4().hex}-0-0", None, 42],
)
def test_reports_for_unknown_ids_are_ignored(app, sdkauth, message_id):
    with app.app_context():
        assert sdkauth.report_delivery(message_id, "delivered") is None


def test_an_unknown_status_is_a_value_error(app, sdkauth, two_channels, outbox):
    started(_client(app, sdkauth, two_channels), two_channels.id)
    with app.app_context(), pytest.raises(ValueError, match="undelivered"):
        sdkauth.report_delivery(outbox.last.id, "undelivered")


def test_a_report_on_a_closed_session_is_recorded(app, sdkauth, two_channels, outbox):
    api = _client(app, sdkauth, two_channels)
    request_id = started(api, two_channels.id)
    api.check_code(request_id, outbox.last.code)
    with app.app_context():
        sdkauth.report_delivery(outbox.last.id, "failed")
    session = _session(app, sdkauth, request_id)
    assert session.state is State.CONFIRMED
    assert session.history[-1]["status"] == "failed"


def test_a_report_before_an_inline_send_has_answered_is_ignored(make_app, caplog):
    """Inline, send writes its session once its launch is over (one INSERT): a
    report that beats the sender's own return finds no session yet, is logged and
    changes nothing; the channel stays sent, as when such a report was recorded."""
    app, sdkauth = make_app()

    def reporting_sender(message):
        # A fast gateway's webhook can beat the sender's own return.
        sdkauth.report_delivery(message.id, "failed")

    sdkauth.add_channel_sender("sms", reporting_sender)
    with app.app_context(), caplog.at_level(logging.INFO, logger="flask_sdkauth"):
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
    session = _session(app, sdkauth, request_id)
    assert (session.state, session.channel["type"]) == (State.SENT, "sms")
    assert [entry["outcome"] for entry in session.history] == ["sent"]
    assert "delivery report 'failed' for no known message ignored" in caplog.text


def test_a_failure_reported_before_a_resends_sender_returns_is_only_recorded(
    make_app, clock
):
    app, sdkauth = make_app()
    calls = []

    def reporting_sender(message):
        calls.append(message.id)
        if len(calls) == 2:
            # A fast gateway's webhook beats the resend's sender: the launch is
            # still pending, so the report is kept and acts on nothing.
            sdkauth.report_delivery(message.id, "failed")

    sdkauth.add_channel_sender("sms", reporting_sender)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
    clock.advance(301)  # past the restart cooldown
    assert _client(app, sdkauth, widget).resend(str(request_id)).status_code == 201
    session = _session(app, sdkauth, request_id)
    assert (session.state, session.channel["type"]) == (State.SENT, "sms")
    assert [(entry["outcome"], entry.get("current")) for entry in session.history] == [
        ("sent", None),
        ("report", False),
        ("sent", None),
    ]


def test_concurrent_reports_are_all_kept_and_fall_back_once(
    make_app, shared_database_uri, outbox
):
    app, sdkauth = make_app({"SQLALCHEMY_DATABASE_URI": shared_database_uri})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
    sms_id = outbox.last.id

    def report(status):
        return lambda: sdkauth.report_delivery(sms_id, status)

    race(app, [report("delivered"), report("failed")] * 8)
    session = _session(app, sdkauth, request_id)
    reports = [entry["status"] for entry in session.history if entry["outcome"] == "report"]
    assert sorted(reports) == ["delivered"] * 8 + ["failed"] * 8
    # One fallback: one voice message, one new launch.
    assert [message.channel for message in outbox.messages] == ["sms", "voice"]
    assert session.generation == 2
    assert session.state is State.SENT


# -- time-driven fallback ----------------------------------------------------------


def _started_with_fallback(app, sdkauth, *channels):
    """A session of a widget whose SMS falls back to voice after 30 s (or of
    ``channels``), its channel fetched: the widget's client and the request id."""
    channels = channels or (Channel("sms", settings={"fallbackAfter": 30}), Channel("voice"))
    widget = _fallback_widget(app, sdkauth, *channels)
    api = _client(app, sdkauth, widget)
    return api, started(api, widget.id)


def _fallback_widget(app, sdkauth, *channels):
    with app.app_context():
        return sdkauth.create_widget("W", channels)


def test_fallback_after_moves_an_unconfirmed_code_to_the_next_channel(app, sdkauth, outbox, clock):
    api, request_id = _started_with_fallback(app, sdkauth)
    assert api.channel(request_id).json["settings"]["fallbackAfter"] == 30
    clock.advance(29)
    assert api.status(request_id).json == {"success": False}
    assert outbox.last.channel == "sms"
    clock.advance(1)
    # The next read does it, inline: the widget sees the switch.
    assert api.status(request_id).data == error_body("ChannelChangedException")
    assert outbox.last.channel == "voice"
    channel = api.channel(request_id).json
    assert (channel["type"], channel["status"]) == ("voice", "sent")
    assert "fallbackAfter" not in channel["settings"]
    session = _session(app, sdkauth, request_id)
    assert ("sms", "fallback") in _outcomes(session)
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}


@pytest.mark.parametrize("read", ["channel", "check_code", "resend"])
def test_fallback_happens_on_any_read(app, sdkauth, outbox, clock, read):
    api, request_id = _started_with_fallback(app, sdkauth)
    sms_code = outbox.last.code
    clock.advance(30)
    if read == "check_code":
        # The old channel's code no longer counts once the engine has moved on.
        assert api.check_code(request_id, sms_code).status_code == 400
    else:
        getattr(api, read)(request_id)
    assert outbox.last.channel == "voice"


def test_no_fallback_without_a_later_channel_that_has_a_sender(app, sdkauth, outbox, clock):
    widget = _fallback_widget(
        app, sdkauth, Channel("sms", settings={"fallbackAfter": 30}), Channel("viber")
    )
    api = _client(app, sdkauth, widget)
    request_id = started(api, widget.id)
    clock.advance(60)
    channel = api.channel(request_id).json
    assert (channel["type"], channel["status"]) == ("sms", "sent")
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}


def test_a_queued_dispatcher_is_asked_to_schedule_the_fallback(make_app, outbox, clock):
    dispatcher = Deferred()
    app, sdkauth = make_app(dispatcher=dispatcher)
    with app.app_context():
        widget = sdkauth.create_widget(
            "W", [Channel("sms", settings={"fallbackAfter": 45}), Channel("voice")]
        )
        request_id = sdkauth.send(widget.id, RECIPIENT)
        session = sdkauth.engine.launch(dispatcher.jobs.pop())
        assert dispatcher.fallbacks == [(request_id, session.generation, 45.0)]
        # Early, the scheduled call does nothing; when due, it falls back.
        assert sdkauth.engine.fall_back_if_due(request_id, session.generation).state is State.SENT
        clock.advance(45)
        moved = sdkauth.engine.fall_back_if_due(request_id, session.generation)
        assert moved.state is State.PENDING
        assert dispatcher.jobs == [
            LaunchJob(request_id, 1, 0, session.generation + 1, fallback=True)
        ]
        # A second call for the same launch is stale.
        again = sdkauth.engine.fall_back_if_due(request_id, session.generation)
        assert again.generation == session.generation + 1


def test_fallback_after_is_checked():
    with pytest.raises(ValueError):
        Channel("sms", settings={"fallbackAfter": 0})
    with pytest.raises(TypeError):
        Channel("sms", settings={"fallbackAfter": "30"})
    assert "fallbackAfter" not in Channel("sms").to_dict()["settings"]
    assert Channel.from_dict(Channel("sms", settings={"fallbackAfter": 9}).to_dict()).settings.fallback_after == 9


# -- lost launches ----------------------------------------------------------------------


class Dropping(InlineDispatcher):
    """Loses launch jobs while ``dropping`` is set, as a dead worker would."""

    dropping = True

    def dispatch(self, job, run):
        if self.dropping:
            return None
        return run(job)


def test_the_sweep_relaunches_a_lost_launch(make_app, outbox, clock):
    dispatcher = Dropping()
    app, sdkauth = make_app(dispatcher=dispatcher)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
    api = _client(app, sdkauth, widget)
    request_id = api.send(widget.id).json["requestId"]
    assert api.channel(request_id).json["status"] == "wait"
    dispatcher.dropping = False
    clock.advance(59)
    with app.app_context():
        assert sdkauth.sweep() == 0
    clock.advance(1)
    with app.app_context():
        assert sdkauth.sweep() == 1
        assert sdkauth.sweep() == 0
    assert outbox.last.channel == "sms"
    session = _session(app, sdkauth, request_id)
    assert _outcomes(session) == [(None, "lost"), ("sms", "sent")]
    assert api.status(request_id).data == error_body("ChannelChangedException")
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}


def test_a_launch_lost_twice_goes_on_with_the_next_channel(make_app, outbox, clock):
    dispatcher = Dropping()
    app, sdkauth = make_app(dispatcher=dispatcher)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
        clock.advance(60)
        assert sdkauth.sweep() == 1  # lost again: the dispatcher still drops it
        dispatcher.dropping = False
        clock.advance(60)
        assert sdkauth.sweep() == 1
    assert [message.channel for message in outbox.messages] == ["voice"]
    assert _session(app, sdkauth, request_id).state is State.SENT


def test_concurrent_sweeps_relaunch_once(make_app, shared_database_uri, outbox, clock):
    dispatcher = Dropping()
    app, sdkauth = make_app({"SQLALCHEMY_DATABASE_URI": shared_database_uri}, dispatcher=dispatcher)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        request_ids = [sdkauth.send(widget.id, f"+7999123456{n}") for n in range(3)]
    dispatcher.dropping = False
    clock.advance(61)
    counts = race(app, [sdkauth.sweep] * 8)
    assert sum(counts) == 3
    assert sorted(message.request_id for message in outbox.messages) == sorted(request_ids)


def test_the_sweep_leaves_expired_and_launched_sessions_alone(make_app, outbox, clock):
    dispatcher = Dropping()
    app, sdkauth = make_app({"SDKAUTH_SESSION_LIFETIME": 100}, dispatcher=dispatcher)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        sdkauth.send(widget.id, RECIPIENT)
        dispatcher.dropping = False
        sdkauth.send(widget.id, "+79991234568")
        clock.advance(100)
        assert sdkauth.sweep() == 0
    assert len(outbox.messages) == 1


def test_resend_restarts_a_lost_launch_without_the_cooldown(make_app, outbox, clock):
    dispatcher = Dropping()
    app, sdkauth = make_app(dispatcher=dispatcher)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    api = _client(app, sdkauth, widget)
    request_id = api.send(widget.id).json["requestId"]
    dispatcher.dropping = False
    clock.advance(30)
    assert api.resend(request_id).data == error_body("RestartCooldownActiveException")
    clock.advance(30)
    assert api.resend(request_id).json == {"success": True}
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}


def test_cli_sweep(make_app, outbox, clock):
    dispatcher = Dropping()
    app, sdkauth = make_app(dispatcher=dispatcher)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        sdkauth.send(widget.id, RECIPIENT)
    dispatcher.dropping = False
    clock.advance(60)
    result = app.test_cli_runner().invoke(args=["sdkauth", "sweep"])
    assert result.exit_code == 0, result.output
    assert result.output == "Relaunched 1 session(s).\n"
    assert len(outbox.messages) == 1


class Unreachable(InlineDispatcher):
    def dispatch(self, job, run):
        raise NoConnectionException()


def test_send_whose_launch_cannot_be_queued_is_503_and_closes_the_session(make_app, outbox, clock):
    app, sdkauth = make_app(dispatcher=Unreachable())
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    response = _client(app, sdkauth, widget).send(widget.id)
    assert response.status_code == 503
    assert response.data == error_body("NoConnectionException")
    with app.app_context():
        table = sdkauth.tables.session
        rows = sdkauth.db.session.execute(table.select()).all()
        assert [row.state for row in rows] == ["closed"]
        clock.advance(3600)
        assert sdkauth.sweep() == 0
    assert outbox.messages == []


# -- launches that run long, or lose a race ---------------------------------------------


def test_a_launch_still_trying_channels_is_not_taken_for_lost(make_app, outbox, clock):
    app, sdkauth = make_app()
    swept = []

    def slow_failing_sms(message):
        clock.advance(40)
        raise RuntimeError("gateway down")

    def voice(message):
        clock.advance(40)  # 80 s after send, past SDKAUTH_LAUNCH_DEADLINE (60)
        swept.append(sdkauth.sweep())
        outbox(message)

    sdkauth.add_channel_sender("sms", slow_failing_sms)
    sdkauth.add_channel_sender("voice", voice)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
    # The launch told the sweep it was alive before its second try.
    assert swept == [0]
    session = _session(app, sdkauth, request_id)
    assert _outcomes(session) == [("sms", "failed"), ("voice", "sent")]
    assert [message.channel for message in outbox.messages] == ["voice"]


def test_a_launch_that_loses_the_race_keeps_its_history(make_app, outbox, clock):
    """A resend's launch outlives the deadline and the sweep relaunches meanwhile.
    (A send's first launch cannot lose this race: inline, its session is written
    only once that launch is over, so there is nothing to sweep before.)"""
    app, sdkauth = make_app()
    calls = []

    def sms(message):
        calls.append(message.id)
        if len(calls) == 2:
            # The resend's try outlives the deadline: the sweep relaunches meanwhile.
            clock.advance(61)
            assert sdkauth.sweep() == 1
        outbox(message)

    sdkauth.add_channel_sender("sms", sms)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
    api = _client(app, sdkauth, widget)
    clock.advance(301)  # past the restart cooldown
    assert api.resend(str(request_id)).status_code == 201
    session = _session(app, sdkauth, request_id)
    # Both launches sent; the resend's could not record its outcome, but its try
    # is kept; only the relaunch's code counts.
    assert _outcomes(session) == [
        ("sms", "sent"), (None, "lost"), ("sms", "sent"), ("sms", "sent"),
    ]
    assert session.generation == 3
    assert len(calls) == 3
    _, relaunch, resent = outbox.messages  # the relaunch finished inside the resend's try
    assert (relaunch.id, resent.id) == (calls[2], calls[1])
    api.channel(str(request_id))
    assert api.check_code(str(request_id), resent.code).status_code == 400
    assert api.check_code(str(request_id), relaunch.code).json == {"success": True}


def test_a_fallback_that_finds_no_channel_lets_the_client_resend(app, sdkauth, outbox, clock):
    widget = _fallback_widget(
        app, sdkauth, Channel("sms", settings={"fallbackAfter": 30}), Channel("voice")
    )
    outbox.failing["voice"] = RuntimeError("voice gateway down")
    api = _client(app, sdkauth, widget)
    request_id = started(api, widget.id)
    clock.advance(30)
    # Not no_channels: the session had a valid code a moment ago.
    assert api.channel(request_id).data == error_body("ResendChannelException")
    assert api.resend(request_id).json == {"success": True}
    assert outbox.last.channel == "sms"
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}


def test_a_code_typed_as_the_fallback_happens_uses_no_attempt_of_the_next_channel(
    app, sdkauth, outbox, clock
):
    widget = _fallback_widget(
        app,
        sdkauth,
        Channel("sms", settings={"fallbackAfter": 30}),
        Channel("voice", settings={"numberOfTries": 1}),
    )
    api = _client(app, sdkauth, widget)
    request_id = started(api, widget.id)
    sms_code = outbox.last.code
    clock.advance(30)
    assert api.check_code(request_id, sms_code).data == error_body("InvalidCodeException")
    assert outbox.last.channel == "voice"
    assert api.channel(request_id).json["remainingCodeAttempts"] == 1
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}


def test_a_resend_as_the_fallback_happens_sends_once(app, sdkauth, outbox, clock):
    api, request_id = _started_with_fallback(app, sdkauth)
    clock.advance(30)
    assert api.resend(request_id).json == {"success": True}
    assert [message.channel for message in outbox.messages] == ["sms", "voice"]


def test_resend_while_the_fallback_is_queued_restarts_the_next_channel(make_app, outbox, clock):
    dispatcher = Deferred()
    app, sdkauth = make_app(dispatcher=dispatcher)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
        sdkauth.engine.launch(dispatcher.jobs.pop())
        sdkauth.report_delivery(outbox.last.id, "failed")
        assert dispatcher.jobs[-1].channel_index == 1
        clock.advance(300)  # the cooldown runs from the fallback
        assert sdkauth.engine.resend(request_id) is True
        assert dispatcher.jobs[-1].channel_index == 1


def test_replayed_reports_cannot_grow_a_session_without_end(app, sdkauth, two_channels, outbox):
    api = _client(app, sdkauth, two_channels)
    request_id = started(api, two_channels.id)
    with app.app_context():
        for _ in range(250):
            sdkauth.report_delivery(outbox.last.id, "delivered")
    assert len(_session(app, sdkauth, request_id).history) == 200
    # A failure of the current launch is still acted on.
    with app.app_context():
        sdkauth.report_delivery(outbox.last.id, "failed")
    assert outbox.last.channel == "voice"
    assert _session(app, sdkauth, request_id).channel["type"] == "voice"
