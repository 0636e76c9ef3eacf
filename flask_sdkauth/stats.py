"""Per-channel counts over the stored sessions (``flask sdkauth stats``), in SQL.

Every count comes from one statement over ``sdkauth_session``: the ``history``
array of each session created in the window is expanded into rows with the
dialect's own JSON function (SQLite ``json_each``, PostgreSQL
``json_array_elements``), and each row that matters becomes a *fact*: the
session launched a channel, the channel's sender accepted a message, a gateway
reported it delivered, the session left the channel for a later one, or the
session was confirmed on it. The facts are counted per channel and over all
channels. ``docs/cli.rst`` says what each number means.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy

from .store import _connect

__all__ = ["ChannelStats", "Stats", "channel_stats"]

#: History outcomes that record a launch trying a channel (``retry`` is one try of
#: several that end in one of these).
LAUNCHED = ("sent", "failed", "timeout", "skipped", "refused")
#: Launch outcomes after which the session was on the channel, or tried to be: a
#: later channel's launch after one of them is a fallback from this channel.
TRIED = ("sent", "failed", "timeout")


@dataclass(frozen=True)
class ChannelStats:
    """The counts of one channel type (``channel``), or of all (``None``)."""

    channel: str | None
    sessions: int
    sent: int
    delivered: int
    confirmed: int
    median_seconds_to_confirm: float | None
    fallbacks: int

    @property
    def conversion_percent(self) -> float | None:
        """``confirmed / sessions × 100`` to one decimal (half up); ``None`` for no
        session."""
        if not self.sessions:
            return None
        ratio = Decimal(self.confirmed * 100) / Decimal(self.sessions)
        return float(ratio.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {} if self.channel is None else {"channel": self.channel}
        data.update(
            sessions=self.sessions,
            sent=self.sent,
            delivered=self.delivered,
            confirmed=self.confirmed,
            conversionPercent=self.conversion_percent,
            medianSecondsToConfirm=self.median_seconds_to_confirm,
            fallbacks=self.fallbacks,
        )
        return data


@dataclass(frozen=True)
class Stats:
    """What ``flask sdkauth stats`` prints: the channels by name, then the total."""

    since: datetime
    widget_id: uuid.UUID | None
    channels: list[ChannelStats]
    total: ChannelStats

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "widget": None if self.widget_id is None else str(self.widget_id),
            "channels": [channel.to_dict() for channel in self.channels],
            "total": self.total.to_dict(),
        }


def channel_stats(
    db: SQLAlchemy, table: sa.Table, *, since: datetime, widget_id: uuid.UUID | None = None
) -> Stats:
    """Count the sessions created at ``since`` or later (of ``widget_id`` only,
    when given) per channel type and in total, in one statement."""
    # The store's connection: an unreachable database is NoConnectionException.
    with _connect(db) as connection:
        statement = _statement(table, connection.dialect.name, since, widget_id)
        rows = connection.execute(statement).all()
    found = [
        ChannelStats(
            channel=row.channel,
            sessions=row.sessions,
            sent=row.sent,
            delivered=row.delivered,
            confirmed=row.confirmed,
            median_seconds_to_confirm=None if row.median is None else float(row.median),
            fallbacks=row.fallbacks,
        )
        for row in rows
    ]
    channels = sorted((stats for stats in found if stats.channel is not None),
                      key=lambda stats: stats.channel or "")
    (total,) = (stats for stats in found if stats.channel is None)
    return Stats(since=since, widget_id=widget_id, channels=channels, total=total)


def _statement(
    table: sa.Table, dialect: str, since: datetime, widget_id: uuid.UUID | None
) -> sa.CompoundSelect[Any]:
    """The counts per channel, then the total (channel ``NULL``), in one statement
    so that they all read the same sessions."""
    window = sa.select(
        table.c.id,
        table.c.history,
        # A confirmed session no longer moves: its current channel confirmed it.
        table.c.channel["type"].as_string().label("channel"),
        table.c.confirmed_at,
        _seconds(dialect, table.c.confirmed_at, table.c.launched_at).label("seconds"),
    ).where(table.c.created_at >= since)
    if widget_id is not None:
        window = window.where(table.c.widget_id == widget_id)
    counted = window.cte("counted")
    element = _elements(dialect, counted.c.history)
    value = element.c.value
    entries = (
        sa.select(
            counted.c.id.label("session_id"),
            element.c.key.label("position"),
            value["channel"].as_string().label("channel"),
            value["outcome"].as_string().label("outcome"),
            value["status"].as_string().label("status"),
            value["index"].as_integer().label("position_in_widget"),
        )
        .select_from(counted)
        .join(element, sa.true())
        .cte("entries")
    )
    # Each launch entry with the widget position of the session's next launch entry.
    launches = (
        sa.select(
            entries,
            sa.func.lead(entries.c.position_in_widget)
            .over(partition_by=entries.c.session_id, order_by=entries.c.position)
            .label("next_position"),
        )
        .where(entries.c.outcome.in_(LAUNCHED))
        .subquery("launches")
    )

    def fact(kind: str, source: Any, *where: Any, seconds: Any = None) -> sa.Select[Any]:
        return sa.select(
            source.c.session_id,
            source.c.channel,
            sa.literal(kind).label("kind"),
            sa.cast(seconds, sa.Float).label("seconds"),
        ).where(source.c.channel.is_not(None), *where)

    confirmed = (
        sa.select(counted.c.id.label("session_id"), counted.c.channel, counted.c.seconds)
        .where(counted.c.confirmed_at.is_not(None))
        .subquery("confirmed")
    )
    facts = sa.union_all(
        fact("launched", entries, entries.c.outcome.in_(LAUNCHED)),
        fact("sent", entries, entries.c.outcome == "sent"),
        fact("delivered", entries, entries.c.outcome == "report",
             entries.c.status == "delivered"),
        fact("fallback", launches, launches.c.outcome.in_(TRIED),
             launches.c.next_position > launches.c.position_in_widget),
        fact("confirmed", confirmed, seconds=confirmed.c.seconds),
    ).cte("facts")
    return sa.union_all(_counts(facts, by_channel=True), _counts(facts, by_channel=False))


def _counts(facts: sa.CTE, *, by_channel: bool) -> sa.Select[Any]:
    """The counts of ``facts`` per channel, or over all channels in one row whose
    channel is ``NULL``."""
    group = [facts.c.channel] if by_channel else []
    # The median in SQL on both dialects (SQLite has no percentile function): the
    # middle one or two durations of each kind, numbered in order.
    ranked = sa.select(
        facts,
        sa.func.row_number()
        .over(partition_by=[*group, facts.c.kind], order_by=facts.c.seconds.asc().nulls_last())
        .label("ordinal"),
        sa.func.count(facts.c.seconds)
        .over(partition_by=[*group, facts.c.kind])
        .label("durations"),
    ).subquery("ranked")
    kind, session_id = ranked.c.kind, ranked.c.session_id

    def sessions(wanted: str) -> sa.ColumnElement[int]:
        return sa.func.count(sa.distinct(sa.case((kind == wanted, session_id))))

    middle = ranked.c.ordinal.in_([(ranked.c.durations + 1) // 2, (ranked.c.durations + 2) // 2])
    statement = sa.select(
        ranked.c.channel if by_channel else sa.null().label("channel"),
        sessions("launched").label("sessions"),
        sessions("sent").label("sent"),
        sessions("delivered").label("delivered"),
        sessions("confirmed").label("confirmed"),
        sa.func.avg(sa.case((sa.and_(kind == "confirmed", middle), ranked.c.seconds)))
        .label("median"),
        sa.func.count(sa.case((kind == "fallback", 1))).label("fallbacks"),
    )
    return statement.group_by(ranked.c.channel) if by_channel else statement


def _elements(dialect: str, history: sa.ColumnElement[Any]) -> Any:
    """A history array as rows (``key``: the position, ``value``: the entry), to
    join to its session's row: each dialect has its own function for it."""
    value = sa.column("value", sa.JSON)
    if dialect == "sqlite":
        return sa.func.json_each(history).table_valued(
            sa.column("key", sa.Integer), value, name="element"
        )
    if dialect == "postgresql":
        return (
            sa.func.json_array_elements(history)
            .table_valued(value, with_ordinality="key", name="element")
            .render_derived(with_types=False)
            .lateral("element")
        )
    raise _unsupported(dialect)


def _seconds(
    dialect: str, later: sa.ColumnElement[Any], earlier: sa.ColumnElement[Any]
) -> sa.ColumnElement[Any]:
    """``later - earlier`` in seconds, to the millisecond (SQLite keeps times as
    text, PostgreSQL subtracts them to an interval)."""
    if dialect == "sqlite":
        days = sa.func.julianday(later) - sa.func.julianday(earlier)
        return sa.func.round(days * 86400, 3)
    if dialect == "postgresql":
        return sa.func.round(sa.cast(sa.extract("epoch", later - earlier), sa.Numeric), 3)
    raise _unsupported(dialect)


def _unsupported(dialect: str) -> sa.exc.CompileError:
    return sa.exc.CompileError(
        f"flask-sdkauth stores sessions on SQLite and PostgreSQL only; {dialect} has no stats"
    )
