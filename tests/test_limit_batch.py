"""Several limits taken at once (``RateLimiter.take``): the same counting as one
``hit`` per limit, stopped at the first refusal, in one Redis round trip, and
exact under concurrency. On ``memory://`` always, on Redis when
``SDKAUTH_TEST_REDIS_URL`` is set (an unreachable server then fails the tests)."""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from limits import parse
from limits.storage import MemoryStorage

from flask_sdkauth import Channel
from flask_sdkauth.limit_script import RedisLimitBatch
from flask_sdkauth.ratelimits import RateLimiter, parse_limits

from .conftest import bearer
from .flow import WidgetClient

REDIS_URL = os.environ.get("SDKAUTH_TEST_REDIS_URL")
STORAGES = ["memory://"] + ([REDIS_URL] if REDIS_URL else [])
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs SDKAUTH_TEST_REDIS_URL")


def _rules(**limits: str) -> dict[str, tuple]:
    # A rule name of its own per test, so counters in a shared Redis never mix.
    run = uuid.uuid4().hex[:8]
    return {f"{name}-{run}": parse_limits(name, text) for name, text in limits.items()}


@pytest.fixture(params=STORAGES, ids=lambda url: url.partition(":")[0])
def storage_url(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def limiter_for(storage_url: str) -> Iterator:
    made: list[RateLimiter] = []

    def build(rules: dict[str, tuple]) -> RateLimiter:
        limiter = RateLimiter(storage_url, rules, fallback_to_memory=False)
        made.append(limiter)
        return limiter

    yield build


def _remaining(limiter: RateLimiter, rule: str, *key: str) -> list[int]:
    """What the ``limits`` library itself reports left of each limit of ``rule``."""
    return [
        limiter._limiter.get_window_stats(item, rule, *key).remaining
        for item in limiter._rules[rule]
    ]


def test_every_limit_of_every_rule_is_taken(limiter_for):
    rules = _rules(a="3/minute;5/hour", b="2/minute")
    a, b = rules
    limiter = limiter_for(rules)
    assert limiter.take((a, "x"), (b, "y")) is None
    assert _remaining(limiter, a, "x") == [2, 4]
    assert _remaining(limiter, b, "y") == [1]
    assert _remaining(limiter, b, "x") == [2]  # the key is part of the count


def test_the_first_refusal_stops_the_batch(limiter_for):
    rules = _rules(first="5/minute", refusing="1/minute", after="5/minute")
    first, refusing, after = rules
    limiter = limiter_for(rules)
    assert limiter.take((first, "k"), (refusing, "k"), (after, "k")) is None
    refusal = limiter.take((first, "k"), (refusing, "k"), (after, "k"))
    assert refusal is not None and refusal.rule == refusing
    # As consecutive hits: the limit before the refusal was taken, the one after not.
    assert _remaining(limiter, first, "k") == [3]
    assert _remaining(limiter, refusing, "k") == [0]
    assert _remaining(limiter, after, "k") == [4]
    assert not limiter.check(refusing, "k")  # the library's own test sees the slot


def test_the_refusal_gives_the_whole_seconds_until_a_slot_is_free(limiter_for):
    rules = _rules(per_minute="1/minute")
    (rule,) = rules
    limiter = limiter_for(rules)
    assert limiter.take((rule, "k")) is None
    refusal = limiter.take((rule, "k"))
    assert refusal is not None
    assert refusal.retry_after in (60, 61)  # a slot frees strictly after 60 s
    error = refusal.error()
    assert (error.type, error.http_status) == ("RateLimitException", 429)
    assert error.headers == {"Retry-After": str(refusal.retry_after)}


def test_rules_without_limits_take_nothing(limiter_for):
    rules = {"off": parse_limits("off", None), **_rules(on="1/minute")}
    limiter = limiter_for(rules)
    on = next(rule for rule in rules if rule != "off")
    assert limiter.take(("off", "k")) is None
    assert limiter.take(("off", "k"), (on, "k")) is None
    assert limiter.take(("off", "k"), (on, "k")).rule == on


def test_concurrent_batches_take_exactly_each_limit(limiter_for):
    rules = _rules(wide="5/minute", narrow="3/minute")
    wide, narrow = rules
    limiter = limiter_for(rules)
    results: list[str | None] = []
    barrier = threading.Barrier(20)

    def take() -> None:
        barrier.wait()
        refusal = limiter.take((wide, "k"), (narrow, "k"))
        results.append(None if refusal is None else refusal.rule)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Five batches get past the wide limit; three of them past the narrow one.
    assert Counter(results) == {None: 3, narrow: 2, wide: 15}
    assert _remaining(limiter, wide, "k") == [0]
    assert _remaining(limiter, narrow, "k") == [0]


def test_no_batch_script_for_a_storage_without_one_server():
    assert RedisLimitBatch.for_storage(MemoryStorage()) is None


@needs_redis
def test_a_batch_is_one_redis_round_trip():
    rules = _rules(a="10/minute;50/hour", b="3/minute", c="600/minute")
    limiter = RateLimiter(str(REDIS_URL), rules)
    commands = _count_commands(limiter)
    a, b, c = rules
    assert limiter.take((a, "ip"), (b, "number"), (c, "widget")) is None
    assert len(commands) == 1 and commands[0] in ("EVALSHA", "EVAL")


@needs_redis
def test_the_script_counts_on_the_librarys_own_keys():
    """A slot taken by the script is seen by the library's ``hit``, and the other
    way round: both count on the same list."""
    (rule,) = rules = _rules(two="2/minute")
    limiter = RateLimiter(str(REDIS_URL), rules)
    item = parse("2/minute")
    assert limiter.take((rule, "k")) is None
    assert limiter._limiter.hit(item, rule, "k")  # the library takes the second
    assert limiter.take((rule, "k")).rule == rule
    stats = limiter._limiter.get_window_stats(item, rule, "k")
    assert stats.remaining == 0


@needs_redis
def test_a_send_and_a_code_check_count_their_limits_in_two_round_trips_each(
    make_app, outbox
):
    app, sdkauth = make_app({"SDKAUTH_RATELIMIT_STORAGE_URL": REDIS_URL})
    with app.app_context():
        widget = sdkauth.create_widget("W", [Channel("sms")])
        commands = _count_commands(sdkauth.engine.guards.limiter)
    api = WidgetClient(app.test_client(), bearer(app, sdkauth, widget.id))
    number = f"+7999{uuid.uuid4().int % 10**7:07d}"
    request_id = api.send(widget.id, number).json["requestId"]
    # Per IP and per number; then the widget's budget and both daily caps.
    assert len(commands) == 2
    commands.clear()
    assert api.check_code(request_id, outbox.last.code).json == {"success": True}
    # Per IP; then per session and the number's code checks.
    assert len(commands) == 2


def _count_commands(limiter: RateLimiter) -> list[str]:
    """The name of every command the limiter's Redis client sends from now on."""
    client = limiter._storage.storage
    sent: list[str] = []
    real = client.execute_command

    def counting(*args, **kwargs):
        sent.append(str(args[0]).upper())
        return real(*args, **kwargs)

    client.execute_command = counting
    return sent
