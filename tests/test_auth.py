"""Widget tokens: 401 for anything but a valid, scoped token; 403 outside the scope."""

from __future__ import annotations

import uuid
from datetime import timedelta

import jwt
import pytest
from flask_jwt_extended import create_access_token, jwt_required

from flask_sdkauth.auth import SCOPE_CLAIM

from .conftest import bearer
from .spec import error_body


def _send(client, widget, headers):
    return client.post(
        "/", json={"widgetId": str(widget.id), "recipient": "+79991234567"}, headers=headers
    )


def _claims(app, token):
    with app.app_context():
        return jwt.decode(token, options={"verify_signature": False})


def _assert_unauthorized(response):
    assert response.status_code == 401
    assert response.data == error_body("Unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not.a.token",
        "Bearer " + "a" * 5000,
        "Token abc",
    ],
)
def test_missing_or_malformed_token(client, widget, authorization, outbox):
    headers = {} if authorization is None else {"Authorization": authorization}
    _assert_unauthorized(_send(client, widget, headers))
    assert outbox.messages == []


def test_expired_token(app, sdkauth, client, widget):
    headers = bearer(app, sdkauth, widget.id, expires_in=1)
    token = headers["Authorization"].split()[1]
    claims = _claims(app, token)
    claims["exp"] = claims["iat"] - 10
    expired = jwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256")
    _assert_unauthorized(_send(client, widget, {"Authorization": f"Bearer {expired}"}))


def test_token_signed_with_another_key(app, sdkauth, client, widget):
    token = bearer(app, sdkauth, widget.id)["Authorization"].split()[1]
    forged = jwt.encode(_claims(app, token), "another-key-another-key-another-key", algorithm="HS256")
    _assert_unauthorized(_send(client, widget, {"Authorization": f"Bearer {forged}"}))


def test_token_with_alg_none_is_refused(app, sdkauth, client, widget):
    token = bearer(app, sdkauth, widget.id)["Authorization"].split()[1]
    unsigned = jwt.encode(_claims(app, token), None, algorithm="none")
    _assert_unauthorized(_send(client, widget, {"Authorization": f"Bearer {unsigned}"}))


@pytest.mark.parametrize("mutate", ["drop_scope", "scope_not_list", "wrong_type", "drop_aud", "other_aud"])
def test_tokens_without_our_claims_are_refused(app, sdkauth, client, widget, mutate):
    claims = _claims(app, bearer(app, sdkauth, widget.id)["Authorization"].split()[1])
    if mutate == "drop_scope":
        del claims[SCOPE_CLAIM]
    elif mutate == "scope_not_list":
        claims[SCOPE_CLAIM] = {"widgets": str(widget.id)}
    elif mutate == "wrong_type":
        claims["type"] = "access"
    elif mutate == "drop_aud":
        del claims["aud"]
    else:
        claims["aud"] = "someone-else"
    token = jwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256")
    _assert_unauthorized(_send(client, widget, {"Authorization": f"Bearer {token}"}))


def test_hosts_own_access_token_is_not_a_widget_token(app, client, widget):
    with app.app_context():
        token = create_access_token(identity="user-1")
    _assert_unauthorized(_send(client, widget, {"Authorization": f"Bearer {token}"}))


def test_widget_token_does_not_open_the_hosts_jwt_routes(app, sdkauth, widget):
    @app.get("/host-private")
    @jwt_required()
    def private():
        return {"ok": True}

    response = app.test_client().get("/host-private", headers=bearer(app, sdkauth, widget.id))
    assert response.status_code in (401, 422)


def test_token_scoped_to_several_widgets(app, sdkauth, client, widget, outbox):
    with app.app_context():
        other = sdkauth.create_widget("Other", widget.channels)
    headers = bearer(app, sdkauth, widget.id, str(other.id))
    assert _send(client, widget, headers).status_code == 201
    assert _send(client, other, headers).status_code == 201
    assert _send(client, type(widget)(id=uuid.uuid4(), name="x"), headers).status_code == 403


def test_create_token_contents(app, sdkauth, widget, clock):
    with app.app_context():
        token = sdkauth.create_token([widget.id], expires_in=timedelta(minutes=5))
        default = sdkauth.create_token([str(widget.id)])
    claims = _claims(app, token)
    assert claims["aud"] == "flask-sdkauth"
    assert claims[SCOPE_CLAIM] == {"widgets": [str(widget.id)]}
    assert claims["exp"] - claims["iat"] == 300
    default_claims = _claims(app, default)
    assert default_claims["exp"] - default_claims["iat"] == 3600


@pytest.mark.parametrize("widget_ids, expires_in, error", [
    ([], None, ValueError),
    (["not-a-uuid"], None, ValueError),
    ([uuid.uuid4()], 0, ValueError),
    ([uuid.uuid4()], -5, ValueError),
])
def test_create_token_rejects_bad_arguments(app, sdkauth, widget_ids, expires_in, error):
    with app.app_context(), pytest.raises(error):
        sdkauth.create_token(widget_ids, expires_in=expires_in)


def test_audience_and_host_jwt_settings_are_honoured(make_app):
    from flask_sdkauth import Channel

    app, sdkauth = make_app(
        {
            "SDKAUTH_JWT_AUDIENCE": "my-widgets",
            "JWT_SECRET_KEY": "a-dedicated-jwt-key-a-dedicated-jwt-key",
            "JWT_HEADER_NAME": "X-Widget-Token",
            "JWT_HEADER_TYPE": "JWT",
        }
    )
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        token = sdkauth.create_token([widget.id])
    assert jwt.decode(token, "a-dedicated-jwt-key-a-dedicated-jwt-key", algorithms=["HS256"], audience="my-widgets")
    client = app.test_client()
    ok = _send(client, widget, {"X-Widget-Token": f"JWT {token}"})
    assert ok.status_code == 201
    _assert_unauthorized(_send(client, widget, {"Authorization": f"Bearer {token}"}))
