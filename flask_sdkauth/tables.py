"""The extension's tables, defined on the host's ``db.metadata``.

They are created by the host's ``db.create_all()``, by its migrations (Alembic
needs :func:`flask_sdkauth.migrations.render_item` to write ``UTCDateTime``), or by
``flask sdkauth create-tables``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

__all__ = ["Tables", "UTCDateTime", "define_tables"]


class UTCDateTime(sa.TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no time zone)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Tables:
    widget: sa.Table
    session: sa.Table
    #: Sessions started through SIGMA's service (proxy mode): whose widget and
    #: number each is, which the service does not tell.
    upstream_session: sa.Table
    #: Backend keys: only a hash of each (:mod:`flask_sdkauth.api_keys`).
    api_key: sa.Table

    @property
    def all(self) -> tuple[sa.Table, ...]:
        return (self.widget, self.session, self.upstream_session, self.api_key)


def define_tables(metadata: sa.MetaData) -> Tables:
    """Add the tables to ``metadata`` once and return them (idempotent)."""
    if "sdkauth_session" in metadata.tables:
        return Tables(
            widget=metadata.tables["sdkauth_widget"],
            session=metadata.tables["sdkauth_session"],
            upstream_session=metadata.tables["sdkauth_upstream_session"],
            api_key=metadata.tables["sdkauth_api_key"],
        )
    widget = sa.Table(
        "sdkauth_widget",
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False, default=True),
        sa.Column("is_blocked", sa.Boolean, nullable=False, default=False),
        # Channels in priority order, each as Channel.to_dict().
        sa.Column("channels", sa.JSON, nullable=False),
        # ISO 3166 region codes the widget may send to; empty for all.
        sa.Column("allowed_regions", sa.JSON, nullable=False, default=list),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    session = sa.Table(
        "sdkauth_session",
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("widget_id", sa.Uuid, nullable=False),
        sa.Column("recipient", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        # The current channel: its position in the widget, then Channel.to_dict().
        sa.Column("channel_index", sa.Integer, nullable=True),
        sa.Column("channel", sa.JSON, nullable=True),
        # What getChannel shows besides the channel, e.g. the number to match.
        sa.Column("payload", sa.JSON, nullable=False),
        # Goes up on every launch of a channel (spec §7.5): set when the session
        # enters PENDING, at creation or restart. The client has seen the channel
        # of seen_generation through getChannel.
        sa.Column("generation", sa.Integer, nullable=False, default=0),
        sa.Column("seen_generation", sa.Integer, nullable=False, default=0),
        # Digest of the channel snapshot the client was last given (spec §7.5).
        sa.Column("seen_snapshot", sa.String(32), nullable=True),
        sa.Column("restarts", sa.Integer, nullable=False, default=0),
        sa.Column("launched_at", UTCDateTime, nullable=True),
        # The channel position the pending launch starts from, so that a launch
        # whose worker died can be run again (the current channel is channel_index).
        sa.Column("launch_index", sa.Integer, nullable=True),
        # Keyed hash of the code (or of a codeless channel's confirmation token).
        sa.Column("code_hash", sa.String(64), nullable=True),
        sa.Column("code_expires_at", UTCDateTime, nullable=True),
        sa.Column("remaining_attempts", sa.Integer, nullable=False, default=0),
        # Every channel tried, in order, with its outcome and the reason of a failure.
        sa.Column("history", sa.JSON, nullable=False),
        sa.Column("client_ip", sa.String(45), nullable=True),
        # The send request's negotiated locale: the language of the session's messages.
        sa.Column("locale", sa.String(35), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False, index=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("confirmed_at", UTCDateTime, nullable=True),
        sa.Column("completed_at", UTCDateTime, nullable=True),
    )
    upstream_session = sa.Table(
        "sdkauth_upstream_session",
        metadata,
        # otp-handler's requestId.
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("widget_id", sa.Uuid, nullable=False),
        sa.Column("recipient", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    )
    api_key = sa.Table(
        "sdkauth_api_key",
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        # The widget ids the key may act for, as strings.
        sa.Column("widget_ids", sa.JSON, nullable=False),
        # SHA-256 of the key, hex; the key itself is shown once and not kept.
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
    )
    return Tables(
        widget=widget, session=session, upstream_session=upstream_session, api_key=api_key
    )
