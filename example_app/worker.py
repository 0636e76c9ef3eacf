"""The example app's Celery worker: ``celery -A example_app.worker worker --beat``,
with ``FLASK_SDKAUTH_DISPATCHER=celery`` set (and ``FLASK_CELERY__broker_url`` for
a broker other than the local Redis). ``EXAMPLE_INSTANCE_PATH`` names the web
app's instance folder when it is not the default, so that both share its key."""

import os

from . import create_app

flask_app = create_app(instance_path=os.environ.get("EXAMPLE_INSTANCE_PATH"))
celery_app = flask_app.extensions["celery"]
