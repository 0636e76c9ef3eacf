"""A development sender that appends each message to a file, one JSON line each.

For a development server driven by another program (a browser test, a script)
that reads the codes from the file. The file holds the codes in clear: never
register this sender in production.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..message import Message
from .base import message_fields

__all__ = ["OutboxSender"]


class OutboxSender:
    """A channel sender for development that appends one JSON object per message,
    and a newline, to the file at ``path``.

    Each line holds ``id``, ``request_id``, ``widget_id``, ``channel``,
    ``label``, ``code_type``, ``recipient``, ``code``, ``confirmation_token``,
    ``confirmation_url``, ``choices``, ``text`` and ``expires_at`` (ISO 8601). Each line is one
    ``write`` to a file opened with ``O_APPEND``, so the threads and processes of
    a development server do not interleave their lines. The file is created with
    mode 0600; its folder must exist.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __call__(self, message: Message) -> None:
        line = json.dumps(message_fields(message), ensure_ascii=False) + "\n"
        data = line.encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, data)
            while written < len(data):  # a short write (a full disk, a signal)
                written += os.write(fd, data[written:])
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        """The messages written so far, oldest first; none if the file is missing."""
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def __repr__(self) -> str:
        return f"OutboxSender({str(self.path)!r})"
