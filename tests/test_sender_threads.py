"""The threads sender calls run in: kept for the next call, never reused while hung."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from flask_sdkauth.delivery import SenderTimedOut, call_sender

from .flow import sample_message


def test_a_thread_whose_sender_returned_runs_the_next_call():
    seen = []

    def sender(message):
        seen.append(threading.get_ident())

    for _ in range(5):
        call_sender(sender, sample_message(), 5)
    assert len(seen) == 5 and len(set(seen[1:])) == 1
    assert threading.get_ident() not in seen  # never the caller's own thread


def test_a_hung_sender_keeps_its_thread_and_the_next_call_gets_another():
    release = threading.Event()
    hung = []

    def hangs(message):
        hung.append(threading.get_ident())
        release.wait(10)

    with pytest.raises(SenderTimedOut):
        call_sender(hangs, sample_message(), 0.05)
    answered = []
    call_sender(lambda message: answered.append(threading.get_ident()), sample_message(), 5)
    assert answered and answered[0] != hung[0]
    release.set()


def test_concurrent_calls_each_get_a_thread():
    barrier = threading.Barrier(8, timeout=5)

    def sender(message):
        barrier.wait()  # only returns once all eight run at the same time

    with ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(call_sender, sender, sample_message(), 5) for _ in range(8)]
        for call in calls:
            call.result()


def test_what_the_sender_raises_reaches_the_caller():
    def fails(message):
        raise ConnectionError("gateway down")

    with pytest.raises(ConnectionError, match="gateway down"):
        call_sender(fails, sample_message(), 5)
