"""One-time codes: generated with ``secrets``, stored only as keyed hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from itertools import pairwise

__all__ = ["code_matches", "generate_code", "hash_code"]

_MAX_RUN = 2


def generate_code(length: int, *, beautify: bool = False) -> str:
    """A random string of ``length`` decimal digits from a CSPRNG.

    With ``beautify`` the code never holds a run of more than two equal digits, which
    makes it easier to read out and type (spec gap 10); length and checking are the
    same either way.
    """
    while True:
        code = "".join(secrets.choice("0123456789") for _ in range(length))
        if not beautify or _longest_run(code) <= _MAX_RUN:
            return code


def hash_code(secret: bytes, request_id: uuid.UUID, generation: int, code: str) -> str:
    """The keyed hash (HMAC-SHA256) that stands for ``code`` in the store.

    The request id and channel generation are part of the message, so a hash is
    bound to one launch of one session and cannot be replayed elsewhere.
    """
    message = f"{request_id}:{generation}:{code}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def code_matches(
    secret: bytes, request_id: uuid.UUID, generation: int, code: str, stored: str
) -> bool:
    """Compare ``code`` with a stored hash in constant time."""
    return hmac.compare_digest(hash_code(secret, request_id, generation, code), stored)


def _longest_run(code: str) -> int:
    longest = run = 1
    for previous, current in pairwise(code):
        run = run + 1 if current == previous else 1
        longest = max(longest, run)
    return longest
