"""Proxy mode: the contract's operations forwarded to SIGMA's ``otp-handler``.

What stays here, in front of the service (spec §3.11, §11): the widget tokens and
their scope, the rate limits and daily caps, the captcha (``captchaToken`` is
checked here and never forwarded; getWidget's captcha fields are added here) and
the number's normal form. ``userIp`` is not forwarded (spec gap 18). Everything
else, channels, codes, attempts, long polls, is the service's; its errors reach
the client as the service sent them (:attr:`SdkAuthError.verbatim`), and send the
same error signals as the engine's (spec §9, §11).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import current_app

from .. import signals
from ..clock import Clock, utc_now
from ..config import Settings
from ..core import Authorize, normalised_recipient, reports_errors
from ..engine import ChannelView, WidgetInfo
from ..errors import (
    InternalServerErrorException,
    SdkAuthError,
    SessionNotFoundException,
)
from ..guards import Guards
from ..phones import describe
from .client import OtpHandlerClient
from .sessions import ProxiedSession, ProxiedSessions

__all__ = ["UpstreamAuthenticator"]


class UpstreamAuthenticator:
    """The :class:`~flask_sdkauth.authenticator.Authenticator` of proxy mode."""

    def __init__(
        self,
        *,
        settings: Settings,
        client: OtpHandlerClient,
        sessions: ProxiedSessions,
        guards: Guards,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.client = client
        self.sessions = sessions
        self.guards = guards
        self.clock = clock

    def normalise_recipient(self, recipient: str) -> str:
        return normalised_recipient(recipient, self.settings.default_region)

    def widget_info(self, widget_id: uuid.UUID, client_ip: str | None = None) -> WidgetInfo:
        data = self.client.get_widget(widget_id)
        return WidgetInfo(
            name=_field(data, "name", str),
            is_active=_field(data, "isActive", bool),
            is_blocked=_field(data, "isBlocked", bool),
            captcha_is_required=self.guards.captcha_required(client_ip),
            captcha_provider=self.guards.captcha_provider,
        )

    def send(
        self,
        widget_id: uuid.UUID,
        recipient: str,
        *,
        client_ip: str | None = None,
        captcha_token: str | None = None,
        locale: str | None = None,
    ) -> uuid.UUID:
        """Check the limits and the captcha here, then start the session upstream
        with ``{widgetId, recipient}`` only. ``locale`` is the service's concern."""
        recipient = self.normalise_recipient(recipient)
        self.guards.before_send(widget_id, recipient, client_ip, captcha_token)
        self.guards.spend_budget(widget_id, describe(recipient), recipient, client_ip)
        request_id = self.client.send(widget_id, recipient)
        self.sessions.insert(ProxiedSession(request_id, widget_id, recipient), self.clock())
        signals.session_created.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            request_id=request_id,
            widget_id=widget_id,
        )
        return request_id

    @reports_errors
    def get_channel(
        self, request_id: uuid.UUID, *, authorize: Authorize | None = None
    ) -> ChannelView:
        self._open(request_id, authorize)
        return _channel(self.client.get_channel(request_id))

    @reports_errors
    def wait_for_channel(
        self, request_id: uuid.UUID, *, authorize: Authorize | None = None
    ) -> ChannelView:
        self._open(request_id, authorize)
        return _channel(self.client.wait_for_channel(request_id))

    @reports_errors
    def get_status(
        self, request_id: uuid.UUID, recipient: str, *, authorize: Authorize | None = None
    ) -> bool:
        self._open(request_id, authorize)
        return self.client.get_status(request_id, recipient)

    @reports_errors
    def wait_for_status(
        self, request_id: uuid.UUID, recipient: str, *, authorize: Authorize | None = None
    ) -> bool:
        self._open(request_id, authorize)
        return self.client.wait_for_status(request_id, recipient)

    @reports_errors
    def check_code(
        self,
        request_id: uuid.UUID,
        code: str,
        *,
        authorize: Authorize | None = None,
        client_ip: str | None = None,
    ) -> bool:
        """The limits per IP, per session and per number here; the code upstream."""
        self.guards.limit_client("check_code", client_ip)
        session = self._open(request_id, authorize)
        self.guards.limit_session("check_code", request_id, code_check_of=session.recipient)
        confirmed = self.client.check_code(request_id, code)
        if confirmed:
            signals.success_confirmation.send(
                current_app._get_current_object(),  # type: ignore[attr-defined]
                request_id=request_id,
            )
        return confirmed

    @reports_errors
    def resend(
        self,
        request_id: uuid.UUID,
        *,
        authorize: Authorize | None = None,
        client_ip: str | None = None,
    ) -> bool:
        self.guards.limit_client("resend", client_ip)
        self._open(request_id, authorize)
        self.guards.limit_session("resend", request_id)
        return self.client.resend(request_id)

    @reports_errors
    def complete(self, request_id: uuid.UUID, *, authorize: Authorize | None = None) -> bool:
        self._open(request_id, authorize)
        return self.client.complete(request_id)

    @reports_errors
    def check_status_and_complete(
        self, request_id: uuid.UUID, recipient: str, *, authorize: Authorize | None = None
    ) -> bool:
        self._open(request_id, authorize)
        return self.client.check_status_and_complete(request_id, recipient)

    def verified_number(self, request_id: uuid.UUID) -> str | None:
        session = self.sessions.get(request_id)
        if session is None:
            return None
        try:
            confirmed = self.client.get_status(request_id, session.recipient)
        except SdkAuthError as error:
            if error.verbatim is None:  # no answer from the service, not a state
                raise
            return None  # a state the service does not call confirmed
        return session.recipient if confirmed else None

    def purge(self, older_than: timedelta | None = None) -> int:
        """Forget the sessions started more than ``older_than`` (default
        ``SDKAUTH_RETENTION``) ago; they then answer 404 here."""
        if older_than is None:
            older_than = timedelta(seconds=self.settings.retention)
        return self.sessions.delete_before(self.clock() - older_than)

    def _open(self, request_id: uuid.UUID, authorize: Authorize | None) -> ProxiedSession:
        """The session as started through this app, its scope checked: 404 for a
        session it did not start, 403 for a token of another widget."""
        session = self.sessions.get(request_id)
        if session is None:
            raise SessionNotFoundException()
        if authorize is not None:
            authorize(session.widget_id)
        return session


def _field(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise InternalServerErrorException()
    return value


def _channel(data: dict[str, Any]) -> ChannelView:
    """The service's ``IOtpChannelData`` as the view getChannel serialises."""
    payload = data.get("payload", {})
    settings = data.get("settings")
    if not isinstance(payload, dict) or not isinstance(settings, dict):
        raise InternalServerErrorException()
    return ChannelView(
        type=_field(data, "type", str),
        status=_field(data, "status", str),
        label=_field(data, "label", str),
        code_type=_field(data, "codeType", str),
        payload=payload,
        settings=settings,
        remaining_code_attempts=_field(data, "remainingCodeAttempts", int),
    )

