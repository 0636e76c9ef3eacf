"""What every sender shares: the refusal of a gateway as an exception."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flask_sdkauth import RetryDelivery
from flask_sdkauth.senders.base import GatewayError, raise_for_answer, retry_after_seconds


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_ask_for_a_retry(status):
    with pytest.raises(RetryDelivery) as caught:
        raise_for_answer("Gateway", status, "busy", retry_after="7")
    assert str(caught.value) == f"Gateway answered {status}: busy"
    assert caught.value.after == 7.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_refusals_fail_the_channel(status):
    with pytest.raises(GatewayError, match=f"^Gateway answered {status}$"):
        raise_for_answer("Gateway", status)


def test_retry_after_as_seconds_or_a_date():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
