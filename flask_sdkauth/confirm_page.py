"""The codeless confirmation link: a page the user opens from a push or a message.

``GET`` only shows the page (link previews and scanners must not confirm anything);
the user's click ``POST``\\ s the token and, with number matching, the number they
picked. The token in the link is the credential: no widget token is involved.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, render_template_string

from .blueprint import SdkAuthBlueprint
from .errors import SdkAuthError
from .schemas import ConfirmForm, ConfirmLinkQuery, RequestPath

__all__ = ["register_confirm_page"]

_PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title></head>
<body>
<main>
<h1>{{ title }}</h1>
{% if message %}<p role="status">{{ message }}</p>{% endif %}
{% if token %}
<form method="post">
<input type="hidden" name="token" value="{{ token }}">
{% if choices %}
<p>Выберите число, которое показано на странице входа:</p>
{% for choice in choices %}
<button type="submit" name="number" value="{{ choice }}">{{ choice }}</button>
{% endfor %}
{% else %}
<button type="submit">Подтвердить вход</button>
{% endif %}
</form>
{% endif %}
</main>
</body></html>
"""


# The page carries a live token: keep it out of caches and Referer headers.
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _page(title: str, *, token: str | None = None, choices: list[str] | None = None,
          message: str | None = None) -> str:
    return render_template_string(
        _PAGE, title=title, token=token, choices=choices or [], message=message
    )


_HTML_PAGE = {
    "200": {
        "description": "An HTML page",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}


def register_confirm_page(blp: SdkAuthBlueprint) -> None:
    @blp.route("/<requestId>/confirm", methods=["GET"])
    @blp.arguments(RequestPath, location="path", as_kwargs=True)
    @blp.arguments(ConfirmLinkQuery, location="query", as_kwargs=True)
    @blp.doc(operationId="confirmPage", responses=_HTML_PAGE)
    def confirm_page(requestId: uuid.UUID, token: str, choices: str) -> Any:
        """Show the codeless confirmation page (it confirms nothing by itself)."""
        offered = [choice for choice in choices.split(",") if choice]
        return _page("Подтверждение входа", token=token, choices=offered), 200, _HEADERS

    @blp.route("/<requestId>/confirm", methods=["POST"])
    @blp.arguments(RequestPath, location="path", as_kwargs=True)
    @blp.arguments(ConfirmForm, location="form", as_kwargs=True)
    @blp.doc(operationId="confirm", responses=_HTML_PAGE)
    def confirm(requestId: uuid.UUID, token: str, number: str | None) -> Any:
        """Confirm a codeless channel with the link's token and the picked number."""
        engine = current_app.extensions["sdkauth"].engine
        try:
            engine.confirm(requestId, token, number)
        except SdkAuthError as error:
            return _page("Вход не подтверждён", message=error.message), error.http_status, _HEADERS
        page = _page("Вход подтверждён", message="Можно вернуться на страницу входа.")
        return page, 200, _HEADERS
