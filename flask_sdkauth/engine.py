"""The authentication engine: plain Python over the stores, no HTTP.

It owns the rules: which widget may start a session, how a session moves through the
state machine of spec §7 (:mod:`~flask_sdkauth.states`), what each operation answers
in each state (:mod:`~flask_sdkauth.rules`), and how codes are checked. Views
translate HTTP to these calls; :class:`~flask_sdkauth.SdkAuth` exposes some of them
to the host's backend. The operations live in short mixin modules:
:mod:`~flask_sdkauth.core` (shared steps), :mod:`~flask_sdkauth.observing`,
:mod:`~flask_sdkauth.confirming` and :mod:`~flask_sdkauth.delivering`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

from flask import current_app

from . import signals
from .clock import Clock, utc_now
from .confirming import ConfirmingMixin
from .core import Authorize
from .delivering import DeliveringMixin
from .dispatchers import InlineDispatcher, LaunchJob
from .errors import (
    ForbiddenException,
    NoAvailableChannelsException,
    NoConnectionException,
    WidgetIsBlockedException,
)
from .events import AuthEvent, emit
from .observing import ChannelView, ObservingMixin
from .phones import describe
from .states import Event, State
from .store import SessionRecord, UnstoredSession
from .widgets import Widget

__all__ = ["Authorize", "ChannelView", "Clock", "Engine", "WidgetInfo", "utc_now"]


@dataclass(frozen=True)
class WidgetInfo:
    """What getWidget shows of a widget (spec §4.1)."""

    name: str
    is_active: bool
    is_blocked: bool
    captcha_is_required: bool = False
    captcha_provider: str | None = None


class Engine(ObservingMixin, ConfirmingMixin, DeliveringMixin):
    """The rules of one app, built by ``SdkAuth.init_app`` from its settings."""

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
        locale: str | None = None,
    ) -> uuid.UUID:
        """Start a session and launch the widget's first deliverable channel.

        :param locale: the language of the session's messages, one of
            ``SDKAUTH_LOCALES`` (default: ``SDKAUTH_DEFAULT_LOCALE``).
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
        if locale is not None and locale not in self.settings.locales:
            raise ValueError(f"locale must be one of SDKAUTH_LOCALES, got {locale!r}")
        recipient = self.normalise_recipient(recipient)
        self.guards.before_send(widget_id, recipient, client_ip, captcha_token)
        widget = self.load_widget(widget_id)
        refusal = AuthEvent(
            "send", "blocked", widget_id=widget.id, recipient=recipient, client_ip=client_ip
        )
        if widget.is_blocked:
            emit(replace(refusal, reason="widget blocked"))
            raise WidgetIsBlockedException()
        if not widget.is_active:
            emit(replace(refusal, reason="widget inactive"))
            raise ForbiddenException()
        blocklist = self.hooks.recipient_in_blocklist_loader
        if blocklist is not None and blocklist(recipient, widget):
            emit(replace(refusal, reason="recipient blocked"))
            raise WidgetIsBlockedException()
        self.guards.admit(widget, describe(recipient), recipient, client_ip)

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
            launch_index=0 if first else None,
            code_hash=None,
            code_expires_at=None,
            remaining_attempts=first.settings.number_of_tries if first else 0,
            history=[],
            client_ip=client_ip,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(seconds=self.settings.session_lifetime),
            locale=locale or self.settings.default_locale,
        )
        job = LaunchJob(request_id=session.id, generation=session.generation)
        started = replace(refusal, outcome="started", request_id=session.id)
        # Only the built-in inline dispatcher is known to run the launch at once;
        # any other (a subclass too) may defer it, and needs the row first.
        inline = type(self.dispatcher) is InlineDispatcher
        unstored = inline and not self.sessions.known_unreachable
        try:
            if unstored:
                self._launch_unstored(job, widget, session)
            else:
                # Queued (or the database is down: fail before any message goes
                # out), the session is stored first and its launch updates it.
                self.sessions.insert(session)
                self._announce_created(session)
                self._dispatch(job, widget, session)
        except NoAvailableChannelsException:
            emit(replace(started, outcome="no_channels", reason="no channel could deliver"))
            raise
        except NoConnectionException:
            # The client gets no requestId. Unstored, nothing was written; otherwise
            # the launch could not be queued: close the session rather than let the
            # sweep send to it later.
            if not unstored:
                self.sessions.apply(
                    session.id, Event.LAUNCH_LOST, at_generation=session.generation,
                    updated_at=self.clock(),
                )
            raise
        emit(started)
        return session.id

    def _launch_unstored(self, job: LaunchJob, widget: Widget, session: SessionRecord) -> None:
        """Launch inline before the session is written, then write it once: in the
        state the launch left it (spec §7), with its history and code hash.

        :raises NoAvailableChannelsException: no channel could deliver (the session
            is stored, with every failure in its history).
        """
        unstored = UnstoredSession(self.sessions, session, on_stored=self._announce_created)
        self.launcher.launch(
            job, widget=widget, session=session, within_request=True, store=unstored
        )
        if unstored.store().state is State.NO_CHANNELS:
            raise NoAvailableChannelsException()

    def _announce_created(self, session: SessionRecord) -> None:
        signals.session_created.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            request_id=session.id,
            widget_id=session.widget_id,
        )

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
