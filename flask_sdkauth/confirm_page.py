"""The codeless confirmation link: a page the user opens from a push or a message.

``GET`` only shows the page (link previews and scanners must not confirm anything);
the user's click ``POST``\\ s the token and, with number matching, the number they
picked. The token in the link is the credential: no widget token is involved.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, render_template_string

from .blueprint import SdkAuthBlueprint
from .errors import (
    AttemptsExpiredException,
    InternalServerErrorException,
    InvalidCodeException,
    NoAvailableChannelsException,
    NoConnectionException,
    RateLimitException,
    RequestNotFoundException,
    ResendChannelException,
    SdkAuthError,
    SessionAlreadyConfirmedException,
    SessionClosedException,
    SessionNotFoundException,
    ValidateError,
)
from .schemas import ConfirmForm, ConfirmLinkQuery, ErrorDto, RequestPath

__all__ = ["register_confirm_page"]

F = TypeVar("F", bound=Callable[..., Any])

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


_HTML = {"text/html": {"schema": {"type": "string"}}}

#: Bad input, a disabled operation and a bug are answered in JSON, as on every route.
#: (The page alone touches no storage: no 503.)
_JSON_ERRORS: tuple[type[SdkAuthError], ...] = (
    InternalServerErrorException,
    RequestNotFoundException,
    ValidateError,
)
#: What ``engine.confirm`` raises: the user sees it as a page, with the error's status.
_PAGE_ERRORS: tuple[type[SdkAuthError], ...] = (
    AttemptsExpiredException,
    InvalidCodeException,
    NoAvailableChannelsException,
    NoConnectionException,
    RateLimitException,
    ResendChannelException,
    SessionAlreadyConfirmedException,
    SessionClosedException,
    SessionNotFoundException,
)


def _documented(
    blp: SdkAuthBlueprint,
    operation_id: str,
    json_errors: tuple[type[SdkAuthError], ...],
    page_errors: tuple[type[SdkAuthError], ...] = (),
) -> Callable[[F], F]:
    """Document a page route: 200 HTML, errors as ``ErrorDto`` JSON or as a page."""

    def decorator(view: F) -> F:
        # Integer keys, as smorest's own: the two are merged per status.
        responses: dict[int, Any] = {200: {"description": "An HTML page", "content": _HTML}}
        for status in sorted({error.http_status for error in (*json_errors, *page_errors)}):
            parts = []
            as_json = sorted(e.type for e in json_errors if e.http_status == status)
            as_page = sorted(e.type for e in page_errors if e.http_status == status)
            if as_json:
                view = blp.alt_response(status, schema=ErrorDto)(view)
                parts.append(", ".join(as_json) + " (JSON)")
            response = responses.setdefault(status, {})
            if as_page:
                response["content"] = _HTML
                parts.append(", ".join(as_page) + " (HTML page)")
            response["description"] = "; ".join(parts)
        return blp.doc(operationId=operation_id, responses=responses)(view)

    return decorator


def register_confirm_page(blp: SdkAuthBlueprint) -> None:
    """Add the confirmation page's two routes to ``blp``.

    Bad input (a malformed id, a missing token) is a ``ValidateError`` in JSON, as on
    every route; what the engine refuses is shown to the user as a page carrying the
    error's status and message.
    """

    @blp.route("/<requestId>/confirm", methods=["GET"])
    @_documented(blp, "confirmPage", _JSON_ERRORS)
    @blp.arguments(RequestPath, location="path", as_kwargs=True)
    @blp.arguments(ConfirmLinkQuery, location="query", as_kwargs=True)
    def confirm_page(requestId: uuid.UUID, token: str, choices: str) -> Any:
        """Show the codeless confirmation page (it confirms nothing by itself)."""
        offered = [choice for choice in choices.split(",") if choice]
        return _page("Подтверждение входа", token=token, choices=offered), 200, _HEADERS

    @blp.route("/<requestId>/confirm", methods=["POST"])
    @_documented(blp, "confirm", _JSON_ERRORS, _PAGE_ERRORS)
    @blp.arguments(RequestPath, location="path", as_kwargs=True)
    @blp.arguments(ConfirmForm, location="form", as_kwargs=True)
    def confirm(requestId: uuid.UUID, token: str, number: str | None) -> Any:
        """Confirm a codeless channel with the link's token and the picked number."""
        engine = current_app.extensions["sdkauth"].engine
        try:
            engine.confirm(requestId, token, number)
        except SdkAuthError as error:
            page = _page("Вход не подтверждён", message=error.message)
            return page, error.http_status, {**_HEADERS, **error.headers}
        page = _page("Вход подтверждён", message="Можно вернуться на страницу входа.")
        return page, 200, _HEADERS
