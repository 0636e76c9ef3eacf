"""Blinker signals sent by the engine after its writes are committed.

The sender is the Flask app; keyword arguments carry ``request_id`` and, where there
is one, ``error``. Subscribe with ``signal.connect(receiver, app)``.
"""

from __future__ import annotations

from blinker import Namespace

__all__ = ["session_created", "message_sent"]

_signals = Namespace()

#: A session was stored. Kwargs: ``request_id``, ``widget_id``.
session_created = _signals.signal("session-created")
#: A channel sender accepted a message. Kwargs: ``request_id``, ``channel``.
message_sent = _signals.signal("message-sent")
