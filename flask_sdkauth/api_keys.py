"""Backend keys: long-lived, revocable credentials for server-to-server callers.

A host's backend that calls the routes over HTTP (``checkStatusAndComplete`` at
the end of a sign-in, say) should not hold a widget token, which browsers hold
too. ``flask sdkauth key create`` makes a key for some widgets and prints it once;
only its SHA-256 is stored (a key is 256 random bits, so a plain hash cannot be
reversed by guessing). A key is sent as ``Authorization: Bearer <key>`` on any
route, is told from a widget token by its prefix, and stops working the moment it
is revoked. With ``SDKAUTH_COMPLETION_NEEDS_KEY`` on, complete and
checkStatusAndComplete accept nothing else.

The limits a route counts per client address count per key for a key's requests
(:data:`KEY_CLIENT_PREFIX`), so that one backend serving many users is not
throttled as one client; such requests carry no captcha.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy

from .store import _connect

__all__ = ["KEY_CLIENT_PREFIX", "KEY_PREFIX", "ApiKey", "ApiKeys"]

#: How a backend key starts; widget tokens (JWTs) never do.
KEY_PREFIX = "sdkauth_"
#: The client a key's requests are counted as: ``key:<key id>``.
KEY_CLIENT_PREFIX = "key:"
#: The longest name a key may have (its column's length).
_NAME_LENGTH = 200


@dataclass(frozen=True)
class ApiKey:
    id: uuid.UUID
    name: str
    widget_ids: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def client(self) -> str:
        """The client this key's requests are counted and recorded as."""
        return f"{KEY_CLIENT_PREFIX}{self.id}"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """The ``sdkauth_api_key`` table."""

    def __init__(self, db: SQLAlchemy, table: sa.Table) -> None:
        self._db = db
        self._table = table
        # Read on every request a key authenticates: built once.
        self._find = sa.select(table).where(
            table.c.key_hash == sa.bindparam("digest"), table.c.revoked_at.is_(None)
        )

    def create(
        self, name: str, widget_ids: Iterable[uuid.UUID | str], now: datetime
    ) -> tuple[ApiKey, str]:
        """Store a new key; the key and its secret text, which is not kept."""
        widgets = sorted({str(uuid.UUID(str(widget_id))) for widget_id in widget_ids})
        if not widgets:
            raise ValueError("a backend key needs at least one widget id")
        if not name.strip() or len(name.strip()) > _NAME_LENGTH:
            raise ValueError(f"a backend key needs a name of 1 to {_NAME_LENGTH} characters")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(uuid.uuid4(), name.strip(), frozenset(widgets), now, None)
        with _connect(self._db) as connection:
            connection.execute(
                self._table.insert(),
                {
                    "id": key.id,
                    "name": key.name,
                    "widget_ids": widgets,
                    "key_hash": _digest(secret),
                    "created_at": now,
                    "revoked_at": None,
                },
            )
        return key, secret

    def find(self, secret: str) -> ApiKey | None:
        """The key whose text is ``secret``, unless it is unknown or revoked."""
        with _connect(self._db) as connection:
            row = connection.execute(self._find, {"digest": _digest(secret)}).first()
        return None if row is None else _key(row)

    def all(self) -> list[ApiKey]:
        table = self._table
        with _connect(self._db) as connection:
            rows = connection.execute(sa.select(table).order_by(table.c.created_at)).all()
        return [_key(row) for row in rows]

    def revoke(self, key_id: uuid.UUID, now: datetime) -> bool:
        """Revoke a key at once; ``False`` if there is no such key still valid."""
        table = self._table
        with _connect(self._db) as connection:
            done = connection.execute(
                table.update()
                .where(table.c.id == key_id, table.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return bool(done.rowcount)


def _key(row: sa.Row[object]) -> ApiKey:
    mapping = row._mapping
    return ApiKey(
        id=mapping["id"],
        name=mapping["name"],
        widget_ids=frozenset(mapping["widget_ids"]),
        created_at=mapping["created_at"],
        revoked_at=mapping["revoked_at"],
    )
