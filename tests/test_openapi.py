"""The generated OpenAPI document: operations, DTO components, security, errors."""

from __future__ import annotations

import json

from flask import Flask
from flask_jwt_extended import JWTManager
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from flask_sdkauth import SdkAuth
from flask_sdkauth.blueprint import SECURITY_SCHEME

from .spec import ENDPOINTS


def _host_app(tmp_path, **config):
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k" * 32,
        SQLALCHEMY_DATABASE_URI="sqlite://",
        API_TITLE="Host",
        API_VERSION="2",
        OPENAPI_VERSION="3.0.3",
        **config,
    )
    db = SQLAlchemy(app)
    JWTManager(app)
    api = Api(app)
    SdkAuth(app, db=db, api=api)
    return app, api


def _check_send_operation(spec, path="/"):
    operation = spec["paths"][path]["post"]
    assert operation["operationId"] == "send"
    assert operation["security"] == [{SECURITY_SCHEME: []}]
    assert spec["components"]["securitySchemes"][SECURITY_SCHEME] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
    }
    body_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref.endswith("/SendRequestDto")
    created = operation["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert created.endswith("/SendResponseDto")
    request_dto = spec["components"]["schemas"]["SendRequestDto"]
    assert set(request_dto["required"]) == {"widgetId", "recipient"}
    assert set(request_dto["properties"]) == {"widgetId", "recipient", "captchaToken"}
    # Every error the contract lists for send that we can produce is documented.
    documented = {
        status: operation["responses"][status]["description"].split(", ")
        for status in operation["responses"]
        if status.startswith(("4", "5"))
    }
    for status, types in ENDPOINTS["send"]["errors"].items():
        for error_type in types:
            if error_type == "NoConnectionException":
                continue  # there is no upstream service to lose
            assert error_type in documented[status], (status, error_type)
    for status in documented:
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith("/ErrorDto")
    assert "422" not in operation["responses"]


def test_routes_join_the_hosts_api_document(tmp_path):
    app, api = _host_app(tmp_path)
    spec = api.spec.to_dict()
    assert spec["info"]["title"] == "Host"
    _check_send_operation(spec)


def test_prefix_appears_in_the_document(tmp_path):
    app, api = _host_app(tmp_path, SDKAUTH_URL_PREFIX="otp")
    _check_send_operation(api.spec.to_dict(), path="/otp/")


def test_own_api_without_a_host_api(app):
    api = app.extensions["flask-smorest"]["apis"]["SDKAUTH_"]["ext_obj"]
    spec = api.spec.to_dict()
    assert spec["info"]["title"] == "flask-sdkauth"
    _check_send_operation(spec)
    assert "default" not in spec["paths"]["/"]["post"]["responses"]


def test_own_api_leaves_the_hosts_http_errors_alone(app):
    response = app.test_client().get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_flask_openapi_write(tmp_path):
    app, _ = _host_app(tmp_path)
    out = tmp_path / "openapi.json"
    result = app.test_cli_runner().invoke(args=["openapi", "write", str(out)])
    assert result.exit_code == 0, result.output
    _check_send_operation(json.loads(out.read_text()))


def test_flask_openapi_write_with_the_own_api(app, tmp_path):
    out = tmp_path / "openapi.json"
    result = app.test_cli_runner().invoke(
        args=["openapi", "write", "--config-prefix", "SDKAUTH_", str(out)]
    )
    assert result.exit_code == 0, result.output
    _check_send_operation(json.loads(out.read_text()))


NOT_PRODUCED = {
    "NoConnectionException",  # we embed our engine: there is no upstream to lose
}


def _operations(spec):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if method in ("get", "post"):
                yield path, method, operation


def test_every_operation_matches_the_contract(tmp_path):
    app, api = _host_app(tmp_path)
    spec = api.spec.to_dict()
    by_id = {op["operationId"]: (path, method, op) for path, method, op in _operations(spec)}
    for operation_id, contract in ENDPOINTS.items():
        path, method, operation = by_id[operation_id]
        assert method == contract["method"].lower(), operation_id
        assert path == contract["path"], operation_id
        assert str(contract["success"]["status"]) in operation["responses"]
        assert operation["security"] == [{SECURITY_SCHEME: []}]
        for status, types in contract["errors"].items():
            for error_type in types:
                if error_type in NOT_PRODUCED:
                    continue
                described = operation["responses"][status]["description"].split(", ")
                assert error_type in described, (operation_id, status, error_type)


def test_dto_component_names(tmp_path):
    app, api = _host_app(tmp_path)
    schemas = api.spec.to_dict()["components"]["schemas"]
    for name in (
        "SendRequestDto",
        "SendResponseDto",
        "GetWidgetResponseDto",
        "GetChannelResponseDto",
        "GetStatusResponseDto",
        "CheckCodeRequestDto",
        "ErrorDto",
    ):
        assert name in schemas, name
    assert set(schemas["GetChannelResponseDto"]["required"]) == {
        "type", "status", "label", "codeType", "settings", "remainingCodeAttempts",
    }


def test_query_and_path_parameters_are_documented(tmp_path):
    app, api = _host_app(tmp_path)
    operation = api.spec.to_dict()["paths"]["/{requestId}/status"]["get"]
    params = {(p["in"], p["name"]): p for p in operation["parameters"]}
    assert params[("query", "recipient")]["required"] is True
    assert params[("path", "requestId")]["schema"]["format"] == "uuid"
