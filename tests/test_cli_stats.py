"""flask sdkauth session show and flask sdkauth stats, over sessions the engine made.

One known story of sessions is played through the real engine (sends, failing
senders, delivery reports, codes typed right and wrong, a fallbackAfter, a moving
clock); every number of the stats is then asserted exactly, on every backend.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import sqlalchemy as sa

from flask_sdkauth import Channel, InvalidCodeException, NoAvailableChannelsException
from flask_sdkauth.session_report import mask_recipient
from flask_sdkauth.testing import confirm_session

from .conftest import FakeClock, Outbox

SHOP_NUMBERS = {name: f"+7999123450{digit}" for digit, name in enumerate(
    ["old", "delivered", "fell_back", "report_failed", "unconfirmed", "all_failed", "quick"]
)}


@dataclass
class Story:
    app: object
    sdkauth: object
    shop: object
    other: object
    timed: object
    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    #: Every number a session was sent to.
    numbers: list[str] = field(default_factory=list)


def _wrong(code: str) -> str:
    return "1" * len(code) if code != "1" * len(code) else "2" * len(code)


@pytest.fixture
def story(make_app, outbox: Outbox, clock: FakeClock) -> Story:
    """Sessions of three widgets; the first one two days before the others.

    =============  ======  =============================================  =========
    session        widget  what happens                                   confirmed
    =============  ======  =============================================  =========
    old            shop    sms sent, confirmed (two days ago)             sms, 10 s
    delivered      shop    sms sent and reported delivered                sms, 30 s
    fell_back      shop    sms fails, voice sent, delivered, a wrong code voice, 90 s
    chat           other   whatsapp sent                                  whatsapp, 60 s
    report_failed  shop    sms sent, reported failed: voice sent          no
    unconfirmed    shop    sms sent                                       no
    all_failed     shop    sms and voice fail: no channel                 no
    timed          timed   sms sent, fallbackAfter: voice sent            voice, 20 s
    quick          shop    sms sent                                       sms, 45 s
    =============  ======  =============================================  =========
    """
    app, sdkauth = make_app()
    with app.app_context():
        shop = sdkauth.create_widget("Shop", [Channel("sms"), Channel("voice")])
        other = sdkauth.create_widget("Other", [Channel("whatsapp"), Channel("sms")])
        timed = sdkauth.create_widget(
            "Timed", [Channel("sms", settings={"fallbackAfter": 60}), Channel("voice")]
        )
    told = Story(app, sdkauth, shop, other, timed)

    def send(name: str, widget, recipient: str) -> uuid.UUID:
        request_id = sdkauth.send(widget.id, recipient)
        told.ids[name] = request_id
        told.numbers.append(recipient)
        return request_id

    def confirm(request_id: uuid.UUID, after: float) -> None:
        clock.advance(after)
        code = outbox.last_for(request_id).code
        assert sdkauth.engine.check_code(request_id, code) is True

    with app.app_context():
        confirm(send("old", shop, SHOP_NUMBERS["old"]), 10)
        clock.advance(2 * 24 * 3600)

        confirm(send("delivered", shop, SHOP_NUMBERS["delivered"]), 30)
        sdkauth.report_delivery(outbox.last_for(told.ids["delivered"]).id, "delivered")

        outbox.fail("sms")
        request_id = send("fell_back", shop, SHOP_NUMBERS["fell_back"])
        outbox.failing.pop("sms")
        voice = outbox.last_for(request_id)
        sdkauth.report_delivery(voice.id, "delivered")
        clock.advance(5)
        with pytest.raises(InvalidCodeException):
            sdkauth.engine.check_code(request_id, _wrong(voice.code))
        confirm(request_id, 85)

        confirm(send("chat", other, "+79991234599"), 60)

        request_id = send("report_failed", shop, SHOP_NUMBERS["report_failed"])
        sdkauth.report_delivery(outbox.last_for(request_id).id, "failed")
        assert outbox.last_for(request_id).channel == "voice"

        send("unconfirmed", shop, SHOP_NUMBERS["unconfirmed"])

        outbox.fail("sms")
        outbox.fail("voice")
        with pytest.raises(NoAvailableChannelsException):
            sdkauth.send(shop.id, SHOP_NUMBERS["all_failed"])
        told.numbers.append(SHOP_NUMBERS["all_failed"])
        outbox.failing.clear()

        request_id = send("timed", timed, "+79991234598")
        clock.advance(61)
        generation = sdkauth.engine.sessions.get(request_id).generation
        assert sdkauth.engine.fall_back_if_due(request_id, generation).channel["type"] == "voice"
        confirm(request_id, 20)

        confirm(send("quick", shop, SHOP_NUMBERS["quick"]), 45)
    return told


def _run(story: Story, *args: str):
    return story.app.test_cli_runner().invoke(args=["sdkauth", *args])


def _json(story: Story, *args: str):
    result = _run(story, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _row(channel, sessions, sent, delivered, confirmed, conversion, median, fallbacks):
    data = {} if channel is None else {"channel": channel}
    data.update(sessions=sessions, sent=sent, delivered=delivered, confirmed=confirmed,
                conversionPercent=conversion, medianSecondsToConfirm=median,
                fallbacks=fallbacks)
    return data


def _since(clock: FakeClock, seconds: float) -> str:
    return (clock.now - timedelta(seconds=seconds)).isoformat()


# -- stats ------------------------------------------------------------------------


def test_stats_counts_each_channel_of_the_last_day(story, clock):
    assert _json(story, "stats") == {
        "since": _since(clock, 24 * 3600),
        "widget": None,
        "channels": [
            # delivered, fell_back (failed), report_failed, unconfirmed, all_failed
            # (failed), timed, quick; confirmed: delivered (30 s), quick (45 s).
            # Left for voice: fell_back, report_failed, all_failed, timed.
            _row("sms", 7, 5, 1, 2, 28.6, 37.5, 4),
            # fell_back, report_failed, all_failed (failed), timed; confirmed:
            # fell_back (90 s), timed (20 s).
            _row("voice", 4, 3, 1, 2, 50.0, 55.0, 0),
            _row("whatsapp", 1, 1, 0, 1, 100.0, 60.0, 0),
        ],
        # Distinct sessions, not the sum of the rows; the median of 20, 30, 45, 60, 90.
        "total": _row(None, 8, 7, 2, 5, 62.5, 45.0, 4),
    }


def test_stats_as_a_table(story, clock):
    result = _run(story, "stats")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"Sessions created since {_since(clock, 24 * 3600)}, all widgets:",
        "channel   sessions  sent  delivered  confirmed  conversion  median to confirm  fallbacks",
        "sms              7     5          1          2       28.6%             37.5 s          4",
        "voice            4     3          1          2       50.0%             55.0 s          0",
        "whatsapp         1     1          0          1      100.0%             60.0 s          0",
        "total            8     7          2          5       62.5%             45.0 s          4",
    ]


def test_stats_since_takes_older_sessions_in_or_leaves_newer_ones_out(story, clock):
    week = _json(story, "stats", "--since", "7d")
    assert week["since"] == _since(clock, 7 * 24 * 3600)
    # The old session: one more sms session, sent and confirmed in 10 s.
    assert week["channels"][0] == _row("sms", 8, 6, 1, 3, 37.5, 30.0, 4)
    assert week["total"] == _row(None, 9, 8, 2, 6, 66.7, 37.5, 4)

    # Created 45 s ago: quick only. report_failed, unconfirmed, all_failed and timed
    # were created 126 s ago: at the bound, counted.
    minute = _json(story, "stats", "--since", "1m")
    assert minute["channels"] == [_row("sms", 1, 1, 0, 1, 100.0, 45.0, 0)]
    assert _json(story, "stats", "--since", "125s")["total"]["sessions"] == 1
    assert _json(story, "stats", "--since", "126s")["total"]["sessions"] == 5

    nothing = _json(story, "stats", "--since", "30s")
    assert nothing["channels"] == []
    assert nothing["total"] == _row(None, 0, 0, 0, 0, None, None, 0)
    table = _run(story, "stats", "--since", "30s").output.splitlines()
    assert table[1:] == [
        "channel  sessions  sent  delivered  confirmed  conversion  median to confirm  fallbacks",
        "total           0     0          0          0           -                  -          0",
    ]


def test_stats_of_one_widget(story):
    shop = _json(story, "stats", "--widget", str(story.shop.id))
    assert shop["widget"] == str(story.shop.id)
    assert shop["channels"] == [
        _row("sms", 6, 4, 1, 2, 33.3, 37.5, 3),
        _row("voice", 3, 2, 1, 1, 33.3, 90.0, 0),
    ]
    assert shop["total"] == _row(None, 6, 5, 2, 3, 50.0, 45.0, 3)

    other = _json(story, "stats", "--widget", str(story.other.id))
    assert other["channels"] == [_row("whatsapp", 1, 1, 0, 1, 100.0, 60.0, 0)]
    assert other["total"] == _row(None, 1, 1, 0, 1, 100.0, 60.0, 0)

    timed = _json(story, "stats", "--widget", str(story.timed.id))
    # fallbackAfter moved it from sms: the "fallback" entry names the channel left.
    assert timed["channels"] == [
        _row("sms", 1, 1, 0, 0, 0.0, None, 1),
        _row("voice", 1, 1, 0, 1, 100.0, 20.0, 0),
    ]

    table = _run(story, "stats", "--widget", str(story.other.id)).output.splitlines()
    assert table[0].endswith(f", widget {story.other.id}:")
    assert _json(story, "stats", "--widget", str(uuid.uuid4()))["channels"] == []


def test_fallbacks_count_moves_to_a_later_channel_not_channels_passed_over(make_app, clock):
    app, sdkauth = make_app()
    with app.app_context():
        # No sender for viber: skipped. sms may not be resent, so resend goes on.
        widget = sdkauth.create_widget("W", [
            Channel("viber"),
            Channel("sms", settings={"numberOfRestart": 0, "restartCooldown": 30}),
            Channel("voice"),
        ])
        request_id = sdkauth.send(widget.id, "+79991234567")
        clock.advance(30)
        assert sdkauth.engine.resend(request_id) is True
        outcomes = [(e["channel"], e["outcome"])
                    for e in sdkauth.engine.sessions.get(request_id).history]
    assert outcomes == [("viber", "skipped"), ("sms", "sent"), ("voice", "sent")]
    counted = json.loads(app.test_cli_runner().invoke(args=["sdkauth", "stats", "--json"]).output)
    assert counted["channels"] == [
        _row("sms", 1, 1, 0, 0, 0.0, None, 1),
        _row("viber", 1, 0, 0, 0, 0.0, None, 0),
        _row("voice", 1, 1, 0, 0, 0.0, None, 0),
    ]
    assert counted["total"] == _row(None, 1, 1, 0, 0, 0.0, None, 1)


def test_the_median_is_exact_to_the_millisecond(make_app, outbox, clock):
    app, sdkauth = make_app()
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        for number, seconds in [("+79991234511", 0.25), ("+79991234512", 1.5)]:
            request_id = sdkauth.send(widget.id, number)
            clock.advance(seconds)
            sdkauth.engine.check_code(request_id, outbox.last_for(request_id).code)
    result = app.test_cli_runner().invoke(args=["sdkauth", "stats", "--json"])
    assert json.loads(result.output)["total"]["medianSecondsToConfirm"] == 0.875


# -- session show -------------------------------------------------------------------


def test_show_a_session_that_fell_back_and_was_confirmed_after_a_wrong_code(story):
    request_id = story.ids["fell_back"]
    with story.app.app_context():
        session = story.sdkauth.engine.sessions.get(request_id)
    voice = f"{request_id.hex}-1-1"
    report = _json(story, "session", "show", str(request_id))
    assert report == {
        "requestId": str(request_id),
        "widget": {"id": str(story.shop.id), "name": "Shop"},
        "state": "confirmed",
        "channelStatus": "confirmed",
        "recipient": "+7********02",
        "locale": "ru",
        "channel": {"type": "voice", "position": 1, "codeType": "code",
                    "numberOfTries": 3, "numberOfRestart": 2},
        # The wrong code took one attempt, the right one another.
        "remainingAttempts": 1,
        "restarts": 0,
        "createdAt": session.created_at.isoformat(),
        "launchedAt": session.created_at.isoformat(),
        "codeExpiresAt": session.code_expires_at.isoformat(),
        "confirmedAt": (session.created_at + timedelta(seconds=90)).isoformat(),
        "completedAt": None,
        "expiresAt": session.expires_at.isoformat(),
        "history": [
            {"at": session.created_at.isoformat(), "index": 0, "channel": "sms",
             "outcome": "failed", "reason": "RuntimeError: sms fails in this test",
             "details": {}},
            {"at": session.created_at.isoformat(), "index": 1, "channel": "voice",
             "outcome": "sent", "reason": None, "details": {}},
            {"at": session.created_at.isoformat(), "index": 1, "channel": "voice",
             "outcome": "report", "reason": None,
             "details": {"status": "delivered", "message": voice, "current": True}},
        ],
    }

    result = _run(story, "session", "show", str(request_id))
    assert result.exit_code == 0, result.output
    at = session.created_at.isoformat()
    lines = result.output.splitlines()
    assert lines[:14] == [
        f"request id          {request_id}",
        f"widget              {story.shop.id} (Shop)",
        "state               confirmed (channel status: confirmed)",
        "recipient           +7********02",
        "locale              ru",
        "channel             voice (position 1, code)",
        "remaining attempts  1 of 3",
        "restarts used       0 of 2",
        f"created             {at}",
        f"launched            {at}",
        f"code expires        {session.code_expires_at.isoformat()}",
        f"confirmed           {(session.created_at + timedelta(seconds=90)).isoformat()}",
        "completed           -",
        f"expires             {session.expires_at.isoformat()}",
    ]
    assert lines[15:] == [
        "history:",
        "at                         channel (position)  outcome  reason"
        "                                details",
        f"{at}  sms (0)             failed   RuntimeError: sms fails in this test  -",
        f"{at}  voice (1)           sent     -                                     -",
        f"{at}  voice (1)           report   -                                     "
        f"status=delivered current=true message={voice}",
    ]


def test_show_a_session_that_found_no_channel(story):
    with story.app.app_context():
        table = story.sdkauth.tables.session
        request_id = story.sdkauth.db.session.execute(
            sa.select(table.c.id).where(table.c.state == "no_channels")
        ).scalar_one()
    report = _json(story, "session", "show", str(request_id))
    # The channel the send started on, as stored; nothing was ever sent.
    assert (report["state"], report["channelStatus"], report["channel"]["type"]) == (
        "no_channels", "error", "sms"
    )
    assert report["launchedAt"] is report["codeExpiresAt"] is report["confirmedAt"] is None
    assert [(e["channel"], e["index"], e["outcome"]) for e in report["history"]] == [
        ("sms", 0, "failed"), ("voice", 1, "failed")
    ]
    lines = _run(story, "session", "show", str(request_id)).output.splitlines()
    assert "state               no_channels (channel status: error)" in lines
    assert "launched            -" in lines and "confirmed           -" in lines
    assert lines[-1].split()[1:4] == ["voice", "(1)", "failed"]


class _Queue:
    """A dispatcher that keeps launches for later (a worker that never comes)."""

    def dispatch(self, job, run):
        return None

    def schedule_fallback(self, request_id, generation, delay):
        pass


def test_a_session_waiting_for_its_first_launch(make_app):
    app, sdkauth = make_app(dispatcher=_Queue())
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        request_id = sdkauth.send(widget.id, "+79991234567")
    runner = app.test_cli_runner()
    lines = runner.invoke(args=["sdkauth", "session", "show", str(request_id)]).output
    assert "state               pending (channel status: wait)" in lines.splitlines()
    assert lines.splitlines()[-1] == "history: empty"
    # Not launched yet: in no channel's row, nor in the total.
    counted = json.loads(runner.invoke(args=["sdkauth", "stats", "--json"]).output)
    assert counted["channels"] == []
    assert counted["total"]["sessions"] == 0


def test_session_show_and_stats_print_no_secret(story, outbox):
    with story.app.app_context():
        # A codeless session too, one confirmed and one waiting: their tokens.
        push = story.sdkauth.create_widget(
            "Push", [Channel("whatsapp", code_type="codeless")]
        )
        for number in ("+79991234597", "+79991234596"):
            story.ids[number] = story.sdkauth.send(push.id, number)
            story.numbers.append(number)
        confirm_session(story.sdkauth, story.ids["+79991234597"], outbox)
        table = story.sdkauth.tables.session
        ids = story.sdkauth.db.session.execute(sa.select(table.c.id)).scalars().all()
        sessions = [story.sdkauth.engine.sessions.get(id) for id in ids]
    assert len(sessions) == 11
    tokens = [m.confirmation_token for m in outbox.messages if m.confirmation_token]
    hashes = [session.code_hash for session in sessions if session.code_hash]
    codes = [message.code for message in outbox.messages if message.code]
    assert len(tokens) == 2 and hashes and len(codes) >= 8

    outputs = [_run(story, "stats").output, _run(story, "stats", "--json").output]
    for session in sessions:
        for extra in ((), ("--json",)):
            result = _run(story, "session", "show", str(session.id), *extra)
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
    for output in outputs:
        for secret in [*codes, *tokens, *hashes]:
            # Not as a word of its own: a six-digit code may sit inside a hex id.
            assert re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", output) is None
        digits = re.sub(r"[\s\-().+]", "", output)
        for number in story.numbers:
            assert number[2:] not in digits, number


def test_mask_recipient():
    assert mask_recipient("+79991234567") == "+7********67"
    assert mask_recipient("+12025550123") == "+1********23"
    assert mask_recipient("+380441234567") == "+380*******67"
    assert mask_recipient("+4930123") == "+49***23"
    assert mask_recipient("+491234") == "+49****"


# -- bad input ---------------------------------------------------------------------


def test_session_show_of_a_malformed_or_unknown_id(story):
    malformed = _run(story, "session", "show", "not-a-uuid")
    assert malformed.exit_code == 2
    assert "not a valid UUID" in malformed.output
    unknown = uuid.uuid4()
    for extra in ((), ("--json",)):
        result = _run(story, "session", "show", str(unknown), *extra)
        assert result.exit_code == 1
        assert result.output.strip() == f"Error: no such session {unknown}"


@pytest.mark.parametrize("since", ["abc", "0h", "-1h", "24", "1.5h", "1w", ""])
def test_stats_refuses_a_bad_since(story, since):
    for args in (("--since", since), (f"--since={since}",)):
        result = _run(story, "stats", *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Invalid value for '--since'" in result.output


def test_stats_refuses_a_malformed_widget_id(story):
    result = _run(story, "stats", "--widget", "shop")
    assert result.exit_code == 2
    assert "Invalid value for '--widget'" in result.output
