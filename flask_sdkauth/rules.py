"""What each operation answers in the states where it cannot act (spec §7.4).

One table instead of scattered ``if``s: for every operation, a state maps either to
the exception it raises there or to the ``success`` value it returns at once. A state
that is absent lets the operation go on to its own work.
"""

from __future__ import annotations

import enum

from .errors import (
    AttemptsExpiredException,
    NoAvailableChannelsException,
    ResendChannelException,
    SdkAuthError,
    SessionAlreadyConfirmedException,
    SessionClosedException,
)
from .states import State

__all__ = ["ANSWERS", "Operation"]

Answer = type[SdkAuthError] | bool


class Operation(str, enum.Enum):
    GET_CHANNEL = "getChannel"
    GET_STATUS = "getStatus"
    CHECK_CODE = "checkCode"
    CONFIRM = "confirm"
    RESEND = "resend"
    COMPLETE = "complete"
    CHECK_STATUS_AND_COMPLETE = "checkStatusAndComplete"


_ENDED: dict[State, Answer] = {
    State.ATTEMPTS_EXPIRED: AttemptsExpiredException,
    State.NO_CHANNELS: NoAvailableChannelsException,
    State.CLOSED: SessionClosedException,
}
_CODE_ENTRY: dict[State, Answer] = {
    **_ENDED,
    State.COMPLETED: SessionClosedException,
    State.CHANNEL_FAILED: ResendChannelException,
    State.CONFIRMED: SessionAlreadyConfirmedException,
}

ANSWERS: dict[Operation, dict[State, Answer]] = {
    Operation.GET_CHANNEL: {
        **_ENDED,
        State.COMPLETED: SessionClosedException,
        State.CHANNEL_FAILED: ResendChannelException,
    },
    Operation.GET_STATUS: {
        **_ENDED,
        State.COMPLETED: False,
        State.CHANNEL_FAILED: ResendChannelException,
        State.CONFIRMED: True,
    },
    Operation.CHECK_CODE: _CODE_ENTRY,
    Operation.CONFIRM: _CODE_ENTRY,
    Operation.RESEND: {
        **_ENDED,
        State.COMPLETED: SessionAlreadyConfirmedException,
        State.CONFIRMED: SessionAlreadyConfirmedException,
    },
    Operation.COMPLETE: {state: False for state in State if state is not State.CONFIRMED},
    Operation.CHECK_STATUS_AND_COMPLETE: {
        **_ENDED,
        State.CLOSED: False,
        State.COMPLETED: False,
        State.CHANNEL_FAILED: ResendChannelException,
        State.PENDING: False,
        State.SENT: False,
    },
}
