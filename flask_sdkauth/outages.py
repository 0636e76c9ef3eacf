"""Whether a service we depend on is known to be unreachable, logged once per outage.

The rate-limit storage, the notifier's Redis and the database each keep one
:class:`Outage`: the first failure logs at ERROR, the first success after it logs
at WARNING, and every request in between logs nothing, however many there are.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["Outage"]

logger = logging.getLogger("flask_sdkauth")


class Outage:
    """The state of one service.

    :param service: what is unreachable, as the log says it (``"database"``).
    :param consequence: what the extension does meanwhile, for the first record.
    """

    def __init__(self, service: str, consequence: str) -> None:
        self.service = service
        self.consequence = consequence
        self._lock = threading.Lock()
        self._since: float | None = None  # monotonic time the outage began

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def began(self, cause: str) -> bool:
        """Record a failure; ``True`` (and one ERROR record) if it starts an outage.

        ``cause`` is named in the record: exception type names only, never an
        exception's text, which may carry a statement's parameters."""
        with self._lock:
            if self._since is not None:
                return False
            self._since = time.monotonic()
        logger.error("sdkauth: %s unreachable (%s); %s", self.service, cause, self.consequence)
        return True

    def ended(self) -> None:
        """Record a success; one WARNING record if it ends an outage."""
        if self._since is None:  # the common case, without taking the lock
            return
        with self._lock:
            if self._since is None:
                return
            seconds = time.monotonic() - self._since
            self._since = None
        logger.warning("sdkauth: %s reachable again after %.0f s", self.service, seconds)
