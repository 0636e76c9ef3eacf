"""The HTTP routes: parse, authenticate, call the engine, serialise. No rules here."""

from __future__ import annotations

import logging
import uuid
from typing import Any, cast

from flask import current_app, request
from werkzeug.exceptions import InternalServerError, NotFound

from .auth import authenticated_key, require_key, require_widget, token_required
from .authenticator import Authenticator
from .blueprint import SdkAuthBlueprint
from .confirm_page import register_confirm_page
from .errors import (
    AttemptsExpiredException,
    CaptchaNotConfirmedException,
    ChannelChangedException,
    ForbiddenException,
    InternalServerErrorException,
    InvalidCodeException,
    IsCodelessChannelException,
    LongPollingTimeoutException,
    NoAvailableChannelsException,
    PhoneNumberMismatchException,
    RateLimitException,
    RequestNotFoundException,
    ResendChannelException,
    RestartCooldownActiveException,
    SessionAlreadyConfirmedException,
    SessionClosedException,
    SessionNotFoundException,
    ValidateError,
    WidgetIsBlockedException,
    WidgetNotFoundException,
    error_response,
)
from .i18n import negotiate_locale
from .schemas import (
    CheckCodeRequestDto,
    GetChannelResponseDto,
    GetStatusResponseDto,
    GetWidgetResponseDto,
    RecipientQuery,
    RequestPath,
    SendRequestDto,
    SendResponseDto,
    WidgetPath,
)

__all__ = ["RECIPIENT_HEADER", "blp"]

logger = logging.getLogger("flask_sdkauth")

blp = SdkAuthBlueprint(
    "sdkauth",
    __name__,
    description="Phone authentication sessions for the SDK widget.",
    static_folder="static",
    static_url_path="/sdkauth-static",
    # The app's own templates folder comes first: a host overrides ours by name.
    template_folder="templates",
)


register_confirm_page(blp)

#: Response header of ``send``: the recipient in E.164 form, as the session holds it.
RECIPIENT_HEADER = "Sdkauth-Recipient"
SEND_HEADERS = {
    RECIPIENT_HEADER: {
        "description": "The recipient in E.164 form, as the session holds it.",
        "schema": {"type": "string", "example": "+79991234567"},
    }
}

#: Each route's operationId, by endpoint (view function) name.
ENDPOINT_OPERATIONS = {
    "send": "send",
    "get_widget": "getWidget",
    "get_channel": "getChannel",
    "get_status": "getStatus",
    "check_code": "checkCode",
    "check_status_and_complete": "checkStatusAndComplete",
    "complete": "complete",
    "resend": "resend",
    "wait_for_channel": "getChannelLongPolling",
    "wait_for_status": "getStatusLongPolling",
    "confirm_page": "confirm",
    "confirm": "confirm",
}


@blp.before_request
def _refuse_disabled_operations() -> None:
    endpoint = (request.endpoint or "").rpartition(".")[2]
    disabled = current_app.extensions["sdkauth"].settings.disabled_operations
    if ENDPOINT_OPERATIONS.get(endpoint) in disabled:
        raise RequestNotFoundException()


def _authenticator() -> Authenticator:
    return cast(Authenticator, current_app.extensions["sdkauth"].authenticator)


def _client_ip() -> str | None:
    """The client the per-client limits count: its address, or for a request
    authenticated by a backend key, that key (``key:<id>``)."""
    key = authenticated_key()
    if key is not None:
        return key.client
    loader = current_app.extensions["sdkauth"].hooks.client_ip_loader
    return loader() if loader is not None else request.remote_addr


def _require_key_to_complete() -> None:
    if _authenticator().settings.completion_needs_key:
        require_key()


@blp.errorhandler(InternalServerError)
def _internal_error(error: InternalServerError) -> Any:
    logger.error("sdkauth: unexpected error", exc_info=error.original_exception)
    return error_response(InternalServerErrorException())


def _not_found(error: NotFound) -> Any:
    # A missing static file of ours: the contract's shape, not werkzeug's page.
    return error_response(RequestNotFoundException())


blp.register_error_handler(NotFound, _not_found)


@blp.route("/", methods=["POST"], strict_slashes=False)
@token_required
@blp.operation(
    "send",
    RateLimitException,
    CaptchaNotConfirmedException,
    NoAvailableChannelsException,
    ValidateError,
    WidgetIsBlockedException,
    ForbiddenException,
    WidgetNotFoundException,
)
@blp.arguments(SendRequestDto)
@blp.response(201, SendResponseDto, headers=SEND_HEADERS)
def send(body: dict[str, Any]) -> Any:
    """Start an authentication session for a phone number."""
    require_widget(body["widgetId"])
    authenticator = _authenticator()
    settings = authenticator.settings
    request_id = authenticator.send(
        body["widgetId"],
        body["recipient"],
        client_ip=_client_ip(),
        captcha_token=body["captchaToken"],
        locale=negotiate_locale(settings.locales, settings.default_locale),
    )
    # The contract's body is {requestId}; the number as the session holds it (what
    # the widget shows and hands to the host page) travels in a header of ours.
    number = authenticator.normalise_recipient(body["recipient"])
    return {"requestId": request_id}, {RECIPIENT_HEADER: number}


@blp.route("/widget/<widgetId>", methods=["GET"])
@token_required
@blp.operation("getWidget", ValidateError, ForbiddenException, WidgetNotFoundException)
@blp.arguments(WidgetPath, location="path", as_kwargs=True)
@blp.response(200, GetWidgetResponseDto)
def get_widget(widgetId: uuid.UUID) -> Any:
    """Return the widget's configuration and whether a captcha is required."""
    require_widget(widgetId)
    return _authenticator().widget_info(widgetId, client_ip=_client_ip())


# Errors every stateful session operation can answer (spec §7.3).
_SESSION_ERRORS = (
    ValidateError,
    ForbiddenException,
    SessionNotFoundException,
    ResendChannelException,
    AttemptsExpiredException,
    NoAvailableChannelsException,
)


@blp.route("/<requestId>/channel", methods=["GET"])
@token_required
@blp.operation("getChannel", *_SESSION_ERRORS, SessionClosedException)
@blp.arguments(RequestPath, location="path", as_kwargs=True)
@blp.response(200, GetChannelResponseDto)
def get_channel(requestId: uuid.UUID) -> Any:
    """Return the session's current channel."""
    return _authenticator().get_channel(requestId, authorize=require_widget)


@blp.route("/longPolling/<requestId>/channel", methods=["GET"])
@token_required
@blp.operation(
    "getChannelLongPolling", *_SESSION_ERRORS, SessionClosedException, LongPollingTimeoutException
)
@blp.arguments(RequestPath, location="path", as_kwargs=True)
@blp.response(200, GetChannelResponseDto)
def wait_for_channel(requestId: uuid.UUID) -> Any:
    """Return the channel once it differs from what this client last saw."""
    return _authenticator().wait_for_channel(requestId, authorize=require_widget)


@blp.route("/<requestId>/status", methods=["GET"])
@token_required
@blp.operation(
    "getStatus",
    *_SESSION_ERRORS,
    SessionClosedException,
    ChannelChangedException,
    PhoneNumberMismatchException,
)
@blp.arguments(RequestPath, location="path", as_kwargs=True)
@blp.arguments(RecipientQuery, location="query", as_kwargs=True)
@blp.response(200, GetStatusResponseDto)
def get_status(requestId: uuid.UUID, recipient: str) -> Any:
    """Return whether the session is confirmed."""
    success = _authenticator().get_status(requestId, recipient, authorize=require_widget)
    return {"success": success}


@blp.route("/longPolling/<requestId>/status", methods=["GET"])
@token_required
@blp.operation(
    "getStatusLongPolling",
    *_SESSION_ERRORS,
    SessionClosedException,
    ChannelChangedException,
    PhoneNumberMismatchException,
    LongPollingTimeoutException,
)
@blp.arguments(RequestPath, location="path", as_kwargs=True)
@blp.arguments(RecipientQuery, location="query", as_kwargs=True)
@blp.response(200, GetStatusResponseDto)
def wait_for_status(requestId: uuid.UUID, recipient: str) -> Any:
    """Return the status once the session is confirmed, fails or changes channel."""
    success = _authenticator().wait_for_status(requestId, recipient, authorize=require_widget)
    return {"success": success}


@blp.route("/<requestId>/checkCode", methods=["POST"])
@token_required
@blp.operation(
    "checkCode",
    *_SESSION_ERRORS,
    RateLimitException,
    SessionClosedException,
    InvalidCodeException,
    IsCodelessChannelException,
    SessionAlreadyConfirmedException,
)
@blp.arguments(RequestPath, location="path", as_kwargs=True)
@blp.arguments(CheckCodeRequestDto, as_kwargs=True)
@blp.response(201, GetStatusResponseDto)
def check_code(requestId: uuid.UUID, code: str) -> Any:
    """Check the code the user typed."""
    success = _authenticator().check_code(
        requestId, code, authorize=require_widget, client_ip=_client_ip()
    )
    return {"success": success}


@blp.route("/<requestId>/checkStatusAndComplete", methods=["POST"])
@token_required
@blp.operation("checkStatusAndComplete", *_SESSION_ERRORS, PhoneNumberMismatchException)
@blp.arguments(RequestPath, location="path", as_kwargs=True)
@blp.arguments(RecipientQuery, location="query", as_kwargs=True)
@blp.response(201, GetStatusResponseDto)
def check_status_and_complete(requestId: uuid.UUID, recipient: str) -> Any:
    """Check the status and complete the session: true exactly once."""
    _require_key_to_complete()
    success = _authenticator().check_status_and_complete(
        requestId, recipient, authorize=require_widget
    )
    return {"success": success}


@blp.route("/<requestId>/complete", methods=["POST"])
@token_required
@blp.operation("complete", ValidateError, ForbiddenException, SessionNotFoundException)
@blp.arguments(RequestPath, location="path", as_kwargs=True)
@blp.response(201, GetStatusResponseDto)
def complete(requestId: uuid.UUID) -> Any:
    """Complete a confirmed session: true exactly once."""
    _require_key_to_complete()
    return {"success": _authenticator().complete(requestId, authorize=require_widget)}


@blp.route("/<requestId>/resend", methods=["POST"])
@token_required
@blp.operation(
    "resend",
    *_SESSION_ERRORS,
    RateLimitException,
    SessionClosedException,
    RestartCooldownActiveException,
    SessionAlreadyConfirmedException,
)
@blp.arguments(RequestPath, location="path", as_kwargs=True)
@blp.response(201, GetStatusResponseDto)
def resend(requestId: uuid.UUID) -> Any:
    """Restart the current channel, or start the next one."""
    success = _authenticator().resend(requestId, authorize=require_widget, client_ip=_client_ip())
    return {"success": success}
