"""SIGMA (sigmasms.ru): SMS, voice, flash call, Viber, WhatsApp, VK and Telegram
through one sending API.

Install with ``pip install 'flask-sdkauth[sigma]'``. One :class:`SigmaSender`
serves every channel type it is registered for, each sent as the SIGMA type of
the same name (``telegramcode`` as ``telegram``).

The PyPI package ``sigmasms`` is not used: it calls the API over plain HTTP with
a 60-second timeout, raises httpx's own errors (whose text names the URL) for
every refusal, and covers neither status callbacks nor a lapsed token.

What the module relies on, as SIGMA's clients and integrations in the wild use
it (https://online.sigmasms.ru/api/):

- ``POST login`` with ``{"username", "password"}`` answers ``{"id", "token"}``;
  the token, or an API key from the account, goes in the ``Authorization``
  header as it is, with no ``Bearer`` prefix;
- ``POST sendings`` with ``{"recipient", "type", "payload": {"sender", "text"}}``
  answers ``{"id", "recipient", "status", "error"}``, ``status`` ``"failed"`` with
  an ``error`` when SIGMA refused the message at once;
- a flash call's ``text`` is the code, which the user reads as the last digits of
  the calling number (``sender`` is then a number SIGMA approved); a voice call
  reads ``text`` aloud, with an optional ``tts`` voice such as ``"aws:tatyana"``;
- a sending's status is one of ``pending``, ``sent``, ``delivered``, ``seen``,
  ``failed``.

Not confirmed, and so decided here:

- SIGMA's documentation of status callbacks could not be read: neither the field
  of a sending that names a callback URL, nor the body of a callback, nor any
  signature. The sender puts the URL in ``callback_field`` (``"webhook"``,
  as ``{"url": ...}``), so check that name with SIGMA; the view reads the status
  from ``status`` or ``state.status``. Because no signature is documented, each
  callback URL carries the message id and an HMAC of it under the host's secret,
  which the view checks in constant time.
- No client reference field is known, so :attr:`Message.id` travels in the
  callback URL only.
- No idempotency key is known: a request that may have reached SIGMA is not
  repeated (see :class:`SigmaSender`).
- How long a login token lasts: it is kept until SIGMA answers 401, then renewed
  once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from flask import current_app, request
from flask.typing import ResponseReturnValue

from ..delivery import DeliveryStatus
from ..message import Message
from ..redaction import redact
from .base import DEFAULT_TIMEOUT, GatewayError, raise_for_answer
from .http import json_or_none, post_json

__all__ = ["CHANNEL_TYPES", "REPORTED_STATUSES", "SigmaSender"]

GATEWAY = "SIGMA"

#: Our channel types and the SIGMA ``type`` each is sent as.
CHANNEL_TYPES: Mapping[str, str] = {
    "sms": "sms",
    "voice": "voice",
    "flashcall": "flashcall",
    "viber": "viber",
    "whatsapp": "whatsapp",
    "vk": "vk",
    "telegramcode": "telegram",
}

#: SIGMA's sending statuses as :meth:`SdkAuth.report_delivery` takes them;
#: ``pending`` (and anything else) reports nothing.
REPORTED_STATUSES: Mapping[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "seen": "read",
    "failed": "failed",
}


class SigmaSender:
    """Sends messages through SIGMA's ``sendings`` API.

    :param sender: the sender name SIGMA approved, one for every type, or a
        mapping from our channel type to it (an alphanumeric name for SMS, a
        number for voice and flash calls…).
    :param api_key: an API key from the SIGMA account; or else
    :param username: and ``password``: the account's login, exchanged for a
        token on the first message and again when SIGMA answers 401.
    :param callback_url: the URL of :meth:`webhook_view` as SIGMA reaches it; each
        message's callback is this URL with ``message`` and ``sig`` added to its
        query. Needs ``callback_secret``.
    :param callback_secret: the key of those ``sig`` values; keep it secret.
    :param callback_field: the field of a sending that names the callback (see
        the module's notes).
    :param tts: the voice of voice calls (``payload.tts``), SIGMA's default if
        ``None``.
    :param timeout: seconds for each phase of each HTTP call.
    :param api_url: SIGMA's API base URL.

    Failures: 429 and 5xx raise :class:`~flask_sdkauth.RetryDelivery` (after
    ``Retry-After``), as does a connection that could not be made; any other
    refusal, a ``failed`` answer, and a timeout or broken connection once the
    request was on its way raise
    :class:`~flask_sdkauth.senders.base.GatewayError`: SIGMA may have sent that
    one, and a repeat would be a second paid message.
    """

    def __init__(
        self,
        *,
        sender: str | Mapping[str, str],
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        callback_url: str | None = None,
        callback_secret: str | None = None,
        callback_field: str = "webhook",
        tts: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        api_url: str = "https://online.sigmasms.ru/api/",
    ) -> None:
        if bool(api_key) == bool(username and password):
            raise ValueError("give either api_key, or username and password")
        if callback_url is not None and not callback_secret:
            raise ValueError("callback_url needs a callback_secret")
        self._senders = sender
        self._api_key = api_key
        self._login = (username, password) if username and password else None
        self._token: str | None = api_key
        self._token_lock = threading.Lock()
        self.callback_url = callback_url
        self._callback_secret = (callback_secret or "").encode()
        self.callback_field = callback_field
        self.tts = tts
        self.timeout = timeout
        self.api_url = api_url.rstrip("/") + "/"

    def __repr__(self) -> str:
        return f"SigmaSender(api_url={self.api_url!r}, credentials=***)"

    def __call__(self, message: Message) -> None:
        """Send ``message`` as the SIGMA type of its channel; see the class for failures."""
        sending = self._sending(message)
        response = self._authorized_post("sendings", sending)
        answer = json_or_none(response)
        detail = self._detail(answer, message)
        if not response.is_success:
            raise_for_answer(
                GATEWAY, response.status_code, detail,
                retry_after=response.headers.get("Retry-After"),
            )
        if not isinstance(answer, dict) or answer.get("status") == "failed" or answer.get("error"):
            raise GatewayError(f"{GATEWAY} refused the message" + (f": {detail}" if detail else ""))

    def _sending(self, message: Message) -> dict[str, Any]:
        kind = CHANNEL_TYPES.get(message.channel)
        if kind is None:
            raise GatewayError(f"{GATEWAY} has no type for the channel {message.channel!r}")
        senders = self._senders
        name = senders if isinstance(senders, str) else senders.get(message.channel)
        if not name:
            raise GatewayError(f"no {GATEWAY} sender name for the channel {message.channel!r}")
        payload: dict[str, Any] = {"sender": name, "text": _text(kind, message)}
        if kind == "voice" and self.tts:
            payload["tts"] = self.tts
        sending: dict[str, Any] = {
            "recipient": message.recipient, "type": kind, "payload": payload,
        }
        if self.callback_url is not None:
            sending[self.callback_field] = {"url": self.message_callback_url(message.id)}
        return sending

    def _detail(self, answer: Any, message: Message) -> str:
        """SIGMA's error words, short, without the code, credentials or number."""
        if not isinstance(answer, dict):
            return ""
        text = next((v for k in ("error", "message") if isinstance(v := answer.get(k), str)), "")
        secrets = (message.code, message.confirmation_token, self._token, self._api_key,
                   self._login[1] if self._login else None)
        return redact(text, secrets=secrets, recipient=message.recipient)[:200]

    # -- HTTP ----------------------------------------------------------------------

    def _authorized_post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        token = self._current_token()
        response = self._post(path, body, {"Authorization": token})
        if response.status_code == 401 and self._login is not None:
            # The login token lapsed: one new login, one more try.
            response = self._post(path, body, {"Authorization": self._renew_token(token)})
        return response

    def _current_token(self) -> str:
        with self._token_lock:
            token = self._token
        return token if token is not None else self._renew_token(None)

    def _renew_token(self, stale: str | None) -> str:
        with self._token_lock:
            if self._token is not None and self._token != stale:
                return self._token  # another thread logged in meanwhile
            if self._login is None:
                raise GatewayError(f"{GATEWAY} refused the API key")
            username, password = self._login
            response = self._post("login", {"username": username, "password": password}, {})
            answer = json_or_none(response)
            if not response.is_success:
                detail = ""
                if isinstance(answer, dict):
                    text = answer.get("error") or answer.get("message")
                    detail = redact(text, secrets=(password,))[:200] if isinstance(text, str) else ""
                raise_for_answer(
                    f"{GATEWAY} login", response.status_code, detail,
                    retry_after=response.headers.get("Retry-After"),
                )
            token = answer.get("token") if isinstance(answer, dict) else None
            if not isinstance(token, str) or not token:
                raise GatewayError(f"{GATEWAY} login answered no token")
            self._token = token
            return token

    def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        return post_json(
            GATEWAY, self.api_url + path, body, headers=headers, timeout=self.timeout
        )

    # -- status callbacks -------------------------------------------------------------

    def message_callback_url(self, message_id: str) -> str:
        """``callback_url`` with ``message`` and its ``sig`` added to the query."""
        if self.callback_url is None:
            raise ValueError("no callback_url configured")
        parts = urlsplit(self.callback_url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [("message", message_id), ("sig", self._signature(message_id))]
        return urlunsplit(parts._replace(query=urlencode(query)))

    def _signature(self, message_id: str) -> str:
        return hmac.new(self._callback_secret, message_id.encode(), hashlib.sha256).hexdigest()

    def webhook_view(self) -> Callable[[], ResponseReturnValue]:
        """A Flask view for SIGMA's status callbacks; register it for POST at the
        path of ``callback_url``.

        A callback whose ``message`` and ``sig`` query parameters do not match
        (compared in constant time) is answered 403 and changes nothing. Otherwise
        the status, read from the JSON body's ``status`` or ``state.status``, goes
        to :meth:`~flask_sdkauth.SdkAuth.report_delivery`: ``sent`` and
        ``delivered`` as themselves, ``seen`` as ``read``, ``failed`` as
        ``failed``; other statuses (``pending``…) are acknowledged and ignored.
        Answers 200. The ``sig`` authenticates the message id, not the callback's
        body or its time: whoever holds a message's callback URL (SIGMA, or a log
        that recorded it) can report on that message, a ``failed`` included, which
        moves the session to the next channel once. Keep callback URLs out of
        logs.
        """
        if not self._callback_secret:
            raise ValueError("webhook_view needs a callback_secret")

        def sigma_webhook() -> ResponseReturnValue:
            message_id = request.args.get("message", "")
            signature = request.args.get("sig", "")
            # Bytes: compare_digest refuses non-ASCII str, which would be a 500.
            if not message_id or not hmac.compare_digest(
                self._signature(message_id).encode(), signature.lower().encode()
            ):
                return "", 403
            try:
                status = _status(json.loads(request.get_data(cache=False)))
            except ValueError:
                return "", 400
            if status is not None:
                current_app.extensions["sdkauth"].report_delivery(
                    message_id, REPORTED_STATUSES[status], reason=f"{GATEWAY}: {status}"
                )
            return "", 200

        return sigma_webhook


def _text(kind: str, message: Message) -> str:
    """What SIGMA sends: the code itself for a flash call; for a voice call the
    text with the code's digits apart, so that speech reads them one by one."""
    code = message.code
    if kind == "flashcall":
        if not code or not code.isdigit():
            raise GatewayError(f"a {GATEWAY} flash call needs a numeric code")
        return code
    if kind == "voice" and code:
        return message.text.replace(code, ", ".join(code))
    return message.text


def _status(report: Any) -> str | None:
    """The status a callback body holds, if it is one we report."""
    if not isinstance(report, dict):
        return None
    status = report.get("status")
    state = report.get("state")
    if not isinstance(status, str) and isinstance(state, dict):
        status = state.get("status")
    return status if isinstance(status, str) and status in REPORTED_STATUSES else None

