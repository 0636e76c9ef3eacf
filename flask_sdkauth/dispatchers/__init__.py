"""The seam through which channel launches (and so messages) leave the engine.

The engine decides *what* to launch; a dispatcher decides *when and where* it runs.
:class:`InlineDispatcher` runs it at once in the request;
:class:`~flask_sdkauth.dispatchers.celery.CeleryDispatcher` enqueues it as a Celery
task that a worker runs (``SDKAUTH_DISPATCHER``). Fallback rules stay in the engine
either way: a worker calls ``engine.launch(job)`` and ``engine.fall_back_if_due``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..store import SessionRecord

__all__ = ["DISPATCHERS", "Dispatcher", "InlineDispatcher", "LaunchJob"]

#: The values of ``SDKAUTH_DISPATCHER``.
DISPATCHERS = frozenset({"inline", "celery"})


@dataclass(frozen=True)
class LaunchJob:
    """Launch the widget's channels for a session, starting at ``channel_index``.

    ``generation`` is the launch the job is for; a job whose session has since
    moved on (launched, restarted, closed) does nothing. Two workers running the
    very same job at once may both call the sender; only one launch is stored.
    ``fallback`` marks a launch the engine started on its own (a failure report,
    ``fallbackAfter``): if it finds no channel, the channel fails and the client
    may resend, instead of the session ending in ``no_channels``.
    """

    request_id: uuid.UUID
    channel_index: int = 0
    restarts: int = 0
    generation: int = 0
    fallback: bool = False


class Dispatcher(Protocol):
    """Where launches run. Implement both methods to run them elsewhere."""

    def dispatch(
        self, job: LaunchJob, run: Callable[[LaunchJob], SessionRecord]
    ) -> SessionRecord | None:
        """Run ``run(job)`` now and return its result, or schedule it and return
        ``None`` (a worker then calls ``engine.launch(job)``)."""

    def schedule_fallback(self, request_id: uuid.UUID, generation: int, delay: float) -> None:
        """Have ``engine.fall_back_if_due(request_id, generation)`` called in
        ``delay`` seconds, or do nothing if reads of the session are enough."""


class InlineDispatcher:
    """Runs every launch immediately, inside the caller's request.

    A channel's ``fallbackAfter`` then takes effect on the next read of the
    session (getChannel, the long polls, getStatus, checkCode…): nothing runs in
    between.
    """

    def dispatch(
        self, job: LaunchJob, run: Callable[[LaunchJob], SessionRecord]
    ) -> SessionRecord | None:
        return run(job)

    def schedule_fallback(self, request_id: uuid.UUID, generation: int, delay: float) -> None:
        pass
