"""Blinker signals sent by the engine after its writes are committed.

The sender is the Flask app; keyword arguments carry ``request_id`` (all but
``send_refused``), and each signal's comment lists the others (``error`` is the contract exception being raised).
Subscribe with ``signal.connect(receiver, app)``.
"""

from __future__ import annotations

from blinker import Namespace

__all__ = [
    "auth_error",
    "auth_event",
    "channel_changed",
    "message_sent",
    "resend_channel",
    "send_refused",
    "session_created",
    "success_confirmation",
]

_signals = Namespace()

#: A session was stored. Kwargs: ``request_id``, ``widget_id``.
session_created = _signals.signal("session-created")
#: A channel sender accepted a message. Kwargs: ``request_id``, ``channel``.
message_sent = _signals.signal("message-sent")
#: An operation raised ``ChannelChangedException``. Kwargs: ``request_id``, ``error``.
channel_changed = _signals.signal("channel-changed")
#: An operation raised ``ResendChannelException``. Kwargs: ``request_id``, ``error``.
resend_channel = _signals.signal("resend-channel")
#: The session was confirmed (sent once per session). Kwargs: ``request_id``.
success_confirmation = _signals.signal("success-confirmation")
#: An operation on a session raised any contract error, including the two above.
#: Kwargs: ``request_id``, ``error``.
auth_error = _signals.signal("error")
#: A protection refused a send (or skipped a channel). Kwargs: ``reason``
#: (``rate_limit``, ``captcha``, ``region``, ``daily_cap`` or ``number_type``),
#: ``widget_id``; no ``request_id`` (there may be no session).
send_refused = _signals.signal("send-refused")
#: Every fact of an authentication (a send's outcome, each delivery attempt and
#: report, fallbacks, code checks, confirmations, completions), for metrics and
#: audit records. Kwargs: ``event``, an :class:`~flask_sdkauth.events.AuthEvent`.
auth_event = _signals.signal("auth-event")
