"""The session state machine of spec §7 as one table of transitions.

A transition names the states it may start from and the state it ends in. The store
applies it as a single conditional ``UPDATE … WHERE state IN (…)``, so two racing
callers can never both take the same transition.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["State", "Event", "Transition", "TRANSITIONS", "CHANNEL_STATUS"]


class State(str, enum.Enum):
    """Where an authentication session is (spec §7.1)."""

    PENDING = "pending"
    SENT = "sent"
    CHANNEL_FAILED = "channel_failed"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    ATTEMPTS_EXPIRED = "attempts_expired"
    NO_CHANNELS = "no_channels"
    CLOSED = "closed"


class Event(str, enum.Enum):
    """Something that moves a session from one state to another."""

    CHANNEL_SENT = "channel_sent"
    CHANNELS_EXHAUSTED = "channels_exhausted"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[State]
    target: State


TRANSITIONS: dict[Event, Transition] = {
    Event.CHANNEL_SENT: Transition(frozenset({State.PENDING}), State.SENT),
    Event.CHANNELS_EXHAUSTED: Transition(frozenset({State.PENDING}), State.NO_CHANNELS),
}

#: The channel ``status`` a client sees in each state (``EOtpHandlerChannelStatus``).
CHANNEL_STATUS: dict[State, str] = {
    State.PENDING: "wait",
    State.SENT: "sent",
    State.CHANNEL_FAILED: "error",
    State.CONFIRMED: "confirmed",
    State.COMPLETED: "closed",
    State.ATTEMPTS_EXPIRED: "error",
    State.NO_CHANNELS: "error",
    State.CLOSED: "closed",
}
