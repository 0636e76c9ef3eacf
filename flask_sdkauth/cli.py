"""``flask sdkauth …``: tables, built-in widgets, development tokens, purging,
sweeping lost launches, a session's story and per-channel stats."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import click
from flask import current_app
from flask.cli import AppGroup

from .authenticator import NoLocalEngine
from .errors import SdkAuthError
from .session_report import session_report
from .stats import ChannelStats, channel_stats
from .widgets import Channel

if TYPE_CHECKING:
    from .extension import SdkAuth

__all__ = ["sdkauth_cli"]

class _Commands(AppGroup):
    """Reports the extension's errors (an unreachable database…) as one line and
    exit code 1, not as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SdkAuthError as error:
            raise click.ClickException(f"{error.type}: {error.message}") from error
        except NoLocalEngine as error:
            raise click.ClickException(str(error)) from error


sdkauth_cli = _Commands("sdkauth", help="Manage flask-sdkauth widgets and tokens.")
widget_cli = AppGroup("widget", help="Manage the built-in widget table.")
sdkauth_cli.add_command(widget_cli)
session_cli = AppGroup("session", help="Look into authentication sessions.")
sdkauth_cli.add_command(session_cli)
key_cli = AppGroup("key", help="Manage backend keys (server-to-server credentials).")
sdkauth_cli.add_command(key_cli)


def _extension() -> SdkAuth:
    return cast("SdkAuth", current_app.extensions["sdkauth"])


class _ChannelParam(click.ParamType):  # type: ignore[type-arg]
    """``TYPE`` or ``TYPE:{json settings}``, e.g. ``sms:{"lifetime": 120}``."""

    name = "channel"

    def convert(self, value: Any, param: Any, ctx: Any) -> Channel:
        if isinstance(value, Channel):
            return value
        channel_type, _, raw = str(value).partition(":")
        try:
            settings = json.loads(raw) if raw else None
            return Channel(channel_type, settings=settings)
        except (ValueError, TypeError) as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


@sdkauth_cli.command("create-tables")
def create_tables() -> None:
    """Create the extension's tables (if missing) in the app's database."""
    extension = _extension()
    tables = list(extension.tables.all)
    extension.db.metadata.create_all(extension.db.engine, tables=tables)
    click.echo("Created " + ", ".join(table.name for table in tables) + ".")


@sdkauth_cli.command("token")
@click.argument("widget_ids", nargs=-1, required=True, type=click.UUID)
@click.option("--expires-in", type=click.IntRange(min=1), help="Lifetime in seconds.")
def token(widget_ids: tuple[uuid.UUID, ...], expires_in: int | None) -> None:
    """Print a bearer token for WIDGET_IDS (for development and tests)."""
    click.echo(_extension().create_token(widget_ids, expires_in=expires_in))


@widget_cli.command("create")
@click.argument("name")
@click.option(
    "--channel",
    "channels",
    multiple=True,
    type=_ChannelParam(),
    help='A channel, highest priority first: TYPE or TYPE:{"lifetime": 120, …}.',
)
@click.option("--inactive", is_flag=True, help="Create the widget inactive.")
@click.option("--blocked", is_flag=True, help="Create the widget blocked.")
@click.option(
    "--region",
    "regions",
    multiple=True,
    help="Only send to numbers of this region (ISO 3166, e.g. RU); repeatable.",
)
def create_widget(
    name: str,
    channels: tuple[Channel, ...],
    inactive: bool,
    blocked: bool,
    regions: tuple[str, ...],
) -> None:
    """Create a widget called NAME and print its id."""
    widget = _extension().create_widget(
        name, channels, is_active=not inactive, is_blocked=blocked, allowed_regions=regions
    )
    click.echo(str(widget.id))


@widget_cli.command("list")
def list_widgets() -> None:
    """List the built-in widgets: id, flags, name and channels."""
    for widget in _extension().engine.widgets.all():
        flags = ("active" if widget.is_active else "inactive") + (
            ",blocked" if widget.is_blocked else ""
        )
        channels = ",".join(channel.type for channel in widget.channels) or "-"
        click.echo(f"{widget.id}  {flags:<16} {widget.name}  [{channels}]")


def _flag_command(name: str, flag: str, value: bool, help_text: str) -> None:
    @widget_cli.command(name, help=help_text)
    @click.argument("widget_id", type=click.UUID)
    def command(widget_id: uuid.UUID) -> None:
        if not _extension().engine.widgets.update_flags(widget_id, {flag: value}):
            raise click.ClickException(f"no widget {widget_id}")
        click.echo(f"{widget_id}: {flag} = {str(value).lower()}")


_flag_command("block", "is_blocked", True, "Block WIDGET_ID: send answers 403.")
_flag_command("unblock", "is_blocked", False, "Unblock WIDGET_ID.")
_flag_command("activate", "is_active", True, "Activate WIDGET_ID.")
_flag_command("deactivate", "is_active", False, "Deactivate WIDGET_ID: send answers 403.")


@sdkauth_cli.command("purge")
@click.option(
    "--older-than",
    type=click.IntRange(min=0),
    help="Age in seconds; default SDKAUTH_RETENTION.",
)
def purge(older_than: int | None) -> None:
    """Delete authentication sessions older than the retention period."""
    age = timedelta(seconds=older_than) if older_than is not None else None
    deleted = _extension().authenticator.purge(age)
    click.echo(f"Deleted {deleted} session(s).")


@sdkauth_cli.command("sweep")
def sweep() -> None:
    """Relaunch sessions whose launch has not finished within SDKAUTH_LAUNCH_DEADLINE."""
    relaunched = _extension().sweep()
    click.echo(f"Relaunched {relaunched} session(s).")


@sdkauth_cli.command("audit-hash")
@click.argument("number")
def audit_hash(number: str) -> None:
    """Print the number_hash the audit records carry for NUMBER (any notation)."""
    click.echo(_extension().audit_number_hash(number))


# -- looking into sessions ------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, right: int = 0) -> str:
    """Columns aligned on their widest cell; the ``right`` last ones to the right."""
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    lines = []
    for row in (header, *rows):
        cells = [
            cell.rjust(width) if column >= len(header) - right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@session_cli.command("show")
@click.argument("request_id", type=click.UUID)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show_session(request_id: uuid.UUID, as_json: bool) -> None:
    """Show session REQUEST_ID: state, times, channels tried, attempts left.

    No secret is shown: no code, code hash or confirmation token, and the number
    only masked."""
    engine = _extension().engine
    session = engine.sessions.get(request_id)
    if session is None:
        raise click.ClickException(f"no such session {request_id}")
    report = session_report(session, engine.find_widget(session.widget_id))
    if as_json:
        _echo_json(report)
        return
    click.echo(_session_text(report))


_SESSION_TIMES = [
    ("created", "createdAt"),
    ("launched", "launchedAt"),
    ("code expires", "codeExpiresAt"),
    ("confirmed", "confirmedAt"),
    ("completed", "completedAt"),
    ("expires", "expiresAt"),
]


def _session_text(report: dict[str, Any]) -> str:
    """``session show``'s report as labelled lines, then the history as a table."""
    widget, channel = report["widget"], report["channel"] or {}

    def out_of(value: int, limit: int | None) -> str:
        return str(value) if limit is None else f"{value} of {limit}"

    fields = [
        ("request id", report["requestId"]),
        ("widget", f"{widget['id']} ({widget['name'] or 'not found'})"),
        ("state", f"{report['state']} (channel status: {report['channelStatus']})"),
        ("recipient", report["recipient"]),
        *([("locale", report["locale"])] if report["locale"] is not None else []),
        ("channel", f"{channel['type']} (position {channel['position']}, {channel['codeType']})"
                    if channel else "-"),
        ("remaining attempts", out_of(report["remainingAttempts"], channel.get("numberOfTries"))),
        ("restarts used", out_of(report["restarts"], channel.get("numberOfRestart"))),
        *[(label, report[key] or "-") for label, key in _SESSION_TIMES],
    ]
    width = max(len(label) for label, _ in fields)
    lines = [f"{label.ljust(width)}  {value}" for label, value in fields]
    if not report["history"]:
        return "\n".join([*lines, "", "history: empty"])
    rows = [_history_row(entry) for entry in report["history"]]
    header = ["at", "channel (position)", "outcome", "reason", "details"]
    return "\n".join([*lines, "", "history:", _table(header, rows)])


def _history_row(entry: dict[str, Any]) -> list[str]:
    position = "-" if entry["index"] is None else str(entry["index"])
    details = " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in entry["details"].items()
    )
    return [
        entry["at"] or "-",
        f"{entry['channel'] or '-'} ({position})",
        entry["outcome"] or "-",
        entry["reason"] or "-",
        details or "-",
    ]


# -- stats ------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _DurationParam(click.ParamType):  # type: ignore[type-arg]
    """A positive whole number of seconds, minutes, hours or days: ``90s``, ``30m``,
    ``24h``, ``7d``."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = _DURATION.fullmatch(str(value).strip())
        if match is None or int(match.group(1)) == 0:
            self.fail(f"{value!r} is not a duration like 30m, 24h or 7d (more than 0)", param, ctx)
        return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@sdkauth_cli.command("stats")
@click.option(
    "--since",
    type=_DurationParam(),
    default="24h",
    show_default=True,
    help="Count the sessions created this long ago or later: 30m, 24h, 7d…",
)
@click.option("--widget", "widget_id", type=click.UUID, help="Only the sessions of this widget.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats(since: timedelta, widget_id: uuid.UUID | None, as_json: bool) -> None:
    """Per channel: sessions, sent, delivered, confirmed, conversion, median time
    to confirm and fallbacks (see the docs for each definition)."""
    extension = _extension()
    counted = channel_stats(
        extension.db,
        extension.tables.session,
        since=extension.engine.clock() - since,
        widget_id=widget_id,
    )
    if as_json:
        _echo_json(counted.to_dict())
        return
    scope = f"widget {widget_id}" if widget_id is not None else "all widgets"
    click.echo(f"Sessions created since {counted.since.isoformat()}, {scope}:")
    rows = [_stats_row(row.channel or "-", row) for row in counted.channels]
    header = ["channel", "sessions", "sent", "delivered", "confirmed", "conversion",
              "median to confirm", "fallbacks"]
    click.echo(_table(header, [*rows, _stats_row("total", counted.total)], right=7))


def _stats_row(name: str, row: ChannelStats) -> list[str]:
    conversion = row.conversion_percent
    median = row.median_seconds_to_confirm
    return [
        name,
        str(row.sessions),
        str(row.sent),
        str(row.delivered),
        str(row.confirmed),
        "-" if conversion is None else f"{conversion:.1f}%",
        "-" if median is None else f"{median:.1f} s",
        str(row.fallbacks),
    ]


# -- backend keys --------------------------------------------------------------


@key_cli.command("create")
@click.option("--name", required=True, help="Who holds the key, e.g. the backend's name.")
@click.option(
    "--widget",
    "widget_ids",
    multiple=True,
    required=True,
    type=click.UUID,
    help="A widget the key may act for; repeatable.",
)
def create_key(name: str, widget_ids: tuple[uuid.UUID, ...]) -> None:
    """Create a backend key and print it, once: only its hash is stored."""
    extension = _extension()
    try:
        key, secret = extension.api_keys.create(name, widget_ids, extension.clock())
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    click.echo(f"Key {key.id} ({key.name}); keep it now, it is not shown again:")
    click.echo(secret)


@key_cli.command("list")
def list_keys() -> None:
    """List the backend keys: id, state, created, name and widgets (never the key)."""
    for key in _extension().api_keys.all():
        state = "revoked" if key.revoked_at is not None else "active"
        created = key.created_at.strftime("%Y-%m-%d %H:%M UTC")
        widgets = ",".join(sorted(key.widget_ids))
        click.echo(f"{key.id}  {state:<8} {created}  {key.name}  [{widgets}]")


@key_cli.command("revoke")
@click.argument("key_id", type=click.UUID)
def revoke_key(key_id: uuid.UUID) -> None:
    """Revoke KEY_ID: every request bearing it answers 401 from now on."""
    extension = _extension()
    if not extension.api_keys.revoke(key_id, extension.clock()):
        raise click.ClickException(f"no active key {key_id}")
    click.echo(f"{key_id}: revoked")

