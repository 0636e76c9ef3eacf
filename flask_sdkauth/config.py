"""Configuration: every ``SDKAUTH_*`` key with its default, in one mapping.

``docs/configuration.rst`` mirrors this mapping one-to-one. Values are plain data; behaviour
comes through the hooks on :class:`~flask_sdkauth.SdkAuth`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .dispatchers import DISPATCHERS
from .i18n import N_, available_locales, translations
from .phones import InvalidPhoneNumber, to_e164

__all__ = ["DEFAULT_CONFIG", "OPERATION_IDS", "Settings"]

#: The operations whose routes SDKAUTH_DISABLED_OPERATIONS can switch off.
OPERATION_IDS = frozenset(
    {
        "getWidget",
        "send",
        "getChannel",
        "getStatus",
        "checkCode",
        "checkStatusAndComplete",
        "complete",
        "resend",
        "getChannelLongPolling",
        "getStatusLongPolling",
        "confirm",
    }
)

DEFAULT_CONFIG: Mapping[str, Any] = {
    # Where the routes are mounted; "" is the application root.
    "SDKAUTH_URL_PREFIX": "",
    # Key of the codes' HMAC; None falls back to the app's SECRET_KEY.
    "SDKAUTH_CODE_SECRET": None,
    # Audience claim that scopes widget tokens to this API.
    "SDKAUTH_JWT_AUDIENCE": "flask-sdkauth",
    # Default lifetime of tokens from SdkAuth.create_token, in seconds.
    "SDKAUTH_TOKEN_EXPIRES": 3600,
    # Region (ISO 3166) for numbers written without "+"; None rejects them.
    "SDKAUTH_DEFAULT_REGION": None,
    # Languages sessions and the confirmation page are written in, chosen from
    # the request's Accept-Language; each needs a catalogue (ours: "ru", "en").
    "SDKAUTH_LOCALES": ("ru", "en"),
    # The locale when Accept-Language asks for none of SDKAUTH_LOCALES.
    "SDKAUTH_DEFAULT_LOCALE": "ru",
    # Text handed to senders; fields: {code}, {widget}, {minutes}. None: the
    # catalogue's text of the session's locale; a string: that text for every
    # locale; a mapping: by locale, the catalogue's where one is missing.
    "SDKAUTH_MESSAGE_TEXT": None,
    # The same for codeless channels; fields: {widget}, {minutes}.
    "SDKAUTH_CODELESS_TEXT": None,
    # Seconds from send until an unfinished session is closed.
    "SDKAUTH_SESSION_LIFETIME": 1800,
    # Seconds a session is kept before `flask sdkauth purge` deletes it.
    "SDKAUTH_RETENTION": 7 * 24 * 3600,
    # Codeless confirmations must pick the number the widget shows.
    "SDKAUTH_NUMBER_MATCHING": True,
    # Seconds a long poll waits for a change before answering 408.
    "SDKAUTH_LONG_POLLING_TIMEOUT": 25,
    # Longest gap, in seconds, between a waiting long poll's database reads, in
    # case a wake-up message was lost.
    "SDKAUTH_LONG_POLLING_INTERVAL": 5,
    # Where long polls learn of changes: memory:// (one process) or redis://….
    "SDKAUTH_NOTIFIER_URL": "memory://",
    # -- Delivery (docs/deployment.rst) -----------------------------------------
    # Where channel launches run: "inline" (in the send request) or "celery" (a
    # task on the Celery app at app.extensions["celery"], run by a worker).
    "SDKAUTH_DISPATCHER": "inline",
    # Seconds a sender may take before its channel counts as failed ("timeout").
    "SDKAUTH_SENDER_TIMEOUT": 10,
    # Retries of a launch whose sender raised RetryDelivery, before the fallback.
    "SDKAUTH_DELIVERY_RETRIES": 2,
    # Seconds a session may wait in "pending" before `flask sdkauth sweep` (or the
    # Celery sweep task) relaunches it: its worker died or its job was lost.
    "SDKAUTH_LAUNCH_DEADLINE": 60,
    # Seconds a process keeps a built-in widget it has read (0: read it every
    # time); its own changes apply at once, another process's within this time.
    "SDKAUTH_WIDGET_CACHE_SECONDS": 5,
    # operationIds whose routes answer 404, e.g. ["complete", "checkStatusAndComplete"]
    # when only the backend (through the Python API) may complete sessions.
    "SDKAUTH_DISABLED_OPERATIONS": (),
    # -- Abuse protection (docs/security.rst) ------------------------------------
    # Rate limits are `limits` strings ("3/minute;10/hour"); None or "" turns one off.
    # Where the counters live: memory:// (one process) or redis://….
    "SDKAUTH_RATELIMIT_STORAGE_URL": "memory://",
    # While that storage cannot be reached, count in each process (True) or answer
    # NoConnectionException (False); either way the outage is logged once.
    "SDKAUTH_RATELIMIT_FALLBACK_TO_MEMORY": True,
    "SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT": "3/minute",
    "SDKAUTH_RATELIMIT_SEND_PER_IP": "10/minute;50/hour",
    "SDKAUTH_RATELIMIT_SEND_PER_WIDGET": "600/minute",
    "SDKAUTH_RATELIMIT_CHECK_CODE_PER_SESSION": "10/minute",
    "SDKAUTH_RATELIMIT_CHECK_CODE_PER_IP": "60/minute",
    "SDKAUTH_RATELIMIT_RESEND_PER_SESSION": "5/minute",
    "SDKAUTH_RATELIMIT_RESEND_PER_IP": "20/minute",
    # Code checks for one phone number, across its sessions (taken before each
    # comparison, so a right code takes one too).
    "SDKAUTH_RATELIMIT_FAILED_CODES_PER_RECIPIENT": "10 per 15 minutes",
    # SMS-pumping caps: sends a day per widget, and per destination calling code
    # (an int for every code, or a mapping such as {"7": 50000, "*": 2000}).
    "SDKAUTH_DAILY_SEND_CAP_PER_WIDGET": 10000,
    "SDKAUTH_DAILY_SEND_CAP_PER_COUNTRY": 2000,
    # Skip SMS-like channels for numbers that cannot receive SMS (landlines, …).
    "SDKAUTH_SMS_TO_MOBILE_ONLY": True,
    # Captcha (spec §8): None, "google" (reCAPTCHA v3), "yandex" or "cloudflare".
    "SDKAUTH_CAPTCHA_PROVIDER": None,
    "SDKAUTH_CAPTCHA_SECRET": None,
    # The provider's public site key, handed to the browser widget.
    "SDKAUTH_CAPTCHA_SITE_KEY": None,
    "SDKAUTH_CAPTCHA_MIN_SCORE": 0.5,
    "SDKAUTH_CAPTCHA_FIRST_FREE_REQUESTS_PER_IP": 0,
    # Seconds a client IP's send count is remembered for the free requests.
    "SDKAUTH_CAPTCHA_COUNTER_TTL": 86400,
    # The provider's verify API; None means the provider's public URL.
    "SDKAUTH_CAPTCHA_VERIFY_URL": None,
    "SDKAUTH_CAPTCHA_TIMEOUT": 5,
    # Only backend keys (not widget tokens) may call complete and
    # checkStatusAndComplete; see docs/upstream.rst.
    "SDKAUTH_COMPLETION_NEEDS_KEY": False,
    # -- SIGMA's service (docs/upstream.rst) --------------------------------------
    # otp-handler's base URL: the routes proxy it instead of running this package's
    # own engine (spec §11). None: the own engine.
    "SDKAUTH_UPSTREAM_URL": None,
    # The bearer token for otp-handler (or the @sdkauth.upstream_token_loader hook).
    "SDKAUTH_UPSTREAM_TOKEN": None,
    # Seconds for connecting and for each ordinary call to otp-handler.
    "SDKAUTH_UPSTREAM_TIMEOUT": 10,
    # -- Observing (docs/operating.rst) -----------------------------------------
    # Prometheus metrics: None counts them when prometheus_client (the "metrics"
    # extra) is installed, True requires it, False turns them off.
    "SDKAUTH_METRICS": None,
    # Label sends and completions with the widget id (one series per widget).
    "SDKAUTH_METRICS_WIDGET_LABEL": False,
    # One record per send, delivery, report, check, confirmation and completion on
    # the logger flask_sdkauth.audit (INFO).
    "SDKAUTH_AUDIT_LOG": True,
    # -- Testing (docs/testing.rst) ---------------------------------------------
    # Numbers whose code channels get a fixed code, e.g. {"+79990000000": "123456"};
    # only with TESTING on (init_app refuses them otherwise).
    "SDKAUTH_TEST_NUMBERS": MappingProxyType({}),
    # Largest request body accepted, in bytes.
    "SDKAUTH_MAX_BODY_SIZE": 16 * 1024,
    # Used only when SdkAuth creates its own flask-smorest Api.
    "SDKAUTH_API_TITLE": "flask-sdkauth",
    "SDKAUTH_API_VERSION": "1",
    "SDKAUTH_OPENAPI_VERSION": "3.0.3",
}


@dataclass(frozen=True)
class Settings:
    """The configuration of one app, read and checked once by ``init_app``."""

    url_prefix: str
    # Secrets stay out of repr(), so that logging the settings shows none.
    code_secret: bytes = field(repr=False)
    jwt_audience: str
    token_expires: int
    default_region: str | None
    locales: tuple[str, ...]
    default_locale: str
    #: By locale: the text templates of code and codeless channels.
    message_texts: Mapping[str, str]
    codeless_texts: Mapping[str, str]
    max_body_size: int
    session_lifetime: int
    retention: int
    number_matching: bool
    disabled_operations: frozenset[str]
    long_polling_timeout: float
    long_polling_interval: float
    notifier_url: str
    captcha_site_key: str | None
    dispatcher: str
    sender_timeout: float
    delivery_retries: int
    launch_deadline: float
    test_numbers: Mapping[str, str]
    widget_cache_seconds: float
    metrics: bool | None
    metrics_widget_label: bool
    audit_log: bool
    completion_needs_key: bool
    upstream_url: str | None
    upstream_token: str | None = field(repr=False)
    upstream_timeout: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        secret = config["SDKAUTH_CODE_SECRET"] or config.get("SECRET_KEY")
        if not secret:
            raise RuntimeError(
                "flask-sdkauth needs a key to hash codes: set SDKAUTH_CODE_SECRET "
                "(or SECRET_KEY) before calling init_app."
            )
        for key in (
            "SDKAUTH_TOKEN_EXPIRES",
            "SDKAUTH_MAX_BODY_SIZE",
            "SDKAUTH_SESSION_LIFETIME",
            "SDKAUTH_RETENTION",
        ):
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{key} must be a positive int, got {value!r}")
        for key in (
            "SDKAUTH_LONG_POLLING_TIMEOUT",
            "SDKAUTH_LONG_POLLING_INTERVAL",
            "SDKAUTH_SENDER_TIMEOUT",
            "SDKAUTH_LAUNCH_DEADLINE",
            "SDKAUTH_UPSTREAM_TIMEOUT",
        ):
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{key} must be a positive number of seconds, got {value!r}")
        retries = config["SDKAUTH_DELIVERY_RETRIES"]
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"SDKAUTH_DELIVERY_RETRIES must be an int >= 0, got {retries!r}")
        dispatcher = config["SDKAUTH_DISPATCHER"]
        if dispatcher not in DISPATCHERS:
            raise ValueError(
                f"SDKAUTH_DISPATCHER must be one of {sorted(DISPATCHERS)}, got {dispatcher!r}"
            )
        disabled = config["SDKAUTH_DISABLED_OPERATIONS"]
        if isinstance(disabled, str) or not all(isinstance(name, str) for name in disabled):
            raise TypeError("SDKAUTH_DISABLED_OPERATIONS must be a list of operationIds")
        unknown = set(disabled) - OPERATION_IDS
        if unknown:
            raise ValueError(
                f"SDKAUTH_DISABLED_OPERATIONS: unknown {sorted(unknown)}; "
                f"use some of {sorted(OPERATION_IDS)}"
            )
        test_numbers = _test_numbers(config)
        locales, default_locale = _locales(config)
        upstream_url = _optional_text(config, "SDKAUTH_UPSTREAM_URL")
        if upstream_url is not None and not upstream_url.startswith(("http://", "https://")):
            raise ValueError(
                f"SDKAUTH_UPSTREAM_URL must be an http(s) URL, got {upstream_url!r}"
            )
        return cls(
            url_prefix=_normalise_prefix(config["SDKAUTH_URL_PREFIX"]),
            code_secret=secret.encode() if isinstance(secret, str) else bytes(secret),
            jwt_audience=str(config["SDKAUTH_JWT_AUDIENCE"]),
            token_expires=config["SDKAUTH_TOKEN_EXPIRES"],
            default_region=config["SDKAUTH_DEFAULT_REGION"],
            locales=locales,
            default_locale=default_locale,
            message_texts=_texts(config, "SDKAUTH_MESSAGE_TEXT", locales),
            codeless_texts=_texts(config, "SDKAUTH_CODELESS_TEXT", locales),
            max_body_size=config["SDKAUTH_MAX_BODY_SIZE"],
            session_lifetime=config["SDKAUTH_SESSION_LIFETIME"],
            retention=config["SDKAUTH_RETENTION"],
            number_matching=bool(config["SDKAUTH_NUMBER_MATCHING"]),
            # SIGMA's service has no codeless confirmation page of ours to serve.
            disabled_operations=frozenset(disabled) | (
                {"confirm"} if upstream_url is not None else frozenset()
            ),
            long_polling_timeout=float(config["SDKAUTH_LONG_POLLING_TIMEOUT"]),
            long_polling_interval=float(config["SDKAUTH_LONG_POLLING_INTERVAL"]),
            notifier_url=str(config["SDKAUTH_NOTIFIER_URL"]),
            captcha_site_key=config["SDKAUTH_CAPTCHA_SITE_KEY"],
            dispatcher=dispatcher,
            sender_timeout=float(config["SDKAUTH_SENDER_TIMEOUT"]),
            delivery_retries=retries,
            launch_deadline=float(config["SDKAUTH_LAUNCH_DEADLINE"]),
            test_numbers=test_numbers,
            widget_cache_seconds=_seconds_or_zero(config, "SDKAUTH_WIDGET_CACHE_SECONDS"),
            metrics=_optional_flag(config, "SDKAUTH_METRICS"),
            metrics_widget_label=_flag(config, "SDKAUTH_METRICS_WIDGET_LABEL"),
            audit_log=_flag(config, "SDKAUTH_AUDIT_LOG"),
            completion_needs_key=_flag(config, "SDKAUTH_COMPLETION_NEEDS_KEY"),
            upstream_url=upstream_url,
            upstream_token=_optional_text(config, "SDKAUTH_UPSTREAM_TOKEN"),
            upstream_timeout=float(config["SDKAUTH_UPSTREAM_TIMEOUT"]),
        )


def _seconds_or_zero(config: Mapping[str, Any], key: str) -> float:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{key} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _optional_text(config: Mapping[str, Any], key: str) -> str | None:
    value = config[key]
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string or None, got {type(value).__name__}")
    return value


def _flag(config: Mapping[str, Any], key: str) -> bool:
    value = config[key]
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be True or False, got {value!r}")
    return value


def _optional_flag(config: Mapping[str, Any], key: str) -> bool | None:
    return None if config[key] is None else _flag(config, key)


#: The catalogue texts behind SDKAUTH_MESSAGE_TEXT and SDKAUTH_CODELESS_TEXT = None.
DEFAULT_TEXTS = {
    "SDKAUTH_MESSAGE_TEXT": N_("Verification code: {code}"),
    "SDKAUTH_CODELESS_TEXT": N_("Confirm the sign-in: {widget}"),
}


def _locales(config: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    locales = config["SDKAUTH_LOCALES"]
    if isinstance(locales, str) or not locales or not all(isinstance(x, str) for x in locales):
        raise TypeError(f"SDKAUTH_LOCALES must be a non-empty list of locales, got {locales!r}")
    missing = sorted(set(locales) - available_locales())
    if missing:
        raise ValueError(
            f"SDKAUTH_LOCALES: no catalogue for {missing}; "
            f"flask-sdkauth has {sorted(available_locales())}"
        )
    default = config["SDKAUTH_DEFAULT_LOCALE"]
    if default not in locales:
        raise ValueError(
            f"SDKAUTH_DEFAULT_LOCALE must be one of SDKAUTH_LOCALES {list(locales)}, "
            f"got {default!r}"
        )
    return tuple(locales), default


def _texts(config: Mapping[str, Any], key: str, locales: tuple[str, ...]) -> Mapping[str, str]:
    """The text template of every locale for ``key``, each checked to format."""
    value = config[key]
    if value is None:
        given: Mapping[str, Any] = {}
    elif isinstance(value, str):
        given = dict.fromkeys(locales, value)
    elif isinstance(value, Mapping):
        given = value
        unknown = sorted(set(given) - set(locales))
        if unknown:
            raise ValueError(f"{key}: {unknown} are not in SDKAUTH_LOCALES {list(locales)}")
    else:
        raise TypeError(f"{key} must be None, a string or a mapping of locales to strings")
    texts = {}
    for locale in locales:
        text = given.get(locale) or translations(locale).gettext(DEFAULT_TEXTS[key])
        if not isinstance(text, str):
            raise TypeError(f"{key}: the text for {locale!r} must be a string")
        try:
            text.format(code="", widget="", minutes=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{key}: the text for {locale!r} does not format with the fields "
                f"{{code}}, {{widget}}, {{minutes}}: {exc!r}"
            ) from None
        texts[locale] = text
    return MappingProxyType(texts)


def _test_numbers(config: Mapping[str, Any]) -> Mapping[str, str]:
    """``SDKAUTH_TEST_NUMBERS`` with its numbers in E.164, checked.

    A fixed code is a back door, so it is refused outside ``TESTING`` rather than
    ignored: a test config that leaks into production fails at start-up.
    """
    numbers = config["SDKAUTH_TEST_NUMBERS"]
    if not isinstance(numbers, Mapping):
        raise TypeError("SDKAUTH_TEST_NUMBERS must be a mapping of phone numbers to codes")
    if numbers and not config.get("TESTING"):
        raise RuntimeError(
            "SDKAUTH_TEST_NUMBERS gives numbers a fixed code and is only allowed with "
            "TESTING = True; remove it from this configuration."
        )
    checked: dict[str, str] = {}
    # Entries are named by position: a number or code has no place in an error.
    for position, (number, code) in enumerate(numbers.items(), start=1):
        try:
            e164 = to_e164(str(number), config["SDKAUTH_DEFAULT_REGION"])
        except InvalidPhoneNumber:
            raise ValueError(
                f"SDKAUTH_TEST_NUMBERS: entry {position} is not a valid phone number"
            ) from None
        if not isinstance(code, str) or not code.isascii() or not code.isdigit():
            raise ValueError(
                f"SDKAUTH_TEST_NUMBERS: the code of entry {position} must be a string of digits"
            )
        checked[e164] = code
    return MappingProxyType(checked)


def _normalise_prefix(prefix: Any) -> str:
    """``"p"``, ``"/p"`` and ``"/p/"`` all mount at ``/p``; ``""`` at the root."""
    if not isinstance(prefix, str):
        raise TypeError(f"SDKAUTH_URL_PREFIX must be a string, got {prefix!r}")
    stripped = prefix.strip("/")
    return f"/{stripped}" if stripped else ""
