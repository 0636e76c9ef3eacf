"""Built-in widgets kept for SDKAUTH_WIDGET_CACHE_SECONDS: fewer reads, bounded staleness.

Reads of ``sdkauth_widget`` are counted with SQLAlchemy's statement events; time
moves with the tests' clock.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from flask_sdkauth import Channel
from flask_sdkauth.store import WidgetStore

from .conftest import bearer
from .flow import RECIPIENT, WidgetClient


class WidgetReads:
    """Counts the SELECTs of the widget table on an app's engine."""

    def __init__(self, app, sdkauth):
        self.count = 0
        with app.app_context():
            engine = sdkauth.db.engine
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT") and "sdkauth_widget" in statement:
            self.count += 1


def _client(app, sdkauth, widget):
    return WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))


def test_a_widget_is_read_once_while_it_is_kept(make_app, clock):
    app, sdkauth = make_app({"SDKAUTH_WIDGET_CACHE_SECONDS": 5})
    with app.app_context():
        widget = sdkauth.create_widget("Demo", [Channel("sms")])
    reads = WidgetReads(app, sdkauth)
    api = _client(app, sdkauth, widget)
    for number in ("+79991234561", "+79991234562", "+79991234563"):
        assert api.send(widget.id, number).status_code == 201
        assert api.widget(widget.id).status_code == 200
    assert reads.count == 1
    clock.advance(6)
    assert api.send(widget.id, "+79991234564").status_code == 201
    assert reads.count == 2


def test_without_the_cache_every_request_reads_it(make_app):
    app, sdkauth = make_app({"SDKAUTH_WIDGET_CACHE_SECONDS": 0})
    with app.app_context():
        widget = sdkauth.create_widget("Demo", [Channel("sms")])
    reads = WidgetReads(app, sdkauth)
    api = _client(app, sdkauth, widget)
    for _ in range(3):
        api.widget(widget.id)
    assert reads.count == 3


def test_a_change_in_this_process_applies_at_once(make_app):
    app, sdkauth = make_app({"SDKAUTH_WIDGET_CACHE_SECONDS": 60})
    with app.app_context():
        widget = sdkauth.create_widget("Demo", [Channel("sms")])
    api = _client(app, sdkauth, widget)
    assert api.send(widget.id).status_code == 201
    result = app.test_cli_runner().invoke(args=["sdkauth", "widget", "block", str(widget.id)])
    assert result.exit_code == 0, result.output
    assert api.send(widget.id).json["type"] == "WidgetIsBlockedException"


def test_another_processs_change_is_seen_within_the_cache_time(
    make_app, shared_database_uri, clock
):
    config = {"SQLALCHEMY_DATABASE_URI": shared_database_uri, "SDKAUTH_WIDGET_CACHE_SECONDS": 5}
    web, sdkauth = make_app(config)
    shell, other = make_app(config, reset_database=False)  # a `flask sdkauth` shell, say
    with web.app_context():
        widget = sdkauth.create_widget("Demo", [Channel("sms")])
    api = _client(web, sdkauth, widget)
    assert api.send(widget.id).status_code == 201
    with shell.app_context():
        assert other.engine.widgets.update_flags(widget.id, {"is_blocked": True})
    # Kept for at most five seconds: still sending, then refused.
    assert api.send(widget.id, "+79991234568").status_code == 201
    clock.advance(5)
    assert api.send(widget.id, "+79991234569").json["type"] == "WidgetIsBlockedException"


def test_unknown_widgets_are_not_kept(make_app):
    app, sdkauth = make_app({"SDKAUTH_WIDGET_CACHE_SECONDS": 60})
    reads = WidgetReads(app, sdkauth)
    unknown = uuid.uuid4()
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, unknown))
    for _ in range(3):
        assert api.send(unknown, RECIPIENT).json["type"] == "WidgetNotFoundException"
    assert reads.count == 3
    with app.app_context():
        assert len(sdkauth.engine.widgets._cache) == 0


def test_the_cache_is_bounded(make_app, monkeypatch):
    monkeypatch.setattr(WidgetStore, "CACHE_SIZE", 3)
    app, sdkauth = make_app({"SDKAUTH_WIDGET_CACHE_SECONDS": 60})
    with app.app_context():
        widgets = [sdkauth.create_widget(f"W{i}", [Channel("sms")]) for i in range(5)]
        for widget in widgets:
            assert sdkauth.engine.widgets.get(widget.id) == widget
        assert len(sdkauth.engine.widgets._cache) <= 3


@pytest.mark.parametrize("value", [-1, "5", True, None])
def test_a_bad_cache_time_fails_at_init(make_app, value):
    with pytest.raises(ValueError, match="SDKAUTH_WIDGET_CACHE_SECONDS"):
        make_app({"SDKAUTH_WIDGET_CACHE_SECONDS": value})
