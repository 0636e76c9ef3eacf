"""A sender's failure is kept and logged without the code, the token or the number."""

from __future__ import annotations

import logging
import urllib.parse

import pytest

from flask_sdkauth import Channel
from flask_sdkauth.redaction import REDACTED, redact

NUMBER = "+79991234567"
NATIONAL = "9991234567"


class GatewayError(Exception):
    """Like ``requests.HTTPError``: its text names the URL it called."""


def _leaky_sender(message):
    query = urllib.parse.urlencode(
        {"to": message.recipient, "text": message.text, "token": message.confirmation_token or ""}
    )
    raise GatewayError(
        f"500 Server Error for url: https://gw.example/send?{query} "
        f"(number {message.recipient[:2]} {NATIONAL[:3]} {NATIONAL[3:6]}-{NATIONAL[6:8]}-"
        f"{NATIONAL[8:]}, code {message.code})"
    )


def _history_and_logs(app, sdkauth, caplog, channel):
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel(channel), Channel("voice")])
        with caplog.at_level(logging.DEBUG, logger="flask_sdkauth"):
            request_id = sdkauth.send(widget.id, NUMBER)
        session = sdkauth.engine.sessions.get(request_id)
    reason = session.history[0]["reason"]
    logs = "\n".join(record.getMessage() for record in caplog.records)
    return reason, logs


def _digits_only(text):
    return "".join(ch for ch in text if ch.isdigit())


def test_code_and_number_are_removed_from_a_senders_failure(app, sdkauth, outbox, caplog):
    codes = []

    def sender(message):
        codes.append(message.code)
        _leaky_sender(message)

    sdkauth.add_channel_sender("sms", sender)
    reason, logs = _history_and_logs(app, sdkauth, caplog, "sms")
    assert reason.startswith("GatewayError: 500 Server Error for url: https://gw.example/send?")
    assert REDACTED in reason
    for text in (reason, logs):
        assert codes[0] not in text
        assert NATIONAL not in _digits_only(text)  # in no notation, encoded or spaced
    assert "GatewayError" in logs  # the failure itself is still reported


def test_confirmation_token_is_removed_from_a_senders_failure(app, sdkauth, outbox, caplog):
    tokens = []

    def sender(message):
        tokens.append(message.confirmation_token)
        _leaky_sender(message)

    sdkauth.add_channel_sender("sim_push", sender)
    reason, logs = _history_and_logs(app, sdkauth, caplog, "sim_push")
    for text in (reason, logs):
        assert tokens[0] not in text
        assert NATIONAL not in _digits_only(text)


@pytest.mark.parametrize(
    "text",
    [
        "to=%2B79991234567",
        "to=+7 (999) 123-45-67",
        "to=8.999.123.45.67",
        "to=+7%20999%20123%2045%2067",
        "to=9991234567",
    ],
)
def test_every_notation_of_the_number_is_redacted(text):
    assert redact(text, recipient=NUMBER).count(REDACTED) == 1
    assert NATIONAL not in _digits_only(redact(text, recipient=NUMBER))


def test_redaction_keeps_the_rest_of_the_text():
    assert redact("timeout after 10 s, code 4821", secrets=["4821", None]) == (
        f"timeout after 10 s, code {REDACTED}"
    )
    assert redact("no digits of it here: 12345", recipient=NUMBER) == "no digits of it here: 12345"
