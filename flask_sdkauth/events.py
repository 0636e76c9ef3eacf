"""What happened in an authentication, as one record per fact, for observers.

The engine reports each send, delivery attempt, delivery report, fallback, code
check, confirmation and completion as an :class:`AuthEvent` through the
:data:`~flask_sdkauth.signals.auth_event` signal, after the fact. The metrics and
the audit log (:mod:`flask_sdkauth.observers`) are receivers of that signal; so can
a host's own code be.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from flask import current_app

from . import signals

if TYPE_CHECKING:
    from .store import SessionRecord

__all__ = ["AuthEvent", "EventKind", "emit", "emit_for"]

#: ``send``: a send request's outcome (``started``, ``rate_limited``, ``captcha``,
#: ``region``, ``daily_cap``, ``blocked``, ``no_channels``); ``delivery``: one call
#: of a channel's sender, or a channel passed over (``sent``, ``failed``,
#: ``timeout``, ``retry``, ``skipped``, ``refused``); ``report``: a gateway's
#: delivery report (``sent``, ``delivered``, ``read``, ``failed``); ``fallback``: the
#: session left ``channel`` for ``to_channel`` (reason ``failed``, ``timeout``,
#: ``skipped``, ``refused``, ``fallback_after`` or ``undelivered``); ``check``: a
#: code check and ``confirmation``: a codeless confirmation (``right``, ``wrong``,
#: ``expired``, ``attempts_expired``, ``rate_limited``); ``completion``: the backend
#: completed a confirmed session (``completed``).
EventKind = Literal[
    "send", "delivery", "report", "fallback", "check", "confirmation", "completion"
]


@dataclass(frozen=True)
class AuthEvent:
    """One fact of an authentication session.

    :ivar kind: what happened; see :data:`EventKind` for each kind's outcomes.
    :ivar outcome: how it ended.
    :ivar request_id: the session, or ``None`` for a send refused before one existed.
    :ivar widget_id: the widget, when known.
    :ivar channel: the channel type (``"sms"``…), when one is concerned.
    :ivar recipient: the number in E.164 form, for receivers that key or hash it;
        never to be logged in clear (``repr`` hides it).
    :ivar client_ip: the caller's IP: the request's, or for work done later (a
        worker's delivery) the one the session was started from.
    :ivar reason: why, for failures and refusals; never a secret or a number.
    :ivar seconds: a sender call's duration (``delivery``), or the time from the
        channel's launch to the confirmation (a ``right`` check or confirmation).
    :ivar to_channel: the channel a ``fallback`` moved to.
    """

    kind: EventKind
    outcome: str
    request_id: uuid.UUID | None = None
    widget_id: uuid.UUID | None = None
    channel: str | None = None
    recipient: str | None = field(default=None, repr=False)
    client_ip: str | None = None
    reason: str | None = None
    seconds: float | None = None
    to_channel: str | None = None


def emit(event: AuthEvent) -> None:
    """Send ``event`` to the current app's receivers of ``auth_event``."""
    signals.auth_event.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        event=event,
    )


def emit_for(
    session: SessionRecord,
    kind: EventKind,
    outcome: str,
    *,
    client_ip: str | None = None,
    **fields: Any,
) -> None:
    """Emit an event about ``session``: its ids and number, the client IP (the
    session's own unless given), and ``fields``."""
    emit(
        AuthEvent(
            kind,
            outcome,
            request_id=session.id,
            widget_id=session.widget_id,
            recipient=session.recipient,
            client_ip=client_ip or session.client_ip,
            **fields,
        )
    )
