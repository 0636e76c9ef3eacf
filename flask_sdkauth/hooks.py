"""The host's callbacks, as registered through :class:`~flask_sdkauth.SdkAuth`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .message import Message
from .widgets import Widget

__all__ = [
    "ChannelSender",
    "ClientIpLoader",
    "Hooks",
    "RecipientBlocklistLoader",
    "UpstreamTokenLoader",
    "WidgetLoader",
]

WidgetLoader = Callable[[uuid.UUID], "Widget | None"]
ChannelSender = Callable[[Message], None]
RecipientBlocklistLoader = Callable[[str, Widget], bool]
ClientIpLoader = Callable[[], "str | None"]
UpstreamTokenLoader = Callable[[], str]


@dataclass
class Hooks:
    """What the engine and views call back into; ``None`` means "use the default"."""

    widget_loader: WidgetLoader | None = None
    channel_senders: dict[str, ChannelSender] = field(default_factory=dict)
    #: Channel types whose sender returns in time by itself, called in the launch's
    #: own thread (``SdkAuth.add_channel_sender(..., bounded=True)``).
    bounded_senders: set[str] = field(default_factory=set)
    recipient_in_blocklist_loader: RecipientBlocklistLoader | None = None
    client_ip_loader: ClientIpLoader | None = None
    upstream_token_loader: UpstreamTokenLoader | None = None
