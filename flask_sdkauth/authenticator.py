"""The seam between the routes and whatever runs the authentication.

The views and the Python API of :class:`~flask_sdkauth.SdkAuth` ask an
:class:`Authenticator` for the operations of spec §3 and nothing else. There are
two: :class:`~flask_sdkauth.engine.Engine`, this package's own rules over its own
tables, and :class:`~flask_sdkauth.upstream.UpstreamAuthenticator`, which forwards
each operation to SIGMA's ``otp-handler`` (``SDKAUTH_UPSTREAM_URL``, spec §11).
``init_app`` picks one per app; the views never know which.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Protocol

from .config import Settings
from .core import Authorize
from .engine import ChannelView, WidgetInfo

__all__ = ["Authenticator", "NoLocalEngine"]


class NoLocalEngine(RuntimeError):
    """Asked for the local engine of an app that proxies SIGMA's service."""


class Authenticator(Protocol):
    """The operations of the contract. Errors are the contract's exceptions
    (:mod:`flask_sdkauth.errors`); ``authorize`` is called with the session's
    widget id and raises ``ForbiddenException`` to refuse."""

    @property
    def settings(self) -> Settings: ...

    def normalise_recipient(self, recipient: str) -> str:
        """``recipient`` in E.164 form; ``ValidateError`` if it is no phone number."""
        ...

    def widget_info(self, widget_id: uuid.UUID, client_ip: str | None = None) -> WidgetInfo:
        """getWidget."""
        ...

    def send(
        self,
        widget_id: uuid.UUID,
        recipient: str,
        *,
        client_ip: str | None = None,
        captcha_token: str | None = None,
        locale: str | None = None,
    ) -> uuid.UUID:
        """send: start a session; its request id."""
        ...

    def get_channel(
        self, request_id: uuid.UUID, *, authorize: Authorize | None = None
    ) -> ChannelView:
        """getChannel."""
        ...

    def wait_for_channel(
        self, request_id: uuid.UUID, *, authorize: Authorize | None = None
    ) -> ChannelView:
        """getChannelLongPolling."""
        ...

    def get_status(
        self, request_id: uuid.UUID, recipient: str, *, authorize: Authorize | None = None
    ) -> bool:
        """getStatus."""
        ...

    def wait_for_status(
        self, request_id: uuid.UUID, recipient: str, *, authorize: Authorize | None = None
    ) -> bool:
        """getStatusLongPolling."""
        ...

    def check_code(
        self,
        request_id: uuid.UUID,
        code: str,
        *,
        authorize: Authorize | None = None,
        client_ip: str | None = None,
    ) -> bool:
        """checkCode."""
        ...

    def resend(
        self,
        request_id: uuid.UUID,
        *,
        authorize: Authorize | None = None,
        client_ip: str | None = None,
    ) -> bool:
        """resend."""
        ...

    def complete(self, request_id: uuid.UUID, *, authorize: Authorize | None = None) -> bool:
        """complete: ``True`` exactly once."""
        ...

    def check_status_and_complete(
        self, request_id: uuid.UUID, recipient: str, *, authorize: Authorize | None = None
    ) -> bool:
        """checkStatusAndComplete: ``True`` exactly once."""
        ...

    def verified_number(self, request_id: uuid.UUID) -> str | None:
        """The E.164 number a confirmed or completed session proved, else ``None``."""
        ...

    def purge(self, older_than: timedelta | None = None) -> int:
        """Forget what is kept of sessions older than ``older_than`` (default
        ``SDKAUTH_RETENTION``); how many were deleted."""
        ...
