"""Persistence of sessions and built-in widgets, one Core statement per operation.

Every operation is a single statement, so it runs in autocommit mode on its own
connection from the host's pool: atomic by itself, without BEGIN/COMMIT round
trips, and never committing (or rolling back) work pending in the host's
``db.session``. Conditional updates make the state machine safe under concurrency.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy

from .states import CHANNEL_STATUS, OPEN_STATES, TRANSITIONS, Event, State
from .widgets import Channel, Widget

__all__ = ["SessionRecord", "SessionStore", "WidgetStore"]

_AUTOCOMMIT: weakref.WeakKeyDictionary[sa.Engine, sa.Engine] = weakref.WeakKeyDictionary()


def _connect(db: SQLAlchemy) -> sa.Connection:
    """A connection of the current app's engine in autocommit mode."""
    engine = db.engine
    autocommit = _AUTOCOMMIT.get(engine)
    if autocommit is None:
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        _AUTOCOMMIT[engine] = autocommit
    return autocommit.connect()


@dataclass(frozen=True)
class SessionRecord:
    """One authentication session as stored (``sdkauth_session``)."""

    id: uuid.UUID
    widget_id: uuid.UUID
    recipient: str
    state: State
    channel_index: int | None
    channel: dict[str, Any] | None
    payload: dict[str, Any]
    generation: int
    seen_generation: int
    seen_snapshot: str | None
    restarts: int
    launched_at: datetime | None
    code_hash: str | None
    code_expires_at: datetime | None
    remaining_attempts: int
    history: list[dict[str, Any]]
    client_ip: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def status(self) -> str:
        """The channel status a client sees (``wait``, ``sent``, ``error``…)."""
        return CHANNEL_STATUS[self.state]

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> SessionRecord:
        values = dict(row._mapping)
        values["state"] = State(values["state"])
        return cls(**{f.name: values[f.name] for f in fields(cls)})


class SessionStore:
    """Reads sessions and moves them along :data:`~flask_sdkauth.states.TRANSITIONS`.

    ``on_change(request_id)`` is called after every committed transition that is
    announced (the notifier's ``publish``, so that long polls wake up).
    """

    def __init__(
        self,
        db: SQLAlchemy,
        table: sa.Table,
        on_change: Callable[[uuid.UUID], None] = lambda request_id: None,
    ) -> None:
        self._db = db
        self._table = table
        self._on_change = on_change
        # Statements are built once and executed with parameters: building them is
        # a good part of the CPU a request spends in SQLAlchemy.
        self._insert = sa.insert(table)
        self._select = sa.select(table).where(table.c.id == sa.bindparam("_id"))
        self._updates: dict[tuple[Any, ...], sa.Update] = {}

    def create(self, **values: Any) -> None:
        with _connect(self._db) as connection:
            connection.execute(self._insert, values)

    def get(self, request_id: uuid.UUID) -> SessionRecord | None:
        with _connect(self._db) as connection:
            row = connection.execute(self._select, {"_id": request_id}).first()
        return None if row is None else SessionRecord.from_row(row)

    def apply(
        self,
        request_id: uuid.UUID,
        event: Event,
        *,
        at_generation: int | None = None,
        where: Sequence[sa.ColumnElement[bool]] = (),
        **values: Any,
    ) -> SessionRecord | None:
        """Take ``event``'s transition and write ``values`` in one statement.

        ``at_generation`` (and any ``where`` conditions) narrow it to the channel
        launch the caller saw. Returns the updated session, or ``None`` when the
        session was not in a source state or has moved on (someone else was first).
        """
        params = {"_id": request_id, "_generation": at_generation}
        if where or any(isinstance(value, sa.ClauseElement) for value in values.values()):
            statement = self._update(event, at_generation is not None, values, where)
        else:
            key = (event, at_generation is not None, tuple(sorted(values)))
            statement = self._updates.get(key)  # type: ignore[assignment]
            if statement is None:
                placeholders = {name: sa.bindparam(f"v_{name}") for name in values}
                statement = self._update(event, at_generation is not None, placeholders, ())
                self._updates[key] = statement
            params.update({f"v_{name}": value for name, value in values.items()})
        with _connect(self._db) as connection:
            row = connection.execute(statement, params).first()
        if row is None:
            return None
        if TRANSITIONS[event].announced:
            self._on_change(request_id)
        return SessionRecord.from_row(row)


    def _update(
        self,
        event: Event,
        at_generation: bool,
        values: Mapping[str, Any],
        where: Sequence[sa.ColumnElement[bool]],
    ) -> sa.Update:
        transition = TRANSITIONS[event]
        table = self._table
        conditions = [
            table.c.id == sa.bindparam("_id"),
            table.c.state.in_([state.value for state in transition.sources]),
            *where,
        ]
        if at_generation:
            conditions.append(table.c.generation == sa.bindparam("_generation"))
        return (
            sa.update(table)
            .where(*conditions)
            .values(state=transition.target.value, **values)
            .returning(*table.c)
        )

    def mark_seen(self, request_id: uuid.UUID, generation: int, snapshot: str) -> None:
        """Record the channel snapshot (and its generation) the client was given."""
        table = self._table
        statement = (
            sa.update(table)
            .where(table.c.id == request_id, table.c.generation == generation)
            .values(seen_generation=generation, seen_snapshot=snapshot)
        )
        with _connect(self._db) as connection:
            connection.execute(statement)

    def delete_ended(self, *, created_before: datetime, now: datetime) -> int:
        """Delete sessions created before ``created_before`` that are over: in a
        final state, or past their lifetime. Return how many."""
        table = self._table
        statement = sa.delete(table).where(
            table.c.created_at < created_before,
            sa.or_(
                table.c.state.not_in([state.value for state in OPEN_STATES]),
                table.c.expires_at <= now,
            ),
        )
        with _connect(self._db) as connection:
            return connection.execute(statement).rowcount

    @property
    def columns(self) -> sa.ColumnCollection[str, sa.Column[Any]]:
        """The table's columns, for conditions and expressions in :meth:`apply`."""
        return self._table.c


class WidgetStore:
    """The built-in widget table, used when the host registers no ``widget_loader``."""

    def __init__(self, db: SQLAlchemy, table: sa.Table) -> None:
        self._db = db
        self._table = table
        self._select = sa.select(table).where(table.c.id == sa.bindparam("_id"))

    def get(self, widget_id: uuid.UUID) -> Widget | None:
        with _connect(self._db) as connection:
            row = connection.execute(self._select, {"_id": widget_id}).first()
        return None if row is None else _widget_from_row(row)

    def all(self) -> list[Widget]:
        query = sa.select(self._table).order_by(self._table.c.created_at)
        with _connect(self._db) as connection:
            return [_widget_from_row(row) for row in connection.execute(query)]

    def create(
        self,
        *,
        name: str,
        channels: Sequence[Channel],
        is_active: bool = True,
        is_blocked: bool = False,
        allowed_regions: Sequence[str] = (),
        created_at: datetime,
        widget_id: uuid.UUID | None = None,
    ) -> Widget:
        widget = Widget(
            id=widget_id or uuid.uuid4(),
            name=name,
            channels=tuple(channels),
            is_active=is_active,
            is_blocked=is_blocked,
            allowed_regions=frozenset(allowed_regions),
        )
        with _connect(self._db) as connection:
            connection.execute(
                sa.insert(self._table).values(
                    id=widget.id,
                    name=widget.name,
                    is_active=widget.is_active,
                    is_blocked=widget.is_blocked,
                    channels=[channel.to_dict() for channel in widget.channels],
                    allowed_regions=sorted(widget.allowed_regions),
                    created_at=created_at,
                )
            )
        return widget

    def update_flags(self, widget_id: uuid.UUID, flags: Mapping[str, bool]) -> bool:
        """Set ``is_active``/``is_blocked``; ``False`` when the widget does not exist."""
        statement = (
            sa.update(self._table).where(self._table.c.id == widget_id).values(**flags)
        )
        with _connect(self._db) as connection:
            return connection.execute(statement).rowcount == 1


def _widget_from_row(row: sa.Row[Any]) -> Widget:
    return Widget(
        id=row.id,
        name=row.name,
        is_active=row.is_active,
        is_blocked=row.is_blocked,
        channels=tuple(Channel.from_dict(data) for data in row.channels),
        allowed_regions=frozenset(row.allowed_regions),
    )
