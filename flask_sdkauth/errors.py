"""The exceptions of the public contract and the one function that renders them.

Every class carries the wire ``type`` (its own name unless set), ``http_status`` and the
exact ``message`` of the spec's ``errors.json``. Hosts and clients branch on ``type``.
None of them subclasses werkzeug's ``HTTPException``, so a host's
``@app.errorhandler(401)`` never hijacks ours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from flask import Response

__all__ = [
    "AttemptsExpiredException",
    "BadRequestException",
    "CaptchaNotConfirmedException",
    "ChannelChangedException",
    "CommonForbiddenException",
    "ForbiddenException",
    "InternalServerErrorException",
    "InvalidCodeException",
    "IsCodelessChannelException",
    "LongPollingTimeoutException",
    "NoAvailableChannelsException",
    "NoConnectionException",
    "PhoneNumberMismatchException",
    "RateLimitException",
    "RequestNotFoundException",
    "ResendChannelException",
    "RestartCooldownActiveException",
    "SdkAuthError",
    "SessionAlreadyConfirmedException",
    "SessionClosedException",
    "SessionNotFoundException",
    "UnauthorizedException",
    "ValidateError",
    "WidgetIsBlockedException",
    "WidgetNotFoundException",
]


class SdkAuthError(Exception):
    """Base class of every error the extension reports.

    :param payload: optional details rendered under ``"payload"`` (for example the
        field errors of a :class:`ValidateError`).
    :param headers: extra response headers (for example ``Retry-After``).
    """

    type: ClassVar[str] = "SdkAuthError"
    http_status: ClassVar[int] = 500
    message: ClassVar[str] = ""
    #: An upstream service's answer for this error, its status and body, rendered
    #: as they are instead of ours (spec §11: errors are passed through unchanged).
    verbatim: tuple[int, bytes] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type" not in cls.__dict__:
            cls.type = cls.__name__

    def __init__(
        self,
        payload: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(self.message)
        self.payload = payload
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        """The wire body: ``{type, message, httpStatus[, payload]}`` in that order."""
        body: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "httpStatus": self.http_status,
        }
        if self.payload is not None:
            body["payload"] = self.payload
        return body


def error_response(error: SdkAuthError) -> Response:
    """Render ``error`` as the spec's JSON body (UTF-8, keys in contract order).

    The body is serialised here rather than by ``app.json`` so that a host's JSON
    provider settings (``sort_keys``, ``ensure_ascii``) cannot change its bytes.
    """
    if error.verbatim is not None:
        status, body = error.verbatim
    else:
        status = error.http_status
        body = json.dumps(error.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()
    return Response(
        body,
        status=status,
        headers=error.headers,
        content_type="application/json",
    )


class UnauthorizedException(SdkAuthError):
    """No bearer token, or one that is malformed, badly signed or expired."""

    type = "Unauthorized"
    http_status = 401
    message = "Unauthorized"

    def __init__(self, payload: Any = None) -> None:
        super().__init__(payload, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenException(SdkAuthError):
    """The token does not cover this widget or session, or the widget is inactive."""

    http_status = 403
    message = "Запрещено"


#: The SDK-level name of :class:`ForbiddenException` (spec gap 2).
CommonForbiddenException = ForbiddenException


class ValidateError(SdkAuthError):
    """The request failed validation; ``payload`` holds the field errors by location."""

    http_status = 400
    message = "Ошибка валидации"


class BadRequestException(SdkAuthError):
    """A generic malformed request (kept for completeness of the contract)."""

    http_status = 400
    message = "Некорректный запрос"


class WidgetNotFoundException(SdkAuthError):
    http_status = 404
    message = "Форма не существует"


class WidgetIsBlockedException(SdkAuthError):
    http_status = 403
    message = "Форма или пользователь заблокированы - обратитесь в поддержку"


class NoAvailableChannelsException(SdkAuthError):
    http_status = 400
    message = (
        "Нет подходящих каналов для отправки сообщения, "
        "запустите попытку авторизации заново"
    )


class SessionNotFoundException(SdkAuthError):
    http_status = 404
    message = "Сессия не найдена"


class SessionClosedException(SdkAuthError):
    http_status = 400
    message = "Сессия закрыта"


class SessionAlreadyConfirmedException(SdkAuthError):
    http_status = 409
    message = "Сессия уже подтверждена"


class ResendChannelException(SdkAuthError):
    http_status = 400
    message = "Перезапустите канал"


class ChannelChangedException(SdkAuthError):
    http_status = 400
    message = (
        "Требуется сменить канал авторизации. Перезапросите текущий канал, "
        "чтобы отрисовать нужный для него компонент на frontend"
    )


class AttemptsExpiredException(SdkAuthError):
    http_status = 400
    message = (
        "Количество попыток ввода кода исчерпано, "
        "запустите попытку авторизации заново"
    )


class InvalidCodeException(SdkAuthError):
    http_status = 400
    message = "Код, введенный пользователем, неправильный"


class IsCodelessChannelException(SdkAuthError):
    http_status = 403
    message = "Канал безкодовый"


class PhoneNumberMismatchException(SdkAuthError):
    http_status = 409
    message = "Номер телефона не совпадает с привязанным к текущей сессии."


class RestartCooldownActiveException(SdkAuthError):
    http_status = 409
    message = "Перезапуск недоступен: требуется подождать."


class LongPollingTimeoutException(SdkAuthError):
    http_status = 408
    # The typo "Запустие" is part of the published contract.
    message = "Истек timeout long-polling запроса. Запустие long-polling запрос заново"


class RateLimitException(SdkAuthError):
    http_status = 429
    message = "Ошибка RateLimit"


class CaptchaNotConfirmedException(SdkAuthError):
    http_status = 400
    message = "Капча не подтверждена"


class RequestNotFoundException(SdkAuthError):
    http_status = 404
    message = "Зарпос не найден"


class NoConnectionException(SdkAuthError):
    http_status = 503
    message = "Ошибка подключения к SIGMA API"


class InternalServerErrorException(SdkAuthError):
    http_status = 500
    message = "Внутрення ошибка сервера"
