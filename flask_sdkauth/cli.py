"""``flask sdkauth …``: tables, built-in widgets, development tokens, purging,
sweeping lost launches."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import click
from flask import current_app
from flask.cli import AppGroup

from .widgets import Channel

if TYPE_CHECKING:
    from .extension import SdkAuth

__all__ = ["sdkauth_cli"]

sdkauth_cli = AppGroup("sdkauth", help="Manage flask-sdkauth widgets and tokens.")
widget_cli = AppGroup("widget", help="Manage the built-in widget table.")
sdkauth_cli.add_command(widget_cli)


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
    tables = [extension.tables.widget, extension.tables.session]
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
    deleted = _extension().engine.purge(age)
    click.echo(f"Deleted {deleted} session(s).")


@sdkauth_cli.command("sweep")
def sweep() -> None:
    """Relaunch sessions whose launch has not finished within SDKAUTH_LAUNCH_DEADLINE."""
    relaunched = _extension().sweep()
    click.echo(f"Relaunched {relaunched} session(s).")
