"""Keep secrets and phone numbers out of what we log and store.

A sender's exception text is the host's (or its HTTP library's) words: a
``requests.HTTPError`` names the URL it called, query string included, which may
hold the number and the code. Before such a text is logged or kept in a session's
history, :func:`redact` removes the secrets and every notation of the number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

__all__ = ["REDACTED", "redact"]

REDACTED = "[redacted]"

# What may stand between the digits of a number as it appears in text or a URL:
# white space, dashes, dots, parentheses, and their percent-encodings.
_SEPARATOR = r"(?:[\s\-.()]|%2[0-9A-Fa-f])*"


def redact(text: str, *, secrets: Iterable[str | None] = (), recipient: str | None = None) -> str:
    """``text`` without ``secrets`` (codes, tokens) and without the digits of
    ``recipient`` (an E.164 number), in whatever notation they appear."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    if recipient:
        pattern = _number_pattern(recipient)
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
    return text


def _number_pattern(recipient: str) -> re.Pattern[str] | None:
    """The national number's digits with any separators between them; with or
    without the country code before it, the digits that identify the line go."""
    try:
        national = str(phonenumbers.parse(recipient).national_number)
    except phonenumbers.NumberParseException:
        national = re.sub(r"[^0-9]", "", recipient)
    if not national:
        return None
    return re.compile(_SEPARATOR.join(re.escape(digit) for digit in national))
