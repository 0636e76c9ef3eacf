"""A generic webhook sender: each message POSTed as JSON, signed the Standard
Webhooks way (https://www.standardwebhooks.com/).

For a gateway of your own, or a small service that forwards messages to a
provider the extension has no sender for. Needs ``pip install
'flask-sdkauth[webhook]'`` (httpx). The receiving side checks the signature with
:func:`verify_signature`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping

import httpx

from ..delivery import RetryDelivery
from ..message import Message
from .base import DEFAULT_TIMEOUT, message_fields, raise_for_answer

__all__ = ["EVENT_TYPE", "WebhookSender", "generate_secret", "sign", "verify_signature"]

#: The ``type`` of every event body.
EVENT_TYPE = "sdkauth.message"

_PREFIX = "whsec_"
_GATEWAY = "webhook"
# The spec's bounds on the decoded key.
_MIN_KEY, _MAX_KEY = 24, 64


class WebhookSender:
    """A channel sender that POSTs each message to ``url``.

    The body is JSON, ``{"type": "sdkauth.message", "timestamp": …, "data": {…}}``,
    with the message in ``data`` (see ``docs/senders/development.rst``), so it
    holds the code: use an ``https://`` URL outside a development machine. The
    request carries the Standard Webhooks headers ``webhook-id`` (the
    :attr:`~flask_sdkauth.Message.id`, the same on every retry of a launch, for the
    receiver to deduplicate by), ``webhook-timestamp`` and ``webhook-signature``.

    A 2xx answer accepts the message. 429 and 5xx answers, timeouts and network
    errors raise :class:`~flask_sdkauth.RetryDelivery` (after ``Retry-After`` when
    the answer has one); any other answer, a redirect included, raises
    :class:`~flask_sdkauth.senders.base.GatewayError`.

    :param url: where to POST.
    :param secret: ``whsec_`` followed by the base64 of 24 to 64 random bytes
        (:func:`generate_secret` makes one).
    :param timeout: seconds for connecting, and for each read and write.
    :param headers: more headers to send (an ``Authorization``, a tenant id…);
        the signature's and ``content-type`` are set by the sender.
    :raises ValueError: ``secret`` is not of that form.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self._key = _key(secret)
        self.timeout = timeout
        self.headers = dict(headers or {})

    def __call__(self, message: Message) -> None:
        timestamp = int(time.time())
        body = _body(message, timestamp)
        headers = {
            **self.headers,
            "content-type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, message.id, timestamp, body),
        }
        try:
            # A client per call: nothing is shared across threads or forked workers.
            response = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            raise RetryDelivery(f"{_GATEWAY} did not answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise RetryDelivery(f"{_GATEWAY} could not be reached ({type(exc).__name__})") from exc
        if not response.is_success:
            raise_for_answer(
                _GATEWAY, response.status_code, retry_after=response.headers.get("retry-after")
            )

    def __repr__(self) -> str:
        return f"WebhookSender(url={self.url!r}, secret=***)"


def generate_secret() -> str:
    """A new secret for :class:`WebhookSender`: ``whsec_`` and 32 random bytes."""
    return _PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(key: bytes | str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one request: ``v1,<base64 HMAC-SHA256 of
    "{id}.{timestamp}.{body}">``. ``key`` is a ``whsec_`` secret or its decoded
    bytes."""
    raw_key = _key(key) if isinstance(key, str) else key
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(raw_key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance: float = 300,
    *,
    now: float | None = None,
) -> bool:
    """Whether a request was signed with ``secret``, recently.

    For the receiving gateway (or a host's tests): pass the raw body as received,
    before any JSON parsing, and the request's headers (any mapping; names are
    matched case-insensitively). ``False`` when a header is missing, the
    timestamp is not a number or more than ``tolerance`` seconds from ``now``
    (default: the current time), either way, or no ``v1`` signature in
    ``webhook-signature`` (a space-separated list) matches. The comparison takes
    constant time.

    Replays within the tolerance still verify: the receiver should remember the
    ``webhook-id`` values it has processed for that long.

    :raises ValueError: ``secret`` is not a ``whsec_`` secret.
    """
    key = _key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not message_id or not timestamp_text or not signatures:
        return False
    if not timestamp_text.isascii() or not timestamp_text.isdigit():
        return False
    timestamp = int(timestamp_text)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    raw_body = body.encode() if isinstance(body, str) else body
    expected = sign(key, message_id, timestamp, raw_body).encode()
    # Check every entry, so that the time taken does not tell which one matched.
    matched = False
    for candidate in signatures.split():
        if candidate.startswith("v1,"):
            matched |= hmac.compare_digest(expected, candidate.encode())
    return matched


def _key(secret: str) -> bytes:
    # The secret never goes into the error text.
    if not isinstance(secret, str) or not secret.startswith(_PREFIX):
        raise ValueError("the webhook secret must be 'whsec_' followed by base64")
    try:
        key = base64.b64decode(secret[len(_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret must be 'whsec_' followed by base64") from None
    if not _MIN_KEY <= len(key) <= _MAX_KEY:
        raise ValueError(
            f"the webhook secret must decode to {_MIN_KEY} to {_MAX_KEY} bytes, not {len(key)}"
        )
    return key


def _body(message: Message, timestamp: int) -> bytes:
    data = message_fields(message)
    event = {
        "type": EVENT_TYPE,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)),
        "data": data,
    }
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
