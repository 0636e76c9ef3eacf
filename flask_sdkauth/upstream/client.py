"""A Python client of SIGMA's ``otp-handler`` service, usable without Flask.

One method per operation of the contract (spec §3), over one pooled
:class:`httpx.Client`. Every call carries ``Authorization: Bearer <api token>``;
the token is read from a string or, for rotation, from a callable at each call
(``setApiToken`` of SIGMA's Node SDK). Errors follow spec §11:

- an answer ``{type, message, httpStatus}`` is raised as this package's exception of
  that ``type`` (:data:`flask_sdkauth.errors`), an unknown 4xx ``type`` as an
  exception of its own with that type, status and message; either way the answer's
  status and bytes are kept in :attr:`~flask_sdkauth.errors.SdkAuthError.verbatim`
  (and its ``Retry-After`` in ``headers``), so a proxy passes them on unchanged;
- 401 is :class:`~flask_sdkauth.errors.UnauthorizedException`;
- a network failure or a timeout is :class:`~flask_sdkauth.errors.NoConnectionException`;
- a 5xx answer, or one that is not such JSON, is
  :class:`~flask_sdkauth.errors.InternalServerErrorException`.

Long polls wait for the server to answer (it answers 408
``LongPollingTimeoutException`` after its own time-out), so their read time-out is
``long_poll_timeout``, longer than any server's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import TracebackType
from typing import Any

import httpx

from .. import errors
from ..errors import (
    InternalServerErrorException,
    NoConnectionException,
    SdkAuthError,
    UnauthorizedException,
)

__all__ = ["OtpHandlerClient"]

#: The contract's error classes by wire ``type``.
_ERRORS: dict[str, type[SdkAuthError]] = {
    cls.type: cls
    for name in errors.__all__
    if isinstance(cls := getattr(errors, name), type) and issubclass(cls, SdkAuthError)
}

Json = dict[str, Any]


class OtpHandlerClient:
    """Calls ``otp-handler`` at ``api_url`` with ``api_token``.

    :param api_url: the service's base URL, such as
        ``https://online.sigmasms.ru/api/n/otp-handler``.
    :param api_token: the bearer token, or a callable that returns the current one.
    :param timeout: seconds for connecting and for each ordinary call.
    :param long_poll_timeout: seconds a long poll may wait for its answer.
    :param transport: an httpx transport (tests, proxies); by default httpx's own.
    """

    def __init__(
        self,
        api_url: str,
        api_token: str | Callable[[], str],
        *,
        timeout: float = 10.0,
        long_poll_timeout: float = 130.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_url:
            raise ValueError("api_url must be the otp-handler base URL")
        self.api_token = api_token
        self._timeout = httpx.Timeout(timeout)
        self._long_poll_timeout = httpx.Timeout(timeout, read=long_poll_timeout)
        self._http = httpx.Client(
            base_url=api_url.rstrip("/") + "/", timeout=self._timeout, transport=transport
        )

    # -- the operations of spec §3 ---------------------------------------------

    def get_widget(self, widget_id: uuid.UUID | str) -> Json:
        """getWidget: ``{isBlocked, isActive, name}`` (otp-handler has no captcha
        fields, spec §3.11)."""
        return self._call("GET", f"widget/{_uuid(widget_id)}")

    def send(self, widget_id: uuid.UUID | str, recipient: str) -> uuid.UUID:
        """send: start a session for ``recipient``; its request id."""
        body = self._call("POST", "", body={"widgetId": str(_uuid(widget_id)),
                                            "recipient": recipient})
        return _answer_uuid(body, "requestId")

    def get_channel(self, request_id: uuid.UUID | str) -> Json:
        """getChannel: the current channel (``IOtpChannelData``)."""
        return self._call("GET", f"{_uuid(request_id)}/channel")

    def wait_for_channel(self, request_id: uuid.UUID | str) -> Json:
        """getChannelLongPolling: the channel once it changes from what was seen."""
        return self._call("GET", f"longPolling/{_uuid(request_id)}/channel", long_poll=True)

    def get_status(self, request_id: uuid.UUID | str, recipient: str) -> bool:
        """getStatus: whether the session is confirmed."""
        return self._success("GET", f"{_uuid(request_id)}/status", recipient=recipient)

    def wait_for_status(self, request_id: uuid.UUID | str, recipient: str) -> bool:
        """getStatusLongPolling: waits for the session's confirmation."""
        return self._success(
            "GET", f"longPolling/{_uuid(request_id)}/status", recipient=recipient,
            long_poll=True,
        )

    def check_code(self, request_id: uuid.UUID | str, code: str) -> bool:
        """checkCode: ``True`` confirms the session."""
        return self._success("POST", f"{_uuid(request_id)}/checkCode", body={"code": code})

    def resend(self, request_id: uuid.UUID | str) -> bool:
        """resend: restart the channel, or start the next one."""
        return self._success("POST", f"{_uuid(request_id)}/resend")

    def complete(self, request_id: uuid.UUID | str) -> bool:
        """complete: ``True`` once, for a confirmed session."""
        return self._success("POST", f"{_uuid(request_id)}/complete")

    def check_status_and_complete(self, request_id: uuid.UUID | str, recipient: str) -> bool:
        """checkStatusAndComplete: ``True`` once, for a session confirmed for
        ``recipient``."""
        return self._success(
            "POST", f"{_uuid(request_id)}/checkStatusAndComplete", recipient=recipient
        )

    # -- the connection --------------------------------------------------------

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self) -> OtpHandlerClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _success(
        self, method: str, path: str, *, recipient: str | None = None, **options: Any
    ) -> bool:
        body = self._call(method, path, recipient=recipient, **options)
        success = body.get("success")
        if not isinstance(success, bool):
            raise InternalServerErrorException()
        return success

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        recipient: str | None = None,
        long_poll: bool = False,
    ) -> Json:
        token = self.api_token() if callable(self.api_token) else self.api_token
        try:
            answer = self._http.request(
                method,
                path,
                json=body,
                params=None if recipient is None else {"recipient": recipient},
                headers={"Authorization": f"Bearer {token}"},
                timeout=self._long_poll_timeout if long_poll else self._timeout,
            )
        except httpx.HTTPError as exc:
            # Only the exception's type: its text names the URL, with the number.
            raise NoConnectionException() from _Redacted(type(exc).__name__)
        return _answer(answer)


class _Redacted(Exception):
    """The cause of a failed call, named without the call's URL."""


def _answer(answer: httpx.Response) -> Json:
    if answer.status_code == 401:
        raise UnauthorizedException()
    body = _json_object(answer.content)
    if answer.is_success and body is not None:
        return body
    if answer.status_code >= 500 or not answer.is_client_error or not _is_error(body):
        raise InternalServerErrorException()
    assert body is not None
    error = _error_class(body["type"], answer.status_code, body["message"])(body.get("payload"))
    error.verbatim = (answer.status_code, answer.content)
    if "Retry-After" in answer.headers:
        error.headers["Retry-After"] = answer.headers["Retry-After"]
    raise error


def _json_object(content: bytes) -> Json | None:
    try:
        value = json.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _is_error(body: Json | None) -> bool:
    return (
        body is not None
        and isinstance(body.get("type"), str)
        and isinstance(body.get("message"), str)
        and isinstance(body.get("httpStatus"), int)
    )


@lru_cache(maxsize=64)
def _error_class(kind: str, status: int, message: str) -> type[SdkAuthError]:
    """The contract's class for ``kind``; for a type the contract does not know, a
    class of its own with the upstream's type, status and message."""
    known = _ERRORS.get(kind)
    if known is not None:
        return known
    return type(
        "UpstreamError",
        (SdkAuthError,),
        {"type": kind, "http_status": status, "message": message,
         "__doc__": "An error type the upstream service answered that the contract "
                    "does not name."},
    )


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _answer_uuid(body: Json, key: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(body[key]))
    except (KeyError, ValueError) as exc:
        raise InternalServerErrorException() from exc
