"""The example app: demo widget, dev sender, token command, API docs."""

from __future__ import annotations

import logging
import re

import pytest

from example_app import create_app


@pytest.fixture
def example(tmp_path):
    return create_app(instance_path=str(tmp_path))


def test_demo_widget_is_created_once_and_printed(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="example_app"):
        first = create_app(instance_path=str(tmp_path)).test_client().get("/info").json
        second = create_app(instance_path=str(tmp_path)).test_client().get("/info").json
    assert first["demoWidgetId"] == second["demoWidgetId"]
    assert f"Demo widget id: {first['demoWidgetId']}" in caplog.text
    assert (tmp_path / "example.db").exists()


def test_the_printed_address_is_the_one_make_run_serves(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("FLASK_RUN_HOST", "0.0.0.0")
    monkeypatch.setenv("FLASK_RUN_PORT", "5077")
    with caplog.at_level(logging.WARNING, logger="example_app"):
        create_app(instance_path=str(tmp_path))
    assert "open http://0.0.0.0:5077," in caplog.text


def test_walk_through_with_the_token_command(example, caplog):
    widget_id = example.test_client().get("/info").json["demoWidgetId"]
    result = example.test_cli_runner().invoke(args=["sdkauth", "token", widget_id])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]

    with caplog.at_level(logging.WARNING, logger="example_app"):
        response = example.test_client().post(
            "/",
            json={"widgetId": widget_id, "recipient": "+79991234567"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 201
    request_id = response.json["requestId"]
    assert re.search(rf"\[dev sender\] sms to \+79991234567 \(session {request_id}\): .*\d{{6}}", caplog.text)


def test_openapi_and_swagger_ui_are_served(example):
    client = example.test_client()
    spec = client.get("/docs/openapi.json").json
    assert spec["paths"]["/"]["post"]["operationId"] == "send"
    # Only the extension's own schemas: none of flask-smorest's unused defaults.
    assert "Error" not in spec["components"]["schemas"]
    assert "PaginationMetadata" not in spec["components"]["schemas"]
    page = client.get("/docs/swagger")
    assert page.status_code == 200
    # Every file the page loads is served by the app itself: it works offline.
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.get_data(as_text=True))
    assert {asset.rsplit("/", 1)[1] for asset in assets} >= {
        "swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"
    }
    for asset in assets:
        assert asset.startswith("/docs/swagger-ui-assets/"), asset
        with client.get(asset) as served:
            assert served.status_code == 200 and len(served.data) > 1000, asset


def test_database_url_overrides_sqlite(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    create_app(instance_path=str(tmp_path))
    assert (tmp_path / "other.db").exists()


def test_whole_flow_with_curl_like_calls(example, caplog):
    client = example.test_client()
    widget_id = client.get("/info").json["demoWidgetId"]
    token = example.test_cli_runner().invoke(args=["sdkauth", "token", widget_id]).output.split()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    with caplog.at_level(logging.WARNING, logger="example_app"):
        request_id = client.post(
            "/", json={"widgetId": widget_id, "recipient": "+79991234567"}, headers=headers
        ).json["requestId"]
    code = re.search(rf"session {request_id}\): Код подтверждения: (\d{{6}})", caplog.text).group(1)
    assert client.get(f"/{request_id}/channel", headers=headers).json["status"] == "sent"
    submit = {"requestId": request_id, "recipient": "+79991234567"}
    assert client.post("/formSubmit", json=submit).status_code == 400
    assert client.post(f"/{request_id}/checkCode", json={"code": code}, headers=headers).json == {"success": True}
    assert client.post("/formSubmit", json=submit).json == {"signedIn": True}
    second = client.post("/formSubmit", json=submit)
    assert (second.status_code, second.json) == (400, {"signedIn": False})


def test_form_submit_errors_use_the_contract_body(example):
    response = example.test_client().post("/formSubmit", json={"requestId": "x", "recipient": "1"})
    assert response.status_code == 400
    assert response.json["type"] == "ValidateError"
