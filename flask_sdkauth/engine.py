"""The authentication engine: plain Python over the stores, no HTTP.

It owns the rules: which widget may start a session, how a session moves through the
state machine of spec §7 (:mod:`~flask_sdkauth.states`), what each operation answers
in each state (:mod:`~flask_sdkauth.rules`), and how codes are checked. Views
translate HTTP to these calls; :class:`~flask_sdkauth.SdkAuth` exposes some of them
to the host's backend.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from functools import partial
from typing import Any, NoReturn, TypeVar, cast

from flask import current_app

from . import signals
from .clock import Clock, utc_now
from .codes import code_matches
from .config import Settings
from .dispatcher import Dispatcher, LaunchJob
from .errors import (
    AttemptsExpiredException,
    ChannelChangedException,
    ForbiddenException,
    InvalidCodeException,
    IsCodelessChannelException,
    LongPollingTimeoutException,
    NoAvailableChannelsException,
    PhoneNumberMismatchException,
    ResendChannelException,
    RestartCooldownActiveException,
    SdkAuthError,
    SessionNotFoundException,
    ValidateError,
    WidgetIsBlockedException,
    WidgetNotFoundException,
)
from .hooks import Hooks
from .guards import Guards
from .launch import Launcher
from .notifier import MemoryNotifier, Notifier, Subscription
from .phones import InvalidPhoneNumber, describe, to_e164
from .rules import ANSWERS, Operation
from .states import OPEN_STATES, Event, State
from .store import SessionRecord, SessionStore, WidgetStore
from .widgets import ChannelSettings, Widget

__all__ = ["Authorize", "ChannelView", "Clock", "Engine", "WidgetInfo", "utc_now"]

#: Called with a session's widget id; raises ``ForbiddenException`` to refuse.
Authorize = Callable[[uuid.UUID], None]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ChannelView:
    """What getChannel shows of a session's current channel (spec §4.3)."""

    type: str
    status: str
    label: str
    code_type: str
    payload: dict[str, Any]
    settings: dict[str, Any]
    remaining_code_attempts: int


@dataclass(frozen=True)
class WidgetInfo:
    """What getWidget shows of a widget (spec §4.1)."""

    name: str
    is_active: bool
    is_blocked: bool
    captcha_is_required: bool = False
    captcha_provider: str | None = None


def _reports_errors(method: F) -> F:
    """Send the error signals (spec §9) for contract errors about a session."""

    @functools.wraps(method)
    def wrapper(self: Engine, request_id: uuid.UUID, *args: Any, **kwargs: Any) -> Any:
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

    def widget_info(self, widget_id: uuid.UUID, client_ip: str | None = None) -> WidgetInfo:
        """getWidget: a blocked or inactive widget is reported, not refused (gap 17),
        with whether the next send from ``client_ip`` needs a captcha."""
        widget = self.load_widget(widget_id)
        return WidgetInfo(
            name=widget.name,
            is_active=widget.is_active,
            is_blocked=widget.is_blocked,
            captcha_is_required=self.guards.captcha_required(client_ip),
            captcha_provider=self.guards.captcha_provider,
        )

    # -- send ------------------------------------------------------------------

    def send(
        self,
        widget_id: uuid.UUID,
        recipient: str,
        *,
        client_ip: str | None = None,
        captcha_token: str | None = None,
    ) -> uuid.UUID:
        """Start a session and launch the widget's first deliverable channel.

        :returns: the new session's request id.
        :raises ValidateError: ``recipient`` is not a valid phone number.
        :raises RateLimitException: too many sends for this IP, widget or number,
            or the widget's or the country's daily cap is reached.
        :raises CaptchaNotConfirmedException: a captcha was required and the
            token is missing or refused.
        :raises WidgetNotFoundException: no such widget.
        :raises WidgetIsBlockedException: the widget, or the recipient, is blocked.
        :raises ForbiddenException: the widget is inactive (spec gap 17).
        :raises NoAvailableChannelsException: the number's region is not allowed,
            or no channel could deliver; in the second case the session is still
            stored, with the reason of every failure in its history.
        """
        recipient = self.normalise_recipient(recipient)
        self.guards.before_send(widget_id, recipient, client_ip, captcha_token)
        widget = self.load_widget(widget_id)
        if widget.is_blocked:
            raise WidgetIsBlockedException()
        if not widget.is_active:
            raise ForbiddenException()
        blocklist = self.hooks.recipient_in_blocklist_loader
        if blocklist is not None and blocklist(recipient, widget):
            raise WidgetIsBlockedException()
        self.guards.admit(widget, describe(recipient))

        now = self.clock()
        first = widget.channels[0] if widget.channels else None
        session = SessionRecord(
            id=uuid.uuid4(),
            widget_id=widget.id,
            recipient=recipient,
            state=State.PENDING,
            channel_index=0 if first else None,
            channel=first.to_dict() if first else None,
            payload={},
            generation=1,
            seen_generation=0,
            seen_snapshot=None,
            restarts=0,
            launched_at=None,
            code_hash=None,
            code_expires_at=None,
            remaining_attempts=first.settings.number_of_tries if first else 0,
            history=[],
            client_ip=client_ip,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(seconds=self.settings.session_lifetime),
        )
        self.sessions.create(**_columns(session))
        signals.session_created.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            request_id=session.id,
            widget_id=widget.id,
        )
        job = LaunchJob(request_id=session.id, generation=session.generation)
        self._dispatch(job, widget, session)
        return session.id

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

    # -- session operations ----------------------------------------------------

    @_reports_errors
    def get_channel(
        self, request_id: uuid.UUID, *, authorize: Authorize | None = None
    ) -> ChannelView:
        """The current channel (getChannel); remembers that the client has seen it."""
        session = self._open(request_id, authorize)
        view, snapshot = self._channel_snapshot(session)
        if snapshot != session.seen_snapshot:
            self.sessions.mark_seen(request_id, session.generation, snapshot)
        return view

    @_reports_errors
    def wait_for_channel(
        self, request_id: uuid.UUID, *, authorize: Authorize | None = None
    ) -> ChannelView:
        """getChannelLongPolling: the channel as soon as it differs from the snapshot
        the client was last given (at once if it already does).

        :raises LongPollingTimeoutException: nothing changed within
            ``SDKAUTH_LONG_POLLING_TIMEOUT`` seconds.
        """
        deadline = time.monotonic() + self.settings.long_polling_timeout
        with self.notifier.listen(request_id) as changes:
            while True:
                session = self._open(request_id, authorize)
                view, snapshot = self._channel_snapshot(session)
                if snapshot != session.seen_snapshot:
                    self.sessions.mark_seen(request_id, session.generation, snapshot)
                    return view
                self._wait(changes, deadline)

    @_reports_errors
    def get_status(
        self,
        request_id: uuid.UUID,
        recipient: str,
        *,
        authorize: Authorize | None = None,
    ) -> bool:
        """Whether the session is confirmed (getStatus)."""
        session = self._open(request_id, authorize, recipient=recipient)
        status = self._status(session)
        return False if status is None else status

    @_reports_errors
    def wait_for_status(
        self,
        request_id: uuid.UUID,
        recipient: str,
        *,
        authorize: Authorize | None = None,
    ) -> bool:
        """getStatusLongPolling: answers once the session is confirmed, fails, ends,
        or its channel changes; waits while it is merely pending or sent.

        :raises LongPollingTimeoutException: nothing happened within
            ``SDKAUTH_LONG_POLLING_TIMEOUT`` seconds.
        """
        deadline = time.monotonic() + self.settings.long_polling_timeout
        with self.notifier.listen(request_id) as changes:
            while True:
                session = self._open(request_id, authorize, recipient=recipient)
                status = self._status(session)
                if status is not None:
                    return status
                self._wait(changes, deadline)

    @_reports_errors
    def check_code(
        self,
        request_id: uuid.UUID,
        code: str,
        *,
        authorize: Authorize | None = None,
        client_ip: str | None = None,
    ) -> bool:
        """Check a code the user typed (checkCode); ``True`` confirms the session."""
        self.guards.before_check_code(request_id, client_ip)
        session = self._open(request_id, authorize)
        self._settle(Operation.CHECK_CODE, session)
        if session.channel is not None and session.channel["codeType"] == "codeless":
            raise IsCodelessChannelException()
        if session.state is not State.SENT:
            raise InvalidCodeException()  # nothing was sent yet; no attempt is used
        self.guards.before_code_comparison(session.recipient)
        if self._secret_matches(session, code):
            return self._confirm(session)
        self._wrong_attempt(session)

    @_reports_errors
    def confirm(self, request_id: uuid.UUID, token: str, number: str | None = None) -> bool:
        """Confirm a codeless channel with the token its message carried.

        With number matching (``SDKAUTH_NUMBER_MATCHING``) ``number`` must be the
        one the widget shows; a wrong number ends the session
        (``AttemptsExpiredException``), since whoever approved is not looking at
        that widget. A wrong token uses up one attempt, like a wrong code.
        """
        session = self._open(request_id, None)
        self._settle(Operation.CONFIRM, session)
        if session.channel is None or session.channel["codeType"] != "codeless":
            raise InvalidCodeException()
        if session.state is not State.SENT:
            raise InvalidCodeException()
        self.guards.before_code_comparison(session.recipient)
        if not self._secret_matches(session, token):
            self._wrong_attempt(session)
        expected = session.payload.get("matchNumber")
        if expected is not None and number != expected:
            if self.sessions.apply(
                request_id,
                Event.ATTEMPTS_EXHAUSTED,
                at_generation=session.generation,
                remaining_attempts=0,
                code_hash=None,
                updated_at=self.clock(),
            ):
                raise AttemptsExpiredException()
            self._settle(Operation.CONFIRM, self._load(request_id))
            raise InvalidCodeException()
        return self._confirm(session)

    @_reports_errors
    def resend(
        self,
        request_id: uuid.UUID,
        *,
        authorize: Authorize | None = None,
        client_ip: str | None = None,
    ) -> bool:
        """Relaunch the current channel, or the next one once its restarts are used up."""
        self.guards.before_resend(request_id, client_ip)
        session = self._open(request_id, authorize)
        self._settle(Operation.RESEND, session)
        if session.channel is None:
            raise RestartCooldownActiveException()  # the first launch has not run yet
        settings = ChannelSettings.from_mapping(session.channel["settings"])
        if session.state is not State.CHANNEL_FAILED:
            started = session.launched_at or session.created_at
            if self.clock() < started + timedelta(seconds=settings.restart_cooldown):
                raise RestartCooldownActiveException()
        # The restart claims the next generation, so of two concurrent resends only
        # one gets past this statement, and jobs made before it become stale.
        restarted = self.sessions.apply(
            request_id,
            Event.RESTARTED,
            at_generation=session.generation,
            generation=session.generation + 1,
            launched_at=self.clock(),  # the cooldown runs from the restart
            code_hash=None,
            payload={},
            updated_at=self.clock(),
        )
        if restarted is None:
            raise RestartCooldownActiveException()  # a concurrent resend was first
        index = session.channel_index or 0
        if session.restarts < settings.number_of_restart:
            job = LaunchJob(
                request_id,
                channel_index=index,
                restarts=session.restarts + 1,
                generation=restarted.generation,
            )
        else:
            job = LaunchJob(request_id, channel_index=index + 1, generation=restarted.generation)
        self._dispatch(job, self.find_widget(session.widget_id), restarted)
        return True

    @_reports_errors
    def complete(self, request_id: uuid.UUID, *, authorize: Authorize | None = None) -> bool:
        """Complete a confirmed session (complete): ``True`` exactly once."""
        session = self._open(request_id, authorize)
        settled = self._settle(Operation.COMPLETE, session)
        return settled if settled is not None else self._complete(session)

    @_reports_errors
    def check_status_and_complete(
        self,
        request_id: uuid.UUID,
        recipient: str,
        *,
        authorize: Authorize | None = None,
    ) -> bool:
        """The backend's final check: ``True`` exactly once, for a confirmed session
        bound to ``recipient``; then always ``False``."""
        session = self._open(request_id, authorize, recipient=recipient)
        settled = self._settle(Operation.CHECK_STATUS_AND_COMPLETE, session)
        return settled if settled is not None else self._complete(session)

    def purge(self, older_than: timedelta | None = None) -> int:
        """Delete sessions created more than ``older_than`` (default
        ``SDKAUTH_RETENTION``) ago; return how many were deleted.

        A session that can still be confirmed or completed is kept until its
        lifetime is over, whatever ``older_than`` says.
        """
        if older_than is None:
            older_than = timedelta(seconds=self.settings.retention)
        now = self.clock()
        return self.sessions.delete_ended(created_before=now - older_than, now=now)

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
        if recipient is not None and self.normalise_recipient(recipient) != session.recipient:
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

    def _channel_snapshot(self, session: SessionRecord) -> tuple[ChannelView, str]:
        """The channel as getChannel shows it, and a digest of that snapshot."""
        self._settle(Operation.GET_CHANNEL, session)
        if session.channel is None:
            raise NoAvailableChannelsException()
        channel = session.channel
        view = ChannelView(
            type=channel["type"],
            status=session.status,
            label=channel["label"],
            code_type=channel["codeType"],
            payload=session.payload,
            settings=channel["settings"],
            remaining_code_attempts=session.remaining_attempts,
        )
        content = json.dumps([session.generation, asdict(view)], sort_keys=True)
        return view, hashlib.sha256(content.encode()).hexdigest()[:32]

    def _status(self, session: SessionRecord) -> bool | None:
        """getStatus's answer, or ``None`` while there is nothing to report yet."""
        settled = self._settle(Operation.GET_STATUS, session)
        if settled is not None:
            return settled
        if session.generation != session.seen_generation:
            raise ChannelChangedException()
        return None

    def _wait(self, changes: Subscription, deadline: float) -> None:
        """Sleep until a change, the next poll, or the deadline (then 408)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LongPollingTimeoutException()
        changes.wait(min(remaining, self.settings.long_polling_interval))

    @staticmethod
    def _settle(operation: Operation, session: SessionRecord) -> bool | None:
        """Raise or return the table's answer for this state; ``None`` to go on."""
        answer = ANSWERS[operation].get(session.state)
        if answer is None or isinstance(answer, bool):
            return answer
        raise answer()

    def _secret_matches(self, session: SessionRecord, secret: str) -> bool:
        if session.code_hash is None:
            return False
        return code_matches(
            self.settings.code_secret, session.id, session.generation, secret, session.code_hash
        )

    def _confirm(self, session: SessionRecord) -> bool:
        now = self.clock()
        confirmed = self.sessions.apply(
            session.id,
            Event.CONFIRMED,
            at_generation=session.generation,
            code_hash=None,  # single use
            confirmed_at=now,
            updated_at=now,
        )
        if confirmed is None:
            # Someone else moved the session first (the same code twice at once).
            self._settle(Operation.CHECK_CODE, self._load(session.id))
            raise InvalidCodeException()
        signals.success_confirmation.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            request_id=session.id,
        )
        return True

    def _wrong_attempt(self, session: SessionRecord) -> NoReturn:
        """Use up one attempt and raise; the last one ends the session.

        The failure also counts against the number's cap on wrong codes, which
        spans all its sessions."""
        self.guards.code_failed(session.recipient)
        remaining = self.sessions.columns.remaining_attempts
        now = self.clock()
        if self.sessions.apply(
            session.id,
            Event.WRONG_ATTEMPT,
            at_generation=session.generation,
            where=[remaining > 1],
            remaining_attempts=remaining - 1,
            updated_at=now,
        ):
            raise InvalidCodeException()
        if self.sessions.apply(
            session.id,
            Event.ATTEMPTS_EXHAUSTED,
            at_generation=session.generation,
            remaining_attempts=0,
            code_hash=None,
            updated_at=now,
        ):
            raise AttemptsExpiredException()
        self._settle(Operation.CHECK_CODE, self._load(session.id))
        raise InvalidCodeException()

    def _complete(self, session: SessionRecord) -> bool:
        now = self.clock()
        completed = self.sessions.apply(
            session.id, Event.COMPLETED, completed_at=now, updated_at=now
        )
        return completed is not None


def _columns(session: SessionRecord) -> dict[str, Any]:
    values = {name: getattr(session, name) for name in session.__dataclass_fields__}
    values["state"] = session.state.value
    return values

