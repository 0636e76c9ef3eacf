"""What ``flask sdkauth session show`` tells an operator of one session.

Everything a support question needs (where the session is, which channels were
tried and what became of them, what the user has left) and no secret: neither the
code's hash, nor a confirmation token, nor the number in clear, which is masked
down to its country calling code and last two digits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import phonenumbers

from .phones import describe
from .redaction import redact
from .store import SessionRecord
from .widgets import Widget

__all__ = ["HISTORY_FIELDS", "mask_recipient", "session_report"]

#: The keys every history entry has; the others are the entry's details.
HISTORY_FIELDS = ("at", "index", "channel", "outcome", "reason")

#: National numbers this short are masked whole.
_SHORTEST_SHOWN = 5


def mask_recipient(e164: str) -> str:
    """``+79991234567`` → ``+7********67``: the country calling code and the last
    two digits, a star for every other digit."""
    digits = "".join(char for char in e164 if char.isdigit())
    try:
        country = str(describe(e164).country_code or "")
    except phonenumbers.NumberParseException:
        country = ""
    if not digits.startswith(country):
        country = ""
    national = digits[len(country):]
    if len(national) < _SHORTEST_SHOWN:
        return f"+{country}" + "*" * len(national)
    return f"+{country}" + "*" * (len(national) - 2) + national[-2:]


def session_report(session: SessionRecord, widget: Widget | None) -> dict[str, Any]:
    """The session as JSON-ready data: ids, state, times (ISO 8601, UTC), the
    current channel, what is left of it, and the history."""
    channel = session.channel
    settings = channel.get("settings", {}) if channel is not None else {}
    return {
        "requestId": str(session.id),
        "widget": {"id": str(session.widget_id), "name": widget.name if widget else None},
        "state": session.state.value,
        "channelStatus": session.status,
        "recipient": mask_recipient(session.recipient),
        "locale": session.locale,
        "channel": None if channel is None else {
            "type": channel.get("type"),
            "position": session.channel_index,
            "codeType": channel.get("codeType"),
            "numberOfTries": settings.get("numberOfTries"),
            "numberOfRestart": settings.get("numberOfRestart"),
        },
        "remainingAttempts": session.remaining_attempts,
        "restarts": session.restarts,
        "createdAt": _iso(session.created_at),
        "launchedAt": _iso(session.launched_at),
        "codeExpiresAt": _iso(session.code_expires_at),
        "confirmedAt": _iso(session.confirmed_at),
        "completedAt": _iso(session.completed_at),
        "expiresAt": _iso(session.expires_at),
        "history": [_entry(entry, session.recipient) for entry in session.history],
    }


def _entry(entry: dict[str, Any], recipient: str) -> dict[str, Any]:
    """A history entry with its details apart, ``status`` first and the others by
    name (PostgreSQL's JSONB keeps no order); texts are checked once more for the
    number, although the engine writes none."""
    names = sorted((key for key in entry if key not in HISTORY_FIELDS),
                   key=lambda key: (key != "status", key))
    details = {key: _clean(entry[key], recipient) for key in names}
    shown = {key: _clean(entry.get(key), recipient) for key in HISTORY_FIELDS}
    return {**shown, "details": details}


def _clean(value: Any, recipient: str) -> Any:
    return redact(value, recipient=recipient) if isinstance(value, str) else value


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
