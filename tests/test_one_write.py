"""Inline, send writes its session once: an INSERT of the launched session.

The statements on ``sdkauth_session`` are counted with SQLAlchemy's events.
"""

from __future__ import annotations

import sqlalchemy as sa

from flask_sdkauth import Channel, InlineDispatcher, signals
from flask_sdkauth.store import _POOLS

from .flow import RECIPIENT


class SessionWrites:
    """The INSERTs and UPDATEs of the session table on an app's engine, in order."""

    def __init__(self, app, sdkauth):
        self.statements: list[str] = []
        with app.app_context():
            engine = sdkauth.db.engine
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, *args):
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE") and "sdkauth_session" in statement:
            self.statements.append(verb)


def test_a_send_is_one_insert_of_the_sent_session(app, sdkauth, widget, outbox):
    writes = SessionWrites(app, sdkauth)
    seen_by_sender = []
    sdkauth.add_channel_sender(
        "sms", lambda message: (seen_by_sender.append(sdkauth.engine.sessions.get(
            message.request_id)), outbox(message))
    )
    with app.app_context():
        request_id = sdkauth.send(widget.id, RECIPIENT)
        session = sdkauth.engine.sessions.get(request_id)
    assert writes.statements == ["INSERT"]
    assert seen_by_sender == [None]  # the row is written once the launch is over
    assert session.state.value == "sent" and session.code_hash
    assert [entry["outcome"] for entry in session.history] == ["sent"]


def test_a_send_that_falls_back_and_one_that_finds_no_channel_are_one_insert(
    app, sdkauth, widget, outbox
):
    writes = SessionWrites(app, sdkauth)
    outbox.fail("sms")
    with app.app_context():
        sdkauth.send(widget.id, RECIPIENT)
        outbox.fail("voice")
        try:
            sdkauth.send(widget.id, "+79991234568")
        except Exception as error:  # NoAvailableChannelsException, the session kept
            assert error.type == "NoAvailableChannelsException"
    assert writes.statements == ["INSERT", "INSERT"]
    with app.app_context():
        rows = sdkauth.db.session.execute(
            sa.select(sdkauth.tables.session.c.state).order_by(
                sdkauth.tables.session.c.created_at)
        ).scalars().all()
    assert sorted(rows) == ["no_channels", "sent"]


def test_signals_keep_their_order(app, sdkauth, widget, outbox):
    order = []
    signals.session_created.connect(lambda sender, **kw: order.append("created"), app, weak=False)
    signals.message_sent.connect(lambda sender, **kw: order.append("sent"), app, weak=False)
    with app.app_context():
        sdkauth.send(widget.id, RECIPIENT)
    assert order == ["created", "sent"]


class Deferring(InlineDispatcher):
    """Any dispatcher but the built-in inline one: the row comes first."""


def test_another_dispatcher_stores_the_session_before_its_launch(make_app, outbox):
    app, sdkauth = make_app(dispatcher=Deferring())
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
    writes = SessionWrites(app, sdkauth)
    with app.app_context():
        sdkauth.send(widget.id, RECIPIENT)
    assert writes.statements == ["INSERT", "UPDATE"]


def test_while_the_database_is_known_down_the_row_comes_before_any_message(
    app, sdkauth, widget, outbox
):
    """An outage on: write first, so that a failing database refuses the send
    before a message goes out (none is sent for a session that cannot be stored)."""
    with app.app_context():
        sdkauth.send(widget.id, RECIPIENT)  # the widget is now kept: no read below
        pool = _POOLS[sdkauth.db.engine]
    writes = SessionWrites(app, sdkauth)
    pool.outage.began("a test's outage")
    with app.app_context():
        sdkauth.send(widget.id, "+79991234568")  # it is back: the insert ends the outage
    assert writes.statements == ["INSERT", "UPDATE"]
    assert not pool.outage.ongoing
