"""Bad input to send: always 400 ValidateError with field errors, never 422 or 500."""

from __future__ import annotations

import io
import json
import uuid

import pytest
import sqlalchemy as sa

from .spec import wire_message

VALID_RECIPIENT = "+79991234567"


def _assert_validate_error(response, location="json"):
    assert response.status_code == 400, response.data
    body = response.json
    assert list(body) == ["type", "message", "httpStatus", "payload"]
    assert body["type"] == "ValidateError"
    assert body["message"] == wire_message("ValidateError")
    assert body["httpStatus"] == 400
    return body["payload"][location]


def _count(app, sdkauth):
    with app.app_context(), sdkauth.db.engine.connect() as connection:
        table = sdkauth.tables.session
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()


@pytest.mark.parametrize(
    "body, fields",
    [
        ({}, {"widgetId", "recipient"}),
        ({"recipient": VALID_RECIPIENT}, {"widgetId"}),
        ({"widgetId": "WIDGET"}, {"recipient"}),
        ({"widgetId": "not-a-uuid", "recipient": VALID_RECIPIENT}, {"widgetId"}),
        ({"widgetId": 42, "recipient": VALID_RECIPIENT}, {"widgetId"}),
        ({"widgetId": None, "recipient": VALID_RECIPIENT}, {"widgetId"}),
        ({"widgetId": "WIDGET", "recipient": 79991234567}, {"recipient"}),
        ({"widgetId": "WIDGET", "recipient": ["+79991234567"]}, {"recipient"}),
        ({"widgetId": "WIDGET", "recipient": "hello"}, {"recipient"}),
        ({"widgetId": "WIDGET", "recipient": "+7999"}, {"recipient"}),
        ({"widgetId": "WIDGET", "recipient": "+1 000 000 0000"}, {"recipient"}),
        ({"widgetId": "WIDGET", "recipient": "89991234567"}, {"recipient"}),
        ({"widgetId": "WIDGET", "recipient": "+7" + "9" * 5000}, {"recipient"}),
        ({"widgetId": "WIDGET", "recipient": ""}, {"recipient"}),
        ({"widgetId": "WIDGET", "recipient": VALID_RECIPIENT, "captchaToken": 5}, {"captchaToken"}),
    ],
)
def test_field_errors_name_the_offending_fields(app, sdkauth, client, widget, headers, outbox, body, fields):
    body = {k: (str(widget.id) if v == "WIDGET" else v) for k, v in body.items()}
    with app.app_context():
        before = _count(app, sdkauth)

    payload = _assert_validate_error(client.post("/", json=body, headers=headers))

    assert set(payload) == fields
    assert all(isinstance(messages, list) and messages for messages in payload.values())
    assert outbox.messages == []
    assert _count(app, sdkauth) == before


@pytest.mark.parametrize(
    "data", [b"{not json", b'{"widgetId": ', b"\xff\xfe", b'{"a": 1}}']
)
def test_malformed_json(client, headers, data):
    response = client.post("/", data=data, headers=headers, content_type="application/json")
    assert _assert_validate_error(response) == ["Invalid JSON body."]


@pytest.mark.parametrize("body", [[], ["x"], "text", 12, None, True])
def test_body_that_is_not_an_object(client, headers, body):
    response = client.post("/", data=json.dumps(body), headers=headers, content_type="application/json")
    payload = _assert_validate_error(response)
    assert payload  # the schema-level or field-level reason is given


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # no body at all
        {"data": b"", "content_type": "application/json"},
        {"data": "widgetId=x&recipient=y", "content_type": "application/x-www-form-urlencoded"},
        {"data": b'{"widgetId": "x"}', "content_type": "text/plain"},
    ],
)
def test_missing_or_non_json_body(client, headers, kwargs):
    payload = _assert_validate_error(client.post("/", headers=headers, **kwargs))
    assert set(payload) == {"widgetId", "recipient"}


def test_huge_body_is_refused_without_being_read(app, client, widget, headers):
    body = {"widgetId": str(widget.id), "recipient": VALID_RECIPIENT, "pad": "x" * 20_000}
    payload = _assert_validate_error(client.post("/", json=body, headers=headers))
    assert payload == ["Request body is too large."]


def test_huge_chunked_body_is_refused(app, client, widget, headers):
    data = json.dumps({"widgetId": str(widget.id), "recipient": VALID_RECIPIENT, "pad": "x" * 20_000})
    response = client.post(
        "/",
        input_stream=io.BytesIO(data.encode()),
        headers={**headers, "Transfer-Encoding": "chunked"},
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.request.content_length is None
    assert _assert_validate_error(response) == ["Request body is too large."]


def test_body_limit_is_configurable(make_app):
    from flask_sdkauth import Channel

    from .conftest import bearer

    app, sdkauth = make_app({"SDKAUTH_MAX_BODY_SIZE": 64})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    body = {"widgetId": str(widget.id), "recipient": VALID_RECIPIENT}
    response = app.test_client().post("/", json=body, headers=bearer(app, sdkauth, widget.id))
    assert _assert_validate_error(response) == ["Request body is too large."]


def test_unknown_fields_are_ignored(client, widget, headers):
    body = {"widgetId": str(widget.id), "recipient": VALID_RECIPIENT, "lang": "ru"}
    assert client.post("/", json=body, headers=headers).status_code == 201


def test_national_numbers_need_a_default_region(make_app):
    from flask_sdkauth import Channel

    from .conftest import bearer

    app, sdkauth = make_app({"SDKAUTH_DEFAULT_REGION": "RU"})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    body = {"widgetId": str(widget.id), "recipient": "8 (999) 123-45-67"}
    response = app.test_client().post("/", json=body, headers=bearer(app, sdkauth, widget.id))
    assert response.status_code == 201
    with app.app_context():
        session = sdkauth.engine.sessions.get(uuid.UUID(response.json["requestId"]))
    assert session.recipient == "+79991234567"


def test_authentication_comes_before_validation(client):
    response = client.post("/", data=b"{not json", content_type="application/json")
    assert response.status_code == 401
