"""The codeless confirmation link: a page the user opens from a push or a message.

``GET`` only shows the page (link previews and scanners must not confirm anything);
the user's click ``POST``\\ s the token and, with number matching, the number they
picked. The token in the link is the credential: no widget token is involved.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, render_template

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
from .i18n import N_, negotiate_locale, translations
from .schemas import ConfirmForm, ConfirmLinkQuery, ErrorDto, RequestPath

__all__ = ["TEMPLATE", "register_confirm_page"]

F = TypeVar("F", bound=Callable[..., Any])

#: What ``engine.confirm`` may raise, and what the person on the page reads for it (the contract's Russian
#: ``message`` is for API clients, not for a page in the reader's language).
_REFUSALS: dict[type[SdkAuthError], str] = {
    AttemptsExpiredException: N_(
        "The number picked is not the one on the sign-in page, so this sign-in was "
        "stopped. Start again on the sign-in page."
    ),
    InvalidCodeException: N_("This link is not valid. Open the latest link you received."),
    NoAvailableChannelsException: N_(
        "This sign-in can no longer be confirmed. Start again on the sign-in page."
    ),
    NoConnectionException: N_("The service is unavailable right now. Try again in a moment."),
    RateLimitException: N_("Too many attempts. Wait a moment and try again."),
    ResendChannelException: N_(
        "This link has expired. Ask for a new one on the sign-in page."
    ),
    SessionAlreadyConfirmedException: N_(
        "This sign-in is already confirmed. You can go back to the sign-in page."
    ),
    SessionClosedException: N_("This sign-in has ended. Start again on the sign-in page."),
    SessionNotFoundException: N_("This sign-in was not found. Start again on the sign-in page."),
}

_REFUSED = N_("This sign-in could not be confirmed. Start again on the sign-in page.")

#: The template a host overrides with its own ``templates/sdkauth/confirm.html``.
TEMPLATE = "sdkauth/confirm.html"

# The page carries a live token: keep it out of caches and Referer headers.
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _page(
    outcome: str,
    title: str,
    *,
    token: str | None = None,
    choices: list[str] | None = None,
    message: str | None = None,
) -> str:
    """Render the page in the request's locale; ``title`` and ``message`` are msgids."""
    settings = current_app.extensions["sdkauth"].settings
    locale = negotiate_locale(settings.locales, settings.default_locale)
    gettext = translations(locale).gettext
    return render_template(
        TEMPLATE,
        lang=locale,
        _=gettext,
        outcome=outcome,
        title=gettext(title),
        message=gettext(message) if message else None,
        token=token,
        choices=choices or [],
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
_PAGE_ERRORS: tuple[type[SdkAuthError], ...] = tuple(_REFUSALS)


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
        page = _page("pending", N_("Confirm the sign-in"), token=token, choices=offered)
        return page, 200, _HEADERS

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
            page = _page(
                "refused", N_("Sign-in not confirmed"), message=_REFUSALS.get(type(error), _REFUSED)
            )
            return page, error.http_status, {**_HEADERS, **error.headers}
        page = _page(
            "confirmed", N_("Sign-in confirmed"), message=N_("You can go back to the sign-in page.")
        )
        return page, 200, _HEADERS
