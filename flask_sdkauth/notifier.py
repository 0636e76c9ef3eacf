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

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from .outages import Outage

__all__ = ["Notifier", "MemoryNotifier", "RedisNotifier", "create_notifier"]


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
    its own waiters through a :class:`MemoryNotifier`.

    While Redis cannot be reached the notifier is *down*: the outage is logged once
    when it starts (ERROR) and once when it ends (WARNING), whichever of the
    listener and :meth:`publish` notices it; the listener reconnects with a backoff
    doubling from ``_RETRY_SECONDS`` up to ``_MAX_RETRY_SECONDS``; :meth:`publish`
    wakes this process's waiters directly without trying Redis, and :meth:`listen`
    does not wait for a subscription that cannot come, so long polls fall back to
    re-reading the database every ``SDKAUTH_LONG_POLLING_INTERVAL`` seconds.
    """

    CHANNEL = "flask-sdkauth:session-changed"
    _RETRY_SECONDS = 1.0
    _MAX_RETRY_SECONDS = 30.0
    _SUBSCRIBE_SECONDS = 1.0
    #: How often the listener looks up from a quiet connection (to notice close()).
    _POLL_SECONDS = 1.0
    #: Older redis-py releases wait as long as the OS lets a connect or a read hang
    #: (recent ones 5 s); these bound it whatever the release (the URL's
    #: ``?socket_connect_timeout=…&socket_timeout=…`` take precedence).
    _TIMEOUTS = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}

    def __init__(self, url: str) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "SDKAUTH_NOTIFIER_URL is a Redis URL: pip install 'flask-sdkauth[redis]'"
            ) from exc
        self._redis = redis.Redis.from_url(url, **self._TIMEOUTS)
        self._local = MemoryNotifier()
        self._lock = threading.Lock()
        # Notified when the listener subscribes or the outage is noticed.
        self._settled = threading.Condition(self._lock)
        self._listener: threading.Thread | None = None
        self._subscribed = threading.Event()
        self._closed = threading.Event()
        self._outage = Outage(
            "notifier Redis",
            "long polls re-read the database every SDKAUTH_LONG_POLLING_INTERVAL "
            "seconds until it is back",
        )

    def publish(self, request_id: uuid.UUID) -> None:
        if self._outage.ongoing and not self._subscribed.is_set():
            # Known down: do not make the request wait for a connect that fails;
            # the listener is probing. Waiters of this process still hear of it.
            self._start_listener()
            self._local.publish(request_id)
            return
        try:
            self._redis.publish(self.CHANNEL, str(request_id))
        except Exception as exc:  # waiters fall back to polling; the change is stored
            self._went_down(exc)
            self._start_listener()  # someone must notice when Redis is back
            self._local.publish(request_id)
            return
        self._outage.ended()

    @contextmanager
    def listen(self, request_id: uuid.UUID) -> Iterator[_Event]:
        self._start_listener()
        if not self._subscribed.is_set():
            # The first waiters of a fresh process wait (briefly) for the
            # subscription, so that a change published meanwhile is not missed.
            # While Redis is known to be down no subscription can come: the waiter
            # relies on its periodic re-read instead.
            with self._settled:
                self._settled.wait_for(
                    lambda: self._subscribed.is_set() or self._outage.ongoing,
                    self._SUBSCRIBE_SECONDS,
                )
        with self._local.listen(request_id) as event:
            yield event

    @property
    def waiting(self) -> int:
        return self._local.waiting

    @property
    def is_down(self) -> bool:
        """Whether Redis is known to be unreachable (for monitoring and tests)."""
        return self._outage.ongoing

    def wait_until_subscribed(self, timeout: float) -> bool:
        """Start listening and wait until Redis confirms the subscription."""
        self._start_listener()
        return self._subscribed.wait(timeout)

    def close(self) -> None:
        """Stop the listener thread (within ``_POLL_SECONDS``) and drop connections."""
        self._closed.set()
        with self._lock:
            listener = self._listener
        if listener is not None:
            listener.join(self._POLL_SECONDS + float(self._TIMEOUTS["socket_timeout"]) + 1)
        self._redis.close()

    def _start_listener(self) -> None:
        with self._lock:
            if self._listener is None and not self._closed.is_set():
                self._listener = threading.Thread(
                    target=self._listen, name="sdkauth-redis-listener", daemon=True
                )
                self._listener.start()

    def _listen(self) -> None:
        delay = self._RETRY_SECONDS
        while not self._closed.is_set():
            pubsub = self._redis.pubsub()
            try:
                pubsub.subscribe(self.CHANNEL)
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=self._POLL_SECONDS)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._subscribed.set()
                        self._outage.ended()
                        with self._settled:
                            self._settled.notify_all()
                        delay = self._RETRY_SECONDS
                    elif message["type"] == "message":
                        self._wake(message["data"])
            except Exception as exc:
                self._subscribed.clear()
                self._went_down(exc)
                self._closed.wait(delay)
                delay = min(delay * 2, self._MAX_RETRY_SECONDS)
            finally:
                try:
                    pubsub.close()
                except Exception:  # pragma: no cover - closing a broken connection
                    pass
        self._subscribed.clear()

    def _went_down(self, exc: Exception) -> None:
        if self._outage.began(type(exc).__name__):
            with self._settled:  # waiting long polls stop waiting for a subscription
                self._settled.notify_all()

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
