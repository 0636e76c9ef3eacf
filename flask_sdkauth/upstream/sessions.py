"""What proxy mode keeps of each session it started: whose widget and number it is.

otp-handler tells neither once a session exists, and both are needed in front of
it: the widget to check the token's scope (403 before anything is forwarded), the
number for the limits keyed by number and for ``verified_number``. One row per
send, written after the service has answered; one primary-key read per later call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy

from ..store import _connect

__all__ = ["ProxiedSession", "ProxiedSessions"]


@dataclass(frozen=True)
class ProxiedSession:
    id: uuid.UUID
    widget_id: uuid.UUID
    recipient: str


class ProxiedSessions:
    """The ``sdkauth_upstream_session`` table."""

    def __init__(self, db: SQLAlchemy, table: sa.Table) -> None:
        self._db = db
        self._insert = table.insert()
        self._select = sa.select(table.c.id, table.c.widget_id, table.c.recipient).where(
            table.c.id == sa.bindparam("wanted")
        )
        self._purge = table.delete().where(table.c.created_at < sa.bindparam("before"))

    def insert(self, session: ProxiedSession, created_at: datetime) -> None:
        with _connect(self._db) as connection:
            connection.execute(
                self._insert,
                {
                    "id": session.id,
                    "widget_id": session.widget_id,
                    "recipient": session.recipient,
                    "created_at": created_at,
                },
            )

    def get(self, request_id: uuid.UUID) -> ProxiedSession | None:
        with _connect(self._db) as connection:
            row = connection.execute(self._select, {"wanted": request_id}).first()
        return None if row is None else ProxiedSession(row.id, row.widget_id, row.recipient)

    def delete_before(self, before: datetime) -> int:
        """Forget the sessions started before ``before``; how many there were."""
        with _connect(self._db) as connection:
            return int(connection.execute(self._purge, {"before": before}).rowcount)
