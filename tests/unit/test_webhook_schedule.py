"""When a webhook is retried (schedule, jitter, Retry-After), and where a delivery may
never go (the egress guard every delivery connects through)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from shared.adapters.providers.http import retry_after
from shared.domain.webhooks import DEFAULT_SCHEDULE, JITTER, next_delay
from shared.egress import EgressRefused, check_address, resolve

# ---------------------------------------------------------------------------
# The schedule
# ---------------------------------------------------------------------------


def test_the_default_schedule_is_the_documented_one() -> None:
    in_hours = [h * 3600 for h in (2, 5, 10, 14, 20, 24)]
    assert (5, 5 * 60, 30 * 60, *in_hours) == DEFAULT_SCHEDULE


@pytest.mark.parametrize("retries_done", range(len(DEFAULT_SCHEDULE)))
def test_each_wait_is_its_scheduled_one_within_the_jitter(retries_done: int) -> None:
    rng = random.Random(retries_done)
    base = DEFAULT_SCHEDULE[retries_done]
    waits = [next_delay(retries_done, rng=rng) for _ in range(200)]
    assert all(w is not None and base * (1 - JITTER) <= w <= base * (1 + JITTER) for w in waits)


def test_waits_are_spread_over_the_jitter_not_all_the_same() -> None:
    rng = random.Random(7)
    waits = [next_delay(2, rng=rng) for _ in range(200)]
    assert len(set(waits)) > 150
    assert min(w for w in waits if w) < 1800 * 0.9 and max(w for w in waits if w) > 1800 * 1.1


def test_a_subscriptions_own_schedule_is_followed() -> None:
    rng = random.Random(1)
    first, second = next_delay(0, [10, 100], rng=rng), next_delay(1, [10, 100], rng=rng)
    assert first is not None and 8 <= first <= 12
    assert second is not None and 80 <= second <= 120


@pytest.mark.parametrize(
    ("retries_done", "schedule"), [(9, DEFAULT_SCHEDULE), (2, [1, 1]), (0, []), (5, [60])]
)
def test_a_spent_schedule_gives_no_further_retry(retries_done: int, schedule: list[int]) -> None:
    assert next_delay(retries_done, schedule) is None


def test_a_retry_after_longer_than_the_scheduled_wait_wins() -> None:
    assert next_delay(0, rng=random.Random(3), retry_after=120) == 120


def test_a_retry_after_shorter_than_the_scheduled_wait_does_not_hasten_the_retry() -> None:
    wait = next_delay(3, rng=random.Random(3), retry_after=1)
    assert wait is not None and wait >= 2 * 3600 * (1 - JITTER)


def test_a_retry_after_is_capped_at_a_day() -> None:
    assert next_delay(0, rng=random.Random(3), retry_after=30 * 86_400) == 86_400


def test_a_retry_after_does_not_extend_a_spent_schedule() -> None:
    assert next_delay(1, [5], retry_after=60) is None


def _answer(value: str) -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": value})


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(minutes=10), usegmt=True)
    assert retry_after(_answer("90"), now) == 90
    assert retry_after(_answer(later), now) == 600
    assert retry_after(_answer("soon"), now) is None


# ---------------------------------------------------------------------------
# Where a delivery may connect
# ---------------------------------------------------------------------------

PRIVATE = [
    "10.1.2.3",
    "172.16.0.1",
    "192.168.0.10",
    "127.0.0.1",
    "127.8.9.10",
    "169.254.10.20",
    "100.64.1.1",
    "0.0.0.0",
    "224.0.0.251",
    "239.255.255.250",
    "::1",
    "fc00::1",
    "fd00:1234::5",
    "fe80::1",
    "fe80::abcd%eth0",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:192.168.1.1",
    "::ffff:7f00:1",
]
METADATA = [
    "169.254.169.254",
    "168.63.129.16",
    "fd00:ec2::254",
    "::ffff:169.254.169.254",
    "::ffff:a9fe:a9fe",
]


@pytest.mark.parametrize("ip", PRIVATE)
def test_a_private_address_is_refused_unless_private_egress_is_allowed(ip: str) -> None:
    with pytest.raises(EgressRefused):
        check_address(ip, allow_private=False)
    check_address(ip, allow_private=True)


@pytest.mark.parametrize("ip", METADATA)
def test_a_cloud_metadata_address_is_refused_always(ip: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(EgressRefused):
            check_address(ip, allow_private=allow_private)


@pytest.mark.parametrize("ip", ["93.184.215.14", "2606:4700::6810:84e5", "::ffff:93.184.215.14"])
def test_a_public_address_is_allowed(ip: str) -> None:
    check_address(ip, allow_private=False)


async def test_a_name_resolving_to_loopback_is_refused_unless_private_egress_is_allowed() -> None:
    with pytest.raises(EgressRefused):
        await resolve("localhost", 443, allow_private=False)
    addresses = await resolve("localhost", 443, allow_private=True)
    assert addresses and all(a in ("127.0.0.1", "::1") for a in addresses)


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "::ffff:127.0.0.1", "169.254.169.254"])
async def test_a_literal_address_is_checked_as_resolved(host: str) -> None:
    with pytest.raises(EgressRefused):
        await resolve(host, 443, allow_private=False)


async def test_the_metadata_address_is_refused_even_where_private_egress_is_allowed() -> None:
    with pytest.raises(EgressRefused):
        await resolve("169.254.169.254", 80, allow_private=True)
