"""The development senders: the console (or a log) and an outbox file."""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import re
import stat
import threading

from flask_sdkauth import Channel
from flask_sdkauth.senders.console import ConsoleSender
from flask_sdkauth.senders.outbox import OutboxSender

from .flow import RECIPIENT
from .flow import sample_message as message

# -- console -------------------------------------------------------------------


def test_console_writes_one_line_to_stdout(capsys):
    sent = message()
    ConsoleSender()(sent)
    assert capsys.readouterr().out == (
        f"[dev sender] sms to {RECIPIENT} (session {sent.request_id}): Код подтверждения: 482913\n"
    )


def test_console_writes_to_a_stream_or_a_logger(caplog):
    stream = io.StringIO()
    ConsoleSender(stream)(message())
    assert stream.getvalue().startswith("[dev sender] sms to ")
    with caplog.at_level(logging.INFO, logger="my.dev"):
        ConsoleSender("my.dev")(message())
        ConsoleSender("my.dev", level=logging.INFO)(message(channel="voice"))
    assert [(r.name, r.levelno) for r in caplog.records] == [
        ("my.dev", logging.WARNING),
        ("my.dev", logging.INFO),
    ]
    assert "Код подтверждения: 482913" in caplog.records[0].getMessage()


def test_console_adds_the_confirmation_link_when_it_can_be_built(make_app, capsys):
    app, sdkauth = make_app()
    sdkauth.add_channel_sender("sim_push", ConsoleSender())
    with app.app_context():
        widget = sdkauth.create_widget("Push", [Channel("sim_push")])
        sdkauth.send(widget.id, RECIPIENT)  # no request, no SERVER_NAME
        with app.test_request_context(base_url="https://login.example"):
            sdkauth.send(widget.id, "+79991234568")
    without, within = capsys.readouterr().out.splitlines()
    assert without.endswith("(no link: set SERVER_NAME to get one here)")
    link = re.search(r" — open (\S+)$", within).group(1)
    assert link.startswith("https://login.example/") and "token=" in link


# -- outbox --------------------------------------------------------------------


def test_outbox_appends_one_json_line_per_message(tmp_path):
    path = tmp_path / "outbox.jsonl"
    outbox = OutboxSender(path)
    assert outbox.read() == []
    first, second = message(), message(channel="voice", code="111222")
    outbox(first)
    outbox(second)
    lines = path.read_text("utf-8").splitlines()
    assert [json.loads(line)["code"] for line in lines] == ["482913", "111222"]
    record = outbox.read()[0]
    assert record == {
        "id": first.id,
        "request_id": str(first.request_id),
        "widget_id": str(first.widget_id),
        "channel": "sms",
        "label": first.label,
        "code_type": "code",
        "recipient": RECIPIENT,
        "code": "482913",
        "confirmation_token": None,
        "confirmation_url": None,
        "choices": [],
        "text": "Код подтверждения: 482913",
        "expires_at": "2026-01-01T12:05:00+00:00",
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _write_many(path: str, count: int) -> None:
    outbox = OutboxSender(path)
    for _ in range(count):
        outbox(message(text="x" * 5000))


def test_outbox_lines_do_not_interleave_across_threads_and_processes(tmp_path):
    path = str(tmp_path / "outbox.jsonl")
    context = multiprocessing.get_context("spawn")  # fork is unsafe with threads about
    processes = [context.Process(target=_write_many, args=(path, 50)) for _ in range(2)]
    threads = [threading.Thread(target=_write_many, args=(path, 50)) for _ in range(3)]
    for worker in (*processes, *threads):
        worker.start()
    for worker in (*processes, *threads):
        worker.join(timeout=60)
    assert all(process.exitcode == 0 for process in processes)
    records = OutboxSender(path).read()  # every line parses
    assert len(records) == 250
    assert len({record["id"] for record in records}) == 250


def test_outbox_through_the_engine(make_app, tmp_path):
    app, sdkauth = make_app()
    outbox = OutboxSender(tmp_path / "outbox.jsonl")
    sdkauth.add_channel_sender("sms", outbox)
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        request_id = sdkauth.send(widget.id, RECIPIENT)
        (record,) = outbox.read()
        assert record["request_id"] == str(request_id)
        assert sdkauth.engine.check_code(request_id, record["code"]) is True
