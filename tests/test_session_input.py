"""Bad input and access control on the requestId operations: 400, 401, 403, 404."""

from __future__ import annotations

import json
import uuid

import pytest

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient, started
from .spec import error_body, wire_message

OPERATIONS = {
    "getChannel": ("GET", "/{id}/channel", {}),
    "getStatus": ("GET", "/{id}/status", {"query_string": {"recipient": RECIPIENT}}),
    "checkCode": ("POST", "/{id}/checkCode", {"json": {"code": "123456"}}),
    "resend": ("POST", "/{id}/resend", {}),
    "complete": ("POST", "/{id}/complete", {}),
    "checkStatusAndComplete": (
        "POST", "/{id}/checkStatusAndComplete", {"query_string": {"recipient": RECIPIENT}},
    ),
}


def _call(client, operation, request_id, headers):
    method, path, kwargs = OPERATIONS[operation]
    return client.open(path.format(id=request_id), method=method, headers=headers, **kwargs)


@pytest.fixture
def api(app, sdkauth, widget):
    return WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))


def _validate_payload(response):
    assert response.status_code == 400, response.json
    body = response.json
    assert (body["type"], body["message"], body["httpStatus"]) == (
        "ValidateError", wire_message("ValidateError"), 400,
    )
    return body["payload"]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "g" * 36, "%20"])
def test_malformed_request_id(api, operation, bad_id):
    payload = _validate_payload(_call(api.client, operation, bad_id, api.headers))
    assert payload == {"path": {"requestId": ["Not a valid UUID."]}}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_unknown_session(api, operation):
    response = _call(api.client, operation, uuid.uuid4(), api.headers)
    assert response.status_code == 404
    assert response.data == error_body("SessionNotFoundException")


@pytest.mark.parametrize("operation", OPERATIONS)
def test_without_a_token(api, widget, operation):
    request_id = started(api, widget.id)
    response = _call(api.client, operation, request_id, {})
    assert response.data == error_body("Unauthorized")


@pytest.mark.parametrize("operation", OPERATIONS)
def test_token_of_another_widget(app, sdkauth, api, widget, operation):
    request_id = started(api, widget.id)
    response = _call(api.client, operation, request_id, bearer(app, sdkauth, uuid.uuid4()))
    assert response.status_code == 403
    assert response.data == error_body("ForbiddenException")


@pytest.mark.parametrize("operation", ["getStatus", "checkStatusAndComplete"])
@pytest.mark.parametrize("query", [{}, {"recipient": ""}, {"recipient": "+7" + "9" * 100}])
def test_missing_or_empty_recipient(api, widget, operation, query):
    request_id = started(api, widget.id)
    method, path, _ = OPERATIONS[operation]
    response = api.client.open(
        path.format(id=request_id), method=method, headers=api.headers, query_string=query
    )
    assert set(_validate_payload(response)["query"]) == {"recipient"}


@pytest.mark.parametrize("operation", ["getStatus", "checkStatusAndComplete"])
def test_unparseable_recipient_is_a_validate_error_after_the_session_lookup(api, widget, operation):
    method, path, _ = OPERATIONS[operation]
    unknown = api.client.open(
        path.format(id=uuid.uuid4()), method=method, headers=api.headers,
        query_string={"recipient": "call me"},
    )
    assert unknown.status_code == 404
    request_id = started(api, widget.id)
    response = api.client.open(
        path.format(id=request_id), method=method, headers=api.headers,
        query_string={"recipient": "call me"},
    )
    assert _validate_payload(response) == {"recipient": ["Not a valid phone number."]}


@pytest.mark.parametrize(
    "body",
    [{}, {"code": 123456}, {"code": None}, {"code": ["1"]}, {"code": ""}, {"code": "1" * 33}, {"code": {"a": 1}}],
)
def test_bad_code_bodies(api, widget, outbox, body):
    request_id = started(api, widget.id)
    response = api.client.post(f"/{request_id}/checkCode", json=body, headers=api.headers)
    assert set(_validate_payload(response)["json"]) == {"code"}
    # Nothing was used up: the right code still works on the first try.
    assert api.channel(request_id).json["remainingCodeAttempts"] == 3
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}


@pytest.mark.parametrize(
    "data, content_type",
    [(b"{bad", "application/json"), (b"[]", "application/json"), (b"", "application/json"), (b"code=1", "application/x-www-form-urlencoded")],
)
def test_malformed_code_bodies(api, widget, data, content_type):
    request_id = started(api, widget.id)
    response = api.client.post(
        f"/{request_id}/checkCode", data=data, content_type=content_type, headers=api.headers
    )
    assert _validate_payload(response)["json"]


def test_huge_code_body(api, widget):
    request_id = started(api, widget.id)
    response = api.client.post(
        f"/{request_id}/checkCode", data=json.dumps({"code": "1" * 50_000}),
        content_type="application/json", headers=api.headers,
    )
    assert _validate_payload(response) == {"json": ["Request body is too large."]}
