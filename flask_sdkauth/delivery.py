"""Handing a message to a sender: a time limit on the call, and retries.

The time limit is enforced here rather than by a task queue, so that it holds the
same inline and on every Celery pool: the sender runs in a thread of its own and
the launch stops waiting for it after ``SDKAUTH_SENDER_TIMEOUT`` seconds. A
thread cannot be stopped from outside, so a sender that hangs goes on hanging in
its thread; only its answer is ignored. Threads whose sender returned are kept for
the next call (starting one costs more than a short sender call); a hung one is
never handed another message.
"""

from __future__ import annotations

import contextvars
import os
import queue
import threading
from collections.abc import Callable
from typing import Literal

from .message import Message

__all__ = ["DELIVERY_STATUSES", "DeliveryStatus", "RetryDelivery", "SenderTimedOut", "call_sender"]

#: What a gateway can report of a message (:meth:`SdkAuth.report_delivery`).
DeliveryStatus = Literal["sent", "delivered", "read", "failed"]
DELIVERY_STATUSES: frozenset[str] = frozenset({"sent", "delivered", "read", "failed"})


class RetryDelivery(Exception):
    """Raised by a sender for a transient failure (a rate limit, a 5xx answer): the
    same launch is tried again, with the same :attr:`Message.id` and code, up to
    ``SDKAUTH_DELIVERY_RETRIES`` times before the engine falls back to the next
    channel.

    :param reason: why, for the session's history (keep codes and numbers out).
    :param after: seconds to wait before the next try; by default 1, 2, 4…
    """

    def __init__(self, reason: str = "", *, after: float | None = None) -> None:
        super().__init__(reason)
        if after is not None and (isinstance(after, bool) or after < 0):
            raise ValueError(f"after must be a number of seconds >= 0, got {after!r}")
        self.after = after


class SenderTimedOut(Exception):
    """The sender did not return within its time."""


class _SenderThreads:
    """Daemon threads that each run one sender call at a time, kept idle once their
    call has returned (at most ``keep`` of them), started when none is idle."""

    def __init__(self, keep: int = 16) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []
        # A forked child has none of the parent's threads: forget them.
        os.register_at_fork(after_in_child=self._idle.clear)

    def run(self, job: Callable[[], None]) -> None:
        with self._lock:
            jobs = self._idle.pop() if self._idle else None
        if jobs is None:
            jobs = queue.SimpleQueue()
            threading.Thread(
                target=self._serve, args=(jobs,), name="sdkauth-sender", daemon=True
            ).start()
        jobs.put(job)

    def _serve(self, jobs: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            jobs.get()()
            with self._lock:
                if len(self._idle) >= self._keep:
                    return
                self._idle.append(jobs)


_threads = _SenderThreads()


def call_sender(
    sender: Callable[[Message], None],
    message: Message,
    timeout: float,
    *,
    in_thread: bool = True,
) -> None:
    """Call ``sender(message)`` and wait ``timeout`` seconds at most.

    The sender runs in a daemon thread with a copy of the caller's context, so
    ``current_app`` (and ``request``, inline) work in it as in the caller. With
    ``in_thread=False`` (a sender registered as bounded) it runs in the caller's
    thread, and the timeout only refuses to start a call with no time left.

    :raises SenderTimedOut: the sender had not returned in time.
    :raises Exception: whatever the sender raised.
    """
    if timeout <= 0:
        raise SenderTimedOut()
    if not in_thread:
        sender(message)
        return
    context = contextvars.copy_context()
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            context.run(sender, message)
        except BaseException as exc:  # handed to the caller, who decides
            failure.append(exc)
        finally:
            done.set()

    _threads.run(run)
    if not done.wait(timeout):
        raise SenderTimedOut()
    if failure:
        raise failure[0]
