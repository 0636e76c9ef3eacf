"""Persistence of sessions and built-in widgets, one Core statement per operation.

Every operation is a single statement, so it runs in autocommit mode on its own
connection from the host's pool: atomic by itself, without BEGIN/COMMIT round
trips, and never committing (or rolling back) work pending in the host's
``db.session``. Conditional updates make the state machine safe under concurrency.
A database that cannot be reached answers ``NoConnectionException`` (503), logged
once per outage by type name only, never with the statement's parameters.
"""

from __future__ import annotations

import json
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy

from .clock import utc_now
from .errors import NoConnectionException
from .history import HistoryAppend
from .outages import Outage
from .states import CHANNEL_STATUS, OPEN_STATES, TRANSITIONS, Event, State
from .widgets import Channel, Widget

__all__ = ["SessionRecord", "SessionStore", "WidgetStore"]

#: sqlite3's generic SQLITE_ERROR: a bad statement or a missing table, not an outage.
_SQLITE_ERROR = 1


@dataclass
class _Pool:
    """A host engine seen through our eyes: its autocommit twin, and whether the
    database is known to be unreachable (so that an outage is logged once)."""

    autocommit: sa.Engine
    outage: Outage = field(
        default_factory=lambda: Outage("database", "operations answer NoConnectionException")
    )

    def went_down(self, error: Exception) -> None:
        # The type name only: SQLAlchemy's text carries the statement's parameters,
        # phone numbers among them, and the traceback would repeat them.
        self.outage.began(_describe(error))


_POOLS: weakref.WeakKeyDictionary[sa.Engine, _Pool] = weakref.WeakKeyDictionary()


@contextmanager
def _connect(db: SQLAlchemy) -> Iterator[sa.Connection]:
    """A connection of the current app's engine in autocommit mode, for one
    statement (and the reading of its rows).

    A database that cannot be reached (refused or lost connection, a pool with no
    connection to give) raises :class:`~flask_sdkauth.errors.NoConnectionException`
    (503) instead of SQLAlchemy's error; errors of the statement itself (a bad
    statement, a missing table, a constraint) are raised as they are.
    """
    engine = db.engine
    pool = _POOLS.get(engine)
    if pool is None:
        pool = _POOLS.setdefault(
            engine, _Pool(engine.execution_options(isolation_level="AUTOCOMMIT"))
        )
    try:
        connection = pool.autocommit.connect()
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        # Anything that fails while connecting is a connection problem.
        pool.went_down(exc)
        raise NoConnectionException() from None
    with connection:
        try:
            yield connection
        except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
            if not _unreachable(exc):
                raise
            pool.went_down(exc)
            raise NoConnectionException() from None
    pool.outage.ended()


def _unreachable(error: Exception) -> bool:
    """Whether a statement failed because the database could not be reached (a lost
    connection, the server going away), rather than because of the statement."""
    if not isinstance(error, sa.exc.DBAPIError):
        return True  # the pool's TimeoutError: no connection to be had
    if error.connection_invalidated:
        return True
    if not isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return False
    # sqlite3 reports bad statements as OperationalError too, with SQLITE_ERROR;
    # its other codes (cannot open, busy, I/O error…) are the database's state.
    return getattr(error.orig, "sqlite_errorcode", None) != _SQLITE_ERROR


def _describe(error: Exception) -> str:
    """SQLAlchemy's and the driver's exception type names: no text, no parameters."""
    orig = getattr(error, "orig", None)
    if isinstance(orig, BaseException):
        return f"{type(error).__name__} from {type(orig).__module__}.{type(orig).__name__}"
    return type(error).__name__


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
    launch_index: int | None
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
    #: The language of its messages (``None``: ``SDKAUTH_DEFAULT_LOCALE``).
    locale: str | None = None

    @property
    def status(self) -> str:
        """The channel status a client sees (``wait``, ``sent``, ``error``…)."""
        return CHANNEL_STATUS[self.state]

    @property
    def channel_type(self) -> str | None:
        """The current channel's type (``"sms"``…), or ``None`` before there is one."""
        return None if self.channel is None else str(self.channel["type"])

    def to_columns(self) -> dict[str, Any]:
        """The values of the session's row."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["state"] = self.state.value
        return values

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> SessionRecord:
        values = dict(row._mapping)
        values["state"] = State(values["state"])
        return cls(**{f.name: values[f.name] for f in fields(cls)})


class SessionWriter(Protocol):
    """What a launch writes its outcome through: :class:`SessionStore` or an
    :class:`UnstoredSession`."""

    def apply(
        self,
        request_id: uuid.UUID,
        event: Event,
        *,
        at_generation: int | None = None,
        where: Sequence[sa.ColumnElement[bool]] = (),
        history: Sequence[Mapping[str, Any]] = (),
        **values: Any,
    ) -> SessionRecord | None: ...


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
        self._take_attempt: sa.Update | None = None

    def insert(self, session: SessionRecord) -> None:
        """Write a new session, as it is, in one statement."""
        with _connect(self._db) as connection:
            connection.execute(self._insert, session.to_columns())

    @property
    def known_unreachable(self) -> bool:
        """Whether the last attempt to reach the database failed (an outage is on)."""
        pool = _POOLS.get(self._db.engine)
        return pool is not None and pool.outage.ongoing

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
        history: Sequence[Mapping[str, Any]] = (),
        **values: Any,
    ) -> SessionRecord | None:
        """Take ``event``'s transition and write ``values`` in one statement.

        ``at_generation`` (and any ``where`` conditions) narrow it to the channel
        launch the caller saw. ``history`` entries are appended to the session's
        history by the same statement, so that concurrent writers never lose each
        other's entries. Returns the updated session, or ``None`` when the session
        was not in a source state or has moved on (someone else was first).
        """
        params: dict[str, Any] = {"_id": request_id, "_generation": at_generation}
        if history:
            params["_history"] = json.dumps(list(history))
        if where or any(isinstance(value, sa.ClauseElement) for value in values.values()):
            statement = self._update(event, at_generation is not None, values, where, history)
        else:
            key = (event, at_generation is not None, bool(history), tuple(sorted(values)))
            statement = self._updates.get(key)  # type: ignore[assignment]
            if statement is None:
                placeholders = {name: sa.bindparam(f"v_{name}") for name in values}
                statement = self._update(
                    event, at_generation is not None, placeholders, (), history
                )
                self._updates[key] = statement
            params.update({f"v_{name}": value for name, value in values.items()})
        return self._run(statement, params, event, request_id)

    def take_attempt(
        self, request_id: uuid.UUID, generation: int, updated_at: datetime
    ) -> SessionRecord | None:
        """ATTEMPT_TAKEN: one attempt of launch ``generation`` if any is left, in one
        statement (built once); ``None`` when none is left or the launch moved on."""
        if self._take_attempt is None:
            remaining = self._table.c.remaining_attempts
            self._take_attempt = self._update(
                Event.ATTEMPT_TAKEN,
                True,
                {"remaining_attempts": remaining - 1, "updated_at": sa.bindparam("v_updated_at")},
                [remaining > 0],
                (),
            )
        params = {"_id": request_id, "_generation": generation, "v_updated_at": updated_at}
        return self._run(self._take_attempt, params, Event.ATTEMPT_TAKEN, request_id)

    def _run(
        self, statement: sa.Update, params: dict[str, Any], event: Event, request_id: uuid.UUID
    ) -> SessionRecord | None:
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
        history: Sequence[Mapping[str, Any]],
    ) -> sa.Update:
        transition = TRANSITIONS[event]
        table = self._table
        assignments = dict(values)
        if transition.target is not None:
            assignments["state"] = transition.target.value
        if history:
            assignments["history"] = HistoryAppend(table.c.history, sa.bindparam("_history"))
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
            .values(**assignments)
            .returning(*table.c)
        )

    def stuck_launches(self, *, waiting_since: datetime, now: datetime) -> list[SessionRecord]:
        """Open sessions that have waited in PENDING since ``waiting_since`` or
        earlier: their launch never finished."""
        table = self._table
        statement = sa.select(table).where(
            table.c.state == State.PENDING.value,
            table.c.updated_at <= waiting_since,
            table.c.expires_at > now,
        )
        with _connect(self._db) as connection:
            return [SessionRecord.from_row(row) for row in connection.execute(statement)]

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


class UnstoredSession:
    """A session launched before its first write, which its launch then stores.

    Inline, ``send`` launches the first channel before the session exists, and the
    launch's outcome (sent, with its code's hash; or no channel) is written by one
    ``INSERT`` instead of an ``INSERT`` then an ``UPDATE``. Nobody else knows the
    request id until ``send`` answers, so no writer can come in between: the
    transitions' conditions hold by construction, and :meth:`apply` takes the
    shape of :meth:`SessionStore.apply` for the launcher.
    """

    def __init__(
        self,
        store: SessionStore,
        session: SessionRecord,
        on_stored: Callable[[SessionRecord], None],
    ) -> None:
        self._store = store
        self._on_stored = on_stored
        self.session = session
        self.stored = False

    def apply(
        self,
        request_id: uuid.UUID,
        event: Event,
        *,
        at_generation: int | None = None,
        where: Sequence[sa.ColumnElement[bool]] = (),
        history: Sequence[Mapping[str, Any]] = (),
        **values: Any,
    ) -> SessionRecord | None:
        if self.stored:
            return self._store.apply(
                request_id, event, at_generation=at_generation, where=where,
                history=history, **values,
            )
        if event is Event.LAUNCH_RUNNING:
            return self.session  # alive: there is no row to keep alive yet
        transition = TRANSITIONS[event]
        if self.session.state not in transition.sources or where:
            raise AssertionError(f"{event} cannot start an unstored session")
        self.session = replace(
            self.session,
            **values,
            state=transition.target or self.session.state,
            history=[*self.session.history, *(dict(entry) for entry in history)],
        )
        self.store()
        return self.session

    def store(self) -> SessionRecord:
        """Insert the session as it is now, once; return it."""
        if not self.stored:
            self._store.insert(self.session)
            self.stored = True
            self._on_stored(self.session)
        return self.session


class WidgetStore:
    """The built-in widget table, used when the host registers no ``widget_loader``.

    With ``cache_seconds`` (``SDKAUTH_WIDGET_CACHE_SECONDS``), a widget read is kept
    that long in this process, so that sends and checks do not read it every time.
    This process's own changes (:meth:`create`, :meth:`update_flags`) drop the copy
    at once; another process's are seen within ``cache_seconds``. Missing widgets
    are not kept, so unknown ids cannot fill the cache.
    """

    #: Widgets kept at most; the cache starts again empty beyond.
    CACHE_SIZE = 1024

    def __init__(
        self,
        db: SQLAlchemy,
        table: sa.Table,
        *,
        cache_seconds: float = 0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._table = table
        self._select = sa.select(table).where(table.c.id == sa.bindparam("_id"))
        self._cache_for = timedelta(seconds=cache_seconds)
        self._clock = clock
        self._cache: dict[uuid.UUID, tuple[datetime, Widget]] = {}

    def get(self, widget_id: uuid.UUID) -> Widget | None:
        caching = self._cache_for > timedelta(0)
        if caching:
            kept = self._cache.get(widget_id)
            if kept is not None and kept[0] > self._clock():
                return kept[1]
        with _connect(self._db) as connection:
            row = connection.execute(self._select, {"_id": widget_id}).first()
        if row is None:
            return None
        widget = _widget_from_row(row)
        if caching:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[widget_id] = (self._clock() + self._cache_for, widget)
        return widget

    def forget(self, widget_id: uuid.UUID) -> None:
        """Drop the kept copy of a widget (after a change made elsewhere)."""
        self._cache.pop(widget_id, None)

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
        self.forget(widget.id)
        return widget

    def update_flags(self, widget_id: uuid.UUID, flags: Mapping[str, bool]) -> bool:
        """Set ``is_active``/``is_blocked``; ``False`` when the widget does not exist."""
        statement = (
            sa.update(self._table).where(self._table.c.id == widget_id).values(**flags)
        )
        with _connect(self._db) as connection:
            updated = connection.execute(statement).rowcount == 1
        self.forget(widget_id)
        return updated


def _widget_from_row(row: sa.Row[Any]) -> Widget:
    return Widget(
        id=row.id,
        name=row.name,
        is_active=row.is_active,
        is_blocked=row.is_blocked,
        channels=tuple(Channel.from_dict(data) for data in row.channels),
        allowed_regions=frozenset(row.allowed_regions),
    )
