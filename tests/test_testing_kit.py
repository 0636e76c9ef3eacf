"""The testing kit: the pytest plugin's fixtures, its helpers, and test numbers."""

from __future__ import annotations

import re
import textwrap
import uuid
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from flask import Flask
from flask_jwt_extended import JWTManager
from flask_sqlalchemy import SQLAlchemy

from flask_sdkauth import Channel, InvalidCodeException, SdkAuth
from flask_sdkauth.codes import hash_code
from flask_sdkauth.testing import CapturingSender, confirm_session, confirmed_session

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient, started, wrong

pytest_plugins = ["pytester"]

TEST_NUMBER = "+79990000000"
FIXED_CODE = "123456"


def test_the_plugin_is_registered_by_its_entry_point(pytestconfig):
    (entry,) = [e for e in entry_points(group="pytest11") if e.name == "flask_sdkauth"]
    assert entry.value == "flask_sdkauth.testing"
    assert pytestconfig.pluginmanager.has_plugin("flask_sdkauth")


def test_a_host_signs_in_through_the_http_api(sdkauth_app, sdkauth_widget, sdkauth_headers, sdkauth_outbox):
    api = WidgetClient(sdkauth_app.test_client(), sdkauth_headers)
    request_id = started(api, sdkauth_widget.id)
    message = sdkauth_outbox.last
    assert message.request_id == uuid.UUID(request_id)
    assert (message.channel, message.recipient) == ("sms", RECIPIENT)
    assert sdkauth_outbox.codes == [message.code]
    assert api.check_code(request_id, message.code).json == {"success": True}
    assert api.check_status_and_complete(request_id).json == {"success": True}


def test_confirm_session_checks_the_code_through_the_engine(sdkauth_app, sdkauth_extension, sdkauth_widget, sdkauth_outbox):
    with sdkauth_app.app_context():
        request_id = sdkauth_extension.send(sdkauth_widget.id, RECIPIENT)
        assert sdkauth_extension.check_status_and_complete(request_id, RECIPIENT) is False
        assert confirm_session(sdkauth_extension, request_id, sdkauth_outbox) is True
        assert sdkauth_extension.check_status_and_complete(request_id, RECIPIENT) is True
        session = sdkauth_extension.engine.sessions.get(request_id)
    # One attempt was used: the code went through checkCode, not around it.
    assert session.remaining_attempts == Channel("sms").settings.number_of_tries - 1


def test_confirm_session_confirms_a_codeless_channel_with_number_matching(sdkauth_app, sdkauth_extension, sdkauth_outbox):
    with sdkauth_app.app_context():
        widget = sdkauth_extension.create_widget("Push", [Channel("sim_push")])
        request_id = confirmed_session(sdkauth_extension, widget.id, RECIPIENT, sdkauth_outbox)
        assert sdkauth_outbox.last.code is None
        assert sdkauth_extension.check_status_and_complete(request_id, RECIPIENT) is True


def test_a_failing_channel_falls_back_and_the_outbox_groups_by_session(sdkauth_app, sdkauth_extension, sdkauth_widget, sdkauth_outbox):
    sdkauth_outbox.fail("sms")
    with sdkauth_app.app_context():
        first = sdkauth_extension.send(sdkauth_widget.id, RECIPIENT)
        second = sdkauth_extension.send(sdkauth_widget.id, "+79991234568")
    assert [m.channel for m in sdkauth_outbox.for_request(first)] == ["voice"]
    assert sdkauth_outbox.last_for(str(first)).request_id == first
    assert sdkauth_outbox.last.request_id == second
    sdkauth_outbox.clear()
    with pytest.raises(AssertionError, match="no message was sent"):
        _ = sdkauth_outbox.last


def test_install_replaces_the_hosts_senders_for_a_block(make_app):
    app, sdkauth = make_app()
    hosts_sender = sdkauth.hooks.channel_senders["sms"]
    capturing = CapturingSender()
    with capturing.install(sdkauth, ["sms"]):
        assert sdkauth.hooks.channel_senders["sms"] is capturing
        with app.app_context():
            widget = sdkauth.create_widget("W", [Channel("sms")])
            confirmed_session(sdkauth, widget.id, RECIPIENT, capturing)
    assert sdkauth.hooks.channel_senders["sms"] is hosts_sender
    assert len(capturing.messages) == 1


# -- test numbers --------------------------------------------------------------


@pytest.fixture
def fixed(make_app):
    app, sdkauth = make_app({"SDKAUTH_TEST_NUMBERS": {"+7 999 000-00-00": FIXED_CODE}})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms"), Channel("voice")])
    return app, sdkauth, widget


def test_a_test_number_gets_the_fixed_code_and_its_sender_is_called(fixed, outbox):
    app, sdkauth, widget = fixed
    with app.app_context():
        sdkauth.send(widget.id, TEST_NUMBER)
        sdkauth.send(widget.id, RECIPIENT)
    assert [(m.recipient, m.code == FIXED_CODE) for m in outbox.messages] == [
        (TEST_NUMBER, True),
        (RECIPIENT, False),
    ]
    assert FIXED_CODE in outbox.messages[0].text


def test_the_fixed_code_is_hashed_and_counted_like_any_code(fixed, outbox):
    app, sdkauth, widget = fixed
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = api.send(widget.id, TEST_NUMBER).json["requestId"]
    assert api.channel(request_id).status_code == 200
    with app.app_context():
        session = sdkauth.engine.sessions.get(uuid.UUID(request_id))
    assert session.code_hash != FIXED_CODE
    assert session.code_hash == hash_code(b"test-secret-key-of-enough-length-for-hs256", session.id, session.generation, FIXED_CODE)
    wrong_answer = api.check_code(request_id, wrong(FIXED_CODE))
    assert wrong_answer.json["type"] == InvalidCodeException.__name__
    assert api.check_code(request_id, FIXED_CODE).json == {"success": True}
    assert api.check_status_and_complete(request_id, TEST_NUMBER).json == {"success": True}


def test_a_resend_to_a_test_number_sends_the_same_code(fixed, outbox, clock):
    app, sdkauth, widget = fixed
    with app.app_context():
        request_id = sdkauth.send(widget.id, TEST_NUMBER)
        clock.advance(301)  # past the restart cooldown (the lifetime, 300 s)
        sdkauth.engine.resend(request_id)
    assert [m.code for m in outbox.messages] == [FIXED_CODE, FIXED_CODE]
    assert outbox.messages[0].id != outbox.messages[1].id


def test_test_numbers_are_refused_without_testing(make_app):
    with pytest.raises(RuntimeError, match="only allowed with TESTING = True"):
        make_app({"TESTING": False, "SDKAUTH_TEST_NUMBERS": {TEST_NUMBER: FIXED_CODE}})
    make_app({"TESTING": False, "SDKAUTH_TEST_NUMBERS": {}})  # empty is fine


@pytest.mark.parametrize(
    ("numbers", "error", "text"),
    [
        ({"+7999": FIXED_CODE}, ValueError, "entry 1 is not a valid phone number"),
        ({TEST_NUMBER: 123456}, ValueError, "entry 1 must be a string of digits"),
        ({TEST_NUMBER: "12a456"}, ValueError, "entry 1 must be a string of digits"),
        ([TEST_NUMBER], TypeError, "must be a mapping"),
    ],
)
def test_malformed_test_numbers_fail_init_app_without_quoting_them(numbers, error, text):
    app = Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY="k" * 32, SQLALCHEMY_DATABASE_URI="sqlite://")
    app.config["SDKAUTH_TEST_NUMBERS"] = numbers
    SQLAlchemy().init_app(app)
    JWTManager(app)
    with pytest.raises(error, match=text) as caught:
        SdkAuth(app, db=app.extensions["sqlalchemy"])
    assert "999" not in str(caught.value) and "123" not in str(caught.value)


# -- the plugin in a host's test session ---------------------------------------

HOST_TESTS = '''
    import pytest

    from flask_sdkauth.testing import confirm_session

    @pytest.fixture
    def sdkauth_config():
        return {"SDKAUTH_TEST_NUMBERS": {"+79990000000": "123456"}}

    def test_sign_in_with_the_fixed_code(sdkauth_app, sdkauth_widget, sdkauth_headers, sdkauth_outbox):
        client = sdkauth_app.test_client()
        body = {"widgetId": str(sdkauth_widget.id), "recipient": "+79990000000"}
        request_id = client.post("/", json=body, headers=sdkauth_headers).json["requestId"]
        assert sdkauth_outbox.last.code == "123456"
        answer = client.post(f"/{request_id}/checkCode", json={"code": "123456"}, headers=sdkauth_headers)
        assert answer.json == {"success": True}

    def test_confirm_in_one_call(sdkauth_app, sdkauth_extension, sdkauth_widget, sdkauth_outbox):
        with sdkauth_app.app_context():
            request_id = sdkauth_extension.send(sdkauth_widget.id, "+79991234567")
            confirm_session(sdkauth_extension, request_id, sdkauth_outbox)
            assert sdkauth_extension.check_status_and_complete(request_id, "+79991234567")

    def test_each_test_has_its_own_database(sdkauth_extension, sdkauth_app):
        with sdkauth_app.app_context():
            assert sdkauth_extension.engine.widgets.all() == []
'''


def test_a_host_test_session_uses_the_fixtures(pytester):
    pytester.makepyfile(test_host=textwrap.dedent(HOST_TESTS))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=3)


def test_the_example_in_the_docs_runs(pytester):
    text = (Path(__file__).parent.parent / "docs" / "testing.rst").read_text("utf-8")
    block = re.search(r":caption: tests/test_sign_in.py\n\n(.*?)\n(?=\S)", text, re.S).group(1)
    pytester.makepyfile(test_sign_in=textwrap.dedent(block))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=4)
