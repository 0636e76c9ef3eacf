"""flask-sdkauth: self-hosted, widget-based phone authentication for Flask.

The shape: views (HTTP) → an :class:`~flask_sdkauth.authenticator.Authenticator`:
either :class:`~flask_sdkauth.engine.Engine` (rules and the state machine) → store
(SQLAlchemy Core) and dispatcher (channel senders), or in proxy mode
:class:`~flask_sdkauth.upstream.UpstreamAuthenticator` → SIGMA's ``otp-handler``.
"""

from __future__ import annotations

from . import signals
from .delivery import DeliveryStatus, RetryDelivery
from .dispatchers import Dispatcher, InlineDispatcher, LaunchJob
from .errors import *
from .errors import __all__ as _error_names
from .extension import SdkAuth
from .message import Message, MessageId
from .states import State
from .store import SessionRecord
from .widgets import CHANNEL_TYPES, Channel, ChannelSettings, Widget

__version__ = "0.1.0"

__all__ = [
    "SdkAuth",
    "Widget",
    "Channel",
    "ChannelSettings",
    "CHANNEL_TYPES",
    "Message",
    "MessageId",
    "RetryDelivery",
    "DeliveryStatus",
    "SessionRecord",
    "State",
    "Dispatcher",
    "InlineDispatcher",
    "LaunchJob",
    "signals",
    *_error_names,
]
