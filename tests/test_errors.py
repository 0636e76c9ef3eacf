"""Every exception class matches errors.json; one handler renders them all."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from werkzeug.exceptions import HTTPException

import flask_sdkauth
from flask_sdkauth import errors
from flask_sdkauth.errors import SdkAuthError

from .spec import ERRORS, error_body, wire_message

CLASSES = [
    getattr(errors, name)
    for name in errors.__all__
    if isinstance(getattr(errors, name), type) and getattr(errors, name) is not SdkAuthError
]
LEGACY = {t for t, e in ERRORS.items() if e.get("legacy")}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_class_matches_the_contract(cls):
    entry = ERRORS[cls.type]
    assert cls.http_status == entry["httpStatus"]
    if wire_message(cls.type) is not None:
        assert cls.message == wire_message(cls.type)
    assert issubclass(cls, SdkAuthError)
    assert not issubclass(cls, HTTPException)


def test_every_current_error_type_has_a_class():
    wire_types = {cls.type for cls in CLASSES}
    current = {t for t in ERRORS if t not in LEGACY}
    # CommonForbiddenException is the SDK name; on the wire it is ForbiddenException.
    assert current - wire_types == {"CommonForbiddenException"}
    assert errors.CommonForbiddenException is errors.ForbiddenException
    assert ERRORS["CommonForbiddenException"]["wireType"] == "ForbiddenException"


def test_public_names_export_every_error():
    for cls in CLASSES:
        assert getattr(flask_sdkauth, cls.__name__) is cls


@pytest.mark.parametrize(
    "cls", [c for c in CLASSES if wire_message(c.type) is not None], ids=lambda c: c.__name__
)
def test_rendered_body_is_byte_exact(cls):
    app = Flask(__name__)
    app.register_error_handler(SdkAuthError, errors.error_response)

    @app.get("/boom")
    def boom():
        raise cls()

    response = app.test_client().get("/boom")
    assert response.status_code == cls.http_status
    assert response.data == error_body(cls.type)


def test_payload_is_rendered_last():
    error = errors.ValidateError({"json": {"recipient": ["Not a valid phone number."]}})
    body = errors.error_response(error).get_data(as_text=True)
    assert list(json.loads(body)) == ["type", "message", "httpStatus", "payload"]
    assert "Not a valid phone number." in body


def test_hosts_401_handler_does_not_hijack_ours(app, client, widget):
    @app.errorhandler(401)
    def host_401(error):
        return "host page", 401

    response = client.post("/", json={"widgetId": str(widget.id), "recipient": "+79991234567"})
    assert response.data == error_body("Unauthorized")


def test_errors_raised_by_the_python_api_in_host_views_render_too(app, sdkauth, widget):
    @app.post("/formSubmit")
    def form_submit():
        sdkauth.send(widget.id, "not a phone")
        return "unreachable"

    response = app.test_client().post("/formSubmit")
    assert response.status_code == 400
    assert response.json["type"] == "ValidateError"
    assert response.json["payload"] == {"recipient": ["Not a valid phone number."]}


def test_unexpected_error_in_a_route_is_a_500_with_the_contract_body(make_app, outbox, caplog):
    app, sdkauth = make_app({"TESTING": False})

    @sdkauth.widget_loader
    def broken(widget_id):
        raise RuntimeError("database on fire")

    headers = {"Authorization": "Bearer " + _token(app, sdkauth)}
    response = app.test_client().post(
        "/", json={"widgetId": "6b3c1e4e-8f4e-4d2b-9a1c-2f0f6f2d7c11", "recipient": "+79991234567"},
        headers=headers,
    )
    assert response.status_code == 500
    assert response.data == error_body("InternalServerErrorException")
    assert "database on fire" in caplog.text


def _token(app, sdkauth):
    with app.app_context():
        return sdkauth.create_token(["6b3c1e4e-8f4e-4d2b-9a1c-2f0f6f2d7c11"])
