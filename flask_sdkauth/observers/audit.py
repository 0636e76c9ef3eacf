"""The attempts log: one record per authentication fact, on ``flask_sdkauth.audit``.

Each record's fields are in ``extra`` (``record.event``, ``record.outcome``…), plain
strings and numbers, so a JSON formatter writes them as they are. No record holds
a code, a token or a phone number: the number is a keyed hash, the same for every
record of that number, so they can be joined without storing it.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from ..events import AuthEvent

__all__ = ["AUDIT_FIELDS", "AuditLog", "audit_logger", "number_hash"]

audit_logger = logging.getLogger("flask_sdkauth.audit")

#: The ``extra`` fields of every record (``None`` where they do not apply).
AUDIT_FIELDS = (
    "event",
    "outcome",
    "request_id",
    "widget_id",
    "channel",
    "to_channel",
    "client_ip",
    "number_hash",
    "reason",
    "seconds",
)


def number_hash(key: bytes, number: str) -> str:
    """The audit records' keyed hash of an E.164 ``number`` (32 hex digits)."""
    return hmac.digest(key, b"sdkauth-audit-number\x00" + number.encode(), "sha256").hex()[:32]


class AuditLog:
    """Writes each event as one INFO record on :data:`audit_logger`."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, app: Any, *, event: AuthEvent) -> None:
        if not audit_logger.isEnabledFor(logging.INFO):
            return
        fields = {
            "event": event.kind,
            "outcome": event.outcome,
            "request_id": str(event.request_id) if event.request_id else None,
            "widget_id": str(event.widget_id) if event.widget_id else None,
            "channel": event.channel,
            "to_channel": event.to_channel,
            "client_ip": event.client_ip,
            "number_hash": number_hash(self._key, event.recipient) if event.recipient else None,
            "reason": event.reason,
            "seconds": round(event.seconds, 3) if event.seconds is not None else None,
        }
        # makeRecord and handle, as Logger.info does, but without looking up the
        # caller's frame (its file and line would name this module anyway).
        record = audit_logger.makeRecord(
            audit_logger.name,
            logging.INFO,
            __file__,
            0,
            "sdkauth %s %s (session %s, channel %s)",
            (event.kind, event.outcome, fields["request_id"] or "-", event.channel or "-"),
            None,
            func="AuditLog",
            extra=fields,
        )
        audit_logger.handle(record)
