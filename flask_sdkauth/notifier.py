"""Wake-ups for long polls: "session X changed", chosen by URI.

``memory://`` wakes waiters in this process only (one worker); ``redis://…`` (and
``rediss://``, ``unix://``) carries the news through Redis pub/sub to every process
on every machine. The database stays the truth: a waiter re-reads the session after
each wake-up and at least every ``SDKAUTH_LONG_POLLING_INTERVAL`` seconds, so a lost
message delays it by one interval at most.

The waiting uses ``threading`` primitives, which gevent's monkey-patching makes
cooperative; under gthread each waiter holds one thread.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["Notifier", "MemoryNotifier", "RedisNotifier", "create_notifier"]

logger = logging.getLogger("flask_sdkauth")


class Subscription(Protocol):
    def wait(self, timeout: float) -> bool:
        """Block until the session changes or ``timeout`` seconds pass; ``True`` if
        it changed. Each change is reported once."""


class Notifier(Protocol):
    def publish(self, request_id: uuid.UUID) -> None:
        """Tell every waiter of ``request_id`` that the session changed."""

    def listen(self, request_id: uuid.UUID) -> Any:
        """A context manager yielding a :class:`Subscription` for ``request_id``.

        Subscribe *before* reading the session, so that no change between the read
        and the wait is missed."""


class _Event:
    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        changed = self._event.wait(timeout)
        self._event.clear()
        return changed


class MemoryNotifier:
    """Waiters and publishers in one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[uuid.UUID, set[_Event]] = {}

    def publish(self, request_id: uuid.UUID) -> None:
        with self._lock:
            events = list(self._waiters.get(request_id, ()))
        for event in events:
            event.set()

    @contextmanager
    def listen(self, request_id: uuid.UUID) -> Iterator[_Event]:
        event = _Event()
        with self._lock:
            self._waiters.setdefault(request_id, set()).add(event)
        try:
            yield event
        finally:
            with self._lock:
                waiters = self._waiters.get(request_id)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[request_id]

    @property
    def waiting(self) -> int:
        """How many subscriptions are open (for monitoring and tests)."""
        with self._lock:
            return sum(len(events) for events in self._waiters.values())


class RedisNotifier:
    """Changes published on one Redis channel; each process listens once and wakes
    its own waiters through a :class:`MemoryNotifier`."""

    CHANNEL = "flask-sdkauth:session-changed"
    _RETRY_SECONDS = 1.0
    _SUBSCRIBE_SECONDS = 1.0

    def __init__(self, url: str) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "SDKAUTH_NOTIFIER_URL is a Redis URL: pip install 'flask-sdkauth[redis]'"
            ) from exc
        self._redis = redis.Redis.from_url(url)
        self._local = MemoryNotifier()
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._subscribed = threading.Event()

    def publish(self, request_id: uuid.UUID) -> None:
        try:
            self._redis.publish(self.CHANNEL, str(request_id))
        except Exception as exc:  # waiters fall back to polling; the change is stored
            logger.warning("sdkauth: could not publish a session change: %s", exc)

    @contextmanager
    def listen(self, request_id: uuid.UUID) -> Iterator[_Event]:
        self._start_listener()
        # The first waiters of a fresh process wait (briefly) for the subscription,
        # so that a change published meanwhile is not missed.
        self._subscribed.wait(self._SUBSCRIBE_SECONDS)
        with self._local.listen(request_id) as event:
            yield event

    @property
    def waiting(self) -> int:
        return self._local.waiting

    def wait_until_subscribed(self, timeout: float) -> bool:
        """Start listening and wait until Redis confirms the subscription."""
        self._start_listener()
        return self._subscribed.wait(timeout)

    def _start_listener(self) -> None:
        with self._lock:
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name="sdkauth-redis-listener", daemon=True
                )
                self._listener.start()

    def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                pubsub.subscribe(self.CHANNEL)
                for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self._subscribed.set()
                    elif message["type"] == "message":
                        self._wake(message["data"])
            except Exception as exc:
                self._subscribed.clear()
                logger.warning("sdkauth: Redis listener lost its connection: %s", exc)
                time.sleep(self._RETRY_SECONDS)

    def _wake(self, data: bytes) -> None:
        try:
            request_id = uuid.UUID(data.decode())
        except (ValueError, UnicodeDecodeError):
            return
        self._local.publish(request_id)


def create_notifier(url: str) -> MemoryNotifier | RedisNotifier:
    """The notifier for ``SDKAUTH_NOTIFIER_URL``."""
    scheme = url.partition("://")[0]
    if scheme == "memory":
        return MemoryNotifier()
    if scheme in ("redis", "rediss", "unix"):
        return RedisNotifier(url)
    raise ValueError(
        f"SDKAUTH_NOTIFIER_URL {url!r}: use memory:// or redis://host:port/db"
    )
