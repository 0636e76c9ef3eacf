"""On our paths every error is in the contract's shape: wrong methods, unknown paths
under our prefix, disabled operations; the host's own paths keep the host's errors."""

from __future__ import annotations

import json
import uuid

import pytest
from flask import Flask
from flask_jwt_extended import JWTManager
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from flask_sdkauth import SdkAuth

from .spec import error_body

WRONG_METHOD = json.dumps(
    {"type": "BadRequestException", "message": "Некорректный запрос", "httpStatus": 405},
    ensure_ascii=False,
    separators=(",", ":"),
).encode()
REQUEST_ID = str(uuid.uuid4())


def _app(api_kind: str, prefix: str = "", **config) -> Flask:
    """A host app with routes of its own and the extension, with our Api or its own."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k" * 32,
        SQLALCHEMY_DATABASE_URI="sqlite://",
        API_TITLE="Host",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        SDKAUTH_URL_PREFIX=prefix,
        **config,
    )
    db = SQLAlchemy(app)
    JWTManager(app)

    @app.get("/host")
    def host_page() -> str:
        return "host"

    @app.get(f"{prefix}/host-under-prefix")
    def host_page_under_prefix() -> str:
        return "host"

    if api_kind == "host":
        api = Api(app)
        SdkAuth(app, db=db, api=api)
    else:
        SdkAuth(app, db=db)
    return app


API_KINDS = ["own", "host"]
PREFIXES = ["", "/otp"]


@pytest.mark.parametrize("api_kind", API_KINDS)
@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("PUT", "/", {"POST", "OPTIONS"}),
        ("DELETE", "/{id}/checkCode", {"POST", "OPTIONS"}),
        ("PATCH", "/{id}/resend", {"POST", "OPTIONS"}),
        ("GET", "/{id}/complete", {"POST", "OPTIONS"}),
        ("PUT", "/{id}/status", {"GET", "HEAD", "OPTIONS"}),
        ("POST", "/widget/{id}", {"GET", "HEAD", "OPTIONS"}),
        ("DELETE", "/{id}/confirm", {"GET", "HEAD", "OPTIONS", "POST"}),
    ],
)
def test_a_wrong_method_is_a_405_in_the_contract_shape(api_kind, prefix, method, path, allowed):
    app = _app(api_kind, prefix)
    url = prefix + path.format(id=REQUEST_ID)
    response = app.test_client().open(url or "/", method=method)
    assert response.status_code == 405
    assert response.data == WRONG_METHOD
    assert response.mimetype == "application/json"
    assert set(response.headers["Allow"].split(", ")) == allowed


@pytest.mark.parametrize("api_kind", API_KINDS)
@pytest.mark.parametrize("path", ["/otp/nope", "/otp/a/b/c", "/otp/widget/"])
def test_unknown_paths_under_the_prefix_are_ours(api_kind, path):
    response = _app(api_kind, "/otp").test_client().get(path)
    assert response.status_code == 404
    assert response.data == error_body("RequestNotFoundException")


def _hosts_own_404(api_kind, response):
    assert response.status_code == 404
    if api_kind == "host":  # flask-smorest's handler, which the host installed
        assert response.json == {"code": 404, "status": "Not Found"}
    else:
        assert response.mimetype == "text/html"


@pytest.mark.parametrize("api_kind", API_KINDS)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_hosts_own_errors_are_untouched(api_kind, prefix):
    client = _app(api_kind, prefix).test_client()
    # Not under a non-empty prefix: not ours, whatever the method.
    _hosts_own_404(api_kind, client.get("/no-such-page"))
    _hosts_own_404(api_kind, client.get("/other/otp"))
    for path in ("/host", f"{prefix}/host-under-prefix"):
        assert client.get(path).data == b"host"
        response = client.post(path)
        assert response.status_code == 405
        if api_kind == "host":  # smorest's handler (it drops Allow: not our business)
            assert response.json == {"code": 405, "status": "Method Not Allowed"}
        else:
            assert response.mimetype == "text/html"
            assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


@pytest.mark.parametrize("api_kind", API_KINDS)
def test_with_the_default_prefix_only_our_routes_are_ours(api_kind):
    client = _app(api_kind).test_client()
    _hosts_own_404(api_kind, client.get(f"/{REQUEST_ID}/nope"))
    _hosts_own_404(api_kind, client.get("/longPolling/"))


@pytest.mark.parametrize("api_kind", API_KINDS)
@pytest.mark.parametrize(
    "method, path",
    [("POST", "/{id}/complete"), ("POST", "/{id}/checkStatusAndComplete"), ("GET", "/{id}/confirm")],
)
def test_a_disabled_operation_is_a_404_in_the_contract_shape(api_kind, method, path):
    app = _app(
        api_kind,
        SDKAUTH_DISABLED_OPERATIONS=["complete", "checkStatusAndComplete", "confirm"],
    )
    response = app.test_client().open(path.format(id=REQUEST_ID), method=method)
    assert response.status_code == 404
    assert response.data == error_body("RequestNotFoundException")


@pytest.mark.parametrize("api_kind", API_KINDS)
def test_a_missing_static_file_of_ours(api_kind):
    response = _app(api_kind).test_client().get("/sdkauth-static/no-such-file.js")
    assert response.status_code == 404
    assert response.data == error_body("RequestNotFoundException")


# -- the confirmation page: bad input in JSON, the engine's refusals as a page -----

def test_confirm_bad_input_is_json(client):
    response = client.post("/not-a-uuid/confirm", data={"token": "abc"})
    assert response.status_code == 400
    assert response.json["payload"] == {"path": {"requestId": ["Not a valid UUID."]}}
    response = client.get(f"/{REQUEST_ID}/confirm")
    assert response.json["payload"] == {"query": {"token": ["Missing data for required field."]}}


def test_confirm_refusals_are_pages_with_the_errors_status(client, widget, headers):
    from flask_sdkauth.errors import InvalidCodeException, SessionNotFoundException

    from .flow import WidgetClient, started

    request_id = started(WidgetClient(client, headers), widget.id)
    for url, error, text in (
        (f"/{REQUEST_ID}/confirm", SessionNotFoundException, "Вход не найден."),
        # Not a codeless channel.
        (f"/{request_id}/confirm", InvalidCodeException, "Ссылка недействительна."),
    ):
        response = client.post(url, data={"token": "abc"})
        assert response.status_code == error.http_status
        assert response.mimetype == "text/html"
        # The page's own text for the reader, not the API's message.
        assert text in response.text and error.message not in response.text
        assert response.headers["Cache-Control"] == "no-store"
