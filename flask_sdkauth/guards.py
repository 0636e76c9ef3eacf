"""Abuse protection called by the engine's entry points: rate limits, captcha,
SMS-pumping caps and the cap on wrong codes per phone number.

Every refusal of a send is logged (without the phone number), counted in
:attr:`Guards.refusals` and sent as the :data:`~flask_sdkauth.signals.send_refused`
signal, so a host can feed its own metrics.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from flask import current_app
from limits import RateLimitItemPerSecond

from . import signals
from .api_keys import KEY_CLIENT_PREFIX
from .captcha import CAPTCHA_PROVIDERS, CaptchaVerifier
from .errors import (
    CaptchaNotConfirmedException,
    NoAvailableChannelsException,
)
from .events import AuthEvent, emit
from .phones import PhoneInfo
from .ratelimits import RateLimiter, parse_limits
from .widgets import Widget

__all__ = ["Guards", "SMS_LIKE_CHANNELS"]

logger = logging.getLogger("flask_sdkauth")

#: Channels that deliver to a mobile subscriber (SMS itself and the messengers).
SMS_LIKE_CHANNELS = frozenset({"sms", "sim_push", "telegramcode", "viber", "vk", "whatsapp"})

_LIMIT_KEYS = {
    "send_per_recipient": "SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT",
    "send_per_ip": "SDKAUTH_RATELIMIT_SEND_PER_IP",
    "send_per_widget": "SDKAUTH_RATELIMIT_SEND_PER_WIDGET",
    "check_code_per_session": "SDKAUTH_RATELIMIT_CHECK_CODE_PER_SESSION",
    "check_code_per_ip": "SDKAUTH_RATELIMIT_CHECK_CODE_PER_IP",
    "resend_per_session": "SDKAUTH_RATELIMIT_RESEND_PER_SESSION",
    "resend_per_ip": "SDKAUTH_RATELIMIT_RESEND_PER_IP",
    "failed_codes_per_recipient": "SDKAUTH_RATELIMIT_FAILED_CODES_PER_RECIPIENT",
}
_ANY_COUNTRY = "*"


class Guards:
    """The protections of one app, built from its config by :meth:`from_config`."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        captcha: CaptchaVerifier | None = None,
        captcha_free_requests: int = 0,
        country_caps: frozenset[str] = frozenset(),
        sms_to_mobile_only: bool = True,
    ) -> None:
        self.limiter = limiter
        self.captcha = captcha
        self.captcha_free_requests = captcha_free_requests
        self.country_caps = country_caps
        self.sms_to_mobile_only = sms_to_mobile_only
        #: Refused sends by reason, in this process.
        self.refusals: Counter[str] = Counter()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Guards:
        rules = {name: parse_limits(key, config[key]) for name, key in _LIMIT_KEYS.items()}
        widget_cap = _daily_cap("SDKAUTH_DAILY_SEND_CAP_PER_WIDGET", config)
        rules["daily_per_widget"] = widget_cap
        caps = config["SDKAUTH_DAILY_SEND_CAP_PER_COUNTRY"]
        if not isinstance(caps, Mapping):
            caps = {_ANY_COUNTRY: caps}
        for code, cap in caps.items():
            rules[f"daily_per_country:{code}"] = _daily_cap(
                "SDKAUTH_DAILY_SEND_CAP_PER_COUNTRY", {"SDKAUTH_DAILY_SEND_CAP_PER_COUNTRY": cap}
            )
        captcha = _captcha(config)
        free = config["SDKAUTH_CAPTCHA_FIRST_FREE_REQUESTS_PER_IP"]
        if isinstance(free, bool) or not isinstance(free, int) or free < 0:
            raise ValueError("SDKAUTH_CAPTCHA_FIRST_FREE_REQUESTS_PER_IP must be an int >= 0")
        ttl = config["SDKAUTH_CAPTCHA_COUNTER_TTL"]
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise ValueError("SDKAUTH_CAPTCHA_COUNTER_TTL must be a positive int")
        rules["captcha_requests_per_ip"] = (
            (RateLimitItemPerSecond(free, ttl),) if free > 0 else ()
        )
        limiter = RateLimiter(
            str(config["SDKAUTH_RATELIMIT_STORAGE_URL"]),
            rules,
            fallback_to_memory=bool(config["SDKAUTH_RATELIMIT_FALLBACK_TO_MEMORY"]),
        )
        return cls(
            limiter,
            captcha=captcha,
            captcha_free_requests=free,
            country_caps=frozenset(str(code) for code in caps),
            sms_to_mobile_only=bool(config["SDKAUTH_SMS_TO_MOBILE_ONLY"]),
        )

    # -- send ------------------------------------------------------------------

    def before_send(
        self,
        widget_id: uuid.UUID,
        recipient: str,
        client_ip: str | None,
        captcha_token: str | None,
    ) -> None:
        """The limits per IP and per number (one round trip), then the captcha (if
        configured).

        These count every send that reaches them, refused or not: they protect the
        caller's own budget and the number's owner."""
        per_ip = () if client_ip is None else (("send_per_ip", client_ip),)
        refusal = self.limiter.take(*per_ip, ("send_per_recipient", recipient))
        if refusal is not None:
            self._refused("rate_limit", widget_id, recipient, client_ip)
            raise refusal.error()
        if self.captcha is None or client_ip is None or client_ip.startswith(KEY_CLIENT_PREFIX):
            return  # no captcha to ask a backend (a backend key) for
        # A free request takes one of the IP's free slots; once they are taken, every
        # send must carry a token (spec §8: the attempt counts, pass or fail).
        free = self.captcha_free_requests > 0 and self.limiter.allows(
            "captcha_requests_per_ip", client_ip
        )
        if not free and not self.captcha.verify(captcha_token, client_ip):
            self._refused("captcha", widget_id, recipient, client_ip)
            raise CaptchaNotConfirmedException()

    def admit(
        self, widget: Widget, phone: PhoneInfo, recipient: str, client_ip: str | None
    ) -> None:
        """The widget's allowed regions, then its budget and the daily caps (one
        round trip).

        Called once the cheaper checks have passed (limits, captcha, the widget's
        flags, the blocklist), so refused sends never spend the widget's budget."""
        if widget.allowed_regions and phone.region not in widget.allowed_regions:
            self._refused("region", widget.id, recipient, client_ip)
            raise NoAvailableChannelsException()
        self.spend_budget(widget.id, phone, recipient, client_ip)

    def spend_budget(
        self, widget_id: uuid.UUID, phone: PhoneInfo, recipient: str, client_ip: str | None
    ) -> None:
        """The widget's budget and the daily caps per widget and per country, in one
        round trip (the part of :meth:`admit` that needs no widget settings)."""
        code = str(phone.country_code)
        country_rule = code if code in self.country_caps else _ANY_COUNTRY
        per_country = (
            ((f"daily_per_country:{country_rule}", code),)
            if country_rule in self.country_caps
            else ()
        )
        refusal = self.limiter.take(
            ("send_per_widget", str(widget_id)),
            ("daily_per_widget", str(widget_id)),
            *per_country,
        )
        if refusal is not None:
            reason = "rate_limit" if refusal.rule == "send_per_widget" else "daily_cap"
            self._refused(reason, widget_id, recipient, client_ip)
            raise refusal.error()

    def allows_channel(self, channel_type: str, phone: PhoneInfo, widget_id: uuid.UUID) -> bool:
        """Whether a channel may deliver to this number (SMS-like needs a mobile)."""
        if self.sms_to_mobile_only and channel_type in SMS_LIKE_CHANNELS:
            if not phone.can_receive_sms:
                self._refused("number_type", widget_id)
                return False
        return True

    def captcha_required(self, client_ip: str | None) -> bool:
        """Whether the next send from ``client_ip`` must carry a captcha token."""
        if self.captcha is None:
            return False
        if client_ip is not None and client_ip.startswith(KEY_CLIENT_PREFIX):
            return False
        if self.captcha_free_requests == 0 or client_ip is None:
            return True
        return not self.limiter.check("captcha_requests_per_ip", client_ip)

    @property
    def captcha_provider(self) -> str | None:
        return None if self.captcha is None else self.captcha.provider

    # -- session operations ----------------------------------------------------

    def limit_client(self, operation: str, client_ip: str | None) -> None:
        """The per-IP limit of ``operation`` (``"check_code"`` or ``"resend"``), counted
        for every call from that IP."""
        if client_ip is not None:
            self.limiter.hit(f"{operation}_per_ip", client_ip)

    def limit_session(
        self, operation: str, request_id: uuid.UUID, *, code_check_of: str | None = None
    ) -> None:
        """The per-session limit of ``operation``; call it once the session exists
        and the caller's token covers it, so nobody spends another's budget.

        :param code_check_of: a number whose code is about to be compared: then one
            of its code checks is taken too, after the session's limit and in the
            same round trip (see :meth:`limit_code_checks`).
        """
        code_check = (
            () if code_check_of is None else (("failed_codes_per_recipient", code_check_of),)
        )
        refusal = self.limiter.take((f"{operation}_per_session", str(request_id)), *code_check)
        if refusal is not None:
            raise refusal.error()

    def limit_code_checks(self, recipient: str) -> None:
        """Take one of the number's code checks across its sessions (429 when none
        is left); taken before the comparison, so concurrent guesses cannot pass it.
        """
        self.limiter.hit("failed_codes_per_recipient", recipient)

    def _refused(
        self,
        reason: str,
        widget_id: uuid.UUID,
        recipient: str | None = None,
        client_ip: str | None = None,
    ) -> None:
        self.refusals[reason] += 1
        logger.warning("sdkauth: send refused (%s) for widget %s", reason, widget_id)
        signals.send_refused.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            reason=reason,
            widget_id=widget_id,
        )
        if reason in _SEND_OUTCOMES:  # a number type refuses a channel, not the send
            emit(
                AuthEvent(
                    "send",
                    _SEND_OUTCOMES[reason],
                    widget_id=widget_id,
                    recipient=recipient,
                    client_ip=client_ip,
                    reason=reason,
                )
            )


#: The send event's outcome for each reason a guard refuses a send.
_SEND_OUTCOMES = {
    "rate_limit": "rate_limited",
    "captcha": "captcha",
    "region": "region",
    "daily_cap": "daily_cap",
}


def _daily_cap(key: str, config: Mapping[str, Any]) -> tuple[Any, ...]:
    cap = config[key]
    if cap is None:
        return ()
    if isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0:
        raise ValueError(f"{key} must be a positive int (sends a day) or None, got {cap!r}")
    return parse_limits(key, f"{cap}/day")


def _captcha(config: Mapping[str, Any]) -> CaptchaVerifier | None:
    provider = config["SDKAUTH_CAPTCHA_PROVIDER"]
    if provider is None:
        return None
    if provider not in CAPTCHA_PROVIDERS:
        raise ValueError(
            f"SDKAUTH_CAPTCHA_PROVIDER must be one of {sorted(CAPTCHA_PROVIDERS)} or None"
        )
    secret = config["SDKAUTH_CAPTCHA_SECRET"]
    if not secret:
        raise ValueError("SDKAUTH_CAPTCHA_PROVIDER needs SDKAUTH_CAPTCHA_SECRET")
    min_score = config["SDKAUTH_CAPTCHA_MIN_SCORE"]
    timeout = config["SDKAUTH_CAPTCHA_TIMEOUT"]
    for key, value in (("SDKAUTH_CAPTCHA_MIN_SCORE", min_score), ("SDKAUTH_CAPTCHA_TIMEOUT", timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{key} must be a number >= 0, got {value!r}")
    return CaptchaVerifier(
        provider=provider,
        secret=str(secret),
        min_score=float(min_score),
        verify_url=config["SDKAUTH_CAPTCHA_VERIFY_URL"],
        timeout=float(timeout),
    )
