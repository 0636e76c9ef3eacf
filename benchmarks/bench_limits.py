"""The rate limits and daily caps that ``throughput.py --protections memory,redis``
switches on, shared by ``bench_app`` (as the extension's settings) and
``minimal_app`` (done by hand with the ``limits`` library).

They are the extension's defaults (``flask_sdkauth.config.DEFAULT_CONFIG``; the
script checks that the values marked "default" below still match it), with one
change so that a benchmark run measures the cost of counting and not 429s: the
limits whose key every request of a run shares (the one client address 127.0.0.1,
the one widget, the one calling code +7) get an amount of :data:`RAISED`, larger
than any run, with the default's period and number of limits. The limits keyed by
phone number or by session keep their default amounts: every send of a run goes to
a number of its own (see :func:`recipient`) and every session is checked once.

Configuration through the environment (set by ``throughput.py``):

``BENCH_PROTECTIONS``
    ``off`` (the default: no rate limits or caps on either side), ``memory`` or
    ``redis``;
``BENCH_RATELIMIT_STORAGE_URL``
    the storage of the counters, ``memory://`` or ``redis://…``.
"""

from __future__ import annotations

import os
from typing import Any

from limits import RateLimitItem, parse_many

PROTECTIONS = ("off", "memory", "redis")

#: The amount given to the limits whose key is shared by every request of a run.
RAISED = 1_000_000

#: Settings of the protected modes, as the extension's config keys. The comment
#: gives the extension's default where it differs.
LIMITS: dict[str, Any] = {
    "SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT": "3/minute",  # default
    "SDKAUTH_RATELIMIT_SEND_PER_IP": f"{RAISED}/minute;{RAISED}/hour",  # 10/minute;50/hour
    "SDKAUTH_RATELIMIT_SEND_PER_WIDGET": f"{RAISED}/minute",  # 600/minute
    "SDKAUTH_RATELIMIT_CHECK_CODE_PER_SESSION": "10/minute",  # default
    "SDKAUTH_RATELIMIT_CHECK_CODE_PER_IP": f"{RAISED}/minute",  # 60/minute
    "SDKAUTH_RATELIMIT_RESEND_PER_SESSION": "5/minute",  # default (no resends here)
    "SDKAUTH_RATELIMIT_RESEND_PER_IP": "20/minute",  # default (no resends here)
    "SDKAUTH_RATELIMIT_FAILED_CODES_PER_RECIPIENT": "10 per 15 minutes",  # default
    "SDKAUTH_DAILY_SEND_CAP_PER_WIDGET": RAISED,  # 10000
    "SDKAUTH_DAILY_SEND_CAP_PER_COUNTRY": RAISED,  # 2000
}

#: The keys of :data:`LIMITS` that keep the extension's default value.
DEFAULT_KEYS = (
    "SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT",
    "SDKAUTH_RATELIMIT_CHECK_CODE_PER_SESSION",
    "SDKAUTH_RATELIMIT_RESEND_PER_SESSION",
    "SDKAUTH_RATELIMIT_RESEND_PER_IP",
    "SDKAUTH_RATELIMIT_FAILED_CODES_PER_RECIPIENT",
)


def protections_from_env() -> tuple[str, str | None]:
    """``(mode, storage URL)``; the URL is ``None`` when the mode is ``off``."""
    mode = os.environ.get("BENCH_PROTECTIONS", "off")
    if mode not in PROTECTIONS:
        raise ValueError(f"BENCH_PROTECTIONS must be one of {PROTECTIONS}, got {mode!r}")
    if mode == "off":
        return mode, None
    return mode, os.environ.get("BENCH_RATELIMIT_STORAGE_URL", "memory://")


def items(key: str) -> tuple[RateLimitItem, ...]:
    """The ``limits`` items of one setting of :data:`LIMITS`."""
    value = LIMITS[key]
    text = f"{value}/day" if isinstance(value, int) else value
    return tuple(parse_many(text))


def recipient(index: int) -> str:
    """The ``index``-th phone number of a run: +7 999 followed by 7 digits, a valid
    Russian mobile number for every index below 10,000,000."""
    return f"+7999{index % 10_000_000:07d}"
