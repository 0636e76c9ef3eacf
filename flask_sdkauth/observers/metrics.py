"""Prometheus metrics of the authentications, with ``prometheus_client``.

The metrics are created once per registry (the library's global one unless the host
passes its own) and shared by every app that uses that registry. Labels stay
bounded: channel types, outcomes from fixed sets, and widget ids only when
``SDKAUTH_METRICS_WIDGET_LABEL`` is on (an empty value otherwise, which Prometheus
reads as no label); never a number or a request id.
"""

from __future__ import annotations

import importlib.util
import threading
import weakref
from typing import Any

from ..events import AuthEvent

__all__ = ["Metrics", "MetricsObserver", "prometheus_available"]

_TIME_TO_CONFIRM_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
_SENDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30)
#: Delivery reports as deliveries' outcomes ("sent" reports repeat the sender's).
_REPORT_OUTCOMES = {"delivered": "delivered", "read": "read", "failed": "undelivered"}


def prometheus_available() -> bool:
    """Whether ``prometheus_client`` (the ``metrics`` extra) is installed."""
    return importlib.util.find_spec("prometheus_client") is not None


class Metrics:
    """The collectors, registered on one registry."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Histogram

        def counter(name: str, documentation: str, *labels: str) -> Any:
            return Counter(name, documentation, labels, registry=registry)

        self.sends = counter(
            "sdkauth_sends", "Send requests by outcome.", "widget", "outcome"
        )
        self.deliveries = counter(
            "sdkauth_deliveries",
            "Sender calls, channels passed over, and delivery reports, by outcome.",
            "channel",
            "outcome",
        )
        self.fallbacks = counter(
            "sdkauth_fallbacks",
            "Moves of a session from one channel to the next, by reason.",
            "from_channel",
            "to_channel",
            "reason",
        )
        self.checks = counter(
            "sdkauth_checks", "Code checks and codeless confirmations by outcome.",
            "channel", "outcome",
        )
        self.completions = counter(
            "sdkauth_completions", "Sessions completed by the backend.", "widget", "channel"
        )
        self.time_to_confirm = Histogram(
            "sdkauth_time_to_confirm_seconds",
            "Seconds from a channel's launch to the session's confirmation.",
            ["channel"],
            buckets=_TIME_TO_CONFIRM_BUCKETS,
            registry=registry,
        )
        self.sender_seconds = Histogram(
            "sdkauth_sender_seconds",
            "Seconds a channel sender took per call.",
            ["channel"],
            buckets=_SENDER_BUCKETS,
            registry=registry,
        )


_lock = threading.Lock()
_by_registry: weakref.WeakKeyDictionary[Any, Metrics] = weakref.WeakKeyDictionary()


def _metrics_for(registry: Any) -> Metrics:
    """The collectors of ``registry``, created on first use (a registry refuses a
    second collector of the same name)."""
    with _lock:
        metrics = _by_registry.get(registry)
        if metrics is None:
            metrics = _by_registry[registry] = Metrics(registry)
        return metrics


class MetricsObserver:
    """Counts each event in the collectors of ``registry`` (default: the global one)."""

    def __init__(self, registry: Any | None = None, *, widget_label: bool = False) -> None:
        if registry is None:
            from prometheus_client import REGISTRY

            registry = REGISTRY
        self.metrics = _metrics_for(registry)
        self._widget_label = widget_label

    def __call__(self, app: Any, *, event: AuthEvent) -> None:
        metrics = self.metrics
        channel = event.channel or ""
        widget = str(event.widget_id) if self._widget_label and event.widget_id else ""
        kind = event.kind
        if kind == "send":
            metrics.sends.labels(widget, event.outcome).inc()
        elif kind == "delivery":
            metrics.deliveries.labels(channel, event.outcome).inc()
            if event.seconds is not None:
                metrics.sender_seconds.labels(channel).observe(event.seconds)
        elif kind == "report":
            outcome = _REPORT_OUTCOMES.get(event.outcome)
            if outcome is not None:
                metrics.deliveries.labels(channel, outcome).inc()
        elif kind == "fallback":
            metrics.fallbacks.labels(channel, event.to_channel or "", event.outcome).inc()
        elif kind in ("check", "confirmation"):
            metrics.checks.labels(channel, event.outcome).inc()
            if event.outcome == "right" and event.seconds is not None:
                metrics.time_to_confirm.labels(channel).observe(event.seconds)
        elif kind == "completion":
            metrics.completions.labels(widget, channel).inc()
