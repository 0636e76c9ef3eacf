"""A development sender that shows each message on the console or in a log.

It writes the code in clear, which is its whole purpose: never register it in
production, where anyone who reads the log could sign in as anyone.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from ..message import Message
from .base import confirmation_link

__all__ = ["ConsoleSender"]


class ConsoleSender:
    """A channel sender for development: one line per message, code included.

    ``[dev sender] sms to +79991234567 (session <request id>): <text>``, followed
    on a codeless channel by ``— open <confirmation link>`` when a link can be
    built (during a request, or with ``SERVER_NAME`` set).

    :param stream: where to write: ``None`` for ``sys.stdout`` (looked up on each
        message, so that a test's capture sees it), a text stream, or the name of
        a logger to log to instead.
    :param level: the level of the log records, when ``stream`` names a logger.
    """

    def __init__(self, stream: TextIO | str | None = None, *, level: int = logging.WARNING) -> None:
        self.stream = stream
        self.level = level

    def __call__(self, message: Message) -> None:
        text = message.text
        if message.confirmation_token is not None:
            link = confirmation_link(message)
            text += f" — open {link}" if link else " (no link: set SERVER_NAME to get one here)"
        line = "[dev sender] %s to %s (session %s): %s"
        fields = (message.channel, message.recipient, message.request_id, text)
        if isinstance(self.stream, str):
            logging.getLogger(self.stream).log(self.level, line, *fields)
            return
        stream = sys.stdout if self.stream is None else self.stream
        stream.write(line % fields + "\n")
        stream.flush()

    def __repr__(self) -> str:
        return f"ConsoleSender(stream={self.stream!r})"
