"""Phone numbers: parsing, normalising to E.164 and describing, with ``phonenumbers``."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers

__all__ = ["InvalidPhoneNumber", "PhoneInfo", "describe", "digits_of", "to_e164"]


class InvalidPhoneNumber(ValueError):
    """The text is not a valid phone number."""


#: Numbers a process keeps parsed: a send reads its number several times (the
#: view, the guards, the launch), and parsing is the dearest step of ``phonenumbers``.
_PARSED = 4096


@functools.lru_cache(maxsize=_PARSED)
def to_e164(text: str, region: str | None = None) -> str:
    """Return ``text`` as an E.164 number (``+79991234567``).

    ``region`` (an ISO 3166 code such as ``"RU"``) is used for numbers written without
    a leading ``+``; without it such numbers are rejected.

    :raises InvalidPhoneNumber: when ``phonenumbers`` cannot parse the text or the
        number is not valid for its region.
    """
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber("Not a valid phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("Not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_NOTATION = re.compile(r"[0-9+\-()\s]+", re.ASCII)
_NOT_A_DIGIT = re.compile(r"[^0-9]", re.ASCII)


def digits_of(text: str) -> str:
    """The digits of a number as written (``"+7 (999) 111-22-55"`` → ``"79991112255"``).

    Only ``+``, white space, dashes and parentheses may stand between the digits;
    national prefixes are not mapped (spec gap 15).

    :raises InvalidPhoneNumber: any other character, or no digit at all.
    """
    digits = _NOT_A_DIGIT.sub("", text) if _NOTATION.fullmatch(text) else ""
    if not digits:
        raise InvalidPhoneNumber("Not a valid phone number.")
    return digits


@dataclass(frozen=True)
class PhoneInfo:
    """What the protections need to know of an E.164 number."""

    region: str | None
    country_code: int
    number_type: str
    can_receive_sms: bool


# Types that may be mobiles; every other type (fixed line, premium rate, toll free,
# shared cost, VoIP, pager, …) cannot receive an SMS or is a pumping target.
_SMS_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }
)
_TYPE_NAMES = {
    value: name
    for name, value in vars(phonenumbers.PhoneNumberType).items()
    if name.isupper()
}


@functools.lru_cache(maxsize=_PARSED)
def describe(e164: str) -> PhoneInfo:
    """Region, calling code and number type of a number :func:`to_e164` returned."""
    number = phonenumbers.parse(e164)
    number_type = phonenumbers.number_type(number)
    return PhoneInfo(
        region=phonenumbers.region_code_for_number(number),
        country_code=number.country_code or 0,
        number_type=_TYPE_NAMES.get(number_type, "UNKNOWN"),
        can_receive_sms=number_type in _SMS_TYPES,
    )
