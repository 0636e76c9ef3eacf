"""The Jinja helper that embeds the browser widget: ``{{ sdkauth.widget(id) }}``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

from flask import current_app, url_for
from markupsafe import Markup, escape

__all__ = ["WidgetTemplates"]


class WidgetTemplates:
    """Available in every template as ``sdkauth``."""

    def widget(
        self,
        widget_id: uuid.UUID | str,
        *,
        token: str | None = None,
        token_url: str | None = None,
        lang: str | None = None,
        texts: Mapping[str, str] | None = None,
        assets: bool = True,
    ) -> Markup:
        """The widget's container, its stylesheet and its script.

        :param token: a widget token for this page (``sdkauth.create_token``); or
        :param token_url: a URL of the host's that answers ``{"token": "…"}``;
            the widget fetches it (with the page's cookies) when it needs one.
        :param lang: ``"ru"`` or ``"en"``; default: the page's ``<html lang>``.
        :param texts: replacements for any of the widget's texts, by key.
        :param assets: ``False`` to leave out the ``<link>`` and ``<script>`` tags
            (when the page embeds several widgets, include them once).
        """
        settings = current_app.extensions["sdkauth"].settings
        attributes = {
            "class": "sdkauth-widget",
            "data-widget-id": str(uuid.UUID(str(widget_id))),
            "data-api": settings.url_prefix,
            "data-token": token,
            "data-token-url": token_url,
            "data-lang": lang,
            "data-texts": json.dumps(dict(texts), ensure_ascii=False) if texts else None,
            "data-captcha-site-key": settings.captcha_site_key,
        }
        rendered = " ".join(
            f'{name}="{escape(value)}"' for name, value in attributes.items() if value is not None
        )
        html = f"<div {rendered}></div>"
        if assets:
            css = url_for("sdkauth.static", filename="sdkauth-widget.css")
            js = url_for("sdkauth.static", filename="sdkauth-widget.js")
            html = (
                f'<link rel="stylesheet" href="{escape(css)}">{html}'
                f'<script src="{escape(js)}" defer></script>'
            )
        return Markup(html)
