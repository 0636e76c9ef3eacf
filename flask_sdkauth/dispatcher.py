"""The seam through which channel launches (and so messages) leave the engine.

The engine decides *what* to launch; a dispatcher decides *when and where* it runs.
:class:`InlineDispatcher` runs it at once in the request. A task-queue dispatcher
would enqueue the job's fields and have a worker call
``current_app.extensions["sdkauth"].engine.launch(job)``; fallback rules stay in the
engine either way.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .store import SessionRecord

__all__ = ["Dispatcher", "InlineDispatcher", "LaunchJob"]


@dataclass(frozen=True)
class LaunchJob:
    """Launch the widget's channels for a session, starting at ``channel_index``.

    ``generation`` is the launch the job is for; a job whose session has since
    moved on (launched, restarted, closed) does nothing. Two workers running the
    very same job at once may both call the sender; only one launch is stored.
    """

    request_id: uuid.UUID
    channel_index: int = 0
    restarts: int = 0
    generation: int = 0


class Dispatcher(Protocol):
    def dispatch(
        self, job: LaunchJob, run: Callable[[LaunchJob], SessionRecord]
    ) -> SessionRecord | None:
        """Run ``run(job)`` now and return its result, or schedule it and return ``None``."""


class InlineDispatcher:
    """Runs every launch immediately, inside the caller's request."""

    def dispatch(
        self, job: LaunchJob, run: Callable[[LaunchJob], SessionRecord]
    ) -> SessionRecord | None:
        return run(job)
