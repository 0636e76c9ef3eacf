"""The texts the server writes (messages to phones, the confirmation page) per locale.

Source texts are English; other languages live in Babel message catalogues
(``translations/<locale>/LC_MESSAGES/sdkauth.po``), read once per process. The
locale of a session is chosen from its ``send`` request's ``Accept-Language``
among ``SDKAUTH_LOCALES`` and stored with the session, so a fallback or resend
run later, by a worker, writes in the same language.
"""

from __future__ import annotations

import functools
import gettext as gettext_module
import io
from importlib import resources
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import request

__all__ = [
    "DOMAIN",
    "N_",
    "SOURCE_LOCALE",
    "available_locales",
    "negotiate_locale",
    "translations",
]

#: The catalogues' gettext domain.
DOMAIN = "sdkauth"
#: The language the texts are written in, which needs no catalogue.
SOURCE_LOCALE = "en"


def N_(text: str) -> str:  # noqa: N802 - the gettext convention for "mark, do not translate"
    """Mark ``text`` for extraction into the catalogues; it is translated where used."""
    return text


def _catalogue_root() -> Any:
    return resources.files("flask_sdkauth") / "translations"


@functools.cache
def available_locales() -> frozenset[str]:
    """The locales with a catalogue in the package, and the source locale."""
    root = _catalogue_root()
    found = {
        entry.name
        for entry in root.iterdir()
        if (entry / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()
    }
    return frozenset(found | {SOURCE_LOCALE})


@functools.cache
def translations(locale: str) -> gettext_module.NullTranslations:
    """The compiled catalogue of ``locale`` (the source texts for ``en``).

    :raises LookupError: the package has no catalogue for ``locale``.
    """
    if locale == SOURCE_LOCALE:
        return gettext_module.NullTranslations()
    if locale not in available_locales():
        raise LookupError(f"flask-sdkauth has no catalogue for the locale {locale!r}")
    source = _catalogue_root() / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    with source.open("rb") as po:
        catalogue = read_po(po, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def negotiate_locale(locales: tuple[str, ...], default: str) -> str:
    """The best of ``locales`` for the current request's ``Accept-Language``.

    ``en-GB`` matches ``en``; a request without the header, or asking only for
    languages not offered, gets ``default``.
    """
    return request.accept_languages.best_match(locales, default=default) or default
