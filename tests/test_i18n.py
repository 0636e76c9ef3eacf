"""Server-side texts by locale: messages to phones and the confirmation page.

The locale comes from the send request's ``Accept-Language`` (the widget sets it
from its language), is stored with the session, and decides every message of it;
the confirmation page follows the Accept-Language of the browser that opens it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from jinja2 import FileSystemLoader

from flask_sdkauth import Channel, ChannelSettings
from flask_sdkauth.i18n import available_locales, translations

from .conftest import bearer
from .flow import RECIPIENT

CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)
PACKAGE = Path(__file__).resolve().parent.parent / "flask_sdkauth"


def _send(app, sdkauth, widget, accept_language=None):
    headers = bearer(app, sdkauth, widget.id)
    if accept_language is not None:
        headers["Accept-Language"] = accept_language
    response = app.test_client().post(
        "/", json={"widgetId": str(widget.id), "recipient": RECIPIENT}, headers=headers
    )
    assert response.status_code == 201, response.json
    return response.json["requestId"]


@pytest.mark.parametrize(
    "accept_language, locale, text",
    [
        ("en", "en", "Verification code: "),
        ("en-GB,en;q=0.9", "en", "Verification code: "),
        ("ru-RU", "ru", "Код подтверждения: "),
        ("de-DE, fr;q=0.5", "ru", "Код подтверждения: "),  # none offered: the default
        (None, "ru", "Код подтверждения: "),
    ],
)
def test_the_send_request_chooses_the_message_locale(
    app, sdkauth, widget, outbox, accept_language, locale, text
):
    _send(app, sdkauth, widget, accept_language)
    assert outbox.last.locale == locale
    assert outbox.last.text == text + outbox.last.code


def test_the_default_locale_is_configurable(make_app, outbox):
    app, sdkauth = make_app({"SDKAUTH_DEFAULT_LOCALE": "en"})
    with app.app_context():
        widget = sdkauth.create_widget("Demo", [Channel("sms")])
    _send(app, sdkauth, widget)
    assert outbox.last.locale == "en" and outbox.last.text.startswith("Verification code: ")


def test_the_session_keeps_its_locale_for_resends(make_app, outbox, clock):
    app, sdkauth = make_app({"SDKAUTH_LOCALES": ["ru", "en"]})
    with app.app_context():
        widget = sdkauth.create_widget(
            "Demo", [Channel("sms", settings=ChannelSettings(restart_cooldown=1))]
        )
    request_id = _send(app, sdkauth, widget, "en")
    clock.advance(2)
    # A resend asking for another language still writes in the session's.
    resent = app.test_client().post(
        f"/{request_id}/resend",
        headers={**bearer(app, sdkauth, widget.id), "Accept-Language": "ru"},
    )
    assert resent.status_code == 201, resent.json
    assert len(outbox.messages) == 2
    assert outbox.last.locale == "en" and outbox.last.text.startswith("Verification code: ")


def test_codeless_texts_by_locale(make_app, outbox):
    app, sdkauth = make_app()
    sdkauth.add_channel_sender("sim_push", outbox)
    with app.app_context():
        widget = sdkauth.create_widget("Shop", [Channel("sim_push")])
    _send(app, sdkauth, widget, "en")
    assert outbox.last.text == "Confirm the sign-in: Shop"
    _send(app, sdkauth, widget, "ru")
    assert outbox.last.text == "Подтвердите вход: Shop"


def test_configured_texts_by_locale(make_app, outbox):
    app, sdkauth = make_app({"SDKAUTH_MESSAGE_TEXT": {"en": "{code} is your Shop code"}})
    with app.app_context():
        widget = sdkauth.create_widget("Demo", [Channel("sms")])
    _send(app, sdkauth, widget, "en")
    assert outbox.last.text == f"{outbox.last.code} is your Shop code"
    # A locale the mapping leaves out gets the catalogue's text.
    _send(app, sdkauth, widget, "ru")
    assert outbox.last.text == f"Код подтверждения: {outbox.last.code}"


def test_one_configured_text_for_every_locale(make_app, outbox):
    app, sdkauth = make_app({"SDKAUTH_MESSAGE_TEXT": "Code {code}, valid {minutes} min"})
    with app.app_context():
        widget = sdkauth.create_widget("Demo", [Channel("sms")])
    for language in ("en", "ru"):
        _send(app, sdkauth, widget, language)
        assert outbox.last.text == f"Code {outbox.last.code}, valid 5 min"


def test_the_python_api_takes_a_locale(app, sdkauth, widget, outbox):
    with app.app_context():
        sdkauth.send(widget.id, RECIPIENT, locale="en")
        assert outbox.last.text.startswith("Verification code: ")
        with pytest.raises(ValueError, match="SDKAUTH_LOCALES"):
            sdkauth.send(widget.id, RECIPIENT, locale="de")


@pytest.mark.parametrize(
    "config, error, match",
    [
        ({"SDKAUTH_LOCALES": ["ru", "de"]}, ValueError, r"no catalogue for \['de'\]"),
        ({"SDKAUTH_LOCALES": "ru"}, TypeError, "SDKAUTH_LOCALES must be"),
        ({"SDKAUTH_LOCALES": []}, TypeError, "SDKAUTH_LOCALES must be"),
        ({"SDKAUTH_DEFAULT_LOCALE": "de"}, ValueError, "SDKAUTH_DEFAULT_LOCALE must be one of"),
        ({"SDKAUTH_MESSAGE_TEXT": {"de": "{code}"}}, ValueError, r"\['de'\] are not in"),
        ({"SDKAUTH_MESSAGE_TEXT": "Code {kod}"}, ValueError, "does not format"),
        ({"SDKAUTH_CODELESS_TEXT": {"en": "{0}"}}, ValueError, "does not format"),
        ({"SDKAUTH_MESSAGE_TEXT": 42}, TypeError, "SDKAUTH_MESSAGE_TEXT must be"),
        ({"SDKAUTH_MESSAGE_TEXT": {"en": 42}}, TypeError, "must be a string"),
    ],
)
def test_bad_locale_configuration_fails_at_init(make_app, config, error, match):
    with pytest.raises(error, match=match):
        make_app(config)


# -- the confirmation page ------------------------------------------------------


@pytest.fixture
def pushed(make_app, outbox):
    """A codeless session with number matching; returns (app, sdkauth, message, number)."""
    app, sdkauth = make_app()
    sdkauth.add_channel_sender("sim_push", outbox)
    with app.app_context():
        widget = sdkauth.create_widget("Push", [Channel("sim_push")])
    request_id = _send(app, sdkauth, widget)
    channel = app.test_client().get(
        f"/{request_id}/channel", headers=bearer(app, sdkauth, widget.id)
    ).json
    return app, sdkauth, outbox.last, channel["payload"]["matchNumber"]


def _page(app, sdkauth, message, accept_language, number=None):
    with app.test_request_context():
        path = sdkauth.confirmation_url(message).removeprefix("http://localhost")
    client = app.test_client()
    headers = {"Accept-Language": accept_language}
    if number is None:
        return client.get(path, headers=headers)
    return client.post(
        f"/{message.request_id}/confirm",
        data={"token": message.confirmation_token, "number": number},
        headers=headers,
    )


def test_the_page_speaks_the_browsers_language(pushed):
    app, sdkauth, message, number = pushed
    english = _page(app, sdkauth, message, "en-US,en;q=0.8").get_data(as_text=True)
    assert '<html lang="en">' in english
    assert "Pick the number shown on the sign-in page:" in english
    assert not CYRILLIC.search(english)
    russian = _page(app, sdkauth, message, "ru").get_data(as_text=True)
    assert '<html lang="ru">' in russian
    assert "Выберите число, которое показано на странице входа:" in russian

    confirmed = _page(app, sdkauth, message, "en", number)
    assert confirmed.status_code == 200
    text = confirmed.get_data(as_text=True)
    assert "Sign-in confirmed" in text and not CYRILLIC.search(text)


def test_a_wrong_pick_says_what_happened_in_the_pages_language(pushed):
    app, sdkauth, message, number = pushed
    other = next(choice for choice in message.choices if choice != number)
    refused = _page(app, sdkauth, message, "en", other)
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "The number picked is not the one on the sign-in page" in text
    # Never the contract's Russian message ("attempts used up") on an English page.
    assert not CYRILLIC.search(text)
    again = _page(app, sdkauth, message, "ru", number).get_data(as_text=True)
    assert "Выбрано не то число, что на странице входа" in again


def test_a_host_overrides_the_page_by_template_name(pushed, tmp_path):
    app, sdkauth, message, number = pushed
    (tmp_path / "sdkauth").mkdir()
    (tmp_path / "sdkauth" / "confirm.html").write_text(
        '{% extends "base.html" %}{% block body %}[{{ lang }}] {{ title }} '
        "{% for choice in choices %}<b>{{ choice }}</b>{% endfor %}{% endblock %}"
    )
    (tmp_path / "base.html").write_text("<main class=host>{% block body %}{% endblock %}</main>")
    app.jinja_loader = FileSystemLoader(str(tmp_path))
    page = _page(app, sdkauth, message, "en").get_data(as_text=True)
    assert page.startswith("<main class=host>[en] Confirm the sign-in ")
    assert sorted(re.findall(r"<b>(\d+)</b>", page)) == sorted(message.choices)


# -- the catalogues -------------------------------------------------------------


def _extracted() -> set[str]:
    """Every text marked in the package, as ``make translations`` extracts them."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    return {
        message
        for _, _, message, _, _ in extract_from_dir(
            str(PACKAGE), method_map, keywords={"N_": None, "_": None}
        )
    }


def test_every_catalogue_translates_every_marked_text():
    marked = _extracted()
    assert "Verification code: {code}" in marked and "Confirm the sign-in" in marked
    for locale in available_locales() - {"en"}:
        path = PACKAGE / "translations" / locale / "LC_MESSAGES" / "sdkauth.po"
        with path.open("rb") as po:
            catalogue = read_po(po, locale=locale)
        entries = {m.id: m for m in catalogue if m.id}
        assert set(entries) == marked, f"{locale}: run make translations"
        for msgid, entry in entries.items():
            assert entry.string and "fuzzy" not in entry.flags, (locale, msgid)
            # Placeholders survive translation: .format() would fail otherwise.
            assert re.findall(r"\{\w+\}", entry.string) == re.findall(r"\{\w+\}", msgid)


def test_compiled_catalogue_translates():
    assert translations("ru").gettext("Sign-in confirmed") == "Вход подтверждён"
    assert translations("en").gettext("Sign-in confirmed") == "Sign-in confirmed"
    with pytest.raises(LookupError):
        translations("de")
