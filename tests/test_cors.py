"""A widget on another origin: the flask-cors setup docs/deployment.rst gives works.

The contract leaves CORS to the host (spec gap 19); these tests hold the documented
configuration to what a browser needs: the preflight of a POST with a bearer token
passes without a token of its own, and the headers the widget reads are exposed.
"""

from __future__ import annotations

import pytest
from flask_cors import CORS

from flask_sdkauth import Channel

from .conftest import bearer
from .flow import RECIPIENT

SHOP = "https://shop.example"


@pytest.fixture
def cross_origin(make_app):
    app, sdkauth = make_app({"SDKAUTH_URL_PREFIX": "/auth"})
    # As docs/deployment.rst writes it.
    CORS(
        app,
        resources={r"/auth/*": {"origins": [SHOP]}},
        allow_headers=["Authorization", "Content-Type", "Accept-Language"],
        expose_headers=["Retry-After", "Sdkauth-Recipient"],
        max_age=600,
    )
    with app.app_context():
        widget = sdkauth.create_widget("Demo", [Channel("sms")])
    return app, sdkauth, widget


def test_the_preflight_of_a_send_passes_without_a_token(cross_origin):
    app, _, _ = cross_origin
    preflight = app.test_client().options(
        "/auth/",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,accept-language",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "accept-language"} <= set(allowed.split(", "))


def test_the_answers_expose_what_the_widget_reads(cross_origin):
    app, sdkauth, widget = cross_origin
    client = app.test_client()
    headers = {**bearer(app, sdkauth, widget.id), "Origin": SHOP}
    sent = client.post("/auth/", json={"widgetId": str(widget.id), "recipient": RECIPIENT},
                       headers=headers)
    assert sent.status_code == 201
    assert sent.headers["Access-Control-Allow-Origin"] == SHOP
    exposed = sent.headers["Access-Control-Expose-Headers"].lower()
    assert {"retry-after", "sdkauth-recipient"} <= set(exposed.split(", "))
    assert sent.headers["Sdkauth-Recipient"] == RECIPIENT
    # Errors carry the headers too, or the browser hides the body from the widget.
    refused = client.get(f"/auth/{'0' * 8}-0000-4000-8000-{'0' * 12}/channel", headers=headers)
    assert refused.status_code == 404
    assert refused.headers["Access-Control-Allow-Origin"] == SHOP
    assert refused.json["type"] == "SessionNotFoundException"


def test_other_origins_get_no_cors_headers(cross_origin):
    app, sdkauth, widget = cross_origin
    answer = app.test_client().get(
        f"/auth/widget/{widget.id}",
        headers={**bearer(app, sdkauth, widget.id), "Origin": "https://evil.example"},
    )
    # The server still answers; the browser is what refuses to hand it to the page.
    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer.headers
