"""Request and response bodies (the spec's DTOs), as marshmallow schemas.

Class names are the OpenAPI component names.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app

from .phones import InvalidPhoneNumber, to_e164

__all__ = [
    "CheckCodeRequestDto",
    "ConfirmForm",
    "ConfirmLinkQuery",
    "ErrorDto",
    "GetChannelResponseDto",
    "GetStatusResponseDto",
    "GetWidgetResponseDto",
    "PhoneNumber",
    "RecipientQuery",
    "RequestPath",
    "SendRequestDto",
    "SendResponseDto",
    "WidgetPath",
]


#: The longest phone number text read (anything longer is refused before parsing).
MAX_PHONE_LENGTH = 64
#: Phone numbers are printable text: phonenumbers would skip a control character.
PRINTABLE = r"^[^\u0000-\u001F\u007F]*$"
#: The alphabet of confirmation tokens (``secrets.token_urlsafe``).
URLSAFE = r"^[A-Za-z0-9_-]*$"


# Validators keep no state: one list each serves every field and request.
_PHONE_VALIDATORS: list[ma.validate.Validator] = [
    ma.validate.Length(min=1, max=MAX_PHONE_LENGTH),
    ma.validate.Regexp(PRINTABLE, error="Not a valid phone number."),
]
_TOKEN_VALIDATORS: list[ma.validate.Validator] = [
    ma.validate.Length(min=1, max=128),
    ma.validate.Regexp(URLSAFE, error="Not a valid token."),
]


class PhoneNumber(ma.fields.String):
    """A phone number of 1 to 64 characters, loaded as E.164; written without ``+``
    it needs ``SDKAUTH_DEFAULT_REGION``."""

    def __init__(self, **kwargs: Any) -> None:
        # The validators document the constraints; _deserialize enforces them first.
        super().__init__(validate=_PHONE_VALIDATORS, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        for validator in _PHONE_VALIDATORS:
            validator(text)
        region = current_app.extensions["sdkauth"].settings.default_region
        try:
            return to_e164(text, region)
        except InvalidPhoneNumber as exc:
            raise ma.ValidationError(str(exc)) from exc


class _Dto(ma.Schema):
    class Meta:
        # Unknown fields are ignored, so a newer widget keeps working.
        unknown = ma.EXCLUDE


class WidgetPath(ma.Schema):
    widgetId = ma.fields.UUID(required=True, metadata={"description": "Widget id"})


class RequestPath(ma.Schema):
    requestId = ma.fields.UUID(required=True, metadata={"description": "Session id"})


class RecipientQuery(_Dto):
    recipient = ma.fields.String(
        required=True,
        validate=_PHONE_VALIDATORS,
        metadata={"description": "The session's phone number, in any common notation"},
    )


class SendRequestDto(_Dto):
    widgetId = ma.fields.UUID(required=True, metadata={"description": "Widget id"})
    recipient = PhoneNumber(
        required=True,
        metadata={"description": "Phone number, e.g. +79991234567", "example": "+79991234567"},
    )
    captchaToken = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=4096),
        metadata={"description": "Captcha token, when getWidget asks for one"},
    )


class SendResponseDto(ma.Schema):
    requestId = ma.fields.UUID(required=True, metadata={"description": "Session id"})


class GetWidgetResponseDto(ma.Schema):
    isBlocked = ma.fields.Boolean(required=True, attribute="is_blocked")
    isActive = ma.fields.Boolean(required=True, attribute="is_active")
    name = ma.fields.String(required=True)
    captchaIsRequired = ma.fields.Boolean(required=True, attribute="captcha_is_required")
    captchaProvider = ma.fields.String(
        attribute="captcha_provider",
        metadata={"enum": ["google", "yandex", "cloudflare"]},
    )

    @ma.post_dump
    def _omit_absent_provider(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # Spec gap 7: the provider is present only when a captcha is configured.
        if data.get("captchaProvider") is None:
            data.pop("captchaProvider", None)
        return data


class ChannelCodeSettingsDto(ma.Schema):
    length = ma.fields.Integer()
    beautify = ma.fields.Boolean()


class ChannelSettingsDto(ma.Schema):
    code = ma.fields.Nested(ChannelCodeSettingsDto)
    lifetime = ma.fields.Integer(required=True, metadata={"description": "Seconds"})
    numberOfTries = ma.fields.Integer(required=True)
    numberOfRestart = ma.fields.Integer()
    restartCooldown = ma.fields.Integer(metadata={"description": "Seconds"})
    fallbackAfter = ma.fields.Integer(
        metadata={"description": "Seconds after which an unconfirmed code moves the "
                  "session to the next channel; absent when off"}
    )


class GetChannelResponseDto(ma.Schema):
    type = ma.fields.String(required=True)
    status = ma.fields.String(
        required=True, metadata={"enum": ["wait", "sent", "confirmed", "error", "closed"]}
    )
    label = ma.fields.String(required=True)
    codeType = ma.fields.String(
        required=True, attribute="code_type", metadata={"enum": ["code", "codeless"]}
    )
    payload = ma.fields.Dict(
        metadata={"description": "Channel data, e.g. matchNumber on codeless channels"}
    )
    settings = ma.fields.Nested(ChannelSettingsDto, required=True)
    remainingCodeAttempts = ma.fields.Integer(
        required=True, attribute="remaining_code_attempts"
    )


class GetStatusResponseDto(ma.Schema):
    success = ma.fields.Boolean(required=True)


class CheckCodeRequestDto(_Dto):
    code = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=32))


class ConfirmLinkQuery(_Dto):
    """The codeless confirmation link: its token and the numbers to offer."""

    token = ma.fields.String(required=True, validate=_TOKEN_VALIDATORS)
    choices = ma.fields.String(load_default="", validate=ma.validate.Length(max=32))


class ConfirmForm(_Dto):
    """The codeless confirmation page's form."""

    token = ma.fields.String(required=True, validate=_TOKEN_VALIDATORS)
    number = ma.fields.String(load_default=None, validate=ma.validate.Length(max=8))


class ErrorDto(ma.Schema):
    """The body of every error: clients branch on ``type``."""

    type = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
    httpStatus = ma.fields.Integer(required=True)
    payload = ma.fields.Raw(metadata={"description": "Details, e.g. field errors"})
