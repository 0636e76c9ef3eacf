"""What a channel sender receives."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Message"]


@dataclass(frozen=True)
class Message:
    """One delivery request handed to the host's sender for a channel.

    :ivar request_id: the authentication session.
    :ivar widget_id: the widget the session belongs to.
    :ivar recipient: the phone number in E.164 form.
    :ivar channel: the channel type (``"sms"``, ``"voice"``…).
    :ivar label: the channel's human label.
    :ivar code_type: ``"code"`` or ``"codeless"``.
    :ivar code: the one-time code to deliver, or ``None`` on a codeless channel.
    :ivar text: the rendered text (``SDKAUTH_MESSAGE_TEXT``, or
        ``SDKAUTH_CODELESS_TEXT`` on a codeless channel), ready to send.
    :ivar expires_at: when the code stops being accepted (aware, UTC).
    :ivar confirmation_token: on a codeless channel, the secret the host passes to
        :meth:`SdkAuth.confirm` (or that :meth:`SdkAuth.confirmation_url` puts in a
        link); ``None`` on code channels.
    :ivar choices: with number matching, the numbers to offer the user; the right
        one is shown by the widget (``payload.matchNumber``), never here.
    """

    request_id: uuid.UUID
    widget_id: uuid.UUID
    recipient: str
    channel: str
    label: str
    code_type: str
    code: str | None
    text: str
    expires_at: datetime
    confirmation_token: str | None = None
    choices: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # Keep the secrets out of logs and tracebacks that print the message.
        return (
            f"Message(request_id={self.request_id!s}, channel={self.channel!r}, "
            "recipient=***, code=***, confirmation_token=***)"
        )
