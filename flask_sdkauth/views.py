"""The HTTP routes: parse, authenticate, call the engine, serialise. No rules here."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import InternalServerError

from .auth import require_widget, token_required
from .blueprint import SdkAuthBlueprint
from .engine import Engine
from .errors import (
    ForbiddenException,
    InternalServerErrorException,
    NoAvailableChannelsException,
    ValidateError,
    WidgetIsBlockedException,
    WidgetNotFoundException,
    error_response,
)
from .schemas import SendRequestDto, SendResponseDto

__all__ = ["blp"]

logger = logging.getLogger("flask_sdkauth")

blp = SdkAuthBlueprint(
    "sdkauth",
    __name__,
    description="Phone authentication sessions for the SDK widget.",
)


def _engine() -> Engine:
    return current_app.extensions["sdkauth"].engine


def _client_ip() -> str | None:
    loader = current_app.extensions["sdkauth"].hooks.client_ip_loader
    return loader() if loader is not None else request.remote_addr


@blp.errorhandler(InternalServerError)
def _internal_error(error: InternalServerError) -> Any:
    logger.error("sdkauth: unexpected error", exc_info=error.original_exception)
    return error_response(InternalServerErrorException())


@blp.route("/", methods=["POST"], strict_slashes=False)
@token_required
@blp.operation(
    "send",
    NoAvailableChannelsException,
    ValidateError,
    WidgetIsBlockedException,
    ForbiddenException,
    WidgetNotFoundException,
)
@blp.arguments(SendRequestDto)
@blp.response(201, SendResponseDto)
def send(body: dict[str, Any]) -> dict[str, Any]:
    """Start an authentication session for a phone number."""
    require_widget(body["widgetId"])
    request_id = _engine().send(body["widgetId"], body["recipient"], client_ip=_client_ip())
    return {"requestId": request_id}
