"""The engine's foundation: its collaborators and the steps every operation shares.

:class:`~flask_sdkauth.engine.Engine` puts it together with the operation mixins
(:mod:`~flask_sdkauth.observing`, :mod:`~flask_sdkauth.confirming`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar, cast

from flask import current_app

from . import signals
from .clock import Clock, utc_now
from .config import Settings
from .dispatchers import Dispatcher, LaunchJob
from .errors import (
    ChannelChangedException,
    NoAvailableChannelsException,
    PhoneNumberMismatchException,
    ResendChannelException,
    SdkAuthError,
    SessionNotFoundException,
    ValidateError,
    WidgetNotFoundException,
)
from .events import emit_for
from .guards import Guards
from .history import history_entry
from .hooks import Hooks
from .launch import Launcher
from .notifier import MemoryNotifier, Notifier
from .phones import InvalidPhoneNumber, digits_of, to_e164
from .rules import ANSWERS, Operation
from .states import OPEN_STATES, Event, State
from .store import SessionRecord, SessionStore, WidgetStore
from .widgets import Widget

__all__ = ["Authorize", "EngineCore", "normalised_recipient", "reports_errors"]

#: A fallback event's outcome by the history entry that caused it: the channel was
#: not confirmed in time (fallbackAfter), or the gateway reported it undelivered.
_FALLBACK_OUTCOMES = {"fallback": "fallback_after", "report": "undelivered"}

#: Called with a session's widget id; raises ``ForbiddenException`` to refuse.
Authorize = Callable[[uuid.UUID], None]

F = TypeVar("F", bound=Callable[..., Any])


def normalised_recipient(recipient: str, default_region: str | None) -> str:
    """``recipient`` in E.164 form; ``ValidateError`` if it is no phone number."""
    try:
        return to_e164(recipient, default_region)
    except InvalidPhoneNumber as exc:
        raise ValidateError({"recipient": [str(exc)]}) from exc


def reports_errors(method: F) -> F:
    """Send the error signals (spec §9) for contract errors about a session."""

    @functools.wraps(method)
    def wrapper(self: Any, request_id: uuid.UUID, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, request_id, *args, **kwargs)
        except SdkAuthError as error:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            if isinstance(error, ChannelChangedException):
                signals.channel_changed.send(app, request_id=request_id, error=error)
            elif isinstance(error, ResendChannelException):
                signals.resend_channel.send(app, request_id=request_id, error=error)
            signals.auth_error.send(app, request_id=request_id, error=error)
            raise

    return cast(F, wrapper)


class EngineCore:
    """Stores, hooks, guards and clock of one app, and the shared steps."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: SessionStore,
        widgets: WidgetStore,
        hooks: Hooks,
        dispatcher: Dispatcher,
        guards: Guards,
        notifier: Notifier | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.guards = guards
        self.notifier: Notifier = notifier or MemoryNotifier()
        self.sessions = sessions
        self.widgets = widgets
        self.hooks = hooks
        self.dispatcher = dispatcher
        self.clock = clock
        self.launcher = Launcher(
            settings=settings, sessions=sessions, hooks=hooks, guards=guards, clock=clock
        )

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

    def same_number(self, recipient: str, session: SessionRecord) -> bool:
        """Whether ``recipient``, in any notation, has the digits of the session's
        number (spec gap 15: digits only, so an unencoded ``+`` in a query, read as
        a space, changes nothing)."""
        try:
            return digits_of(recipient) == digits_of(session.recipient)
        except InvalidPhoneNumber as exc:
            raise ValidateError({"recipient": [str(exc)]}) from exc

    def normalise_recipient(self, recipient: str) -> str:
        return normalised_recipient(recipient, self.settings.default_region)

    # -- channel launches ------------------------------------------------------

    def launch(self, job: LaunchJob) -> SessionRecord:
        """Run a launch job: the entry point for a dispatcher that runs it later.

        A job for a session that is no longer waiting for it (already launched,
        closed, relaunched since) sends nothing and returns the session as it is.
        """
        session = self._load(job.request_id)
        if session.state is not State.PENDING or session.generation != job.generation:
            return session
        widget = self.find_widget(session.widget_id)
        return self._run_launch(job, widget=widget, session=session, within_request=False)

    def fall_back_if_due(self, request_id: uuid.UUID, generation: int) -> SessionRecord | None:
        """Move the session to its next channel if launch ``generation`` is still
        unconfirmed past its channel's ``fallbackAfter``: what a dispatcher's
        scheduled fallback calls. ``None`` for an unknown session."""
        session = self.sessions.get(request_id)
        if session is None or session.generation != generation:
            return session
        return self._bring_up_to_date(session, within_request=False)[0]

    def _dispatch(self, job: LaunchJob, widget: Widget | None, session: SessionRecord) -> None:
        """Launch through the dispatcher for a client who waits (send, resend); an
        inline launch that found no channel raises."""
        outcome = self._launch_now(job, widget, session, within_request=True)
        if outcome is not None and outcome.state is State.NO_CHANNELS:
            raise NoAvailableChannelsException()

    def _launch_now(
        self,
        job: LaunchJob,
        widget: Widget | None,
        session: SessionRecord,
        *,
        within_request: bool,
    ) -> SessionRecord | None:
        """Hand the job to the dispatcher: the session as launched, or ``None`` if
        the job was queued. ``within_request``: someone waits for an inline launch,
        so its retries must fit in the sender timeout."""
        run = partial(
            self._run_launch, widget=widget, session=session, within_request=within_request
        )
        return self.dispatcher.dispatch(job, run)

    def _run_launch(
        self,
        job: LaunchJob,
        *,
        widget: Widget | None,
        session: SessionRecord,
        within_request: bool,
    ) -> SessionRecord:
        launched = self.launcher.launch(
            job, widget=widget, session=session, within_request=within_request
        )
        if launched is None:
            return self._load(job.request_id)
        due = self._fallback_due_at(launched, widget)
        if due is not None:
            delay = max(0.0, (due - self.clock()).total_seconds())
            self.dispatcher.schedule_fallback(launched.id, launched.generation, delay)
        return launched

    def _launch_overdue(self, session: SessionRecord) -> bool:
        """Whether ``session`` has waited in PENDING past ``SDKAUTH_LAUNCH_DEADLINE``
        (its launch was lost: resend may start it again at once)."""
        deadline = session.updated_at + timedelta(seconds=self.settings.launch_deadline)
        return session.state is State.PENDING and self.clock() >= deadline

    # -- fallback to the next channel -------------------------------------------

    def _fallback_due_at(self, session: SessionRecord, widget: Widget | None) -> datetime | None:
        """When the sent channel's ``fallbackAfter`` moves the session on, or ``None``
        (off, not sent, or no later channel that has a sender)."""
        if session.state is not State.SENT or session.channel is None:
            return None
        after = session.channel["settings"].get("fallbackAfter")
        if after is None or session.launched_at is None:
            return None
        if self._next_channel(session, widget) is None:
            return None
        return session.launched_at + timedelta(seconds=after)

    def _next_channel(self, session: SessionRecord, widget: Widget | None) -> int | None:
        """The position of the widget's next channel after the current one that has
        a sender, if any."""
        if widget is None or session.channel_index is None:
            return None
        senders = self.hooks.channel_senders
        for index in range(session.channel_index + 1, len(widget.channels)):
            if widget.channels[index].type in senders:
                return index
        return None

    def _fall_back(
        self,
        session: SessionRecord,
        widget: Widget | None,
        entry: dict[str, Any],
        *,
        within_request: bool = True,
    ) -> SessionRecord | None:
        """Leave the sent channel for the next one, recording ``entry``; on the last
        channel, fail it (CHANNEL_FAILED: the client may resend). ``None`` if the
        session had moved on meanwhile."""
        now = self.clock()
        index = self._next_channel(session, widget)
        if index is None:
            return self.sessions.apply(
                session.id,
                Event.DELIVERY_FAILED,
                at_generation=session.generation,
                history=[entry],
                code_hash=None,
                updated_at=now,
            )
        moved = self.sessions.apply(
            session.id,
            Event.FELL_BACK,
            at_generation=session.generation,
            history=[entry],
            generation=session.generation + 1,
            launch_index=index,
            restarts=0,
            launched_at=now,  # the next channel's cooldown runs from here
            code_hash=None,
            payload={},
            updated_at=now,
        )
        if moved is None:
            return None
        assert widget is not None  # a next channel was found in it
        emit_for(
            session,
            "fallback",
            _FALLBACK_OUTCOMES[entry["outcome"]],
            channel=entry["channel"],
            to_channel=widget.channels[index].type,
            reason=entry["reason"],
        )
        job = LaunchJob(session.id, index, generation=moved.generation, fallback=True)
        return self._launch_now(job, widget, moved, within_request=within_request) or moved

    # -- steps shared by the operations -----------------------------------------

    def _load(self, request_id: uuid.UUID) -> SessionRecord:
        session = self.sessions.get(request_id)
        if session is None:
            raise SessionNotFoundException()
        return session

    def _open(
        self,
        request_id: uuid.UUID,
        authorize: Authorize | None,
        *,
        recipient: str | None = None,
    ) -> SessionRecord:
        """Load a session and bring it up to date, in the spec's precedence order:
        404, then the token's scope, then the recipient, then time-outs."""
        return self._open_launch(request_id, authorize, recipient=recipient)[0]

    def _open_launch(
        self,
        request_id: uuid.UUID,
        authorize: Authorize | None,
        *,
        recipient: str | None = None,
    ) -> tuple[SessionRecord, bool]:
        """:meth:`_open`, and whether bringing the session up to date started a
        new launch (``fallbackAfter``): an operation about the launch the client
        saw must not act on the new one."""
        session = self._load(request_id)
        if authorize is not None:
            authorize(session.widget_id)
        if recipient is not None and not self.same_number(recipient, session):
            raise PhoneNumberMismatchException()
        return self._bring_up_to_date(session, within_request=True)

    def _bring_up_to_date(
        self, session: SessionRecord, *, within_request: bool
    ) -> tuple[SessionRecord, bool]:
        """Bring a session up to date with the clock: close it past its lifetime,
        move a sent channel past its ``fallbackAfter`` to the next channel, fail a
        channel past its code's lifetime. Also whether this call started the next
        channel's launch."""
        now = self.clock()
        if session.state in OPEN_STATES and now >= session.expires_at:
            return self._time_out(session, Event.SESSION_EXPIRED, now), False
        if session.state is not State.SENT:
            return session, False
        if session.channel is not None and "fallbackAfter" in session.channel["settings"]:
            moved = self._fall_back_if_due(session, now, within_request=within_request)
            if moved is not None:
                return moved, True
        if session.code_expires_at is not None and now >= session.code_expires_at:
            return self._time_out(session, Event.CODE_EXPIRED, now), False
        return session, False

    def _time_out(self, session: SessionRecord, event: Event, now: datetime) -> SessionRecord:
        moved = self.sessions.apply(
            session.id, event, at_generation=session.generation, code_hash=None, updated_at=now
        )
        return moved or self._load(session.id)

    def _fall_back_if_due(
        self, session: SessionRecord, now: datetime, *, within_request: bool
    ) -> SessionRecord | None:
        """The session after the time-driven fallback this call made, or ``None``
        if none was due (or someone else moved the session first)."""
        after = session.channel["settings"]["fallbackAfter"]  # type: ignore[index]
        if session.launched_at is None or now < session.launched_at + timedelta(seconds=after):
            return None  # the common case, settled without loading the widget
        widget = self.find_widget(session.widget_id)
        if self._fallback_due_at(session, widget) is None:
            return None
        entry = history_entry(
            session.channel_index,
            session.channel["type"],  # type: ignore[index]
            now,
            "fallback",
            f"not confirmed within {after} s",
        )
        return self._fall_back(session, widget, entry, within_request=within_request)

    @staticmethod
    def _settle(operation: Operation, session: SessionRecord) -> bool | None:
        """Raise or return the table's answer for this state; ``None`` to go on."""
        answer = ANSWERS[operation].get(session.state)
        if answer is None or isinstance(answer, bool):
            return answer
        raise answer()

