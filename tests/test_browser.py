"""End-to-end: the example app's home page in headless Chromium, driven by Playwright.

A person's view of every path: the code path, a wrong code then the right one,
fallback to the second channel, resend after the cooldown, attempts exhausted, and
the codeless path. Each test saves a screenshot of its final state in its temporary
folder.

Needs Debian's ``chromium`` and the ``playwright`` Python package (no browser
download: Playwright drives /usr/bin/chromium). Without them the tests are skipped
with the reason, unless ``SDKAUTH_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which
turns a missing browser into a failure.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("SDKAUTH_REQUIRE_BROWSER") == "1"

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

_missing = []
if sync_playwright is None:
    _missing.append("the playwright package (pip install playwright)")
if not Path(CHROMIUM).exists():
    _missing.append("Chromium (apt-get install chromium)")
if _missing and not REQUIRED:
    pytest.skip("browser tests need " + " and ".join(_missing), allow_module_level=True)

PHONE = "+79991234567"
TIMEOUT_MS = 15_000


class DevLog(logging.Handler):
    """Collects what the example app's development sender writes."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def messages(self, channel: str | None = None) -> list[str]:
        return [
            line for line in self.lines
            if line.startswith("[dev sender]") and (channel is None or f"] {channel} to" in line)
        ]

    def last_code(self) -> str:
        return re.search(r"Код подтверждения: (\d+)", self.messages()[-1]).group(1)

    def last_link(self) -> str:
        return re.search(r"open (\S+)", self.messages()[-1]).group(1)


@pytest.fixture(scope="module")
def browser():
    assert not _missing, "browser tests need " + " and ".join(_missing)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def example(tmp_path) -> Iterator:
    """Start the example app on a loopback port: ``start(config) -> (url, log)``."""
    from werkzeug.serving import make_server

    from example_app import create_app

    servers = []
    log = DevLog()
    logger = logging.getLogger("example_app")
    logger.addHandler(log)

    def start(config: dict | None = None):
        app = create_app({"TESTING": False, **(config or {})}, instance_path=str(tmp_path))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{port}", log

    yield start
    logger.removeHandler(log)
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page(browser, tmp_path, request) -> Iterator[Page]:
    context = browser.new_context(locale="ru-RU")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.screenshot(path=str(tmp_path / f"{request.node.name}.png"), full_page=True)
    context.close()


def _request_code(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_label("Номер телефона").fill(PHONE)
    page.get_by_role("button", name="Получить код").click()
    expect(page.get_by_label("Код из сообщения")).to_be_visible()


def _enter(page: Page, code: str) -> None:
    expect(page.get_by_role("button", name="Подтвердить")).to_be_enabled()
    page.get_by_label("Код из сообщения").fill(code)
    page.get_by_label("Код из сообщения").press("Enter")  # keyboard only


def _assert_signed_in(page: Page) -> None:
    expect(page.locator("#signed-in")).to_contain_text(f"Вы вошли как {PHONE}")


def test_code_path(example, page):
    url, log = example()
    _request_code(page, url)
    expect(page.get_by_text("Мы отправили код: SMS.")).to_be_visible()
    code_input = page.get_by_label("Код из сообщения")
    expect(code_input).to_have_attribute("maxlength", "6")
    expect(code_input).to_be_focused()
    _enter(page, log.last_code())
    _assert_signed_in(page)


def test_wrong_code_then_the_right_one(example, page):
    url, log = example()
    _request_code(page, url)
    code = log.last_code()
    _enter(page, str((int(code) + 1) % 10**6).zfill(6))
    expect(page.get_by_role("alert")).to_have_text("Неверный код.")
    expect(page.get_by_text("Осталось попыток: 2.")).to_be_visible()
    _enter(page, code)
    _assert_signed_in(page)


def test_fallback_to_the_second_channel(example, page):
    url, log = example({"DEV_FAILING_CHANNELS": ["sms"]})
    _request_code(page, url)
    expect(page.get_by_text("Мы отправили код: Голосовой звонок.")).to_be_visible()
    assert log.messages("sms") == [] and len(log.messages("voice")) == 1
    _enter(page, log.last_code())
    _assert_signed_in(page)


def test_resend_after_the_cooldown(example, page):
    url, log = example({"DEMO_CHANNEL_SETTINGS": {"restartCooldown": 3}})
    _request_code(page, url)
    first = log.last_code()
    resend = page.locator("button.sdkauth-resend")
    expect(resend).to_be_disabled()
    expect(resend).to_contain_text("Повторная отправка через")
    expect(resend).to_be_enabled(timeout=8_000)
    resend.click()
    expect(page.get_by_text("Код отправлен ещё раз.")).to_be_visible()
    assert len(log.messages("sms")) == 2
    second = log.last_code()
    if second != first:
        _enter(page, first)
        expect(page.get_by_role("alert")).to_have_text("Неверный код.")
    _enter(page, second)
    _assert_signed_in(page)


def test_attempts_exhausted(example, page):
    url, log = example()
    _request_code(page, url)
    wrong = str((int(log.last_code()) + 1) % 10**6).zfill(6)
    for left in (2, 1):
        _enter(page, wrong)
        expect(page.get_by_text(f"Осталось попыток: {left}.")).to_be_visible()
        expect(page.get_by_role("alert")).to_have_text("Неверный код.")
    _enter(page, wrong)
    expect(page.get_by_role("alert")).to_have_text(
        "Количество попыток ввода кода исчерпано, запустите попытку авторизации заново"
    )
    again = page.get_by_role("button", name="Начать заново")
    expect(again).to_be_focused()
    again.press("Enter")
    expect(page.get_by_label("Номер телефона")).to_be_visible()


def test_codeless_path(example, page, browser):
    url, log = example()
    page.goto(url + "/?demo=codeless")
    page.get_by_label("Номер телефона").fill(PHONE)
    page.get_by_role("button", name="Получить код").click()
    match = page.locator(".sdkauth-match")
    expect(match).to_contain_text("Выберите на телефоне число")
    number = re.search(r"\d+", match.inner_text()).group(0)

    phone = browser.new_page()  # the user's phone opens the link from the push
    phone.goto(log.last_link())
    phone.get_by_role("button", name=number, exact=True).click()
    expect(phone.get_by_role("heading")).to_have_text("Вход подтверждён")
    phone.close()

    _assert_signed_in(page)


def test_english_texts_follow_the_page_language(example, page):
    url, log = example()
    page.goto(url + "/?lang=en")
    expect(page.get_by_label("Phone number")).to_be_visible()
    expect(page.get_by_role("button", name="Get a code")).to_be_visible()
