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


# -- hostile input: always the exact ValidateError body, nothing stored is lost ----

def _exact(payload):
    body = {"type": "ValidateError", "message": wire_message("ValidateError"),
            "httpStatus": 400, "payload": payload}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


INVALID_JSON = {"json": ["Invalid JSON body."]}

HOSTILE_BODIES = {
    "nested arrays": b"[" * 1500 + b"]" * 1500,
    "nested objects": b'{"a":' * 1500 + b"1" + b"}" * 1500,
    "5000 digits": b'{"code": ' + b"1" * 5000 + b"}",
    "invalid UTF-8": b'{"code": "\xff\xfe"}',
    "Latin-1": b'{"code": "\xe9"}',
    "UTF-16 without BOM": '{"code": "1"}'.encode("utf-16-le"),
    "UTF-16 with BOM": '{"code": "1"}'.encode("utf-16"),
    "UTF-8 BOM": b'\xef\xbb\xbf{"code": "1"}',
    "NaN": b'{"code": NaN}',
    "Infinity": b'{"code": -Infinity}',
    "lone surrogate": b'{"code": "\\ud800"}',
    "truncated": b'{"code": "12',
    "trailing data": b'{"code": "1"} x',
}


@pytest.fixture
def session(client, widget, headers):
    from .flow import WidgetClient, started

    api = WidgetClient(client, headers)
    return api, started(api, widget.id)


def _still_works(api, request_id, outbox):
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}
    assert api.check_status_and_complete(request_id).json == {"success": True}


@pytest.mark.parametrize("data", list(HOSTILE_BODIES.values()), ids=list(HOSTILE_BODIES))
def test_hostile_json_bodies(app, sdkauth, client, widget, headers, session, outbox, data, caplog):
    api, request_id = session
    before = _count(app, sdkauth)
    for path in ("/", f"/{request_id}/checkCode"):
        response = client.post(path, data=data, headers=headers, content_type="application/json")
        assert response.data == _exact(INVALID_JSON), (path, response.data)
    assert not [record for record in caplog.records if record.exc_info]
    assert _count(app, sdkauth) == before
    _still_works(api, request_id, outbox)


def test_a_charset_parameter_does_not_change_the_encoding(client, headers, session, outbox):
    api, request_id = session
    response = client.post(
        f"/{request_id}/checkCode", data='{"code": "1"}'.encode("utf-16"), headers=headers,
        content_type="application/json; charset=utf-16",
    )
    assert response.data == _exact(INVALID_JSON)
    _still_works(api, request_id, outbox)


TOO_LONG = {"recipient": ["Length must be between 1 and 64."]}
NOT_A_NUMBER = {"recipient": ["Not a valid phone number."]}

HOSTILE_QUERIES = {
    "huge": ("recipient=" + "9" * 20_000, {"query": ["Query string is too large."]}),
    "too long": ("recipient=" + "9" * 65, {"query": TOO_LONG}),
    "control character": ("recipient=%2B79991234567\x01", {"query": NOT_A_NUMBER}),
    "encoded NUL": ("recipient=%2B7999123%004567", {"query": NOT_A_NUMBER}),
    "encoded newline": ("recipient=%2B7%0A9991234567", {"query": NOT_A_NUMBER}),
    "repeated key": (
        "recipient=%2B79991234567&recipient=%2B79990000000",
        {"query": {"recipient": ["Repeated parameter."]}},
    ),
    # Werkzeug keeps a bad escape as it is, and decodes bad UTF-8 to U+FFFD: the
    # engine then reads a text that is no phone number (no location level, §precedence).
    "invalid percent-encoding": ("recipient=%zz%", NOT_A_NUMBER),
    "invalid UTF-8": ("recipient=%FF%FE", NOT_A_NUMBER),
}


@pytest.mark.parametrize(
    "query, payload", list(HOSTILE_QUERIES.values()), ids=list(HOSTILE_QUERIES)
)
def test_hostile_query_strings(client, headers, session, outbox, query, payload):
    api, request_id = session
    for method, path in (
        ("GET", f"/{request_id}/status"),
        ("GET", f"/longPolling/{request_id}/status"),
        ("POST", f"/{request_id}/checkStatusAndComplete"),
    ):
        response = client.open(
            path, method=method, headers=headers, environ_overrides={"QUERY_STRING": query}
        )
        assert response.data == _exact(payload), (path, response.data)
    _still_works(api, request_id, outbox)


FORM = "application/x-www-form-urlencoded"
HOSTILE_FORMS = {
    "huge": (b"token=" + b"a" * 20_000, FORM, {"form": ["Request body is too large."]}),
    "repeated key": (b"token=a&token=b", FORM, {"form": {"token": ["Repeated parameter."]}}),
    "control character": (b"token=a%00b", FORM, {"form": {"token": ["Not a valid token."]}}),
    "invalid percent-encoding": (b"token=%zz", FORM, {"form": {"token": ["Not a valid token."]}}),
    "too long": (b"token=" + b"a" * 129, FORM,
                 {"form": {"token": ["Length must be between 1 and 128."]}}),
    "broken multipart": (b"--xx\r\ngarbage", "multipart/form-data; boundary=xx",
                         {"form": {"token": ["Missing data for required field."]}}),
}


@pytest.mark.parametrize(
    "data, content_type, payload", list(HOSTILE_FORMS.values()), ids=list(HOSTILE_FORMS)
)
def test_hostile_confirm_forms(client, session, outbox, data, content_type, payload):
    api, request_id = session
    response = client.post(f"/{request_id}/confirm", data=data, content_type=content_type)
    assert response.data == _exact(payload)
    _still_works(api, request_id, outbox)


@pytest.mark.parametrize(
    "query, payload",
    [
        ("token=a&token=b", {"query": {"token": ["Repeated parameter."]}}),
        ("token=%FF%00", {"query": {"token": ["Not a valid token."]}}),
        ("token=a&choices=" + "1" * 20_000, {"query": ["Query string is too large."]}),
    ],
)
def test_hostile_confirm_links(client, session, outbox, query, payload):
    api, request_id = session
    response = client.get(
        f"/{request_id}/confirm", environ_overrides={"QUERY_STRING": query}
    )
    assert response.data == _exact(payload)
    _still_works(api, request_id, outbox)
