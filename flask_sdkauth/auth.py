"""Widget tokens: JWTs signed with the host's flask-jwt-extended settings.

A widget token carries the audience ``SDKAUTH_JWT_AUDIENCE`` and the list of widget
ids it may use, and deliberately no identity claim (``sub``): flask-jwt-extended
refuses a token without one, which keeps widget tokens out of the host's own
``@jwt_required`` routes. The list scopes a token to those widgets. We decode each
token exactly once and never install loaders on the host's ``JWTManager``. A
backend key (:mod:`~flask_sdkauth.api_keys`) is accepted in a token's place.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import jwt
from flask import current_app, g, request
from flask_jwt_extended.config import config as jwt_config

from .api_keys import KEY_PREFIX, ApiKey
from .errors import ForbiddenException, UnauthorizedException

__all__ = [
    "SCOPE_CLAIM",
    "authenticated_key",
    "encode_token",
    "require_key",
    "require_widget",
    "token_required",
]

#: The private claim holding ``{"widgets": [<uuid>, …]}``.
SCOPE_CLAIM = "sdkauth"
_TOKEN_TYPE = "sdkauth"

F = TypeVar("F", bound=Callable[..., Any])


def encode_token(
    widget_ids: Iterable[uuid.UUID | str], *, expires_in: timedelta, audience: str
) -> str:
    """Sign a token for ``widget_ids`` with the host's JWT key and algorithm."""
    widgets = sorted({str(uuid.UUID(str(widget_id))) for widget_id in widget_ids})
    if not widgets:
        raise ValueError("a widget token needs at least one widget id")
    if expires_in <= timedelta(0):
        raise ValueError("expires_in must be positive")
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "type": _TOKEN_TYPE,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
        "aud": audience,
        SCOPE_CLAIM: {"widgets": widgets},
    }
    if jwt_config.encode_issuer:
        claims["iss"] = jwt_config.encode_issuer
    return jwt.encode(claims, jwt_config.encode_key, algorithm=jwt_config.algorithm)


def token_required(view: F) -> F:
    """Reject the request with 401 unless it bears a valid widget token or an
    unrevoked backend key.

    The credential's widget ids are kept for :func:`require_widget`.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        credential = _bearer_token()
        if credential.startswith(KEY_PREFIX):
            key = current_app.extensions["sdkauth"].api_keys.find(credential)
            if key is None:
                raise UnauthorizedException()
            g._sdkauth_key = key
            g._sdkauth_widgets = key.widget_ids
        else:
            g._sdkauth_key = None
            g._sdkauth_widgets = _widgets_from(credential)
        return view(*args, **kwargs)

    return cast(F, wrapper)


def require_widget(widget_id: uuid.UUID) -> None:
    """403 ``ForbiddenException`` unless the request's token covers ``widget_id``."""
    if str(widget_id) not in g._sdkauth_widgets:
        raise ForbiddenException()


def authenticated_key() -> ApiKey | None:
    """The backend key the request was authenticated with, if any."""
    key: ApiKey | None = g.get("_sdkauth_key")
    return key


def require_key() -> None:
    """403 ``ForbiddenException`` unless the request bears a backend key."""
    if authenticated_key() is None:
        raise ForbiddenException()


def _bearer_token() -> str:
    header = request.headers.get(jwt_config.header_name, "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != jwt_config.header_type.lower() or not token.strip():
        raise UnauthorizedException()
    return token.strip()


def _widgets_from(token: str) -> frozenset[str]:
    extension = current_app.extensions["sdkauth"]
    try:
        claims = jwt.decode(
            token,
            jwt_config.decode_key,
            algorithms=jwt_config.decode_algorithms,
            audience=extension.settings.jwt_audience,
            issuer=jwt_config.decode_issuer,
            leeway=jwt_config.leeway,
            options={"require": ["exp", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise UnauthorizedException() from exc
    scope = claims.get(SCOPE_CLAIM)
    widgets = scope.get("widgets") if isinstance(scope, dict) else None
    if claims.get("type") != _TOKEN_TYPE or not isinstance(widgets, list):
        raise UnauthorizedException()
    return frozenset(str(widget) for widget in widgets)
