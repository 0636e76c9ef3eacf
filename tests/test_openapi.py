"""The generated OpenAPI document: operations, DTO components, security, errors."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from flask_jwt_extended import JWTManager
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from flask_sdkauth import SdkAuth, extension, swagger_ui
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


OUR_SCHEMAS = {
    "ChannelCodeSettingsDto",
    "ChannelSettingsDto",
    "CheckCodeRequestDto",
    "ConfirmForm",
    "ErrorDto",
    "GetChannelResponseDto",
    "GetStatusResponseDto",
    "GetWidgetResponseDto",
    "SendRequestDto",
    "SendResponseDto",
}


def test_own_api_documents_only_our_schemas(app):
    api = app.extensions["flask-smorest"]["apis"]["SDKAUTH_"]["ext_obj"]
    # Not flask-smorest's Error and PaginationMetadata, which no route of ours returns.
    assert set(api.spec.to_dict()["components"]["schemas"]) == OUR_SCHEMAS


def _swagger_assets(client, page_path):
    page = client.get(page_path)
    assert page.status_code == 200
    return re.findall(r'(?:src|href)="([^"]+)"', page.get_data(as_text=True))


def test_own_api_serves_swagger_ui_files_itself(make_app):
    app, _ = make_app(
        {"SDKAUTH_OPENAPI_URL_PREFIX": "/api-docs", "SDKAUTH_OPENAPI_SWAGGER_UI_PATH": "/ui"}
    )
    client = app.test_client()
    assets = _swagger_assets(client, "/api-docs/ui")
    assert len(assets) == 3
    for asset in assets:
        assert asset.startswith("/api-docs/swagger-ui-assets/"), asset
        with client.get(asset) as served:
            assert served.status_code == 200, asset


def test_a_configured_swagger_ui_url_is_kept(make_app):
    app, _ = make_app(
        {
            "SDKAUTH_OPENAPI_URL_PREFIX": "/docs",
            "SDKAUTH_OPENAPI_SWAGGER_UI_PATH": "/ui",
            "SDKAUTH_OPENAPI_SWAGGER_UI_URL": "https://cdn.example/swagger/",
        }
    )
    assets = _swagger_assets(app.test_client(), "/docs/ui")
    assert all(asset.startswith("https://cdn.example/swagger/") for asset in assets)


def test_without_swagger_ui_bundle_the_page_is_left_out_with_a_warning(
    make_app, monkeypatch, caplog
):
    monkeypatch.setattr(extension, "swagger_ui_bundle_folder", lambda: None)
    app, _ = make_app(
        {"SDKAUTH_OPENAPI_URL_PREFIX": "/docs", "SDKAUTH_OPENAPI_SWAGGER_UI_PATH": "/ui"}
    )
    assert app.test_client().get("/docs/ui").status_code == 404
    assert "swagger-ui-bundle" in caplog.text
    with pytest.raises(RuntimeError, match="swagger-ui-bundle"):
        monkeypatch.setattr(swagger_ui, "swagger_ui_bundle_folder", lambda: None)
        swagger_ui.register_swagger_ui_assets(Flask(__name__))


def test_a_host_api_serves_swagger_ui_files_with_the_helper(tmp_path):
    host, _ = _host_app(
        tmp_path, OPENAPI_URL_PREFIX="/docs", OPENAPI_SWAGGER_UI_PATH="/ui",
        OPENAPI_SWAGGER_UI_URL="/static/swagger/",
    )
    assert swagger_ui.register_swagger_ui_assets(host, "static/swagger") == "/static/swagger/"
    client = host.test_client()
    for asset in _swagger_assets(client, "/docs/ui"):
        assert asset.startswith("/static/swagger/")
        with client.get(asset) as served:
            assert served.status_code == 200, asset


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


# Every type the contract lists is documented (503 stands for the database or the
# rate-limit storage being unreachable: we have no upstream of our own to lose).
NOT_PRODUCED: set[str] = set()


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


def _all_operations(spec):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if method != "parameters":
                yield path, method, operation


@pytest.mark.parametrize("api_kind", ["own", "host"])
def test_only_our_own_responses_are_documented(tmp_path, make_app, api_kind):
    if api_kind == "host":
        _, api = _host_app(tmp_path)
    else:
        app, _ = make_app()
        api = app.extensions["flask-smorest"]["apis"]["SDKAUTH_"]["ext_obj"]
    spec = api.spec.to_dict()
    for path, method, operation in _all_operations(spec):
        responses = operation["responses"]
        assert "default" not in responses, (path, method)
        assert "422" not in responses, (path, method)
        for status, response in responses.items():
            assert "$ref" not in response, (path, method, status)
            for content_type, content in response["content"].items():
                if content_type == "application/json" and status >= "400":
                    assert content["schema"]["$ref"].endswith("/ErrorDto"), (path, status)
                else:
                    assert content_type == "text/html" or status < "400", (path, status)


RATE_LIMITED = {"send", "checkCode", "resend", "confirm"}


def test_statuses_every_operation_documents(tmp_path):
    _, api = _host_app(tmp_path)
    for _path, _method, operation in _all_operations(api.spec.to_dict()):
        responses = operation["responses"]
        operation_id = operation["operationId"]
        assert "500" in responses
        assert "404" in responses and "RequestNotFoundException" in responses["404"]["description"]
        assert ("429" in responses) == (operation_id in RATE_LIMITED), operation_id
        if operation_id == "confirmPage":  # shows a page: touches no storage
            assert "503" not in responses and "401" not in responses
            continue
        assert "NoConnectionException" in responses["503"]["description"], operation_id
        if operation_id != "confirm":  # the link's token is the credential there
            assert "Unauthorized" in responses["401"]["description"], operation_id


def test_confirm_routes_document_json_and_html(tmp_path):
    _, api = _host_app(tmp_path)
    paths = api.spec.to_dict()["paths"]["/{requestId}/confirm"]
    page, confirm = paths["get"]["responses"], paths["post"]["responses"]
    assert set(page) == {"200", "400", "404", "500"}
    assert set(page["200"]["content"]) == {"text/html"}
    assert set(page["400"]["content"]) == {"application/json"}
    assert set(confirm) == {"200", "400", "404", "409", "429", "500", "503"}
    assert set(confirm["400"]["content"]) == {"application/json", "text/html"}
    assert "ValidateError (JSON)" in confirm["400"]["description"]
    assert "InvalidCodeException" in confirm["400"]["description"]
    assert set(confirm["409"]["content"]) == {"text/html"}
    assert set(confirm["500"]["content"]) == {"application/json"}


def test_constraints_the_server_enforces(tmp_path):
    from flask_sdkauth.schemas import PRINTABLE, URLSAFE

    _, api = _host_app(tmp_path)
    spec = api.spec.to_dict()
    schemas = spec["components"]["schemas"]
    recipient = schemas["SendRequestDto"]["properties"]["recipient"]
    assert (recipient["minLength"], recipient["maxLength"], recipient["pattern"]) == (1, 64, PRINTABLE)
    assert schemas["SendRequestDto"]["properties"]["widgetId"]["format"] == "uuid"
    assert schemas["SendRequestDto"]["properties"]["captchaToken"]["maxLength"] == 4096
    code = schemas["CheckCodeRequestDto"]["properties"]["code"]
    assert (code["minLength"], code["maxLength"]) == (1, 32)
    assert "pattern" not in code  # any text is compared: no pattern is enforced
    token = schemas["ConfirmForm"]["properties"]["token"]
    assert (token["minLength"], token["maxLength"], token["pattern"]) == (1, 128, URLSAFE)
    query = {
        p["name"]: p["schema"] for p in spec["paths"]["/{requestId}/status"]["get"]["parameters"]
    }
    assert (query["recipient"]["maxLength"], query["recipient"]["pattern"]) == (64, PRINTABLE)
    for path, _method, operation in _all_operations(spec):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["schema"]["format"] == "uuid", path


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("recipient", "+7999123456\x01", "Not a valid phone number."),
        ("recipient", "9" * 65, "Length must be between 1 and 64."),
    ],
)
def test_the_documented_constraints_are_enforced(client, widget, headers, field, value, message):
    body = {"widgetId": str(widget.id), "recipient": "+79991234567", field: value}
    response = client.post("/", json=body, headers=headers)
    assert response.json["payload"] == {"json": {field: [message]}}
