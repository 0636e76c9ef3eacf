"""What every sender shares: a timeout, and how a gateway's answer is raised.

A sender's exception text ends up in the session's history and the log, so it
names the gateway and its answer (status, error code) and never the message's
code, token or number. Rate limits and server errors are transient: they raise
:class:`~flask_sdkauth.RetryDelivery`, so that the engine tries the same launch
again before it falls back to the next channel.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any, NoReturn

from flask import current_app

from ..delivery import RetryDelivery
from ..message import Message

__all__ = [
    "message_fields",
    "DEFAULT_TIMEOUT",
    "GatewayError",
    "confirmation_link",
    "raise_for_answer",
    "retry_after_seconds",
]

#: Seconds a sender waits for a gateway by default: below ``SDKAUTH_SENDER_TIMEOUT``
#: (10), so that a slow gateway is reported as its own timeout.
DEFAULT_TIMEOUT = 5.0


class GatewayError(Exception):
    """A gateway refused a message for good (a bad number, a bad key…): the
    engine goes on with the next channel. The text holds no code and no number."""


def raise_for_answer(
    gateway: str, status: int, detail: str = "", *, retry_after: str | None = None
) -> NoReturn:
    """Raise what a failed answer means: :class:`~flask_sdkauth.RetryDelivery` for
    429 and 5xx (after ``Retry-After``, when the gateway gave one), otherwise
    :class:`GatewayError`. ``detail`` must come from the gateway's error fields,
    never from the message."""
    reason = f"{gateway} answered {status}" + (f": {detail}" if detail else "")
    if status == 429 or status >= 500:
        raise RetryDelivery(reason, after=retry_after_seconds(retry_after))
    raise GatewayError(reason)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as seconds from now;
    ``None`` if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def confirmation_link(message: Message) -> str | None:
    """The confirmation page's URL for a codeless ``message``, when one can be built.

    ``None`` for a code message, and where no URL can be built: outside an
    application context, or outside a request without ``SERVER_NAME`` (a worker,
    a script). See :meth:`~flask_sdkauth.SdkAuth.confirmation_url`.
    """
    if message.confirmation_token is None:
        return None
    try:
        link: str = current_app.extensions["sdkauth"].confirmation_url(message)
    except (RuntimeError, KeyError):
        return None
    return link


def message_fields(message: Message) -> dict[str, Any]:
    """Every field of ``message`` as JSON-ready data, the confirmation link
    included when one can be built: what the outbox and webhook senders write.
    It holds the code: keep it away from logs."""
    return {
        "id": message.id,
        "request_id": str(message.request_id),
        "widget_id": str(message.widget_id),
        "channel": message.channel,
        "label": message.label,
        "code_type": message.code_type,
        "recipient": message.recipient,
        "code": message.code,
        "confirmation_token": message.confirmation_token,
        "confirmation_url": confirmation_link(message),
        "choices": list(message.choices),
        "text": message.text,
        "expires_at": message.expires_at.isoformat(),
    }
