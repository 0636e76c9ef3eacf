"""Long polling (spec §1.4, §7.5): answers at once when there is news, waits for a
change otherwise, wakes through the notifier, and times out with 408.

The poll interval is set far above the timeout, so a long poll that answers 200
was woken by a notification, not by re-reading the database on its own.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from flask_sdkauth import Channel

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient, started, wrong
from .spec import error_body

NOTIFIERS = {"memory": "memory://"}
if os.environ.get("SDKAUTH_TEST_REDIS_URL"):
    NOTIFIERS["redis"] = os.environ["SDKAUTH_TEST_REDIS_URL"]


@pytest.fixture(params=sorted(NOTIFIERS))
def notifier_url(request):
    return NOTIFIERS[request.param]


@pytest.fixture
def polling(make_app, notifier_url, shared_database_uri):
    """``(app, sdkauth, api, widget)`` with long polls woken only by notifications."""

    def build(**config):
        settings = {
            "SDKAUTH_NOTIFIER_URL": notifier_url,
            "SDKAUTH_LONG_POLLING_TIMEOUT": 10,
            "SDKAUTH_LONG_POLLING_INTERVAL": 60,
            "SQLALCHEMY_DATABASE_URI": shared_database_uri,  # threads share it
            **config,
        }
        app, sdkauth = make_app(settings)
        with app.app_context():
            widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
            notifier = sdkauth.engine.notifier
            if hasattr(notifier, "wait_until_subscribed"):
                assert notifier.wait_until_subscribed(5), "Redis subscription failed"
        api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
        return app, sdkauth, api, widget

    return build


def _long_poll(api, path, **kwargs):
    """Start a long poll in a thread; return the future of its response."""
    client = api.client.application.test_client()
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(client.get, path, headers=api.headers, **kwargs)
    pool.shutdown(wait=False)
    return future


def _wait_until_waiting(app, sdkauth, count=1):
    with app.app_context():
        notifier = sdkauth.engine.notifier
    for _ in range(500):
        if notifier.waiting >= count:
            return
        time.sleep(0.01)
    raise AssertionError("the long poll never started waiting")


def test_first_channel_long_poll_answers_at_once(polling, outbox):
    app, sdkauth, api, widget = polling()
    request_id = api.send(widget.id).json["requestId"]
    response = api.client.get(f"/longPolling/{request_id}/channel", headers=api.headers)
    assert response.status_code == 200
    assert response.json["status"] == "sent" and response.json["type"] == "sms"


def test_channel_long_poll_waits_for_the_next_change(polling, outbox):
    app, sdkauth, api, widget = polling()
    request_id = started(api, widget.id)  # the client has seen the snapshot
    future = _long_poll(api, f"/longPolling/{request_id}/channel")
    _wait_until_waiting(app, sdkauth)
    assert not future.done()

    api.check_code(request_id, wrong(outbox.last.code))

    response = future.result(timeout=10)
    assert response.status_code == 200
    assert response.json["remainingCodeAttempts"] == 2


def test_channel_long_poll_reports_confirmation(polling, outbox):
    app, sdkauth, api, widget = polling()
    request_id = started(api, widget.id)
    future = _long_poll(api, f"/longPolling/{request_id}/channel")
    _wait_until_waiting(app, sdkauth)
    api.check_code(request_id, outbox.last.code)
    assert future.result(timeout=10).json["status"] == "confirmed"


def test_status_long_poll_returns_on_codeless_confirmation(polling, outbox):
    app, sdkauth, api, widget = polling()
    sdkauth.add_channel_sender("sim_push", outbox)
    with app.app_context():
        push = sdkauth.create_widget("Push", [Channel("sim_push")])
    api.headers = bearer(app, sdkauth, push.id)
    request_id = started(api, push.id)
    number = api.channel(request_id).json["payload"]["matchNumber"]
    future = _long_poll(
        api, f"/longPolling/{request_id}/status", query_string={"recipient": RECIPIENT}
    )
    _wait_until_waiting(app, sdkauth)
    assert not future.done()

    with app.app_context():
        sdkauth.confirm(request_id, outbox.last.confirmation_token, number)

    response = future.result(timeout=10)
    assert (response.status_code, response.json) == (200, {"success": True})


def test_status_long_poll_reports_the_failure_that_ends_the_wait(polling, outbox):
    app, sdkauth, api, widget = polling()
    request_id = started(api, widget.id)
    future = _long_poll(
        api, f"/longPolling/{request_id}/status", query_string={"recipient": RECIPIENT}
    )
    _wait_until_waiting(app, sdkauth)
    for _ in range(3):
        api.check_code(request_id, wrong(outbox.last.code))
    assert future.result(timeout=10).data == error_body("AttemptsExpiredException")


def test_status_long_poll_reports_a_channel_change(polling, outbox, clock):
    app, sdkauth, api, widget = polling()
    request_id = started(api, widget.id)
    clock.advance(300)
    future = _long_poll(
        api, f"/longPolling/{request_id}/status", query_string={"recipient": RECIPIENT}
    )
    response = future.result(timeout=10)  # the code expired: at once
    assert response.data == error_body("ResendChannelException")
    api.resend(request_id)
    changed = _long_poll(
        api, f"/longPolling/{request_id}/status", query_string={"recipient": RECIPIENT}
    )
    assert changed.result(timeout=10).data == error_body("ChannelChangedException")


@pytest.mark.parametrize("path", ["channel", "status"])
def test_timeout_is_408(polling, path):
    app, sdkauth, api, widget = polling(SDKAUTH_LONG_POLLING_TIMEOUT=0.3)
    request_id = started(api, widget.id)
    response = api.client.get(
        f"/longPolling/{request_id}/{path}", query_string={"recipient": RECIPIENT}, headers=api.headers
    )
    assert response.status_code == 408
    assert response.data == error_body("LongPollingTimeoutException")
    with app.app_context():
        assert sdkauth.engine.notifier.waiting == 0


def test_completed_session_status_long_poll_answers_false_at_once(polling, outbox):
    app, sdkauth, api, widget = polling()
    request_id = started(api, widget.id)
    api.check_code(request_id, outbox.last.code)
    with app.app_context():
        sdkauth.check_status_and_complete(request_id, RECIPIENT)
    response = api.client.get(
        f"/longPolling/{request_id}/status", query_string={"recipient": RECIPIENT}, headers=api.headers
    )
    assert response.json == {"success": False}
    channel = api.client.get(f"/longPolling/{request_id}/channel", headers=api.headers)
    assert channel.data == error_body("SessionClosedException")


def test_long_polls_share_their_twins_input_errors(polling):
    app, sdkauth, api, widget = polling()
    request_id = started(api, widget.id)
    get = api.client.get
    assert get(f"/longPolling/{uuid.uuid4()}/channel", headers=api.headers).data == error_body(
        "SessionNotFoundException"
    )
    assert get("/longPolling/nope/channel", headers=api.headers).json["type"] == "ValidateError"
    assert get(f"/longPolling/{request_id}/status", headers=api.headers).json["type"] == "ValidateError"
    mismatch = get(
        f"/longPolling/{request_id}/status", query_string={"recipient": "+79990000000"},
        headers=api.headers,
    )
    assert mismatch.data == error_body("PhoneNumberMismatchException")
    assert get(f"/longPolling/{request_id}/channel").data == error_body("Unauthorized")
    other = bearer(app, sdkauth, uuid.uuid4())
    assert get(f"/longPolling/{request_id}/channel", headers=other).data == error_body(
        "ForbiddenException"
    )


def test_many_waiters_on_one_session_all_wake(polling, outbox):
    app, sdkauth, api, widget = polling(SDKAUTH_LONG_POLLING_TIMEOUT=2)
    request_id = started(api, widget.id)
    futures = [_long_poll(api, f"/longPolling/{request_id}/channel") for _ in range(5)]
    _wait_until_waiting(app, sdkauth, count=5)
    api.check_code(request_id, wrong(outbox.last.code))
    # Each client is told of the change; the first one marks it seen, and the
    # others find the same snapshot, which they had not been given either.
    statuses = [future.result(timeout=10).status_code for future in futures]
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, 408}


def test_a_lost_notification_costs_one_poll_interval(make_app, shared_database_uri, outbox):
    """Two workers with in-process notifiers share a database: the waiter on one
    is not told of a change made on the other, and finds it by re-reading."""
    config = {
        "SQLALCHEMY_DATABASE_URI": shared_database_uri,
        "SDKAUTH_LONG_POLLING_TIMEOUT": 10,
        "SDKAUTH_LONG_POLLING_INTERVAL": 0.2,
    }
    waiter_app, sdkauth = make_app(config)
    with waiter_app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    api = WidgetClient(waiter_app.test_client(), bearer(waiter_app, sdkauth, widget.id))
    request_id = started(api, widget.id)
    other_app, other = make_app(config, reset_database=False)
    future = _long_poll(api, f"/longPolling/{request_id}/channel")
    _wait_until_waiting(waiter_app, sdkauth)

    other_api = WidgetClient(other_app.test_client(), bearer(other_app, other, widget.id))
    other_api.check_code(request_id, wrong(outbox.last.code))

    assert future.result(timeout=10).json["remainingCodeAttempts"] == 2


def test_notifier_urls_are_checked(make_app):
    with pytest.raises(ValueError, match="SDKAUTH_NOTIFIER_URL"):
        make_app({"SDKAUTH_NOTIFIER_URL": "carrier-pigeon://"})
    with pytest.raises(ValueError, match="SDKAUTH_LONG_POLLING_TIMEOUT"):
        make_app({"SDKAUTH_LONG_POLLING_TIMEOUT": 0})


def test_waiting_releases_no_database_connection(polling, outbox):
    app, sdkauth, api, widget = polling()
    request_id = started(api, widget.id)
    with app.app_context():
        pool = sdkauth.db.engine.pool
    futures = [_long_poll(api, f"/longPolling/{request_id}/channel") for _ in range(3)]
    _wait_until_waiting(app, sdkauth, count=3)
    # Each waiter reads the session once it has subscribed, then holds nothing.
    for _ in range(200):
        if pool.checkedout() == 0:
            break
        time.sleep(0.01)
    assert pool.checkedout() == 0
    assert not any(future.done() for future in futures)
    api.check_code(request_id, wrong(outbox.last.code))
    for future in futures:
        future.result(timeout=10)
