"""The operations that show a session: getChannel, getStatus and their long polls."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from .core import Authorize, EngineCore, reports_errors
from .errors import (
    ChannelChangedException,
    LongPollingTimeoutException,
    NoAvailableChannelsException,
)
from .notifier import Subscription
from .rules import Operation
from .store import SessionRecord

__all__ = ["ChannelView", "ObservingMixin"]


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


class ObservingMixin(EngineCore):
    """getChannel, getStatus, and their long-polling twins (spec §7.5)."""

    @reports_errors
    def get_channel(
        self, request_id: uuid.UUID, *, authorize: Authorize | None = None
    ) -> ChannelView:
        """The current channel (getChannel); remembers that the client has seen it."""
        session = self._open(request_id, authorize)
        view, snapshot = self._channel_snapshot(session)
        if snapshot != session.seen_snapshot:
            self.sessions.mark_seen(request_id, session.generation, snapshot)
        return view

    @reports_errors
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

    @reports_errors
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

    @reports_errors
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

