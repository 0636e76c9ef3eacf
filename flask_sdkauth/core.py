"""The engine's foundation: its collaborators and the steps every operation shares.

:class:`~flask_sdkauth.engine.Engine` puts it together with the operation mixins
(:mod:`~flask_sdkauth.observing`, :mod:`~flask_sdkauth.confirming`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar, cast

from flask import current_app

from . import signals
from .clock import Clock, utc_now
from .config import Settings
from .dispatcher import Dispatcher, LaunchJob
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
from .guards import Guards
from .hooks import Hooks
from .launch import Launcher
from .notifier import MemoryNotifier, Notifier
from .phones import InvalidPhoneNumber, digits_of, to_e164
from .rules import ANSWERS, Operation
from .states import OPEN_STATES, Event, State
from .store import SessionRecord, SessionStore, WidgetStore
from .widgets import Widget

__all__ = ["Authorize", "EngineCore", "reports_errors"]

#: Called with a session's widget id; raises ``ForbiddenException`` to refuse.
Authorize = Callable[[uuid.UUID], None]

F = TypeVar("F", bound=Callable[..., Any])


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
        try:
            return to_e164(recipient, self.settings.default_region)
        except InvalidPhoneNumber as exc:
            raise ValidateError({"recipient": [str(exc)]}) from exc

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
        return self._run_launch(job, widget=widget, session=session)

    def _dispatch(self, job: LaunchJob, widget: Widget | None, session: SessionRecord) -> None:
        """Launch through the dispatcher; an inline launch that found no channel raises."""
        run = partial(self._run_launch, widget=widget, session=session)
        outcome = self.dispatcher.dispatch(job, run)
        if outcome is not None and outcome.state is State.NO_CHANNELS:
            raise NoAvailableChannelsException()

    def _run_launch(
        self, job: LaunchJob, *, widget: Widget | None, session: SessionRecord
    ) -> SessionRecord:
        return self.launcher.launch(job, widget=widget, session=session) or self._load(
            job.request_id
        )

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
        session = self._load(request_id)
        if authorize is not None:
            authorize(session.widget_id)
        if recipient is not None and not self.same_number(recipient, session):
            raise PhoneNumberMismatchException()
        return self._expire(session)

    def _expire(self, session: SessionRecord) -> SessionRecord:
        """Close a session past its lifetime, fail a channel past its code's lifetime."""
        now = self.clock()
        if session.state in OPEN_STATES and now >= session.expires_at:
            event = Event.SESSION_EXPIRED
        elif (
            session.state is State.SENT
            and session.code_expires_at is not None
            and now >= session.code_expires_at
        ):
            event = Event.CODE_EXPIRED
        else:
            return session
        moved = self.sessions.apply(
            session.id, event, at_generation=session.generation, code_hash=None, updated_at=now
        )
        return moved or self._load(session.id)

    @staticmethod
    def _settle(operation: Operation, session: SessionRecord) -> bool | None:
        """Raise or return the table's answer for this state; ``None`` to go on."""
        answer = ANSWERS[operation].get(session.state)
        if answer is None or isinstance(answer, bool):
            return answer
        raise answer()

