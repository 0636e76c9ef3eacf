"""Request and response bodies (the spec's DTOs), as marshmallow schemas.

Class names are the OpenAPI component names.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app

from .phones import InvalidPhoneNumber, to_e164

__all__ = ["PhoneNumber", "SendRequestDto", "SendResponseDto", "ErrorDto"]


class PhoneNumber(ma.fields.String):
    """A phone number, loaded as E.164; written without ``+`` it needs
    ``SDKAUTH_DEFAULT_REGION``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 64:
            raise ma.ValidationError("Not a valid phone number.")
        region = current_app.extensions["sdkauth"].settings.default_region
        try:
            return to_e164(text, region)
        except InvalidPhoneNumber as exc:
            raise ma.ValidationError(str(exc)) from exc


class _Dto(ma.Schema):
    class Meta:
        # Unknown fields are ignored, so a newer widget keeps working.
        unknown = ma.EXCLUDE


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


class ErrorDto(ma.Schema):
    """The body of every error: clients branch on ``type``."""

    type = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
    httpStatus = ma.fields.Integer(required=True)
    payload = ma.fields.Raw(metadata={"description": "Details, e.g. field errors"})
