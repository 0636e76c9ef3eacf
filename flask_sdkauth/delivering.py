"""What happens to a message after its launch: delivery reports from gateways,
and the sweep that recovers launches that never finished."""

from __future__ import annotations

import logging
from datetime import timedelta

from .core import EngineCore
from .delivery import DELIVERY_STATUSES
from .dispatchers import LaunchJob
from .events import emit_for
from .history import REASON_LIMIT, history_entry
from .message import MessageId
from .redaction import redact
from .states import Event, State
from .store import SessionRecord

__all__ = ["DeliveringMixin"]

logger = logging.getLogger("flask_sdkauth")

#: Entries after which a session's history takes no more delivery reports.
_HISTORY_LIMIT = 200


class DeliveringMixin(EngineCore):
    """report_delivery and sweep."""

    def report_delivery(self, message_id: str, status: str, *, reason: str | None = None) -> None:
        """Record what a gateway reports of a message; see :meth:`SdkAuth.report_delivery`."""
        if status not in DELIVERY_STATUSES:
            raise ValueError(
                f"unknown delivery status {status!r}; use one of {sorted(DELIVERY_STATUSES)}"
            )
        launch = MessageId.parse(message_id)
        session = None if launch is None else self.sessions.get(launch.request_id)
        if launch is None or session is None:
            logger.info("sdkauth: delivery report %r for no known message ignored", status)
            return
        current = (
            session.state is State.SENT
            and session.generation == launch.generation
            and session.channel_index == launch.channel_index
        )
        widget = self.find_widget(session.widget_id)
        channels = widget.channels if widget is not None else ()
        channel = (
            channels[launch.channel_index].type
            if launch.channel_index < len(channels)
            else None
        )
        if reason is not None:
            reason = redact(str(reason), secrets=(), recipient=session.recipient)[:REASON_LIMIT]
        entry = history_entry(
            launch.channel_index,
            channel,
            self.clock(),
            "report",
            reason,
            status=status,
            message=str(launch),
            current=current,
        )
        emit_for(session, "report", status, channel=channel, reason=reason)
        if status == "failed" and current and self._fall_back(session, widget, entry):
            return
        if len(session.history) >= _HISTORY_LIMIT:
            # Replayed webhooks must not grow a session without end.
            logger.info("sdkauth: delivery report for session %s not kept: history full", session.id)
            return
        # Reports for earlier launches, repeats, and a failure that lost a race
        # with another change are kept in the history and change nothing else.
        self.sessions.apply(session.id, Event.HISTORY_NOTED, history=[entry])

    def sweep(self) -> int:
        """Relaunch every session whose launch has not finished within
        ``SDKAUTH_LAUNCH_DEADLINE`` (its worker died, its job was lost); return how
        many were relaunched.

        The launch starts again at the channel it was on; a launch lost twice on
        the same channel goes on with the next one, so that a sender that kills
        its worker cannot hold a session forever.
        """
        now = self.clock()
        deadline = self.settings.launch_deadline
        cutoff = now - timedelta(seconds=deadline)
        relaunched = 0
        for session in self.sessions.stuck_launches(waiting_since=cutoff, now=now):
            lost = index = session.launch_index or 0
            restarts = session.restarts
            if _lost_before(session, index):
                index, restarts = index + 1, 0
            entry = history_entry(
                lost,
                None,
                now,
                "lost",
                f"launch did not finish within {deadline:g} s",
            )
            claimed = self.sessions.apply(
                session.id,
                Event.RELAUNCHED,
                at_generation=session.generation,
                where=[self.sessions.columns.updated_at <= cutoff],
                history=[entry],
                generation=session.generation + 1,
                launch_index=index,
                restarts=restarts,
                updated_at=now,
            )
            if claimed is None:
                continue  # another sweep, or the launch itself, was first
            logger.warning("sdkauth: relaunching session %s, its launch was lost", session.id)
            job = LaunchJob(
                session.id, channel_index=index, restarts=restarts, generation=claimed.generation
            )
            widget = self.find_widget(session.widget_id)
            self._launch_now(job, widget, claimed, within_request=False)
            relaunched += 1
        return relaunched


def _lost_before(session: SessionRecord, index: int) -> bool:
    """Whether a launch from ``index`` was lost since the session's last send."""
    for entry in reversed(session.history):
        if entry.get("outcome") == "sent":
            return False
        if entry.get("outcome") == "lost" and entry.get("index") == index:
            return True
    return False
