"""The baseline: a minimal hand-written Flask app doing the same core work as
flask-sdkauth's ``send`` and ``checkCode``, with none of its machinery.

- ``POST /``: decode the bearer token with PyJWT (same key, audience and claims as a
  widget token), check ``widgetId`` (a UUID the token covers) and ``recipient``
  (parsed and validated with ``phonenumbers``, formatted E.164), then one
  ``INSERT`` of a session row already in ``sent`` with the HMAC of the code
  ``123456``; answer 201 ``{"requestId"}``.
- ``POST /<requestId>/checkCode``: the same token check, validate the id and the
  code, one ``SELECT`` of the row, check the widget, state and expiry, compare the
  HMAC, one conditional ``UPDATE`` to ``confirmed``; answer 201 ``{"success": true}``.

The table ``bench_minimal_session`` has the columns (and the ``created_at`` index)
of ``sdkauth_session``. Statements go through SQLAlchemy Core on a plain engine.
Configuration: ``BENCH_DATABASE_URL`` and ``BENCH_SECRET_KEY``.

With ``BENCH_PROTECTIONS`` ``memory`` or ``redis`` (see ``bench_limits.py``) the
handlers also apply, by hand, the limits the extension applies with the same
settings, on the same storage (``BENCH_RATELIMIT_STORAGE_URL``): one
``MovingWindowRateLimiter(storage_from_string(url)).hit(item, *keys)`` per limit,
whose answer decides (``False``: 429). send takes a slot of the limits per client
address (two), per number, per widget, and of the daily caps per widget and per
calling code, once the request is valid; checkCode one per client address before
the ``SELECT``, one per session once the row is found and the token covers it, and
one of the number's code checks (a right code takes one too) before the comparison. Their keys start with ``minimal``, so that they never share a counter
with the extension's.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import phonenumbers
import sqlalchemy as sa
from bench_limits import items, protections_from_env
from flask import Flask, request
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

FIXED_CODE = "123456"
AUDIENCE = "flask-sdkauth"
CHANNEL = {
    "type": "sms",
    "label": "SMS",
    "codeType": "code",
    "settings": {
        "code": {"length": 6, "beautify": False},
        "lifetime": 300,
        "numberOfTries": 3,
        "numberOfRestart": 2,
        "restartCooldown": 300,
    },
}

metadata = sa.MetaData()
sessions = sa.Table(
    "bench_minimal_session",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("widget_id", sa.Uuid, nullable=False),
    sa.Column("recipient", sa.String(20), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("channel_index", sa.Integer),
    sa.Column("channel", sa.JSON),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("seen_generation", sa.Integer, nullable=False),
    sa.Column("seen_snapshot", sa.String(32)),
    sa.Column("restarts", sa.Integer, nullable=False),
    sa.Column("launched_at", sa.DateTime),
    sa.Column("code_hash", sa.String(64)),
    sa.Column("code_expires_at", sa.DateTime),
    sa.Column("remaining_attempts", sa.Integer, nullable=False),
    sa.Column("history", sa.JSON, nullable=False),
    sa.Column("client_ip", sa.String(45)),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("confirmed_at", sa.DateTime),
    sa.Column("completed_at", sa.DateTime),
)


def _error(kind: str, status: int) -> tuple[dict[str, Any], int]:
    return {"type": kind, "httpStatus": status}, status


def _code_hash(secret: bytes, request_id: uuid.UUID, generation: int, code: str) -> str:
    message = f"{request_id}:{generation}:{code}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class Limits:
    """The limits of ``bench_limits.LIMITS`` on one ``limits`` storage."""

    RULES = {
        "send_per_ip": "SDKAUTH_RATELIMIT_SEND_PER_IP",
        "send_per_recipient": "SDKAUTH_RATELIMIT_SEND_PER_RECIPIENT",
        "send_per_widget": "SDKAUTH_RATELIMIT_SEND_PER_WIDGET",
        "daily_per_widget": "SDKAUTH_DAILY_SEND_CAP_PER_WIDGET",
        "daily_per_country": "SDKAUTH_DAILY_SEND_CAP_PER_COUNTRY",
        "check_code_per_ip": "SDKAUTH_RATELIMIT_CHECK_CODE_PER_IP",
        "check_code_per_session": "SDKAUTH_RATELIMIT_CHECK_CODE_PER_SESSION",
        "code_checks_per_recipient": "SDKAUTH_RATELIMIT_FAILED_CODES_PER_RECIPIENT",
    }

    def __init__(self, storage_url: str) -> None:
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_url))
        self.items = {rule: items(key) for rule, key in self.RULES.items()}

    def hit(self, rule: str, key: str) -> bool:
        """Take one slot of each limit of ``rule``; ``False`` when one has none left."""
        for item in self.items[rule]:
            if not self.limiter.hit(item, "minimal", rule, key):
                return False
        return True


def build(database_url: str, secret_key: str) -> tuple[Flask, sa.Engine]:
    app = Flask("minimal_app")
    engine = sa.create_engine(database_url)
    secret = secret_key.encode()
    mode, storage_url = protections_from_env()
    limits = Limits(storage_url) if storage_url is not None else None

    def token_widgets() -> frozenset[str] | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = jwt.decode(
                token,
                secret_key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                options={"require": ["exp", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        widgets = (claims.get("sdkauth") or {}).get("widgets")
        if claims.get("type") != "sdkauth" or not isinstance(widgets, list):
            return None
        return frozenset(widgets)

    @app.post("/")
    def send() -> Any:
        widgets = token_widgets()
        if widgets is None:
            return _error("Unauthorized", 401)
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return _error("ValidateError", 400)
        try:
            widget_id = uuid.UUID(str(data.get("widgetId")))
        except ValueError:
            return _error("ValidateError", 400)
        recipient = data.get("recipient")
        if not isinstance(recipient, str) or len(recipient) > 64:
            return _error("ValidateError", 400)
        try:
            number = phonenumbers.parse(recipient, None)
        except phonenumbers.NumberParseException:
            return _error("ValidateError", 400)
        if not phonenumbers.is_valid_number(number):
            return _error("ValidateError", 400)
        if str(widget_id) not in widgets:
            return _error("ForbiddenException", 403)
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if limits is not None:
            ip = request.remote_addr or ""
            if not (
                limits.hit("send_per_ip", ip)
                and limits.hit("send_per_recipient", e164)
                and limits.hit("send_per_widget", str(widget_id))
                and limits.hit("daily_per_widget", str(widget_id))
                and limits.hit("daily_per_country", str(number.country_code))
            ):
                return _error("RateLimitException", 429)
        now = datetime.now(UTC).replace(tzinfo=None)
        request_id = uuid.uuid4()
        with engine.begin() as connection:
            connection.execute(
                sa.insert(sessions).values(
                    id=request_id,
                    widget_id=widget_id,
                    recipient=e164,
                    state="sent",
                    channel_index=0,
                    channel=CHANNEL,
                    payload={},
                    generation=1,
                    seen_generation=0,
                    seen_snapshot=None,
                    restarts=0,
                    launched_at=now,
                    code_hash=_code_hash(secret, request_id, 1, FIXED_CODE),
                    code_expires_at=now + timedelta(seconds=300),
                    remaining_attempts=3,
                    history=[{"index": 0, "channel": "sms", "outcome": "sent",
                              "reason": None, "at": now.isoformat()}],
                    client_ip=request.remote_addr,
                    created_at=now,
                    updated_at=now,
                    expires_at=now + timedelta(seconds=1800),
                )
            )
        return {"requestId": str(request_id)}, 201

    @app.post("/<request_id>/checkCode")
    def check_code(request_id: str) -> Any:
        widgets = token_widgets()
        if widgets is None:
            return _error("Unauthorized", 401)
        try:
            session_id = uuid.UUID(request_id)
        except ValueError:
            return _error("ValidateError", 400)
        data = request.get_json(silent=True)
        code = data.get("code") if isinstance(data, dict) else None
        if not isinstance(code, str) or not 1 <= len(code) <= 32:
            return _error("ValidateError", 400)
        if limits is not None and not limits.hit("check_code_per_ip", request.remote_addr or ""):
            return _error("RateLimitException", 429)
        with engine.connect() as connection:
            row = connection.execute(
                sa.select(sessions).where(sessions.c.id == session_id)
            ).first()
        if row is None:
            return _error("SessionNotFoundException", 404)
        if str(row.widget_id) not in widgets:
            return _error("ForbiddenException", 403)
        if limits is not None and not limits.hit("check_code_per_session", str(session_id)):
            return _error("RateLimitException", 429)
        now = datetime.now(UTC).replace(tzinfo=None)
        if row.state != "sent" or now >= row.expires_at or now >= row.code_expires_at:
            return _error("SessionClosedException", 400)
        if limits is not None and not limits.hit("code_checks_per_recipient", row.recipient):
            return _error("RateLimitException", 429)
        expected = _code_hash(secret, session_id, row.generation, code)
        if not hmac.compare_digest(expected, row.code_hash or ""):
            return _error("InvalidCodeException", 400)
        with engine.begin() as connection:
            updated = connection.execute(
                sa.update(sessions)
                .where(
                    sessions.c.id == session_id,
                    sessions.c.state == "sent",
                    sessions.c.generation == row.generation,
                )
                .values(state="confirmed", code_hash=None, confirmed_at=now, updated_at=now)
            ).rowcount
        if updated != 1:
            return _error("SessionAlreadyConfirmedException", 409)
        return {"success": True}, 201

    @app.get("/_bench/pid")
    def bench_pid() -> dict[str, Any]:
        return {"pid": os.getpid(), "protections": mode}

    return app, engine


def create_app() -> Flask:
    return build(os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_SECRET_KEY"])[0]
