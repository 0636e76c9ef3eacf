"""Backend keys: created by the CLI and shown once, stored as a hash only, accepted
as a bearer credential, revoked at once, the only credential of completion when
``SDKAUTH_COMPLETION_NEEDS_KEY`` is on, and counted per key by the per-client
limits."""

from __future__ import annotations

import hashlib
import logging
import uuid

import pytest
import sqlalchemy as sa

from flask_sdkauth import Channel

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient, race, started
from .spec import error_body


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=["sdkauth", *args])


def _create_key(app, *widget_ids, name="backend"):
    options = [item for widget_id in widget_ids for item in ("--widget", str(widget_id))]
    result = _cli(app, "key", "create", "--name", name, *options)
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def _key_client(app, key):
    return WidgetClient(app.test_client(), {"Authorization": f"Bearer {key}"})


@pytest.fixture
def setup(make_app):
    def build(config=None):
        app, sdkauth = make_app(config)
        with app.app_context():
            widget = sdkauth.create_widget("W", [Channel("sms")])
        return app, sdkauth, widget

    return build


def test_a_key_is_shown_once_and_only_its_hash_is_stored(setup, caplog):
    app, sdkauth, widget = setup()
    with caplog.at_level(logging.DEBUG):
        key = _create_key(app, widget.id)
    assert key.startswith("sdkauth_") and len(key) > 40
    with app.app_context():
        rows = sdkauth.db.session.execute(sa.select(sdkauth.tables.api_key)).mappings().all()
    assert len(rows) == 1
    assert rows[0]["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in repr(dict(rows[0]))
    assert key not in caplog.text
    listing = _cli(app, "key", "list")
    assert listing.exit_code == 0
    assert str(rows[0]["id"]) in listing.output and "backend" in listing.output
    assert "active" in listing.output and key not in listing.output


def test_a_key_is_a_bearer_credential_for_its_widgets(setup, outbox):
    app, sdkauth, widget = setup()
    with app.app_context():
        other = sdkauth.create_widget("Other", [Channel("sms")])
    key = _create_key(app, widget.id)
    api = _key_client(app, key)
    request_id = started(api, widget.id)
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}
    assert api.check_status_and_complete(request_id).json == {"success": True}
    assert api.check_status_and_complete(request_id).json == {"success": False}
    refused = api.send(other.id)
    assert (refused.status_code, refused.data) == (403, error_body("ForbiddenException"))


def test_a_revoked_key_is_refused_at_once(setup):
    app, sdkauth, widget = setup()
    key = _create_key(app, widget.id)
    api = _key_client(app, key)
    assert api.widget(widget.id).status_code == 200
    with app.app_context():
        (known,) = sdkauth.api_keys.all()
    revoked = _cli(app, "key", "revoke", str(known.id))
    assert revoked.exit_code == 0, revoked.output
    answer = api.widget(widget.id)
    assert (answer.status_code, answer.data) == (401, error_body("Unauthorized"))
    assert "revoked" in _cli(app, "key", "list").output
    again = _cli(app, "key", "revoke", str(known.id))
    assert again.exit_code == 1 and "no active key" in again.output


@pytest.mark.parametrize(
    "credential", ["sdkauth_", "sdkauth_not-a-key", "sdkauth_" + "A" * 43]
)
def test_an_unknown_key_is_unauthorized(setup, credential):
    app, sdkauth, widget = setup()
    _create_key(app, widget.id)
    answer = _key_client(app, credential).widget(widget.id)
    assert (answer.status_code, answer.data) == (401, error_body("Unauthorized"))


def test_key_creation_refuses_bad_input(setup):
    app, sdkauth, widget = setup()
    assert _cli(app, "key", "create", "--name", "x").exit_code == 2  # no --widget
    assert _cli(app, "key", "create", "--name", " ", "--widget", str(widget.id)).exit_code == 2
    long_name = _cli(app, "key", "create", "--name", "n" * 201, "--widget", str(widget.id))
    assert long_name.exit_code == 2 and "1 to 200 characters" in long_name.output
    assert _cli(app, "key", "create", "--name", "n" * 200, "--widget", str(widget.id)).exit_code == 0
    assert _cli(app, "key", "create", "--name", "x", "--widget", "nope").exit_code == 2
    assert _cli(app, "key", "revoke", "not-a-uuid").exit_code == 2


def test_completion_needs_a_key_when_configured(setup, outbox):
    app, sdkauth, widget = setup({"SDKAUTH_COMPLETION_NEEDS_KEY": True})
    browser = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = started(browser, widget.id)
    assert browser.check_code(request_id, outbox.last.code).json == {"success": True}
    for answer in (browser.complete(request_id), browser.check_status_and_complete(request_id)):
        assert (answer.status_code, answer.data) == (403, error_body("ForbiddenException"))
    backend = _key_client(app, _create_key(app, widget.id))
    assert backend.check_status_and_complete(request_id).json == {"success": True}
    assert backend.complete(request_id).json == {"success": False}


def test_widget_tokens_complete_by_default(setup, outbox):
    app, sdkauth, widget = setup()
    browser = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = started(browser, widget.id)
    browser.check_code(request_id, outbox.last.code)
    assert browser.complete(request_id).json == {"success": True}


def test_completion_by_key_happens_exactly_once_under_concurrency(
    make_app, shared_database_uri, outbox
):
    app, sdkauth = make_app({"SQLALCHEMY_DATABASE_URI": shared_database_uri})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
    key = _create_key(app, widget.id)
    api = _key_client(app, key)
    assert api.check_code(str(request_id), outbox.last.code).json == {"success": True}
    headers = {"Authorization": f"Bearer {key}"}
    url = f"/{request_id}/checkStatusAndComplete?recipient=%2B79991234567"
    clients = [app.test_client() for _ in range(12)]
    answers = race(app, [lambda c=c: c.post(url, headers=headers).json for c in clients])
    assert sorted(answer["success"] for answer in answers) == [False] * 11 + [True]


def test_limits_per_client_count_per_key(setup, outbox):
    app, sdkauth, widget = setup({"SDKAUTH_RATELIMIT_CHECK_CODE_PER_IP": "2/minute"})
    first = _key_client(app, _create_key(app, widget.id, name="one"))
    second = _key_client(app, _create_key(app, widget.id, name="two"))
    browser = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    request_id = started(browser, widget.id)
    # Each key has the limit to itself, though all three come from one address.
    for api in (first, second, browser):
        assert [api.check_code(request_id, "000000").status_code for _ in range(2)] == [400, 400]
        assert api.check_code(request_id, "000000").status_code == 429


def test_a_keys_session_records_the_key_as_its_client(setup):
    app, sdkauth, widget = setup()
    key = _create_key(app, widget.id)
    request_id = _key_client(app, key).send(widget.id).json["requestId"]
    with app.app_context():
        (known,) = sdkauth.api_keys.all()
        session = sdkauth.engine.sessions.get(uuid.UUID(request_id))
    assert session.client_ip == f"key:{known.id}"


def test_a_key_is_asked_for_no_captcha(setup):
    app, sdkauth, widget = setup(
        {
            "SDKAUTH_CAPTCHA_PROVIDER": "google",
            "SDKAUTH_CAPTCHA_SECRET": "s3cret",
            "SDKAUTH_CAPTCHA_VERIFY_URL": "http://127.0.0.1:1/never-called",
        }
    )
    browser = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    assert browser.widget(widget.id).json["captchaIsRequired"] is True
    refused = browser.send(widget.id)
    assert refused.data == error_body("CaptchaNotConfirmedException")
    backend = _key_client(app, _create_key(app, widget.id))
    assert backend.widget(widget.id).json["captchaIsRequired"] is False
    assert backend.send(widget.id).status_code == 201
