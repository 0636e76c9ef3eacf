"""Metrics and audit records for every path of an authentication.

Each test runs real flows through the HTTP API and reads what an operator would:
the samples of a fresh Prometheus registry and the records of the
``flask_sdkauth.audit`` logger.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from prometheus_client import CollectorRegistry

from flask_sdkauth import Channel, ChannelSettings, observers
from flask_sdkauth.observers.audit import AUDIT_FIELDS
from flask_sdkauth.observers.metrics import MetricsObserver

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient, race

NATIONAL = RECIPIENT.removeprefix("+7")


class Observed:
    """An app, a widget client, and the registry and audit records they fill."""

    def __init__(self, make_app, outbox, caplog, config=None, channels=None):
        self.registry = CollectorRegistry()
        self.app, self.sdkauth = make_app(config, metrics_registry=self.registry)
        self.outbox = outbox
        self.caplog = caplog
        with self.app.app_context():
            self.widget = self.sdkauth.create_widget(
                "Demo", channels or [Channel("sms"), Channel("voice")]
            )
        self.api = WidgetClient(self.app.test_client(), bearer(self.app, self.sdkauth,
                                                               self.widget.id))

    def value(self, name, **labels):
        return self.registry.get_sample_value(name, labels) or 0

    def records(self, event=None):
        found = [r for r in self.caplog.records if r.name == "flask_sdkauth.audit"]
        return [r for r in found if event is None or r.event == event]

    def audit(self):
        """(event, outcome, channel) of every audit record, in order."""
        return [(r.event, r.outcome, r.channel) for r in self.records()]

    def send(self, recipient=RECIPIENT):
        response = self.api.send(self.widget.id, recipient)
        return response.json.get("requestId"), response


@pytest.fixture
def observed(make_app, outbox, caplog):
    caplog.set_level(logging.INFO, logger="flask_sdkauth.audit")

    def build(config=None, channels=None):
        return Observed(make_app, outbox, caplog, config, channels)

    return build


def test_right_code_then_completion(observed, clock):
    o = observed()
    request_id, _ = o.send()
    clock.advance(7)
    assert o.api.check_code(request_id, o.outbox.last.code).status_code == 201
    with o.app.app_context():
        assert o.sdkauth.check_status_and_complete(request_id, RECIPIENT) is True

    assert o.value("sdkauth_sends_total", widget="", outcome="started") == 1
    assert o.value("sdkauth_deliveries_total", channel="sms", outcome="sent") == 1
    assert o.value("sdkauth_checks_total", channel="sms", outcome="right") == 1
    assert o.value("sdkauth_completions_total", widget="", channel="sms") == 1
    assert o.value("sdkauth_time_to_confirm_seconds_count", channel="sms") == 1
    assert o.value("sdkauth_time_to_confirm_seconds_sum", channel="sms") == 7
    assert o.value("sdkauth_sender_seconds_count", channel="sms") == 1
    # The launch runs inside the send, so its delivery is recorded first.
    assert o.audit() == [
        ("delivery", "sent", "sms"),
        ("send", "started", None),
        ("check", "right", "sms"),
        ("completion", "completed", "sms"),
    ]
    check = o.records("check")[0]
    assert check.request_id == request_id and check.widget_id == str(o.widget.id)
    assert check.client_ip == "127.0.0.1" and check.seconds == 7
    # One number, one hash, in every record of it; and the operator can compute it.
    assert len({r.number_hash for r in o.records()}) == 1
    with o.app.app_context():
        assert o.records()[0].number_hash == o.sdkauth.audit_number_hash("+7 (999) 123-45-67")


def test_wrong_codes_until_the_attempts_run_out(observed):
    o = observed()
    request_id, _ = o.send()
    for _ in range(3):
        o.api.check_code(request_id, "000000" if o.outbox.last.code != "000000" else "111111")
    assert o.value("sdkauth_checks_total", channel="sms", outcome="wrong") == 2
    assert o.value("sdkauth_checks_total", channel="sms", outcome="attempts_expired") == 1
    # After the end, a check is still recorded: the session has no attempt left.
    o.api.check_code(request_id, o.outbox.last.code)
    assert o.value("sdkauth_checks_total", channel="sms", outcome="attempts_expired") == 2
    assert [r.reason for r in o.records("check")] == [
        "InvalidCodeException", "InvalidCodeException",
        "AttemptsExpiredException", "AttemptsExpiredException",
    ]


def test_an_expired_code(observed, clock):
    o = observed()
    request_id, _ = o.send()
    clock.advance(301)
    assert o.api.check_code(request_id, o.outbox.last.code).status_code == 400
    assert o.value("sdkauth_checks_total", channel="sms", outcome="expired") == 1


def test_fallback_after_a_failing_sender(observed):
    o = observed()
    o.outbox.fail("sms")
    o.send()
    assert o.value("sdkauth_deliveries_total", channel="sms", outcome="failed") == 1
    assert o.value("sdkauth_deliveries_total", channel="voice", outcome="sent") == 1
    assert o.value(
        "sdkauth_fallbacks_total", from_channel="sms", to_channel="voice", reason="failed"
    ) == 1
    assert o.audit() == [
        ("delivery", "failed", "sms"),
        ("fallback", "failed", "sms"),
        ("delivery", "sent", "voice"),
        ("send", "started", None),
    ]
    assert o.records("fallback")[0].to_channel == "voice"


def test_no_channel_could_deliver(observed):
    o = observed()
    o.outbox.fail("sms")
    o.outbox.fail("voice")
    _, response = o.send()
    assert response.status_code == 400
    assert o.value("sdkauth_sends_total", widget="", outcome="no_channels") == 1
    assert o.value("sdkauth_sends_total", widget="", outcome="started") == 0


def test_delivery_reports_and_the_fallback_they_cause(observed):
    o = observed()
    o.send()
    first = o.outbox.last
    with o.app.app_context():
        o.sdkauth.report_delivery(first.id, "delivered")
        o.sdkauth.report_delivery(first.id, "failed", reason="handset unreachable")
    assert o.value("sdkauth_deliveries_total", channel="sms", outcome="delivered") == 1
    assert o.value("sdkauth_deliveries_total", channel="sms", outcome="undelivered") == 1
    assert o.value(
        "sdkauth_fallbacks_total", from_channel="sms", to_channel="voice", reason="undelivered"
    ) == 1
    assert o.outbox.last.channel == "voice"
    report = o.records("report")[1]
    assert (report.outcome, report.reason) == ("failed", "handset unreachable")


def test_time_driven_fallback(observed, clock):
    o = observed(channels=[
        Channel("sms", settings=ChannelSettings(fallback_after=30)), Channel("voice"),
    ])
    request_id, _ = o.send()
    clock.advance(31)
    o.api.channel(request_id)
    assert o.value(
        "sdkauth_fallbacks_total", from_channel="sms", to_channel="voice",
        reason="fallback_after",
    ) == 1


@pytest.mark.parametrize(
    "config, outcome",
    [
        ({"SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT": "1/minute"}, "rate_limited"),
        ({"SDKAUTH_DAILY_SEND_CAP_PER_WIDGET": 1}, "daily_cap"),
        (
            {
                "SDKAUTH_CAPTCHA_PROVIDER": "google",
                "SDKAUTH_CAPTCHA_SECRET": "secret",
                "SDKAUTH_CAPTCHA_FIRST_FREE_REQUESTS_PER_IP": 1,
                "SDKAUTH_CAPTCHA_VERIFY_URL": "http://127.0.0.1:9/siteverify",
            },
            "captcha",
        ),
    ],
)
def test_the_second_send_is_refused(observed, config, outcome):
    o = observed(config)
    o.send()
    _, refused = o.send()
    assert refused.status_code in (400, 429)
    assert o.value("sdkauth_sends_total", widget="", outcome="started") == 1
    assert o.value("sdkauth_sends_total", widget="", outcome=outcome) == 1
    record = o.records("send")[-1]
    assert record.outcome == outcome and record.request_id is None
    assert record.widget_id == str(o.widget.id) and record.number_hash


def test_region_and_blocked_refusals(observed):
    o = observed()
    with o.app.app_context():
        us_only = o.sdkauth.create_widget("US", [Channel("sms")], allowed_regions=["US"])
        blocked = o.sdkauth.create_widget("Off", [Channel("sms")], is_blocked=True)
    for widget in (us_only, blocked):
        api = WidgetClient(o.app.test_client(), bearer(o.app, o.sdkauth, widget.id))
        assert api.send(widget.id).status_code in (400, 403)
    assert o.value("sdkauth_sends_total", widget="", outcome="region") == 1
    assert o.value("sdkauth_sends_total", widget="", outcome="blocked") == 1
    assert [r.reason for r in o.records("send")] == ["region", "widget blocked"]


def test_codeless_confirmations(observed, clock):
    o = observed(channels=[Channel("sim_push")])
    o.sdkauth.add_channel_sender("sim_push", o.outbox)
    request_id, _ = o.send()
    number = o.api.channel(request_id).json["payload"]["matchNumber"]
    clock.advance(12)
    with o.app.app_context():
        assert o.sdkauth.confirm(request_id, o.outbox.last.confirmation_token, number)
    assert o.value("sdkauth_checks_total", channel="sim_push", outcome="right") == 1
    assert o.value("sdkauth_time_to_confirm_seconds_sum", channel="sim_push") == 12

    other_id, _ = o.send("+79991234568")
    message = o.outbox.last
    right = o.api.channel(other_id).json["payload"]["matchNumber"]
    wrong = next(choice for choice in message.choices if choice != right)
    with o.app.app_context(), pytest.raises(Exception, match="попыток"):
        o.sdkauth.confirm(other_id, message.confirmation_token, wrong)
    record = o.records("confirmation")[-1]
    assert (record.outcome, record.reason) == ("attempts_expired", "another number picked")


def test_no_secret_or_number_in_any_record_or_label(observed):
    o = observed()
    o.outbox.fail("sms")
    request_id, _ = o.send()
    o.api.check_code(request_id, "999999" if o.outbox.last.code != "999999" else "888888")
    o.api.check_code(request_id, o.outbox.last.code)
    codes = {message.code for message in o.outbox.messages}
    with o.app.app_context():
        code_hash = o.sdkauth.engine.sessions.get(uuid.UUID(request_id)).code_hash
    records = o.records()
    assert len(records) >= 5
    for record in records:
        assert set(AUDIT_FIELDS) <= set(vars(record))
        # JSON-friendly: every field serialises as it is.
        text = record.getMessage() + json.dumps({f: getattr(record, f) for f in AUDIT_FIELDS})
        for secret in (*codes, RECIPIENT, NATIONAL, code_hash or "no hash left"):
            assert secret not in text
    for metric in o.registry.collect():
        for sample in metric.samples:
            for value in sample.labels.values():
                assert NATIONAL not in value and request_id not in value


def test_the_widget_label_is_opt_in(observed):
    o = observed({"SDKAUTH_METRICS_WIDGET_LABEL": True})
    o.send()
    assert o.value("sdkauth_sends_total", widget=str(o.widget.id), outcome="started") == 1


def test_metrics_and_audit_can_be_turned_off(observed):
    o = observed({"SDKAUTH_METRICS": False, "SDKAUTH_AUDIT_LOG": False})
    request_id, response = o.send()
    assert response.status_code == 201
    assert not [s for m in o.registry.collect() for s in m.samples]
    assert o.records() == []


def test_without_prometheus_client_nothing_changes(observed, monkeypatch):
    monkeypatch.setattr(observers, "prometheus_available", lambda: False)
    o = observed()
    request_id, response = o.send()
    assert response.status_code == 201
    assert o.api.check_code(request_id, o.outbox.last.code).status_code == 201
    assert not [s for m in o.registry.collect() for s in m.samples]
    assert [r.event for r in o.records()] == ["delivery", "send", "check"]
    with pytest.raises(RuntimeError, match="prometheus_client"):
        observed({"SDKAUTH_METRICS": True})


def test_bad_flags_fail_at_init(make_app):
    with pytest.raises(TypeError, match="SDKAUTH_AUDIT_LOG"):
        make_app({"SDKAUTH_AUDIT_LOG": "yes"})
    with pytest.raises(TypeError, match="SDKAUTH_METRICS must be"):
        make_app({"SDKAUTH_METRICS": 1})


def test_two_apps_share_one_registry():
    registry = CollectorRegistry()
    assert MetricsObserver(registry).metrics is MetricsObserver(registry).metrics


def test_concurrent_guesses_are_each_counted_once(observed, shared_database_uri):
    """Sixteen simultaneous wrong guesses on a session with three attempts: every
    request in the counters and the audit log exactly once, and no more wrong
    answers than the attempts allowed."""
    o = observed({
        "SQLALCHEMY_DATABASE_URI": shared_database_uri,
        "SDKAUTH_RATELIMIT_CHECK_CODE_PER_SESSION": None,
        "SDKAUTH_RATELIMIT_FAILED_CODES_PER_RECIPIENT": None,
    })
    request_id, _ = o.send()
    wrong = "000000" if o.outbox.last.code != "000000" else "111111"
    answers = race(o.app, [lambda: o.sdkauth.engine.check_code(uuid.UUID(request_id), wrong)] * 16)
    counted = {
        outcome: o.value("sdkauth_checks_total", channel="sms", outcome=outcome)
        for outcome in ("wrong", "attempts_expired", "right", "refused")
    }
    assert sum(counted.values()) == 16 == len(o.records("check"))
    assert counted["wrong"] == answers.count("InvalidCodeException") <= 2
    assert counted["attempts_expired"] == answers.count("AttemptsExpiredException") >= 14
