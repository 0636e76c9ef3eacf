"""Channel launches: pick the widget's channels by priority and hand one a message."""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from . import signals
from .clock import Clock
from .codes import generate_code, hash_code
from .config import Settings
from .delivery import RetryDelivery, SenderTimedOut, call_sender
from .dispatchers import LaunchJob
from .events import emit_for
from .guards import Guards
from .history import REASON_LIMIT, history_entry
from .hooks import ChannelSender, Hooks
from .message import Message, MessageId
from .phones import describe
from .redaction import redact
from .states import Event
from .store import SessionRecord, SessionStore, SessionWriter
from .widgets import Widget

__all__ = ["Launcher"]

logger = logging.getLogger("flask_sdkauth")

_MATCH_CHOICES = 3
#: Seconds before the first retry of a RetryDelivery without ``after``; doubles.
_FIRST_BACKOFF = 1.0


class Launcher:
    """Runs launch jobs: the part of the engine that talks to channel senders."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: SessionStore,
        hooks: Hooks,
        guards: Guards,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.hooks = hooks
        self.guards = guards
        self.clock = clock
        self.sleep = sleep

    def launch(
        self,
        job: LaunchJob,
        *,
        widget: Widget | None,
        session: SessionRecord,
        within_request: bool = False,
        store: SessionWriter | None = None,
    ) -> SessionRecord | None:
        """Try the widget's channels by priority from ``job.channel_index``.

        A channel without a registered sender, or one the number cannot receive
        (an SMS-like channel for a landline), is skipped; a sender that raises, or
        that has not returned within ``SDKAUTH_SENDER_TIMEOUT``, counts as a failed
        channel and the next one is tried, after the retries a
        :class:`~flask_sdkauth.RetryDelivery` asks for. The first channel that
        accepts the message moves the session to SENT; none moves it to
        NO_CHANNELS (CHANNEL_FAILED for a ``job.fallback``, so the client may
        resend). Either way the history records every try, also when the session
        moved on meanwhile and the outcome is not written.

        :param within_request: the launch runs inside the client's request, so a
            channel's retries must fit in its sender timeout too.
        :param store: where the outcome is written (default: the session store); an
            :class:`~flask_sdkauth.store.UnstoredSession` inserts it.
        :returns: the session as written, or ``None`` if it had meanwhile left
            PENDING (closed, or relaunched by someone else).
        """
        writer: SessionWriter = store or self.sessions
        channels = widget.channels if widget is not None else ()
        generation = session.generation  # assigned when the session entered PENDING
        history: list[dict[str, Any]] = []
        phone = describe(session.recipient)
        first_try = True

        def still_ours() -> bool:
            # Before every try but the first: tell the sweep this launch is alive,
            # and stop if the session has moved on (swept, restarted, closed).
            nonlocal first_try
            if first_try:
                first_try = False
                return True
            alive = writer.apply(
                session.id, Event.LAUNCH_RUNNING, at_generation=generation,
                updated_at=self.clock(),
            )
            return alive is not None

        def pass_over(index: int, channel_type: str, outcome: str, reason: str) -> dict[str, Any]:
            """Record a channel not tried (``skipped``, ``refused``); its entry."""
            entry = history_entry(index, channel_type, now, outcome, reason)
            history.append(entry)
            emit_for(session, "delivery", outcome, channel=channel_type, reason=reason)
            return entry

        left: dict[str, Any] | None = None  # the last entry of the channel given up
        for index in range(job.channel_index, len(channels)):
            channel = channels[index]
            now = self.clock()
            if left is not None:
                emit_for(
                    session, "fallback", left["outcome"], channel=left["channel"],
                    to_channel=channel.type, reason=left["reason"],
                )
            sender = self.hooks.channel_senders.get(channel.type)
            if sender is None:
                left = pass_over(index, channel.type, "skipped", "no sender")
                continue
            assert widget is not None
            if not self.guards.allows_channel(channel.type, phone, widget.id):
                left = pass_over(index, channel.type, "refused", f"number type {phone.number_type}")
                continue
            secret, message, payload = self._message(session, widget, index, now)
            delivered = self._deliver(
                sender, message, index, session, within_request, history, still_ours,
                bounded=channel.type in self.hooks.bounded_senders,
            )
            if delivered is None:
                self._note(writer, session.id, history)
                return None
            if not delivered:
                left = history[-1]
                continue
            updated = writer.apply(
                session.id,
                Event.CHANNEL_SENT,
                at_generation=generation,
                history=history,
                channel_index=index,
                channel=channel.to_dict(),
                payload=payload,
                restarts=job.restarts if index == job.channel_index else 0,
                launched_at=now,
                code_hash=hash_code(self.settings.code_secret, session.id, generation, secret),
                code_expires_at=message.expires_at,
                remaining_attempts=channel.settings.number_of_tries,
                updated_at=self.clock(),
            )
            if updated is None:  # someone else was first
                self._note(writer, session.id, history)
                return None
            signals.message_sent.send(
                current_app._get_current_object(),  # type: ignore[attr-defined]
                request_id=session.id,
                channel=channel.type,
            )
            return updated

        logger.warning(
            "sdkauth: no channel could deliver for session %s (%d tried)",
            session.id,
            len({entry["index"] for entry in history}),
        )
        exhausted = writer.apply(
            session.id,
            Event.FALLBACK_FAILED if job.fallback else Event.CHANNELS_EXHAUSTED,
            at_generation=session.generation,
            history=history,
            code_hash=None,
            updated_at=self.clock(),
        )
        if exhausted is None:
            self._note(writer, session.id, history)
        return exhausted

    def _note(
        self, writer: SessionWriter, request_id: uuid.UUID, history: list[dict[str, Any]]
    ) -> None:
        """Keep the tries of a launch that lost the race to record its outcome."""
        if history:
            writer.apply(request_id, Event.HISTORY_NOTED, history=history)

    def _deliver(
        self,
        sender: ChannelSender,
        message: Message,
        index: int,
        session: SessionRecord,
        within_request: bool,
        history: list[dict[str, Any]],
        still_ours: Callable[[], bool],
        *,
        bounded: bool,
    ) -> bool | None:
        """Hand ``message`` to ``sender``, retrying as it asks; record every try in
        ``history``. ``True`` once the sender has accepted the message, ``False``
        when the channel failed, ``None`` when the session moved on meanwhile."""
        timeout = self.settings.sender_timeout
        retries = self.settings.delivery_retries
        started = time.monotonic()

        def record(outcome: str, reason: str | None) -> None:
            history.append(history_entry(index, message.channel, self.clock(), outcome, reason))
            emit_for(
                session, "delivery", outcome, channel=message.channel, reason=reason,
                seconds=time.monotonic() - called,
            )
            if reason is not None:
                logger.warning(
                    "sdkauth: channel %s %s for session %s: %s",
                    message.channel,
                    outcome,
                    session.id,
                    reason,
                )

        for attempt in range(retries + 1):
            # Inline, the client waits: all tries of a channel share one timeout.
            left = timeout - (time.monotonic() - started) if within_request else timeout
            if not still_ours():
                return None
            called = time.monotonic()
            try:
                call_sender(sender, message, left, in_thread=not bounded)
            except SenderTimedOut:
                record("timeout", f"no answer within {timeout:g} s")
                return False
            except RetryDelivery as exc:
                reason = _failure_reason(exc, message, session.recipient)
                # A gateway's Retry-After is honoured up to the sender timeout: a worker
                # must not sleep for an hour on one message.
                delay = min(
                    exc.after if exc.after is not None else _FIRST_BACKOFF * 2**attempt,
                    timeout,
                )
                spent = time.monotonic() - started
                if attempt == retries or (within_request and spent + delay >= timeout):
                    record("failed", reason)
                    return False
                record("retry", reason)
                self.sleep(delay)
            except Exception as exc:  # a sender's failure is data, not a crash
                record("failed", _failure_reason(exc, message, session.recipient))
                return False
            else:
                record("sent", None)
                return True
        return False  # not reached: the last try returns

    def _message(
        self, session: SessionRecord, widget: Widget, index: int, now: datetime
    ) -> tuple[str, Message, dict[str, Any]]:
        """The secret to hash, the message for the sender, and the widget's payload."""
        channel = widget.channels[index]
        settings = channel.settings
        lifetime = settings.lifetime
        fields: dict[str, Any] = {}
        payload: dict[str, Any] = {}
        # A locale dropped from SDKAUTH_LOCALES since the send writes in the default.
        locale = session.locale if session.locale in self.settings.locales else None
        locale = locale or self.settings.default_locale
        if channel.code_type == "code":
            # SDKAUTH_TEST_NUMBERS (TESTING only): hashed and counted like any code.
            secret = self.settings.test_numbers.get(session.recipient) or generate_code(
                settings.code_length, beautify=settings.beautify
            )
            fields["code"] = secret
            template = self.settings.message_texts[locale]
        else:
            secret = secrets.token_urlsafe(32)
            fields["code"] = None
            fields["confirmation_token"] = secret
            template = self.settings.codeless_texts[locale]
            if self.settings.number_matching:
                choices = _two_digit_numbers(_MATCH_CHOICES)
                payload["matchNumber"] = secrets.choice(choices)
                fields["choices"] = tuple(choices)
        message = Message(
            id=str(MessageId(session.id, session.generation, index)),
            request_id=session.id,
            widget_id=widget.id,
            recipient=session.recipient,
            channel=channel.type,
            label=channel.label,
            code_type=channel.code_type,
            text=template.format(
                code=fields["code"] or "", widget=widget.name, minutes=max(1, lifetime // 60)
            ),
            locale=locale,
            expires_at=now + timedelta(seconds=lifetime),
            **fields,
        )
        return secret, message, payload


def _failure_reason(exc: Exception, message: Message, recipient: str) -> str:
    """The exception's type and text, without the message's secrets or the number."""
    text = redact(
        str(exc), secrets=(message.code, message.confirmation_token), recipient=recipient
    )
    return f"{type(exc).__name__}: {text}"[:REASON_LIMIT]


def _two_digit_numbers(count: int) -> list[str]:
    return [str(number) for number in secrets.SystemRandom().sample(range(10, 100), count)]
