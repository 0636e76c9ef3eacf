"""The public contract, read from a copy of the spec's ``errors.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"

ERRORS: dict[str, dict[str, Any]] = {
    entry["type"]: entry for entry in json.loads((DATA / "errors.json").read_text("utf-8"))
}
ENDPOINTS: dict[str, dict[str, Any]] = {
    entry["operationId"]: entry
    for entry in json.loads((DATA / "endpoints.json").read_text("utf-8"))
}


def wire_message(error_type: str) -> str:
    entry = ERRORS[error_type]
    return entry["message"] if entry["message"] is not None else entry["suggestedMessage"]


def error_body(error_type: str) -> bytes:
    """The exact bytes of an error body with no payload."""
    entry = ERRORS[error_type]
    body = {
        "type": entry.get("wireType", error_type),
        "message": wire_message(error_type),
        "httpStatus": entry["httpStatus"],
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
