"""The authentication engine: plain Python over the stores, no HTTP.

It owns the rules: which widget may start a session, which channel delivers next,
how codes are made and kept. Views translate HTTP to these calls; the Python API of
:class:`~flask_sdkauth.SdkAuth` calls them directly.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

from flask import current_app

from . import signals
from .codes import generate_code, hash_code
from .config import Settings
from .dispatcher import Dispatcher, LaunchJob
from .errors import (
    ForbiddenException,
    NoAvailableChannelsException,
    SessionNotFoundException,
    ValidateError,
    WidgetIsBlockedException,
    WidgetNotFoundException,
)
from .hooks import Hooks
from .message import Message
from .phones import InvalidPhoneNumber, to_e164
from .states import Event, State
from .store import SessionRecord, SessionStore, WidgetStore
from .widgets import Channel, Widget

__all__ = ["Engine", "Clock", "utc_now"]

logger = logging.getLogger("flask_sdkauth")

Clock = Callable[[], datetime]

_REASON_LIMIT = 500


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Engine:
    """The rules of one app, built by ``SdkAuth.init_app`` from its settings."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: SessionStore,
        widgets: WidgetStore,
        hooks: Hooks,
        dispatcher: Dispatcher,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.widgets = widgets
        self.hooks = hooks
        self.dispatcher = dispatcher
        self.clock = clock

    # -- widgets ---------------------------------------------------------------

    def find_widget(self, widget_id: uuid.UUID) -> Widget | None:
        """The widget from the host's ``widget_loader``, else from the built-in store."""
        loader = self.hooks.widget_loader or self.widgets.get
        return loader(widget_id)

    def load_widget(self, widget_id: uuid.UUID) -> Widget:
        widget = self.find_widget(widget_id)
        if widget is None:
            raise WidgetNotFoundException()
        return widget

    # -- send ------------------------------------------------------------------

    def send(
        self, widget_id: uuid.UUID, recipient: str, *, client_ip: str | None = None
    ) -> uuid.UUID:
        """Start a session and launch the widget's first deliverable channel.

        :returns: the new session's request id.
        :raises WidgetNotFoundException: no such widget.
        :raises WidgetIsBlockedException: the widget, or the recipient, is blocked.
        :raises ForbiddenException: the widget is inactive (spec gap 17).
        :raises ValidateError: ``recipient`` is not a valid phone number.
        :raises NoAvailableChannelsException: no channel could deliver; the session
            is still stored, with the reason of every failure in its history.
        """
        widget = self.load_widget(widget_id)
        if widget.is_blocked:
            raise WidgetIsBlockedException()
        if not widget.is_active:
            raise ForbiddenException()
        recipient = self.normalise_recipient(recipient)
        blocklist = self.hooks.recipient_in_blocklist_loader
        if blocklist is not None and blocklist(recipient, widget):
            raise WidgetIsBlockedException()

        now = self.clock()
        session = SessionRecord(
            id=uuid.uuid4(),
            widget_id=widget.id,
            recipient=recipient,
            state=State.PENDING,
            channel_index=None,
            channel=None,
            generation=0,
            restarts=0,
            code_hash=None,
            code_expires_at=None,
            remaining_attempts=0,
            history=[],
            client_ip=client_ip,
            created_at=now,
            updated_at=now,
        )
        self.sessions.create(**_columns(session))
        signals.session_created.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            request_id=session.id,
            widget_id=widget.id,
        )
        run = partial(self._launch, widget=widget, session=session)
        outcome = self.dispatcher.dispatch(LaunchJob(request_id=session.id), run)
        if outcome is not None and outcome.state is State.NO_CHANNELS:
            raise NoAvailableChannelsException()
        return session.id

    def normalise_recipient(self, recipient: str) -> str:
        try:
            return to_e164(recipient, self.settings.default_region)
        except InvalidPhoneNumber as exc:
            raise ValidateError({"recipient": [str(exc)]}) from exc

    # -- channel launches ------------------------------------------------------

    def launch(self, job: LaunchJob) -> SessionRecord:
        """Run a launch job: the entry point for a dispatcher that runs it later."""
        session = self.sessions.get(job.request_id)
        if session is None:
            raise SessionNotFoundException()
        widget = self.find_widget(session.widget_id)
        return self._launch(job, widget=widget, session=session)

    def _launch(
        self, job: LaunchJob, *, widget: Widget | None, session: SessionRecord
    ) -> SessionRecord:
        """Try the widget's channels by priority from ``job.channel_index``.

        A channel without a registered sender is skipped; a sender that raises
        counts as a failed channel and the next one is tried. The first channel
        that accepts the message moves the session to SENT; none moves it to
        NO_CHANNELS. Either way the history records every channel tried.
        """
        channels = widget.channels if widget is not None else ()
        generation = session.generation + 1
        history = list(session.history)
        for index in range(job.channel_index, len(channels)):
            channel = channels[index]
            now = self.clock()
            sender = self.hooks.channel_senders.get(channel.type)
            if sender is None:
                history.append(_attempt(index, channel, now, "skipped", "no sender"))
                continue
            assert widget is not None
            code = None
            if channel.code_type == "code":
                code = generate_code(
                    channel.settings.code_length, beautify=channel.settings.beautify
                )
            message = self._message(session, widget, channel, code, now)
            try:
                sender(message)
            except Exception as exc:  # a sender's failure is data, not a crash
                reason = f"{type(exc).__name__}: {exc}"[:_REASON_LIMIT]
                logger.warning(
                    "sdkauth: channel %s failed for session %s: %s",
                    channel.type,
                    session.id,
                    reason,
                )
                history.append(_attempt(index, channel, now, "failed", reason))
                continue
            history.append(_attempt(index, channel, now, "sent", None))
            code_hash = None
            if code is not None:
                code_hash = hash_code(
                    self.settings.code_secret, session.id, generation, code
                )
            updated = self.sessions.apply(
                session.id,
                Event.CHANNEL_SENT,
                channel_index=index,
                channel=channel.to_dict(),
                generation=generation,
                restarts=job.restarts,
                code_hash=code_hash,
                code_expires_at=message.expires_at,
                remaining_attempts=channel.settings.number_of_tries,
                history=history,
                updated_at=self.clock(),
            )
            if updated is not None:
                signals.message_sent.send(
                    current_app._get_current_object(),  # type: ignore[attr-defined]
                    request_id=session.id,
                    channel=channel.type,
                )
            return updated or self._current(session.id)

        logger.warning(
            "sdkauth: no channel could deliver for session %s (%d tried)",
            session.id,
            len(history) - len(session.history),
        )
        exhausted = self.sessions.apply(
            session.id,
            Event.CHANNELS_EXHAUSTED,
            history=history,
            updated_at=self.clock(),
        )
        return exhausted or self._current(session.id)

    def _message(
        self,
        session: SessionRecord,
        widget: Widget,
        channel: Channel,
        code: str | None,
        now: datetime,
    ) -> Message:
        lifetime = channel.settings.lifetime
        template = (
            self.settings.message_text if code is not None else self.settings.codeless_text
        )
        return Message(
            request_id=session.id,
            widget_id=widget.id,
            recipient=session.recipient,
            channel=channel.type,
            label=channel.label,
            code_type=channel.code_type,
            code=code,
            text=template.format(
                code=code or "", widget=widget.name, minutes=max(1, lifetime // 60)
            ),
            expires_at=now + timedelta(seconds=lifetime),
        )

    def _current(self, request_id: uuid.UUID) -> SessionRecord:
        session = self.sessions.get(request_id)
        if session is None:
            raise SessionNotFoundException()
        return session


def _attempt(
    index: int, channel: Channel, at: datetime, outcome: str, reason: str | None
) -> dict[str, Any]:
    return {
        "index": index,
        "channel": channel.type,
        "outcome": outcome,
        "reason": reason,
        "at": at.isoformat(),
    }


def _columns(session: SessionRecord) -> dict[str, Any]:
    values = {name: getattr(session, name) for name in session.__dataclass_fields__}
    values["state"] = session.state.value
    return values
