"""One JSON POST to a gateway without an idempotency key, with httpx.

Whether a failed call may be made again depends on whether the request can have
reached the gateway: a connection that was never made sent nothing, so it is
retried; a timeout or a broken connection once the request was on its way may
have sent the message already, and a second request would be a second paid
message with another code, so it fails the channel instead.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..delivery import RetryDelivery
from .base import GatewayError

__all__ = ["json_or_none", "post_json"]


def post_json(
    gateway: str, url: str, body: Any, *, headers: dict[str, str], timeout: float
) -> httpx.Response:
    """POST ``body`` as JSON to ``url``; the answer, whatever its status.

    :raises RetryDelivery: no connection could be made.
    :raises GatewayError: the call failed once it was on its way; the text names
        the exception's type only (httpx's texts carry the URL).
    """
    try:
        return httpx.post(url, json=body, headers=headers, timeout=timeout)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise RetryDelivery(f"{gateway} unreachable: {type(exc).__name__}") from None
    except httpx.TimeoutException as exc:
        raise GatewayError(f"{gateway} did not answer in time: {type(exc).__name__}") from None
    except httpx.HTTPError as exc:
        raise GatewayError(f"{gateway} call failed: {type(exc).__name__}") from None


def json_or_none(response: httpx.Response) -> Any:
    """The answer's JSON, or ``None`` when its body is not JSON (a proxy's error
    page, an empty body)."""
    try:
        return response.json()
    except ValueError:
        return None
