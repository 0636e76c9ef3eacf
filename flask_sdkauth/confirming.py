"""The operations that move a session to its end: checkCode, confirm, resend,
complete and checkStatusAndComplete."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from flask import current_app

from . import signals
from .codes import code_matches
from .core import Authorize, EngineCore, reports_errors
from .dispatchers import LaunchJob
from .errors import (
    AttemptsExpiredException,
    InvalidCodeException,
    IsCodelessChannelException,
    RateLimitException,
    ResendChannelException,
    RestartCooldownActiveException,
    SdkAuthError,
)
from .events import AuthEvent, EventKind, emit, emit_for
from .rules import Operation
from .states import Event, State
from .store import SessionRecord
from .widgets import ChannelSettings

__all__ = ["ConfirmingMixin"]


class ConfirmingMixin(EngineCore):
    """Code checks, codeless confirmation, restarts and completion."""

    @reports_errors
    def check_code(
        self,
        request_id: uuid.UUID,
        code: str,
        *,
        authorize: Authorize | None = None,
        client_ip: str | None = None,
    ) -> bool:
        """Check a code the user typed (checkCode); ``True`` confirms the session."""
        with self._observed("check", request_id, client_ip) as check:
            self.guards.limit_client("check_code", client_ip)
            session, relaunched = self._open_launch(request_id, authorize)
            check.session = session
            codeless = session.channel is not None and session.channel["codeType"] == "codeless"
            # Nothing was sent yet, or the code was typed for the channel the engine
            # has just left: nothing is compared and no attempt of the new launch is
            # used. Otherwise the number's code check is counted with the session's.
            compares = session.state is State.SENT and not relaunched and not codeless
            self.guards.limit_session(
                "check_code", request_id, code_check_of=session.recipient if compares else None
            )
            self._settle(Operation.CHECK_CODE, session)
            if codeless:
                raise IsCodelessChannelException()
            if not compares:
                raise InvalidCodeException()
            session = self._take_attempt(session, Operation.CHECK_CODE)
            if self._secret_matches(session, code):
                return self._confirm(session)
            self._wrong_attempt(session, Operation.CHECK_CODE)

    @reports_errors
    def confirm(self, request_id: uuid.UUID, token: str, number: str | None = None) -> bool:
        """Confirm a codeless channel with the token its message carried.

        With number matching (``SDKAUTH_NUMBER_MATCHING``) ``number`` must be the
        one the widget shows; a wrong number ends the session
        (``AttemptsExpiredException``), since whoever approved is not looking at
        that widget. A wrong token uses up one attempt, like a wrong code.
        """
        with self._observed("confirmation", request_id, None) as check:
            session, relaunched = self._open_launch(request_id, None)
            check.session = session
            self._settle(Operation.CONFIRM, session)
            if session.channel is None or session.channel["codeType"] != "codeless":
                raise InvalidCodeException()
            if session.state is not State.SENT or relaunched:
                raise InvalidCodeException()
            self.guards.limit_code_checks(session.recipient)
            session = self._take_attempt(session, Operation.CONFIRM)
            if not self._secret_matches(session, token):
                self._wrong_attempt(session, Operation.CONFIRM)
            expected = session.payload.get("matchNumber")
            if expected is not None and number != expected:
                check.reason = "another number picked"
                self._end_attempts(session, Operation.CONFIRM)
            return self._confirm(session)

    @reports_errors
    def resend(
        self,
        request_id: uuid.UUID,
        *,
        authorize: Authorize | None = None,
        client_ip: str | None = None,
    ) -> bool:
        """Relaunch the current channel, or the next one once its restarts are used up."""
        self.guards.limit_client("resend", client_ip)
        session, relaunched = self._open_launch(request_id, authorize)
        self.guards.limit_session("resend", request_id)
        self._settle(Operation.RESEND, session)
        if relaunched:
            return True  # fallbackAfter has just launched the next channel
        if session.channel is None:
            raise RestartCooldownActiveException()  # the first launch has not run yet
        settings = ChannelSettings.from_mapping(session.channel["settings"])
        if session.state is not State.CHANNEL_FAILED and not self._launch_overdue(session):
            started = session.launched_at or session.created_at
            if self.clock() < started + timedelta(seconds=settings.restart_cooldown):
                raise RestartCooldownActiveException()
        # While pending, the launch waiting to run (after a fallback, the next
        # channel) is the one to restart, not the channel last sent.
        pending = session.state is State.PENDING and session.launch_index is not None
        index = (session.launch_index if pending else session.channel_index) or 0
        if session.restarts < settings.number_of_restart:
            index, restarts = index, session.restarts + 1
        else:
            index, restarts = index + 1, 0
        # The restart claims the next generation, so of two concurrent resends only
        # one gets past this statement, and jobs made before it become stale.
        restarted = self.sessions.apply(
            request_id,
            Event.RESTARTED,
            at_generation=session.generation,
            generation=session.generation + 1,
            launch_index=index,
            restarts=restarts,
            launched_at=self.clock(),  # the cooldown runs from the restart
            code_hash=None,
            payload={},
            updated_at=self.clock(),
        )
        if restarted is None:
            raise RestartCooldownActiveException()  # a concurrent resend was first
        job = LaunchJob(
            request_id, channel_index=index, restarts=restarts, generation=restarted.generation
        )
        self._dispatch(job, self.find_widget(session.widget_id), restarted)
        return True

    @reports_errors
    def complete(self, request_id: uuid.UUID, *, authorize: Authorize | None = None) -> bool:
        """Complete a confirmed session (complete): ``True`` exactly once."""
        session = self._open(request_id, authorize)
        settled = self._settle(Operation.COMPLETE, session)
        return settled if settled is not None else self._complete(session)

    @reports_errors
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

    def verified_number(self, request_id: uuid.UUID) -> str | None:
        """The E.164 number a confirmed or completed session proved; ``None`` for
        any other state and for an unknown session."""
        session = self.sessions.get(request_id)
        if session is None:
            return None
        session = self._bring_up_to_date(session, within_request=True)[0]
        if session.state in (State.CONFIRMED, State.COMPLETED):
            return session.recipient
        return None

    @contextmanager
    def _observed(
        self, kind: EventKind, request_id: uuid.UUID, client_ip: str | None
    ) -> Iterator[_Check]:
        """Emit the outcome of the code check or confirmation run in the block."""
        check = _Check()
        try:
            yield check
        except SdkAuthError as error:
            outcome = _CHECK_OUTCOMES.get(type(error), "refused")
            self._emit_check(kind, request_id, client_ip, check, outcome, error.type)
            raise
        else:
            self._emit_check(kind, request_id, client_ip, check, "right", None)

    def _emit_check(
        self,
        kind: EventKind,
        request_id: uuid.UUID,
        client_ip: str | None,
        check: _Check,
        outcome: str,
        error_type: str | None,
    ) -> None:
        session = check.session
        if session is None:  # refused before the session was read
            emit(AuthEvent(kind, outcome, request_id=request_id, client_ip=client_ip,
                           reason=error_type))
            return
        seconds = None
        if outcome == "right" and session.launched_at is not None:
            seconds = (self.clock() - session.launched_at).total_seconds()
        emit_for(
            session, kind, outcome, client_ip=client_ip,
            channel=session.channel_type,
            reason=check.reason or error_type, seconds=seconds,
        )

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

    def _take_attempt(self, session: SessionRecord, operation: Operation) -> SessionRecord:
        """Take one attempt of this launch before any comparison, in one statement.

        Only a request that got an attempt compares, so whatever the interleaving
        a launch sees at most ``numberOfTries`` comparisons. The caller has taken
        one of the number's code checks across its sessions first (429 when it is
        used up).
        """
        taken = self.sessions.take_attempt(session.id, session.generation, self.clock())
        if taken is not None:
            return taken
        # Someone else moved the session on, or holds its last attempts.
        current = self._load(session.id)
        self._settle(operation, current)
        if current.state is State.SENT and current.generation == session.generation:
            raise AttemptsExpiredException()
        raise InvalidCodeException()  # the session was relaunched since

    def _wrong_attempt(self, session: SessionRecord, operation: Operation) -> NoReturn:
        """Raise for a wrong code on the attempt ``session`` was taken with; the last
        attempt ends the session."""
        if session.remaining_attempts > 0:
            self.notifier.publish(session.id)  # long polls show the attempts left
            raise InvalidCodeException()
        self._end_attempts(session, operation)

    def _end_attempts(self, session: SessionRecord, operation: Operation) -> NoReturn:
        """Move the session to ``attempts_expired`` and raise; if someone else moved
        it first, raise what its new state answers (or ``InvalidCodeException``)."""
        if self.sessions.apply(
            session.id,
            Event.ATTEMPTS_EXHAUSTED,
            at_generation=session.generation,
            remaining_attempts=0,
            code_hash=None,
            updated_at=self.clock(),
        ):
            raise AttemptsExpiredException()
        self._settle(operation, self._load(session.id))
        raise InvalidCodeException()

    def _complete(self, session: SessionRecord) -> bool:
        now = self.clock()
        completed = self.sessions.apply(
            session.id, Event.COMPLETED, completed_at=now, updated_at=now
        )
        if completed is None:
            return False
        emit_for(completed, "completion", "completed", channel=completed.channel_type)
        return True


@dataclass
class _Check:
    """What a code check or confirmation learnt, for its event."""

    session: SessionRecord | None = None
    reason: str | None = None


#: A check's outcome by the error it ended with (others: ``refused``).
_CHECK_OUTCOMES: dict[type[SdkAuthError], str] = {
    InvalidCodeException: "wrong",
    AttemptsExpiredException: "attempts_expired",
    ResendChannelException: "expired",
    RateLimitException: "rate_limited",
}


