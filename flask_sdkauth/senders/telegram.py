"""Telegram Gateway: verification codes in Telegram, for the ``telegramcode`` channel.

Install with ``pip install 'flask-sdkauth[telegram]'``. The sender calls the
Gateway's ``sendVerificationMessage`` with our own code (the engine generated it,
and checks it), the number, and the :attr:`~flask_sdkauth.Message.id` as
``payload``; the Gateway sends that payload back in its delivery reports, which
:meth:`TelegramGatewaySender.webhook_view` checks and passes to
:meth:`~flask_sdkauth.SdkAuth.report_delivery`.

Following https://core.telegram.org/gateway/api:

- the token goes in ``Authorization: Bearer <token>``; parameters as JSON;
- the answer is ``{"ok": true, "result": RequestStatus}`` or
  ``{"ok": false, "error": "ACCESS_TOKEN_INVALID"}``;
- ``code`` must be 4 to 8 digits, ``payload`` at most 128 bytes, ``callback_url``
  at most 256 bytes, ``ttl`` 30 to 3600 seconds (the range since February 2025);
- a report is a RequestStatus POSTed to ``callback_url``, signed with
  ``X-Request-Signature`` = hex HMAC-SHA-256 of
  ``X-Request-Timestamp + "\\n" + raw body``, keyed with SHA-256 of the token; the
  receiver must answer 200, or the report is sent again (up to 10 times).

Not documented by the Gateway, and so decided here: which HTTP status comes with
``ok: false`` (any answer without ``ok: true`` fails the channel, 429 and 5xx
excepted); whether a request is deduplicated (it is not assumed to be: there is
no idempotency key, so a request that may have reached the Gateway is not sent
again, see :class:`TelegramGatewaySender`); the unit of ``X-Request-Timestamp``
(read as Unix seconds, as the docs' "Unix timestamp" says).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from flask import current_app, request
from flask.typing import ResponseReturnValue

from ..delivery import DeliveryStatus
from ..message import Message
from ..redaction import redact
from .base import DEFAULT_TIMEOUT, GatewayError, raise_for_answer
from .http import json_or_none, post_json

__all__ = ["REPORTED_STATUSES", "TelegramGatewaySender"]

GATEWAY = "Telegram Gateway"

#: The Gateway's ``delivery_status.status`` as :meth:`SdkAuth.report_delivery` takes it.
REPORTED_STATUSES: Mapping[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "expired": "failed",
    "revoked": "failed",
}

_TTL_RANGE = range(30, 3601)
_CODE_LENGTHS = range(4, 9)


class TelegramGatewaySender:
    """Sends a message's code through the Telegram Gateway API.

    :param token: the Gateway API token (account settings on gateway.telegram.org).
    :param callback_url: the HTTPS URL of :meth:`webhook_view` as the Gateway
        reaches it; without it the Gateway sends no delivery reports.
    :param ttl: seconds (30 to 3600) before an undelivered message is deleted and
        its fee refunded; the Gateway then reports ``expired``, which moves the
        session to the widget's next channel. Not sent when ``None``: the message
        stays.
    :param timeout: seconds for each phase of the HTTP call (connect, write, read).
    :param api_url: the Gateway's base URL.

    Failures: 429 and 5xx raise :class:`~flask_sdkauth.RetryDelivery` (after
    ``Retry-After``); ``ok: false`` and any other answer raise
    :class:`~flask_sdkauth.senders.base.GatewayError` with the Gateway's error
    string. A connection that could not be made is retried (nothing was sent). A
    timeout or a broken connection once the request was on its way fails the
    channel instead: the Gateway may have sent the code already, and a second
    request would be a second paid message.
    """

    def __init__(
        self,
        token: str,
        *,
        callback_url: str | None = None,
        ttl: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        api_url: str = "https://gatewayapi.telegram.org/",
    ) -> None:
        if not token:
            raise ValueError("token is required")
        if callback_url is not None and len(callback_url.encode()) > 256:
            raise ValueError("callback_url must be at most 256 bytes")
        if ttl is not None and (isinstance(ttl, bool) or ttl not in _TTL_RANGE):
            raise ValueError(f"ttl must be from 30 to 3600 seconds, got {ttl!r}")
        self._token = token
        self.callback_url = callback_url
        self.ttl = ttl
        self.timeout = timeout
        self.api_url = api_url.rstrip("/") + "/"

    def __repr__(self) -> str:
        return f"TelegramGatewaySender(api_url={self.api_url!r}, token=***)"

    def __call__(self, message: Message) -> None:
        """Send ``message.code`` to ``message.recipient``; see the class for failures."""
        code = message.code
        if code is None or not code.isdigit() or len(code) not in _CODE_LENGTHS:
            raise GatewayError(f"{GATEWAY} sends numeric codes of 4 to 8 digits only")
        fields: dict[str, Any] = {
            "phone_number": message.recipient,
            "code": code,
            "payload": message.id,
        }
        if self.ttl is not None:
            fields["ttl"] = self.ttl
        if self.callback_url is not None:
            fields["callback_url"] = self.callback_url
        response = self._post("sendVerificationMessage", fields)
        answer = json_or_none(response)
        detail = _error(answer, message, self._token)
        if not response.is_success:
            raise_for_answer(
                GATEWAY, response.status_code, detail,
                retry_after=response.headers.get("Retry-After"),
            )
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            raise GatewayError(f"{GATEWAY} refused the message" + (f": {detail}" if detail else ""))

    def _post(self, method: str, fields: dict[str, Any]) -> httpx.Response:
        return post_json(
            GATEWAY,
            self.api_url + method,
            fields,
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=self.timeout,
        )

    # -- delivery reports -------------------------------------------------------

    def verify_report(
        self, timestamp: str | None, signature: str | None, body: bytes, *,
        tolerance: float = 300, now: float | None = None,
    ) -> bool:
        """Whether a report's headers sign ``body`` with our token, and its
        timestamp is no further than ``tolerance`` seconds from ``now``."""
        if not timestamp or not signature or not timestamp.isdigit():
            return False
        secret = hashlib.sha256(self._token.encode()).digest()
        expected = hmac.new(secret, timestamp.encode() + b"\n" + body, hashlib.sha256).hexdigest()
        # Bytes: compare_digest refuses non-ASCII str, which would be a 500.
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            return False
        return abs((time.time() if now is None else now) - int(timestamp)) <= tolerance

    def webhook_view(self, *, tolerance: float = 300) -> Callable[[], ResponseReturnValue]:
        """A Flask view for the Gateway's delivery reports; register it for POST at
        the path of ``callback_url``.

        A report without a valid signature, or signed more than ``tolerance``
        seconds from now (a replay), is answered 403 and changes nothing. A signed
        report answers 200 (the Gateway resends on any other status) after passing
        its ``delivery_status`` to :meth:`~flask_sdkauth.SdkAuth.report_delivery`:
        ``sent``, ``delivered`` and ``read`` as themselves, ``expired`` and
        ``revoked`` as ``failed``. ``verification_status`` (the user's code entry
        on Telegram's side, e.g. ``code_valid``) is not a delivery report, and the
        engine checks codes itself: it is ignored. So are reports whose
        ``payload`` is not one of our message ids.
        """

        def telegram_gateway_webhook() -> ResponseReturnValue:
            body = request.get_data(cache=False)
            if not self.verify_report(
                request.headers.get("X-Request-Timestamp"),
                request.headers.get("X-Request-Signature"),
                body,
                tolerance=tolerance,
            ):
                return "", 403
            try:
                report = json.loads(body)
            except ValueError:
                return "", 400
            message_id, status = _read_report(report)
            if message_id is not None and status is not None:
                current_app.extensions["sdkauth"].report_delivery(
                    message_id, REPORTED_STATUSES[status], reason=f"{GATEWAY}: {status}"
                )
            return "", 200

        return telegram_gateway_webhook


def _read_report(report: Any) -> tuple[str | None, str | None]:
    """The message id and the Gateway's delivery status a RequestStatus holds."""
    if not isinstance(report, dict):
        return None, None
    payload = report.get("payload")
    delivery = report.get("delivery_status")
    status = delivery.get("status") if isinstance(delivery, dict) else None
    return (
        payload if isinstance(payload, str) else None,
        status if isinstance(status, str) and status in REPORTED_STATUSES else None,
    )


def _error(answer: Any, message: Message, token: str) -> str:
    """The Gateway's error string, short, without the code, token or number."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, str):
        return ""
    return redact(error, secrets=(message.code, token), recipient=message.recipient)[:200]

