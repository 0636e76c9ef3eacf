"""Proxy mode in tests: an app of this project served on 127.0.0.1 as the upstream
``otp-handler`` (the same contract), and an app in front of it that proxies it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from flask_sdkauth import SdkAuth

from .conftest import bearer


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """``app`` on a free port of 127.0.0.1, threaded; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def proxy_app(
    make_app: Callable[..., tuple[Flask, SdkAuth]],
    upstream_url: str,
    upstream_token: str,
    config: dict[str, Any] | None = None,
) -> tuple[Flask, SdkAuth]:
    """An app proxying ``upstream_url``, with its table (and only it) created:
    on a shared database the upstream's tables must survive."""
    app, sdkauth = make_app(
        {
            "SDKAUTH_UPSTREAM_URL": upstream_url,
            "SDKAUTH_UPSTREAM_TOKEN": upstream_token,
            **(config or {}),
        },
        reset_database=False,
    )
    with app.app_context():
        sdkauth.tables.upstream_session.create(sdkauth.db.engine, checkfirst=True)
    return app, sdkauth


def upstream_token(app: Flask, sdkauth: SdkAuth, *widget_ids: Any) -> str:
    """What the proxy authenticates to the upstream app with: a token of its own."""
    return bearer(app, sdkauth, *widget_ids, expires_in=86400)["Authorization"].removeprefix(
        "Bearer "
    )
