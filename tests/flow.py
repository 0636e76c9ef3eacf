"""A widget's view of the HTTP API, and sessions driven into each state through it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from flask_sdkauth import Message, SdkAuth, SdkAuthError

RECIPIENT = "+79991234567"


def sample_message(**fields: Any) -> Message:
    """A message as a launch hands it to a sender: an SMS code to ``RECIPIENT``,
    with ``fields`` replacing the defaults."""
    values: dict[str, Any] = dict(
        id=f"{uuid.uuid4().hex}-1-0",
        request_id=uuid.uuid4(),
        widget_id=uuid.uuid4(),
        recipient=RECIPIENT,
        channel="sms",
        label="SMS",
        code_type="code",
        code="482913",
        text="Код подтверждения: 482913",
        locale="ru",
        expires_at=datetime(2026, 1, 1, 12, 5, tzinfo=UTC),
    )
    values.update(fields)
    return Message(**values)


class WidgetClient:
    """Calls the operations the way the spec's widget does."""

    def __init__(self, client: FlaskClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def send(self, widget_id: uuid.UUID | str, recipient: str = RECIPIENT) -> Any:
        body = {"widgetId": str(widget_id), "recipient": recipient}
        return self.client.post("/", json=body, headers=self.headers)

    def widget(self, widget_id: uuid.UUID | str) -> Any:
        return self.client.get(f"/widget/{widget_id}", headers=self.headers)

    def channel(self, request_id: str) -> Any:
        return self.client.get(f"/{request_id}/channel", headers=self.headers)

    def status(self, request_id: str, recipient: str = RECIPIENT) -> Any:
        return self.client.get(
            f"/{request_id}/status", query_string={"recipient": recipient}, headers=self.headers
        )

    def check_code(self, request_id: str, code: Any) -> Any:
        return self.client.post(
            f"/{request_id}/checkCode", json={"code": code}, headers=self.headers
        )

    def resend(self, request_id: str) -> Any:
        return self.client.post(f"/{request_id}/resend", headers=self.headers)

    def complete(self, request_id: str) -> Any:
        return self.client.post(f"/{request_id}/complete", headers=self.headers)

    def check_status_and_complete(self, request_id: str, recipient: str = RECIPIENT) -> Any:
        return self.client.post(
            f"/{request_id}/checkStatusAndComplete",
            query_string={"recipient": recipient},
            headers=self.headers,
        )


def wrong(code: str) -> str:
    """A code of the same length that is certainly not ``code``."""
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


def started(api: WidgetClient, widget_id: uuid.UUID) -> str:
    response = api.send(widget_id)
    assert response.status_code == 201, response.json
    request_id = response.json["requestId"]
    # The widget fetches the channel before anything else (spec §1.2).
    assert api.channel(request_id).status_code == 200
    return request_id


def session_state(app: Flask, sdkauth: SdkAuth, request_id: str) -> str:
    with app.app_context():
        return sdkauth.engine.sessions.get(uuid.UUID(request_id)).state.value


def race(app: Flask, calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run every call at once, each in its own thread and app context, released
    together by a barrier; the results in order (an ``SdkAuthError`` as its type)."""
    barrier = threading.Barrier(len(calls))

    def one(call: Callable[[], Any]) -> Any:
        with app.app_context():
            barrier.wait()
            try:
                return call()
            except SdkAuthError as error:
                return error.type

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))
