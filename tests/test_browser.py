"""End-to-end: the example app's home page in headless Chromium, driven by Playwright.

A person's view of every path: the code path, a wrong code then the right one,
fallback to the second channel, resend after the cooldown, attempts exhausted, and
the codeless path; then the widget's own behaviour: no stale status beside an
error, the number and "change number", Retry-After countdowns, accessible errors,
theming and small screens, its texts for every error type and its Accept-Language,
a refused fetch, and axe-core's accessibility check of every state in light and
dark colour schemes. Most of those run at a phone's width (375 px) and a desktop's
(1280 px). Each test saves a screenshot of its final state in its temporary folder.

Needs Debian's ``chromium`` and the ``playwright`` Python package (no browser
download: Playwright drives /usr/bin/chromium), and for the accessibility checks
axe-core from npm in ``.venv/axe`` (``make test`` installs it). Without them the
tests are skipped with the reason, unless ``SDKAUTH_REQUIRE_BROWSER=1`` (set by
``.ci/run``), which turns a missing browser or axe-core into a failure.

Countdowns run on Playwright's fake clock (``page.clock``), paused, so that the
seconds shown are exact and nothing waits for real time to pass.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .spec import ERRORS

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
WIDTHS = (375, 1280)
AXE_JS = Path(__file__).parent.parent / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


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
        # The dev sender writes the text in the session's language.
        return re.search(r"(?:Код подтверждения|Verification code): (\d+)", self.messages()[-1]).group(1)

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
def new_page(browser, tmp_path, request) -> Iterator[Callable[..., Page]]:
    """``new_page(width=1280, color_scheme="light", locale="ru-RU", clock=False)``: a
    page in a context of its own; ``clock=True`` installs Playwright's fake clock.
    Each page's last state is saved as a screenshot."""
    pages: list[Page] = []

    def new(
        *, width: int = 1280, color_scheme: str = "light", locale: str = "ru-RU", clock: bool = False
    ) -> Page:
        context = browser.new_context(
            locale=locale, color_scheme=color_scheme, viewport={"width": width, "height": 800}
        )
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        if clock:
            page.clock.install()
        pages.append(page)
        return page

    yield new
    for index, page in enumerate(pages):
        suffix = f"-{index}" if index else ""
        page.screenshot(path=str(tmp_path / f"{request.node.name}{suffix}.png"), full_page=True)
        page.context.close()


@pytest.fixture
def page(new_page) -> Page:
    return new_page()


@pytest.fixture(params=WIDTHS, ids=lambda width: f"{width}px")
def width(request) -> int:
    """The viewport width: a phone's and a desktop's."""
    return request.param


@pytest.fixture
def screen(new_page, width) -> Page:
    """A page at each of the two widths."""
    return new_page(width=width)


@pytest.fixture
def axe() -> Callable[[Page, str], None]:
    """``axe(page, state)``: run axe-core on the page; no serious or critical violation."""
    if not AXE_JS.exists():
        reason = f"the accessibility checks need axe-core at {AXE_JS} (make test installs it)"
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)

    def check(page: Page, state: str) -> None:
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.add_script_tag(path=str(AXE_JS))
        violations = page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => ({rule: v.id, impact: v.impact, help: v.help,
                              nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary)}))"""
        )
        assert violations == [], f"{state}: {json.dumps(violations, ensure_ascii=False, indent=1)}"

    return check


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

    phone = browser.new_page(locale="ru-RU")  # the user's phone opens the link from the push
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


# -- the widget's own behaviour, at a phone's and a desktop's width ------------------

TYPED = "+7 999 123-45-67"  # how a person types PHONE
OTHER = "+79991234568"
EN = {
    "phone": "Phone number",
    "send": "Get a code",
    "code": "Code from the message",
    "change": "Change number",
    "restart": "Start again",
}
RECORDER = """
window.__sdkauth = {statuses: [], errors: []};
document.addEventListener("sdkauth:error", (event) => window.__sdkauth.errors.push(event.detail));
new MutationObserver(() => {
  document.querySelectorAll(".sdkauth-status").forEach((node) => {
    const seen = window.__sdkauth.statuses;
    if (node.textContent && seen[seen.length - 1] !== node.textContent) seen.push(node.textContent);
  });
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def _record(page: Page) -> None:
    """Keep every text the status line showed, and the sdkauth:error details."""
    page.add_init_script(RECORDER)


def _statuses(page: Page) -> list[str]:
    return page.evaluate("window.__sdkauth.statuses")


def _error(page: Page):
    return page.locator(".sdkauth-error")


def _status(page: Page):
    return page.locator(".sdkauth-status")


def _freeze_clock(page: Page) -> None:
    """Stop the page's (installed) fake clock: from now on only run_for moves it."""
    page.clock.pause_at(page.evaluate("Date.now()") + 1000)


def _wrong(code: str) -> str:
    return str((int(code) + 1) % 10**6).zfill(6)


def _is_send(url: str) -> Callable[..., bool]:
    return lambda response: response.request.method == "POST" and response.url == url + "/"


def _capture_form_submit(page: Page) -> list[dict]:
    """What the page posts to /formSubmit: the sdkauth:success event's detail."""
    posted: list[dict] = []

    def handle(route):
        posted.append(route.request.post_data_json)
        route.continue_()

    page.route("**/formSubmit", handle)
    return posted


# 1. No stale status beside an error; a new step clears old errors.


def test_a_refused_number_replaces_the_sending_status_and_the_next_step_clears_it(example, screen):
    url, log = example()
    page = screen
    _record(page)
    page.goto(url)
    page.get_by_label("Номер телефона").fill("12")
    page.get_by_role("button", name="Получить код").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Проверьте номер: введите его в международном формате, например +7 999 123-45-67."
    )
    expect(_status(page)).to_be_empty()
    assert _statuses(page) == ["Отправляем…"]  # it was shown, then cleared
    page.get_by_label("Номер телефона").fill(PHONE)
    page.get_by_role("button", name="Получить код").click()
    expect(page.get_by_label("Код из сообщения")).to_be_visible()
    expect(_error(page)).to_be_empty()


def test_an_error_after_a_status_clears_it_and_resend_clears_the_error(example, screen):
    url, log = example({"DEMO_CHANNEL_SETTINGS": {"restartCooldown": 0}})
    page = screen
    _request_code(page, url)
    _enter(page, _wrong(log.last_code()))
    expect(page.get_by_role("alert")).to_have_text("Неверный код.")
    page.get_by_role("button", name="Отправить код ещё раз").click()
    expect(_status(page)).to_have_text("Код отправлен ещё раз.")
    expect(_error(page)).to_be_empty()  # the new step cleared the old error
    _enter(page, _wrong(log.last_code()))
    expect(page.get_by_role("alert")).to_have_text("Неверный код.")
    expect(_status(page)).to_be_empty()


def test_a_failed_delivery_ends_with_no_sending_status(example, screen):
    url, log = example({"DEV_FAILING_CHANNELS": ["sms", "voice"]})
    page = screen
    _record(page)
    page.goto(url)
    page.get_by_label("Номер телефона").fill(PHONE)
    page.get_by_role("button", name="Получить код").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Не удалось отправить сообщение на этот номер. Начните заново."
    )
    expect(_status(page)).to_be_empty()
    assert "Отправляем…" in _statuses(page)
    expect(page.get_by_role("button", name="Начать заново")).to_be_focused()


# 2. The number on the code and codeless steps, and "change number".


def test_the_code_step_shows_the_number_and_change_number_starts_over(example, screen):
    url, log = example()
    page = screen
    posted = _capture_form_submit(page)
    page.goto(url)
    page.get_by_label("Номер телефона").fill(TYPED)
    with page.expect_response(_is_send(url)) as sent:
        page.get_by_role("button", name="Получить код").click()
    old = sent.value.json()["requestId"]
    expect(page.get_by_label("Код из сообщения")).to_be_visible()
    expect(page.get_by_text(f"Номер: {PHONE}", exact=True)).to_be_visible()  # the server's E.164

    # The old session's channel long poll is waiting; changing the number aborts it.
    with page.expect_event("requestfailed", lambda request: old in request.url):
        page.get_by_role("button", name="Изменить номер").click()
    later: list[str] = []
    page.on("request", lambda request: later.append(request.url))
    phone = page.get_by_label("Номер телефона")
    expect(phone).to_have_value(TYPED)  # as typed
    expect(phone).to_be_focused()

    phone.fill("+7 999 123-45-68")
    with page.expect_response(_is_send(url)) as sent:
        phone.press("Enter")
    new = sent.value.json()["requestId"]
    expect(page.get_by_text(f"Номер: {OTHER}", exact=True)).to_be_visible()
    _enter(page, log.last_code())
    expect(page.locator("#signed-in")).to_contain_text(f"Вы вошли как {OTHER}")
    assert posted == [{"requestId": new, "recipient": "+7 999 123-45-68", "e164": OTHER}]
    assert [u for u in later if old in u] == []  # no loop of the old session went on


def test_without_the_recipient_header_the_typed_number_is_shown(example, screen):
    url, log = example()
    page = screen
    posted = _capture_form_submit(page)

    def hide_header(route):  # what a cross-origin page sees when it is not exposed
        if route.request.method != "POST":
            return route.fallback()
        response = route.fetch()
        headers = {k: v for k, v in response.headers.items() if k.lower() != "sdkauth-recipient"}
        route.fulfill(response=response, headers=headers)

    page.route(url + "/", hide_header)
    page.goto(url)
    page.get_by_label("Номер телефона").fill(TYPED)
    page.get_by_role("button", name="Получить код").click()
    expect(page.get_by_text(f"Номер: {TYPED}", exact=True)).to_be_visible()
    _enter(page, log.last_code())
    _assert_signed_in(page)
    assert [(p["recipient"], p["e164"]) for p in posted] == [(TYPED, None)]


def test_the_codeless_step_shows_the_number_and_change_number_works(example, screen):
    url, log = example()
    page = screen
    page.goto(url + "/?demo=codeless&lang=en")
    page.get_by_label(EN["phone"]).fill(TYPED)
    page.get_by_role("button", name=EN["send"]).click()
    expect(page.locator(".sdkauth-match")).to_contain_text("Pick the number")
    expect(page.get_by_text(f"Number: {PHONE}", exact=True)).to_be_visible()
    page.get_by_role("button", name=EN["change"]).click()
    expect(page.get_by_label(EN["phone"])).to_have_value(TYPED)
    expect(page.locator(".sdkauth-match")).to_have_count(0)


# 3. A countdown from Retry-After on the refused button.

WAIT = "Слишком много попыток. Подождите и попробуйте ещё раз."


def _refused(page: Page, click: Callable[[], None]) -> int:
    """Click, expect a 429, and return its Retry-After."""
    with page.expect_response(lambda response: response.status == 429) as refused:
        click()
    assert refused.value.json()["type"] == "RateLimitException"
    return int(refused.value.headers["retry-after"])


def _counts_down(page: Page, button, seconds: int, waiting: str, label: str, focused) -> None:
    """The refused button shows the seconds left, disabled; then comes back."""
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(WAIT)
    expect(_status(page)).to_be_empty()
    expect(focused).to_be_focused()
    expect(focused).to_have_accessible_description(WAIT)
    expect(button).to_be_disabled()
    expect(button).to_have_text(waiting.format(seconds))
    page.clock.run_for(1000)
    expect(button).to_have_text(waiting.format(seconds - 1))
    expect(button).to_be_disabled()
    page.clock.run_for((seconds - 1) * 1000)
    expect(button).to_be_enabled()
    expect(button).to_have_text(label)
    expect(_error(page)).to_be_empty()  # the wait is over: so is its error
    expect(focused).not_to_have_attribute("aria-describedby", re.compile("."))


def test_a_rate_limited_send_counts_down_on_the_send_button(example, new_page, width):
    url, log = example({"SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT": "1/minute"})
    page = new_page(width=width, clock=True)
    _request_code(page, url)
    _freeze_clock(page)
    page.get_by_role("button", name="Изменить номер").click()
    phone = page.get_by_label("Номер телефона")
    button = page.locator(".sdkauth-phone button[type=submit]")
    seconds = _refused(page, button.click)
    assert 1 < seconds <= 60
    _counts_down(page, button, seconds, "Повторить через {} с", "Получить код", phone)


def test_a_rate_limited_code_check_counts_down_on_the_confirm_button(example, new_page, width):
    url, log = example({"SDKAUTH_RATELIMIT_CHECK_CODE_PER_SESSION": "1/minute"})
    page = new_page(width=width, clock=True)
    _request_code(page, url)
    _freeze_clock(page)
    wrong = _wrong(log.last_code())
    _enter(page, wrong)
    expect(page.get_by_role("alert")).to_have_text("Неверный код.")
    code = page.get_by_label("Код из сообщения")
    button = page.locator(".sdkauth-code button[type=submit]")
    seconds = _refused(page, lambda: _enter(page, wrong))
    _counts_down(page, button, seconds, "Повторить через {} с", "Подтвердить", code)


def test_a_rate_limited_resend_counts_down_on_the_resend_button(example, new_page, width):
    url, log = example(
        {
            "SDKAUTH_RATELIMIT_RESEND_PER_SESSION": "1/minute",
            "DEMO_CHANNEL_SETTINGS": {"restartCooldown": 0},
        }
    )
    page = new_page(width=width, clock=True)
    _request_code(page, url)
    _freeze_clock(page)
    resend = page.locator("button.sdkauth-resend")
    resend.click()
    expect(_status(page)).to_have_text("Код отправлен ещё раз.")
    code = page.get_by_label("Код из сообщения")
    seconds = _refused(page, resend.click)
    _counts_down(page, resend, seconds, "Повторная отправка через {} с", "Отправить код ещё раз", code)


# 4. Accessible errors: aria-invalid, aria-describedby, focus.


def _describes(page: Page, field) -> None:
    """``field``'s aria-describedby names the error element."""
    error_id = _error(page).get_attribute("id")
    assert error_id
    expect(field).to_have_attribute("aria-describedby", error_id)


def test_a_refused_number_marks_the_phone_input(example, screen):
    url, log = example()
    page = screen
    page.goto(url + "/?lang=en")
    phone = page.get_by_label(EN["phone"])
    phone.fill("12")
    page.get_by_role("button", name=EN["send"]).click()
    text = "Check the number: enter it in international format, for example +1 201 555 0123."
    expect(page.get_by_role("alert")).to_have_text(text)
    expect(phone).to_have_attribute("aria-invalid", "true")
    _describes(page, phone)
    expect(phone).to_have_accessible_description(text)
    expect(phone).to_be_focused()
    phone.press_sequentially("3")  # the user edits: no longer known to be invalid
    expect(phone).not_to_have_attribute("aria-invalid", "true")


def test_a_wrong_code_marks_the_code_input(example, screen):
    url, log = example()
    page = screen
    _request_code(page, url)
    code = page.get_by_label("Код из сообщения")
    expect(code).not_to_have_attribute("aria-invalid", "true")
    _enter(page, _wrong(log.last_code()))
    expect(page.get_by_role("alert")).to_have_text("Неверный код.")
    expect(code).to_have_attribute("aria-invalid", "true")
    _describes(page, code)
    expect(code).to_have_accessible_description("Неверный код.")
    expect(code).to_be_focused()
    code.press("Backspace")
    expect(code).not_to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert")).to_have_text("Неверный код.")


def test_an_error_that_ends_the_attempt_focuses_the_restart_button_it_describes(example, screen):
    url, log = example()
    page = screen
    _request_code(page, url)
    wrong = _wrong(log.last_code())
    for _ in range(3):
        _enter(page, wrong)
        expect(page.get_by_role("alert")).not_to_be_empty()
    text = "Количество попыток ввода кода исчерпано, запустите попытку авторизации заново"
    expect(page.get_by_role("alert")).to_have_text(text)
    again = page.get_by_role("button", name="Начать заново")
    expect(again).to_be_focused()
    _describes(page, again)
    expect(again).to_have_accessible_description(text)
    again.press("Enter")
    phone = page.get_by_label("Номер телефона")
    expect(phone).to_be_focused()
    expect(phone).to_have_value(PHONE)
    expect(_error(page)).to_be_empty()
    expect(page.locator("[aria-invalid], [aria-describedby]")).to_have_count(0)


# 5. Theming, the dark scheme, touch targets, 320 px.

THEME = {
    "--sdkauth-accent": "rgb(10, 20, 30)",
    "--sdkauth-accent-fg": "rgb(250, 240, 230)",
    "--sdkauth-bg": "rgb(1, 2, 3)",
    "--sdkauth-fg": "rgb(200, 201, 202)",
    "--sdkauth-border": "rgb(4, 5, 6)",
    "--sdkauth-error": "rgb(255, 100, 101)",
    "--sdkauth-radius": "3px",
}


def _style(page: Page, selector: str, *properties: str) -> list[str]:
    return page.locator(selector).first.evaluate(
        "(node, names) => names.map((name) => getComputedStyle(node)[name])", list(properties)
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_custom_properties_theme_the_widget_in_either_scheme(example, new_page, width, scheme):
    url, log = example()
    page = new_page(width=width, color_scheme=scheme)
    page.goto(url)
    page.add_style_tag(content=":root {" + "".join(f"{k}: {v};" for k, v in THEME.items()) + "}")
    page.get_by_label("Номер телефона").fill("12")
    page.get_by_role("button", name="Получить код").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert _style(page, ".sdkauth-widget", "backgroundColor", "color", "borderTopColor", "borderTopLeftRadius") == [
        THEME["--sdkauth-bg"], THEME["--sdkauth-fg"], THEME["--sdkauth-border"], "3px",
    ]
    assert _style(page, ".sdkauth-phone button", "backgroundColor", "color") == [
        THEME["--sdkauth-accent"], THEME["--sdkauth-accent-fg"],
    ]
    assert _style(page, ".sdkauth-error", "color") == [THEME["--sdkauth-error"]]


@pytest.mark.parametrize(
    "scheme, background, text", [("light", "rgb(255, 255, 255)", "rgb(27, 31, 36)"),
                                 ("dark", "rgb(30, 33, 37)", "rgb(232, 234, 237)")]
)
def test_the_default_colours_follow_the_colour_scheme(example, new_page, width, scheme, background, text):
    url, log = example()
    page = new_page(width=width, color_scheme=scheme)
    page.goto(url)
    expect(page.get_by_label("Номер телефона")).to_be_visible()
    assert _style(page, ".sdkauth-widget", "backgroundColor", "color") == [background, text]


def _controls_fit(page: Page, width: int, *, min_width: float = 0) -> None:
    """Nothing scrolls sideways; every control is inside the viewport, 44 px high
    and at least ``min_width`` wide."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    controls = page.locator(".sdkauth-widget button:visible, .sdkauth-widget input:visible")
    assert controls.count() > 0
    for index in range(controls.count()):
        box = controls.nth(index).bounding_box()
        name = controls.nth(index).evaluate("(node) => node.outerHTML.slice(0, 80)")
        assert box["height"] >= 44, f"{name} is {box['height']} px high"
        assert box["width"] >= min_width, f"{name} is {box['width']} px wide"
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{name} sticks out: {box}"


def test_touch_targets_are_44_px_high_on_every_step(example, new_page, width):
    url, log = example({"DEMO_CHANNEL_SETTINGS": {"restartCooldown": 0}})
    page = new_page(width=width)
    page.goto(url)
    expect(page.get_by_label("Номер телефона")).to_be_visible()
    _controls_fit(page, width)
    page.get_by_label("Номер телефона").fill(PHONE)
    page.get_by_role("button", name="Получить код").click()
    expect(page.get_by_role("button", name="Отправить код ещё раз")).to_be_enabled()
    _controls_fit(page, width)


def test_usable_at_320_px(example, new_page, browser):
    url, log = example()
    page = new_page(width=320)
    page.goto(url)
    expect(page.get_by_label("Номер телефона")).to_be_visible()
    _controls_fit(page, 320)
    page.get_by_label("Номер телефона").fill(TYPED)
    page.get_by_role("button", name="Получить код").click()
    expect(page.get_by_text(f"Номер: {PHONE}")).to_be_visible()
    _controls_fit(page, 320)
    _enter(page, _wrong(log.last_code()))
    expect(page.get_by_role("alert")).to_have_text("Неверный код.")
    _controls_fit(page, 320)
    _enter(page, log.last_code())
    _assert_signed_in(page)

    page = new_page(width=320)  # and the codeless step, with its big number
    page.goto(url + "/?demo=codeless")
    page.get_by_label("Номер телефона").fill(PHONE)
    page.get_by_role("button", name="Получить код").click()
    expect(page.locator(".sdkauth-match")).to_be_visible()
    _controls_fit(page, 320)


# 6. The widget's texts: every error type in English and Russian, Accept-Language.

CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)
SERVER_WORDS = "the server's own words"


def test_both_text_tables_cover_every_error_type(example, page):
    url, log = example()
    page.goto(url)
    tables = page.evaluate("window.SdkAuthWidget.texts")
    assert set(tables) == {"ru", "en"}
    assert set(tables["ru"]) == set(tables["en"])
    for error_type in ERRORS:
        en, ru = tables["en"].get(error_type), tables["ru"].get(error_type)
        assert en and not CYRILLIC.search(en), (error_type, en)
        assert ru and CYRILLIC.search(ru), (error_type, ru)
    assert not [key for key, text in tables["en"].items() if CYRILLIC.search(text)]
    for alias, successor in [
        ("CommonForbiddenException", "ForbiddenException"),
        ("FormNotFoundException", "WidgetNotFoundException"),
        ("FormIsBlockedException", "WidgetIsBlockedException"),
        ("AttempsExpiredException", "AttemptsExpiredException"),
    ]:
        assert tables["en"][alias] == tables["en"][successor]
        assert tables["ru"][alias] == tables["ru"][successor]


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_error_type_is_shown_in_the_widgets_words(example, new_page, width, lang):
    url, log = example()
    page = new_page(width=width, locale="ru-RU" if lang == "en" else "en-US")
    _record(page)
    current: dict[str, str] = {}

    def refuse(route):
        entry = ERRORS[current["type"]]
        body = {"type": current["type"], "message": SERVER_WORDS, "httpStatus": entry["httpStatus"]}
        route.fulfill(status=entry["httpStatus"], json=body)

    page.route(re.compile(r".*/widget/[^/]+$"), refuse)
    for error_type in ERRORS:
        current["type"] = error_type
        page.goto(f"{url}/?lang={lang}")
        expected = page.evaluate(f"window.SdkAuthWidget.texts[{lang!r}][{error_type!r}]")
        expect(page.get_by_role("alert")).to_have_text(expected)
        expect(page.locator("body")).not_to_contain_text(SERVER_WORDS)
        again = page.get_by_role("button", name=EN["restart"] if lang == "en" else "Начать заново")
        expect(again).to_be_focused()
        assert page.evaluate("window.__sdkauth.errors") == [{"type": error_type, "message": expected}]


def test_a_wrong_pick_on_the_phone_says_what_happened(example, new_page, width, browser):
    url, log = example()
    page = new_page(width=width)
    page.goto(url + "/?demo=codeless&lang=en")
    page.get_by_label(EN["phone"]).fill(PHONE)
    page.get_by_role("button", name=EN["send"]).click()
    match = page.locator(".sdkauth-match")
    expect(match).to_contain_text("Pick the number")
    number = re.search(r"\d+", match.inner_text()).group(0)

    phone = browser.new_page(locale="en-US")  # the user's phone, where another number is picked
    phone.goto(log.last_link())
    choices = phone.locator("form button").all_inner_texts()
    assert number in choices and len(choices) > 1
    phone.get_by_role("button", name=next(c for c in choices if c != number), exact=True).click()
    expect(phone.get_by_role("heading")).to_have_text("Sign-in not confirmed")
    phone.close()

    text = "A different number was picked on the phone, so this sign-in was stopped. Start again."
    expect(page.get_by_role("alert")).to_have_text(text)
    expect(page.get_by_role("button", name=EN["restart"])).to_be_focused()


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_request_of_the_widget_says_its_language(example, new_page, width, lang):
    url, log = example()
    page = new_page(width=width, locale="ru-RU" if lang == "en" else "en-US")
    seen: list[tuple[str, str | None]] = []

    def note(request):
        if request.resource_type == "fetch" and not request.url.endswith("/formSubmit"):
            seen.append((request.url, request.headers.get("accept-language")))

    page.on("request", note)
    labels = EN if lang == "en" else {"phone": "Номер телефона", "send": "Получить код", "code": "Код из сообщения"}
    page.goto(f"{url}/?lang={lang}")
    page.get_by_label(labels["phone"]).fill(PHONE)
    page.get_by_role("button", name=labels["send"]).click()
    code = page.get_by_label(labels["code"])
    expect(code).to_be_visible()
    code.fill(_wrong(log.last_code()))
    code.press("Enter")
    expect(page.get_by_role("alert")).not_to_be_empty()
    expect(page.locator(".sdkauth-code button[type=submit]")).to_be_enabled()
    code.fill(log.last_code())
    code.press("Enter")
    expect(page.locator("#signed-in")).to_be_visible()
    paths = {re.sub(r"[0-9a-f-]{36}", "{id}", u.removeprefix(url)).partition("?")[0] for u, _ in seen}
    assert {"/widget/{id}", "/", "/longPolling/{id}/channel", "/{id}/checkCode", "/{id}/channel"} <= paths
    assert {language for _, language in seen} == {lang}


def test_texts_can_be_overridden_and_a_token_url_is_asked_in_the_language(example, new_page, width):
    url, log = example()
    page = new_page(width=width)
    widget_id = page.request.get(url + "/info").json()["demoWidgetId"]
    texts = {"sendButton": "Sign me in", "invalidPhone": "Not a number we can use."}
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Custom</title></head>'
        f'<body><main><h1>Custom</h1><div class="sdkauth-widget" data-widget-id="{widget_id}"'
        f' data-api="" data-token-url="/widgetToken" data-texts=\'{json.dumps(texts)}\'></div>'
        '<script src="/sdkauth-static/sdkauth-widget.js"></script></main></body></html>'
    )
    page.route(url + "/custom", lambda route: route.fulfill(content_type="text/html", body=html))
    with page.expect_request(url + "/widgetToken") as token_request:
        page.goto(url + "/custom")
    assert token_request.value.header_value("accept-language") == "en"
    expect(page.locator(".sdkauth-widget")).to_have_attribute("lang", "en")
    page.get_by_label(EN["phone"]).fill("12")
    page.get_by_role("button", name="Sign me in").click()
    expect(page.get_by_role("alert")).to_have_text("Not a number we can use.")


# 7. A request the browser refuses: the widget's networkError text and a hint.

NETWORK = "Could not reach the sign-in service. Check your connection and try again."


def _console_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    return errors


def _assert_hint(errors: list[str]) -> None:
    hints = [text for text in errors if text.startswith("flask-sdkauth widget:")]
    assert hints, errors
    assert "CORS" in hints[0] and "docs/deployment.rst" in hints[0]


@pytest.fixture
def other_origin() -> Iterator[Callable[[str], str]]:
    """``serve(html) -> url``: a page on another loopback port, so another origin."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def serve(html: str) -> str:
        pages["/embed"] = html.encode()
        return f"http://127.0.0.1:{server.server_port}/embed"

    yield serve
    server.shutdown()
    server.server_close()


def test_a_cross_origin_page_without_cors_gets_the_network_error_text(
    example, new_page, width, other_origin
):
    url, log = example()
    page = new_page(width=width)
    errors = _console_errors(page)
    widget_id = page.request.get(url + "/info").json()["demoWidgetId"]
    token = page.request.get(url + "/widgetToken").json()["token"]
    # The widget's requests go from that page to an API on another origin that
    # answers no CORS, so the browser refuses them.
    embed = other_origin(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Embed</title></head>'
        f'<body><main><h1>Embed</h1><div class="sdkauth-widget" data-widget-id="{widget_id}"'
        f' data-api="{url}" data-token="{token}"></div>'
        f'<script src="{url}/sdkauth-static/sdkauth-widget.js"></script></main></body></html>'
    )
    page.goto(embed)
    expect(page.get_by_role("alert")).to_have_text(NETWORK)
    expect(page.get_by_role("button", name=EN["restart"])).to_be_focused()
    assert any("CORS policy" in text for text in errors)  # the browser's own word for it
    _assert_hint(errors)


def test_a_send_the_network_drops_keeps_the_form_to_try_again(example, new_page, width):
    url, log = example()
    page = new_page(width=width)
    errors = _console_errors(page)
    page.route(url + "/", lambda route: route.abort("internetdisconnected")
               if route.request.method == "POST" else route.fallback())
    page.goto(url + "/?lang=en")
    page.get_by_label(EN["phone"]).fill(PHONE)
    send = page.get_by_role("button", name=EN["send"])
    send.click()
    expect(page.get_by_role("alert")).to_have_text(NETWORK)
    expect(page.locator("body")).not_to_contain_text("Failed to fetch")
    expect(_status(page)).to_be_empty()
    expect(send).to_be_focused()
    expect(send).to_have_accessible_description(NETWORK)
    _assert_hint(errors)
    page.unroute(url + "/")
    send.click()  # the network is back
    expect(page.get_by_label(EN["code"])).to_be_visible()
    expect(_error(page)).to_be_empty()



# 8. The dev sender's text follows the session's language.


@pytest.mark.parametrize(
    "text", ["Код подтверждения: 123456", "Verification code: 123456"], ids=["ru", "en"]
)
def test_the_dev_log_reads_the_code_in_either_language(text):
    log = DevLog()
    log.lines.append(f"[dev sender] sms to {PHONE} (session 1): {text}")
    assert log.last_code() == "123456"

# 9. axe-core: no serious or critical violation in any state, in either scheme.


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_widget_state_passes_axe(example, new_page, width, scheme, axe, browser):
    url, log = example()
    page = new_page(width=width, color_scheme=scheme)
    # The host's backend turns the sign-in down, so the widget stays in its success state.
    page.route("**/formSubmit", lambda route: route.fulfill(status=400, json={"signedIn": False}))
    page.goto(url + "/?lang=en")
    phone = page.get_by_label(EN["phone"])
    expect(phone).to_be_visible()
    axe(page, "phone form")
    phone.fill("12")
    phone.press("Enter")
    expect(phone).to_have_attribute("aria-invalid", "true")
    axe(page, "phone form with an error")
    phone.fill(PHONE)
    phone.press("Enter")
    code = page.get_by_label(EN["code"])
    expect(code).to_be_focused()
    axe(page, "code step")
    code.fill(_wrong(log.last_code()))
    code.press("Enter")
    expect(code).to_have_attribute("aria-invalid", "true")
    axe(page, "code step with an error")
    expect(page.get_by_role("button", name="Confirm")).to_be_enabled()
    code.fill(log.last_code())
    code.press("Enter")
    expect(page.get_by_text("Your number is confirmed.")).to_be_visible()
    expect(page.locator("#result")).to_have_text("The server did not confirm the sign-in.")
    axe(page, "success")

    page.goto(url + "/?demo=codeless&lang=en")
    page.get_by_label(EN["phone"]).fill(PHONE)
    page.get_by_role("button", name=EN["send"]).click()
    expect(page.locator(".sdkauth-match")).to_be_visible()
    axe(page, "codeless step")
    phone_page = browser.new_page()
    phone_page.goto(log.last_link())
    number = re.search(r"\d+", page.locator(".sdkauth-match").inner_text()).group(0)
    choices = phone_page.locator("form button").all_inner_texts()
    phone_page.get_by_role("button", name=next(c for c in choices if c != number), exact=True).click()
    phone_page.close()
    expect(page.get_by_role("button", name=EN["restart"])).to_be_focused()
    axe(page, "error that ends the attempt")


# -- the codeless confirmation page, on the user's phone -----------------------------

PAGE_TEXTS = {
    "en-US": ("en", "Confirm the sign-in", "Sign-in confirmed", "Sign-in not confirmed",
              "The number picked is not the one on the sign-in page"),
    "ru-RU": ("ru", "Подтвердите вход", "Вход подтверждён", "Вход не подтверждён",
              "Выбрано не то число, что на странице входа"),
}


def _pushed(example, new_page) -> tuple[str, str]:
    """Start a codeless sign-in in a desktop page; (the link sent, the number shown)."""
    url, log = example()
    page = new_page()
    page.goto(url + "/?demo=codeless")
    page.get_by_label("Номер телефона").fill(PHONE)
    page.get_by_role("button", name="Получить код").click()
    match = page.locator(".sdkauth-match")
    expect(match).to_be_visible()
    return log.last_link(), re.search(r"\d+", match.inner_text()).group(0)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("locale", sorted(PAGE_TEXTS))
def test_the_confirmation_page_on_a_small_phone(example, new_page, axe, scheme, locale):
    lang, title, confirmed, _, _ = PAGE_TEXTS[locale]
    link, number = _pushed(example, new_page)
    phone = new_page(width=320, color_scheme=scheme, locale=locale)
    phone.goto(link)
    expect(phone.locator("html")).to_have_attribute("lang", lang)
    expect(phone.get_by_role("heading")).to_have_text(title)
    if lang == "en":
        assert not CYRILLIC.search(phone.locator("body").inner_text())
    _controls_fit(phone, 320, min_width=44)
    axe(phone, f"confirmation page, {scheme}, {lang}")
    phone.get_by_role("button", name=number, exact=True).click()
    expect(phone.get_by_role("heading")).to_have_text(confirmed)
    expect(phone.get_by_role("status")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 320
    axe(phone, f"confirmed page, {scheme}, {lang}")


@pytest.mark.parametrize("locale", sorted(PAGE_TEXTS))
def test_a_wrong_pick_on_the_confirmation_page_says_so(example, new_page, axe, locale):
    _, _, _, refused, because = PAGE_TEXTS[locale]
    link, number = _pushed(example, new_page)
    phone = new_page(width=320, locale=locale)
    phone.goto(link)
    choices = phone.locator("form button").all_inner_texts()
    phone.get_by_role("button", name=next(c for c in choices if c != number), exact=True).click()
    expect(phone.get_by_role("heading")).to_have_text(refused)
    expect(phone.get_by_role("status")).to_contain_text(because)
    axe(phone, "refused page")


# -- a page written for SIGMA's widget ------------------------------------------


def test_a_page_written_for_sigmas_widget(example, page):
    """window.OTP_WIDGETS and #otp-widget, with only the script tag pointing here:
    the widget appears in the entry's locale, focused, and fires SIGMA's
    ``code:check`` (detail[0] = {requestId, recipient, status}) beside ours."""
    url, log = example()
    page.goto(f"{url}/sigma")
    page.evaluate(
        """() => {
            window.seen = [];
            const box = document.getElementById("otp-widget");
            box.addEventListener("code:check", (e) => window.seen.push(["code:check", e.detail]));
            box.addEventListener("sdkauth:success", (e) => window.seen.push(["sdkauth:success", e.detail]));
        }"""
    )
    phone = page.get_by_label("Phone number")
    expect(phone).to_be_focused()  # autofocus: true
    phone.fill(PHONE)
    page.get_by_role("button", name="Get a code").click()
    code_input = page.get_by_label("Code from the message")
    expect(code_input).to_be_visible()
    code_input.fill(log.last_code())
    code_input.press("Enter")
    expect(page.locator("#result")).to_have_text("Signed in.")
    seen = page.evaluate("window.seen")
    assert [name for name, _ in seen] == ["sdkauth:success", "code:check"]
    (check,) = seen[1][1]
    assert check["recipient"] == PHONE and check["status"] == "confirmed"
    assert check["requestId"] == seen[0][1]["requestId"]

