"""Phone numbers: parsing and normalising to E.164 with ``phonenumbers``."""

from __future__ import annotations

import phonenumbers

__all__ = ["InvalidPhoneNumber", "to_e164"]


class InvalidPhoneNumber(ValueError):
    """The text is not a valid phone number."""


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
