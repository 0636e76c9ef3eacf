"""Receivers of :data:`~flask_sdkauth.signals.auth_event`: Prometheus metrics and the
audit log, connected to an app by ``init_app`` as its configuration says."""

from __future__ import annotations

from typing import Any

from flask import Flask

from .. import signals
from ..config import Settings
from .audit import AuditLog
from .metrics import MetricsObserver, prometheus_available

__all__ = ["connect_observers"]


def connect_observers(app: Flask, settings: Settings, registry: Any | None) -> None:
    """Connect the audit log and the metrics to ``app``'s events, as configured.

    :raises RuntimeError: ``SDKAUTH_METRICS = True`` without ``prometheus_client``.
    """
    if settings.audit_log:
        signals.auth_event.connect(AuditLog(settings.code_secret), app, weak=False)
    metrics = settings.metrics
    if metrics is None:
        metrics = prometheus_available()
    elif metrics and not prometheus_available():
        raise RuntimeError(
            'SDKAUTH_METRICS = True needs prometheus_client: pip install "flask-sdkauth[metrics]"'
        )
    if metrics:
        observer = MetricsObserver(registry, widget_label=settings.metrics_widget_label)
        signals.auth_event.connect(observer, app, weak=False)
