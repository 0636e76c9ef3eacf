"""The Celery worker of ``delivery_latency.py``: ``bench_app`` with
``BENCH_DISPATCHER=celery``, run by ``celery -A bench_worker worker`` from this
folder.

It reads the same environment as ``bench_app`` (the database, the key, the broker
and queue, ``BENCH_SENDER_SLEEPS``), so that it runs the launches of the gunicorn
server's sessions with the same sender; and ``BENCH_WORKER_READY``, a file it
creates once it consumes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app
from celery.signals import worker_ready

flask_app = bench_app.create_app()
celery_app = flask_app.extensions["celery"]


@worker_ready.connect
def _ready(**kwargs: Any) -> None:
    Path(os.environ["BENCH_WORKER_READY"]).touch()
