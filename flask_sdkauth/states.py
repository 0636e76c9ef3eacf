"""The session state machine of spec §7 as one table of transitions.

A transition names the states it may start from and the state it ends in. The store
applies it as a single conditional ``UPDATE … WHERE state IN (…)``, so two racing
callers can never both take the same transition.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CHANNEL_STATUS", "OPEN_STATES", "TRANSITIONS", "Event", "State", "Transition"]


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
    CODE_EXPIRED = "code_expired"
    RESTARTED = "restarted"
    FELL_BACK = "fell_back"
    DELIVERY_FAILED = "delivery_failed"
    FALLBACK_FAILED = "fallback_failed"
    HISTORY_NOTED = "history_noted"
    LAUNCH_RUNNING = "launch_running"
    RELAUNCHED = "relaunched"
    LAUNCH_LOST = "launch_lost"
    ATTEMPT_TAKEN = "attempt_taken"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    SESSION_EXPIRED = "session_expired"


@dataclass(frozen=True)
class Transition:
    """``sources`` → ``target`` (``None``: the state stays as it is); ``announced``
    transitions wake long polls."""

    sources: frozenset[State]
    target: State | None
    announced: bool = True


def _from(*states: State) -> frozenset[State]:
    return frozenset(states)


#: States a session can still leave on its own or through the client.
OPEN_STATES = _from(State.PENDING, State.SENT, State.CHANNEL_FAILED, State.CONFIRMED)

TRANSITIONS: dict[Event, Transition] = {
    # A channel accepted the message, or none of the widget's channels did.
    Event.CHANNEL_SENT: Transition(_from(State.PENDING), State.SENT),
    Event.CHANNELS_EXHAUSTED: Transition(_from(State.PENDING), State.NO_CHANNELS),
    # The code's lifetime ran out: the client must call resend.
    Event.CODE_EXPIRED: Transition(_from(State.SENT), State.CHANNEL_FAILED),
    # resend: relaunch the channel (or the next one).
    Event.RESTARTED: Transition(
        _from(State.PENDING, State.SENT, State.CHANNEL_FAILED), State.PENDING
    ),
    # The current launch failed after it was sent (a delivery report), or its
    # channel's fallbackAfter ran out: the next channel is launched. A failure
    # reported on the widget's last channel waits for resend instead.
    Event.FELL_BACK: Transition(_from(State.SENT), State.PENDING),
    Event.DELIVERY_FAILED: Transition(_from(State.SENT), State.CHANNEL_FAILED),
    # A launch the engine started on its own that found no channel: the client
    # may still resend (a code that was valid must not end the session for good).
    Event.FALLBACK_FAILED: Transition(_from(State.PENDING), State.CHANNEL_FAILED),
    # History only: a delivery report that changes nothing else, or the tries of a
    # launch that lost the race to record its outcome.
    Event.HISTORY_NOTED: Transition(frozenset(State), None, announced=False),
    # A launch still at work: it refreshes updated_at before each further try, so
    # that the sweep does not take it for lost.
    Event.LAUNCH_RUNNING: Transition(_from(State.PENDING), None, announced=False),
    # A launch that did not finish in time (its worker died, its job was lost) is
    # claimed again by the sweep; a launch that could not be queued ends the session.
    Event.RELAUNCHED: Transition(_from(State.PENDING), State.PENDING, announced=False),
    Event.LAUNCH_LOST: Transition(_from(State.PENDING), State.CLOSED),
    # An attempt is taken before a code is compared (announced only with the
    # comparison's outcome); a wrong code on the last one ends the session.
    Event.ATTEMPT_TAKEN: Transition(_from(State.SENT), State.SENT, announced=False),
    Event.ATTEMPTS_EXHAUSTED: Transition(_from(State.SENT), State.ATTEMPTS_EXPIRED),
    # The right code (or a codeless confirmation), then the backend's completion.
    Event.CONFIRMED: Transition(_from(State.SENT), State.CONFIRMED),
    Event.COMPLETED: Transition(_from(State.CONFIRMED), State.COMPLETED),
    # The session lifetime ran out before completion.
    Event.SESSION_EXPIRED: Transition(OPEN_STATES, State.CLOSED),
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
