"""Swagger UI's files served by the app itself, from the ``swagger-ui-bundle`` package.

flask-smorest renders the Swagger UI page but loads its scripts and stylesheet from
``OPENAPI_SWAGGER_UI_URL``, usually a CDN: without internet the page stays blank.
``pip install "flask-sdkauth[swagger-ui]"`` brings the files; the extension's own
``Api`` serves them by itself, and a host's ``Api`` can with
:func:`register_swagger_ui_assets`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask

__all__ = ["SWAGGER_UI_ASSETS_PATH", "register_swagger_ui_assets", "swagger_ui_bundle_folder"]

#: Where :func:`register_swagger_ui_assets` serves the files by default.
SWAGGER_UI_ASSETS_PATH = "/swagger-ui-assets/"


def swagger_ui_bundle_folder() -> Any | None:
    """The folder of Swagger UI's files, or ``None`` without ``swagger-ui-bundle``."""
    try:
        from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]
    except ImportError:
        return None
    return swagger_ui_path


def register_swagger_ui_assets(app: Flask, url_path: str = SWAGGER_UI_ASSETS_PATH) -> str:
    """Serve Swagger UI's files at ``url_path`` and return it, for ``OPENAPI_SWAGGER_UI_URL``.

    .. code-block:: python

        app.config["OPENAPI_SWAGGER_UI_URL"] = register_swagger_ui_assets(app)
        api.init_app(app)

    :raises RuntimeError: ``swagger-ui-bundle`` is not installed.
    """
    folder = swagger_ui_bundle_folder()
    if folder is None:
        raise RuntimeError(
            'Swagger UI\'s files come from swagger-ui-bundle: pip install "flask-sdkauth[swagger-ui]"'
        )
    url_path = "/" + url_path.strip("/") + "/"
    app.register_blueprint(
        Blueprint(
            "sdkauth_swagger_ui",
            __name__,
            static_folder=str(folder),
            static_url_path=url_path.rstrip("/"),
        )
    )
    return url_path
