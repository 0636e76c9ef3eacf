"""Twilio: SMS, voice calls and WhatsApp through the official ``twilio`` library.

Installed with the ``twilio`` extra (``pip install 'flask-sdkauth[twilio]'``).
:class:`TwilioSender` is one channel sender for ``sms``, ``voice`` and
``whatsapp``, and serves the status callback Twilio posts for each message or
call (:meth:`TwilioSender.webhook_view`).

Twilio's Messages and Calls resources take no client reference, so the
:attr:`~flask_sdkauth.Message.id` travels in the status callback URL itself, as
the query parameter ``sdkauthMessageId``: Twilio calls back exactly that URL,
and signs it, so the id cannot be changed without breaking the signature.

How failures are raised:

- a Twilio error answer (``TwilioRestException``, or the RFC 9457
  ``TwilioServiceException`` of newer libraries) goes through
  :func:`~flask_sdkauth.senders.base.raise_for_answer`: 429 and 5xx retry the
  launch, anything else fails the channel. The text names the HTTP status and
  Twilio's numeric error code only; Twilio's own message is dropped, since it
  often quotes the ``To`` number;
- a network failure (refused connection, DNS, TLS, or no answer within
  ``timeout``) raises :class:`~flask_sdkauth.RetryDelivery` naming only the
  exception type. A read timeout may come after Twilio took the request, so a
  retry can send the text twice; it carries the same code, which stays valid,
  whereas failing over would invalidate a code that may yet arrive. The
  library does not hand on ``Retry-After``, so retries follow the engine's
  backoff.

Not confirmed from the library's code, which only sends requests and checks
signatures, but taken from Twilio's documentation: the fields of the status
callbacks (``MessageStatus`` with ``ErrorCode``; ``CallStatus``, posted once a
call has ended when no ``StatusCallbackEvent`` is given) and that the variable
``{{1}}`` of a WhatsApp authentication template is the code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import current_app, request
from flask.typing import ResponseReturnValue

from ..delivery import DeliveryStatus, RetryDelivery
from ..message import Message
from .base import DEFAULT_TIMEOUT, GatewayError, raise_for_answer

try:
    from twilio.base.exceptions import TwilioException  # type: ignore[import-untyped]
    from twilio.http.http_client import TwilioHttpClient  # type: ignore[import-untyped]
    from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]
    from twilio.rest import Client  # type: ignore[import-untyped]
    from twilio.twiml.voice_response import VoiceResponse  # type: ignore[import-untyped]
except ImportError as exc:
    raise ImportError(
        'TwilioSender needs the twilio library: pip install "flask-sdkauth[twilio]"'
    ) from exc

__all__ = ["API_BASE_URL", "MESSAGE_ID_PARAM", "TwilioSender"]

#: Where the library sends REST calls unless told otherwise.
API_BASE_URL = "https://api.twilio.com"
#: The query parameter of the status callback URL that carries the message id.
MESSAGE_ID_PARAM = "sdkauthMessageId"

_SIGNATURE_HEADER = "X-Twilio-Signature"
_WHATSAPP = "whatsapp:"

#: Message statuses (``MessageStatus``) that are reported; the others (queued,
#: sending, accepted, scheduled, canceled…) are Twilio's own steps, not news of
#: the phone.
_MESSAGE_STATUSES: Mapping[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
}
#: Final call statuses (``CallStatus``) of the ``completed`` status callback.
_CALL_STATUSES: Mapping[str, DeliveryStatus] = {
    "completed": "delivered",
    "busy": "failed",
    "no-answer": "failed",
    "failed": "failed",
    "canceled": "failed",
}

logger = logging.getLogger("flask_sdkauth")


class TwilioSender:
    r"""A channel sender for Twilio's ``sms``, ``voice`` and ``whatsapp``.

    Register it for each channel type it should serve::

        twilio = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, from_="+15017122661",
                              status_callback="https://example.com/webhooks/twilio")
        for channel_type in ("sms", "voice", "whatsapp"):
            sdkauth.add_channel_sender(channel_type, twilio)

    :param account_sid: the account (``AC…``) the messages are sent from.
    :param auth_token: its Auth Token; it also checks the webhook's signatures.
    :param from\_: a Twilio phone number (E.164) or sender id; calls need one.
    :param messaging_service_sid: a Messaging Service (``MG…``); when given, SMS
        and WhatsApp go through it (and ``from_`` serves calls only).
    :param whatsapp_from: the WhatsApp sender, ``+E164`` or ``whatsapp:+E164``;
        without it WhatsApp goes through the Messaging Service.
    :param whatsapp_content_sid: an approved WhatsApp template (``HX…``) whose
        variable ``{{1}}`` is the code; WhatsApp then sends the template instead
        of :attr:`~flask_sdkauth.Message.text`, which it only delivers within 24
        hours of the user's last message.
    :param status_callback: the public URL of :meth:`webhook_view`; without it
        Twilio reports nothing back.
    :param say_language: the ``language`` of the voice call's ``<Say>``
        (``"en-US"``…); Twilio's default when ``None``.
    :param say_voice: the ``voice`` of the ``<Say>`` (``"alice"``,
        ``"Polly.Joanna"``…); Twilio's default when ``None``.
    :param timeout: seconds to wait for Twilio on each connect and each read.
    :param region: Twilio region (``"ie1"``…); ``None`` lets the library read
        ``TWILIO_REGION``.
    :param edge: Twilio edge location (``"dublin"``…); ``None`` lets the
        library read ``TWILIO_EDGE``.
    :param api_base_url: where REST calls go (a Twilio-compatible test server);
        the credentials are sent there.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        whatsapp_from: str | None = None,
        whatsapp_content_sid: str | None = None,
        status_callback: str | None = None,
        say_language: str | None = None,
        say_voice: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        region: str | None = None,
        edge: str | None = None,
        api_base_url: str = API_BASE_URL,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("TwilioSender needs an account SID and an auth token")
        if not (from_ or messaging_service_sid or whatsapp_from):
            raise ValueError(
                "TwilioSender needs from_, messaging_service_sid or whatsapp_from"
            )
        if isinstance(timeout, bool) or not timeout > 0:
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        if status_callback is not None:
            parts = urlsplit(status_callback)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
                raise ValueError("status_callback must be an absolute http(s) URL")
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.from_ = from_
        self.messaging_service_sid = messaging_service_sid
        self.whatsapp_from = _whatsapp_address(whatsapp_from) if whatsapp_from else None
        self.whatsapp_content_sid = whatsapp_content_sid
        self.status_callback = status_callback
        self.say_language = say_language
        self.say_voice = say_voice
        self.timeout = timeout
        # A timeout on the HTTP client bounds every call the library makes.
        self._client: Any = Client(
            account_sid,
            auth_token,
            http_client=TwilioHttpClient(timeout=timeout),
            region=region,
            edge=edge,
        )
        # The Client takes no host; its Api domain holds the base URL.
        self._client.api.base_url = api_base_url

    def __repr__(self) -> str:
        return f"TwilioSender(account_sid={self.account_sid!r}, auth_token=***)"

    def __call__(self, message: Message) -> None:
        """Hand ``message`` to Twilio.

        :raises RetryDelivery: Twilio answered 429 or 5xx, or could not be reached
            in time.
        :raises GatewayError: Twilio refused the message for good.
        :raises ValueError: the channel type, or a codeless message on ``voice``,
            is not something this sender can deliver as configured.
        """
        try:
            sid = self._create(message)
        except TwilioException as exc:
            raise _refusal(exc) from None
        except OSError as exc:  # requests' errors, timeouts included, are OSErrors
            raise RetryDelivery(f"Twilio unreachable: {type(exc).__name__}") from None
        logger.info("sdkauth: Twilio took message %s as %s", message.id, sid)

    def _create(self, message: Message) -> str:
        """Create the message or call; return Twilio's SID for it."""
        callback = self._callback_url(message.id)
        if message.channel == "voice":
            if message.code is None:
                raise ValueError("TwilioSender cannot call with a codeless message")
            if not self.from_:
                raise ValueError("TwilioSender needs from_ for voice calls")
            call = self._client.calls.create(
                to=message.recipient,
                from_=self.from_,
                twiml=self._twiml(message),
                status_callback=callback,
            )
            return str(call.sid)
        if message.channel == "sms":
            sender = self._sms_sender()
            created = self._client.messages.create(
                to=message.recipient, body=message.text, status_callback=callback, **sender
            )
            return str(created.sid)
        if message.channel == "whatsapp":
            sender = self._whatsapp_sender()
            content = self._whatsapp_content(message)
            created = self._client.messages.create(
                to=_whatsapp_address(message.recipient),
                status_callback=callback,
                **sender,
                **content,
            )
            return str(created.sid)
        raise ValueError(
            f"TwilioSender sends sms, voice and whatsapp, not {message.channel!r}"
        )

    def _sms_sender(self) -> dict[str, Any]:
        if self.messaging_service_sid:
            return {"messaging_service_sid": self.messaging_service_sid}
        if self.from_:
            return {"from_": self.from_}
        raise ValueError("TwilioSender needs from_ or messaging_service_sid for SMS")

    def _whatsapp_sender(self) -> dict[str, Any]:
        if self.whatsapp_from:
            return {"from_": self.whatsapp_from}
        if self.messaging_service_sid:
            return {"messaging_service_sid": self.messaging_service_sid}
        raise ValueError(
            "TwilioSender needs whatsapp_from or messaging_service_sid for WhatsApp"
        )

    def _whatsapp_content(self, message: Message) -> dict[str, Any]:
        if self.whatsapp_content_sid and message.code is not None:
            return {
                "content_sid": self.whatsapp_content_sid,
                "content_variables": json.dumps({"1": message.code}),
            }
        return {"body": message.text}

    def _callback_url(self, message_id: str) -> str | None:
        if self.status_callback is None:
            return None
        parts = urlsplit(self.status_callback)
        # Appended, not re-encoded: Twilio signs the URL exactly as given.
        query = "&".join(filter(None, [parts.query, urlencode({MESSAGE_ID_PARAM: message_id})]))
        return urlunsplit(parts._replace(query=query))

    def _twiml(self, message: Message) -> str:
        """The call's TwiML: the message text with the code spoken digit by digit,
        twice."""
        code = message.code or ""
        # Commas make text-to-speech pause between digits instead of reading a number.
        digits = ", ".join(code)
        spoken = message.text.replace(code, digits) if code in message.text else digits
        response = VoiceResponse()
        for _ in range(2):
            response.say(spoken, language=self.say_language, voice=self.say_voice)
            response.pause(length=1)
        return str(response)

    def webhook_view(self, *, public_url: str | None = None) -> Callable[[], ResponseReturnValue]:
        """A Flask view for Twilio's status callbacks, to register for ``POST``::

            app.add_url_rule("/webhooks/twilio", view_func=twilio.webhook_view(),
                             methods=["POST"])

        It checks ``X-Twilio-Signature`` against the URL Twilio called and the
        posted form (403 without a valid one, and nothing recorded), then reports
        the status to :meth:`~flask_sdkauth.SdkAuth.report_delivery` and answers
        204. A repeated callback is reported again.

        :param public_url: the URL Twilio calls, without its query string, when it
            differs from ``request.url`` (a proxy that changes the scheme, host or
            path); the request's query string is appended to it.
        """
        validator = RequestValidator(self._auth_token)

        def twilio_status_callback() -> ResponseReturnValue:
            signature = request.headers.get(_SIGNATURE_HEADER, "")
            url = request.url
            if public_url is not None:
                query = request.query_string.decode("latin-1")
                url = f"{public_url}?{query}" if query else public_url
            if not signature or not validator.validate(url, request.form, signature):
                return "", 403
            report = _report(request.form)
            message_id = request.args.get(MESSAGE_ID_PARAM)
            if report is not None and message_id:
                status, reason = report
                sdkauth = current_app.extensions["sdkauth"]
                sdkauth.report_delivery(message_id, status, reason=reason)
            return "", 204

        return twilio_status_callback


def _whatsapp_address(number: str) -> str:
    return number if number.startswith(_WHATSAPP) else f"{_WHATSAPP}{number}"


def _refusal(exc: Exception) -> Exception:
    """What a Twilio exception means for the launch, without Twilio's own text."""
    status = getattr(exc, "status", None)
    if not isinstance(status, int) or isinstance(status, bool):
        return GatewayError(f"Twilio failed: {type(exc).__name__}")
    code = getattr(exc, "code", None)
    # Without an error code in the body the library repeats the status as the code.
    detail = f"error {code}" if isinstance(code, int) and code != status else ""
    try:
        raise_for_answer("Twilio", status, detail)
    except (RetryDelivery, GatewayError) as refusal:
        return refusal


def _report(form: Mapping[str, str]) -> tuple[DeliveryStatus, str | None] | None:
    """The delivery status a status callback tells, with a reason for a failure;
    ``None`` for a status that is not reported."""
    if "MessageStatus" in form:
        twilio_status = form["MessageStatus"]
        status = _MESSAGE_STATUSES.get(twilio_status)
        if status is None:
            return None
        if status != "failed":
            return status, None
        # Only a numeric code: the callback's other fields name the number.
        code = form.get("ErrorCode", "")
        reason = f"Twilio {twilio_status}"
        if code.isascii() and code.isdigit():
            reason += f": error {code}"
        return status, reason
    twilio_status = form.get("CallStatus", "")
    status = _CALL_STATUSES.get(twilio_status)
    if status is None:
        return None
    return status, (f"Twilio call {twilio_status}" if status == "failed" else None)
