"""Channel launches as Celery tasks (``SDKAUTH_DISPATCHER = "celery"``).

The Celery app is the one at ``app.extensions["celery"]``, set up as Flask's
"Background Tasks with Celery" shows, so that tasks run inside the app context of
the worker's Flask app. ``send`` then answers as soon as the session is stored and
its launch is queued; a worker runs the launch and the notifier wakes the long
polls. Installed with the ``celery`` extra.

The tasks, by name (for routes and the beat schedule):

- ``flask_sdkauth.launch``: run one :class:`~flask_sdkauth.LaunchJob`;
- ``flask_sdkauth.fall_back``: a channel's ``fallbackAfter`` ran out, queued with
  a countdown when the channel was sent;
- ``flask_sdkauth.sweep``: relaunch lost launches (``SDKAUTH_LAUNCH_DEADLINE``);
  put it in the beat schedule.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import Celery, Task, shared_task  # type: ignore[import-untyped]
from flask import Flask, current_app, has_app_context
from kombu.exceptions import OperationalError

from ..errors import NoConnectionException
from . import LaunchJob

if TYPE_CHECKING:
    from ..engine import Engine
    from ..store import SessionRecord

__all__ = ["FALLBACK_TASK", "LAUNCH_TASK", "SWEEP_TASK", "CeleryDispatcher", "celery_init_app"]

LAUNCH_TASK = "flask_sdkauth.launch"
FALLBACK_TASK = "flask_sdkauth.fall_back"
SWEEP_TASK = "flask_sdkauth.sweep"

logger = logging.getLogger("flask_sdkauth")


class CeleryDispatcher:
    """Queues launches and scheduled fallbacks on the current app's Celery app.

    A broker that cannot be reached makes ``dispatch`` raise
    :class:`~flask_sdkauth.NoConnectionException` (503), after Celery's own
    publish retries.
    """

    def dispatch(
        self, job: LaunchJob, run: Callable[[LaunchJob], SessionRecord]
    ) -> SessionRecord | None:
        args = [
            str(job.request_id), job.channel_index, job.restarts, job.generation, job.fallback
        ]
        try:
            _celery_app().send_task(LAUNCH_TASK, args=args)
        except OperationalError:
            logger.error("sdkauth: the Celery broker cannot be reached; launch not queued")
            raise NoConnectionException() from None
        return None

    def schedule_fallback(self, request_id: uuid.UUID, generation: int, delay: float) -> None:
        try:
            _celery_app().send_task(
                FALLBACK_TASK, args=[str(request_id), generation], countdown=delay
            )
        except OperationalError:
            # Not fatal: the next read of the session falls back when it is due.
            logger.error("sdkauth: the Celery broker cannot be reached; fallback not scheduled")


def celery_init_app(app: Flask) -> Any:
    """Flask's "Background Tasks with Celery" pattern, for hosts that have no
    Celery app yet: a Celery app configured from ``app.config["CELERY"]`` whose
    tasks run in ``app``'s context, set at ``app.extensions["celery"]``, with the
    sweep of lost launches in its beat schedule (every half
    ``SDKAUTH_LAUNCH_DEADLINE``; call it after ``sdkauth.init_app``)."""

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.conf.beat_schedule.setdefault(
        "sdkauth-sweep",
        {"task": SWEEP_TASK, "schedule": app.config["SDKAUTH_LAUNCH_DEADLINE"] / 2},
    )
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def _celery_app() -> Any:
    celery_app = current_app.extensions.get("celery")
    if celery_app is None:
        raise RuntimeError(
            'SDKAUTH_DISPATCHER = "celery" needs the Celery app at '
            'app.extensions["celery"] (see Flask\'s "Background Tasks with Celery").'
        )
    return celery_app


def _engine() -> Engine:
    if not has_app_context():
        raise RuntimeError(
            "flask-sdkauth's tasks need the Flask app context: create the Celery app "
            "with a Task class that enters app.app_context(), as Flask's "
            '"Background Tasks with Celery" shows.'
        )
    engine: Engine = current_app.extensions["sdkauth"].engine
    return engine


@shared_task(name=LAUNCH_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def launch(
    request_id: str, channel_index: int, restarts: int, generation: int, fallback: bool = False
) -> None:
    job = LaunchJob(uuid.UUID(request_id), channel_index, restarts, generation, fallback)
    _engine().launch(job)


@shared_task(name=FALLBACK_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def fall_back(request_id: str, generation: int) -> None:
    _engine().fall_back_if_due(uuid.UUID(request_id), generation)


@shared_task(name=SWEEP_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def sweep() -> int:
    return _engine().sweep()
