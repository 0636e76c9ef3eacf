"""The threads sender calls run in: kept for the next call, never reused while hung."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from flask_sdkauth import Channel
from flask_sdkauth.delivery import SenderTimedOut, call_sender
from flask_sdkauth.testing import CapturingSender

from .flow import RECIPIENT, sample_message


def test_a_thread_whose_sender_returned_runs_the_next_call():
    seen = []

    def sender(message):
        seen.append(threading.get_ident())

    for _ in range(5):
        call_sender(sender, sample_message(), 5)
    assert len(seen) == 5 and len(set(seen[1:])) == 1
    assert threading.get_ident() not in seen  # never the caller's own thread


def test_a_hung_sender_keeps_its_thread_and_the_next_call_gets_another():
    release = threading.Event()
    hung = []

    def hangs(message):
        hung.append(threading.get_ident())
        release.wait(10)

    with pytest.raises(SenderTimedOut):
        call_sender(hangs, sample_message(), 0.05)
    answered = []
    call_sender(lambda message: answered.append(threading.get_ident()), sample_message(), 5)
    assert answered and answered[0] != hung[0]
    release.set()


def test_concurrent_calls_each_get_a_thread():
    barrier = threading.Barrier(8, timeout=5)

    def sender(message):
        barrier.wait()  # only returns once all eight run at the same time

    with ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(call_sender, sender, sample_message(), 5) for _ in range(8)]
        for call in calls:
            call.result()


def test_what_the_sender_raises_reaches_the_caller():
    def fails(message):
        raise ConnectionError("gateway down")

    with pytest.raises(ConnectionError, match="gateway down"):
        call_sender(fails, sample_message(), 5)


# -- senders registered as bounded ----------------------------------------------


def test_a_bounded_sender_runs_in_the_callers_thread():
    seen = []
    call_sender(lambda message: seen.append(threading.get_ident()), sample_message(), 5,
                in_thread=False)
    assert seen == [threading.get_ident()]


def test_a_bounded_call_with_no_time_left_is_not_started():
    called = []
    with pytest.raises(SenderTimedOut):
        call_sender(called.append, sample_message(), 0, in_thread=False)
    assert called == []


def _sms_app(make_app, sender, **registration):
    app, sdkauth = make_app()
    sdkauth.add_channel_sender("sms", sender, **registration)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
    return app, sdkauth, widget


def test_the_engine_calls_a_bounded_sender_in_the_launching_thread(make_app):
    threads = []
    app, sdkauth, widget = _sms_app(
        make_app, lambda message: threads.append(threading.get_ident()), bounded=True
    )
    with app.test_request_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
    assert threads == [threading.get_ident()]
    with app.app_context():
        assert sdkauth.engine.get_channel(request_id).type == "sms"


def test_a_sender_registered_again_unbounded_runs_in_a_thread_again(make_app):
    threads = []
    sender = lambda message: threads.append(threading.get_ident())  # noqa: E731
    app, sdkauth, widget = _sms_app(make_app, sender, bounded=True)
    sdkauth.add_channel_sender("sms", sender)
    with app.test_request_context():
        sdkauth.send(widget.id, RECIPIENT)
    assert threads and threads[0] != threading.get_ident()


def test_a_bounded_senders_failure_falls_back_to_the_next_channel(make_app, outbox):
    def fails(message):
        raise ConnectionError("gateway down")

    app, sdkauth, widget = _sms_app(make_app, fails, bounded=True)
    with app.test_request_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
    with app.app_context():
        assert sdkauth.engine.get_channel(request_id).type == "voice"
    assert outbox.last.channel == "voice"


def test_the_testing_kit_gives_the_bounded_flag_back(make_app):
    app, sdkauth, widget = _sms_app(make_app, lambda message: None, bounded=True)
    with CapturingSender().install(sdkauth, ["sms"]):
        assert "sms" not in sdkauth.hooks.bounded_senders
    assert "sms" in sdkauth.hooks.bounded_senders
