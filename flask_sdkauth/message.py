"""What a channel sender receives."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Message", "MessageId"]

_MESSAGE_ID = re.compile(r"([0-9a-f]{32})-([1-9][0-9]{0,9})-([0-9]{1,4})", re.ASCII)


@dataclass(frozen=True)
class MessageId:
    """What a message id names: one channel launch of one session.

    Written as ``<request id hex>-<generation>-<channel index>`` (at most 48
    characters of ``[0-9a-f-]``, which gateways accept as a client reference), so
    that a delivery report finds its session without a lookup table.
    """

    request_id: uuid.UUID
    generation: int
    channel_index: int

    def __str__(self) -> str:
        return f"{self.request_id.hex}-{self.generation}-{self.channel_index}"

    @classmethod
    def parse(cls, text: str) -> MessageId | None:
        """The launch ``text`` names, or ``None`` if it is not a message id of ours."""
        match = _MESSAGE_ID.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            return None
        hex_id, generation, index = match.groups()
        return cls(uuid.UUID(hex=hex_id), int(generation), int(index))


@dataclass(frozen=True)
class Message:
    """One delivery request handed to the host's sender for a channel.

    :ivar id: unique per channel launch and the same on every retry of that
        launch: pass it to the gateway as its idempotency key or client reference,
        and back to :meth:`SdkAuth.report_delivery` from the gateway's webhook
        (:class:`MessageId` reads the launch back from it).
    :ivar request_id: the authentication session.
    :ivar widget_id: the widget the session belongs to.
    :ivar recipient: the phone number in E.164 form.
    :ivar channel: the channel type (``"sms"``, ``"voice"``…).
    :ivar label: the channel's human label.
    :ivar code_type: ``"code"`` or ``"codeless"``.
    :ivar code: the one-time code to deliver, or ``None`` on a codeless channel.
    :ivar text: the rendered text (``SDKAUTH_MESSAGE_TEXT``, or
        ``SDKAUTH_CODELESS_TEXT`` on a codeless channel) in ``locale``, ready to send.
    :ivar locale: the session's language (``"ru"``, ``"en"``…), negotiated from
        the ``send`` request's ``Accept-Language`` among ``SDKAUTH_LOCALES``.
    :ivar expires_at: when the code stops being accepted (aware, UTC).
    :ivar confirmation_token: on a codeless channel, the secret the host passes to
        :meth:`SdkAuth.confirm` (or that :meth:`SdkAuth.confirmation_url` puts in a
        link); ``None`` on code channels.
    :ivar choices: with number matching, the numbers to offer the user; the right
        one is shown by the widget (``payload.matchNumber``), never here.
    """

    id: str
    request_id: uuid.UUID
    widget_id: uuid.UUID
    recipient: str
    channel: str
    label: str
    code_type: str
    code: str | None
    text: str
    locale: str
    expires_at: datetime
    confirmation_token: str | None = None
    choices: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # Keep the secrets out of logs and tracebacks that print the message.
        return (
            f"Message(id={self.id!r}, channel={self.channel!r}, "
            "recipient=***, code=***, confirmation_token=***)"
        )
