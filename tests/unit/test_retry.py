"""Backoff: exponential, capped, jittered within half a step, Retry-After a floor."""

from __future__ import annotations

import random

import pytest

from shared.domain.retry import retry_delay

BASE, CAP = 2.0, 60.0


def delay(attempt: int, seed: int = 1, **kw: float) -> float:
    return retry_delay(attempt, base=BASE, cap=CAP, rng=random.Random(seed), **kw)


def test_the_same_seed_gives_the_same_delay() -> None:
    assert delay(3, seed=42) == delay(3, seed=42)


@pytest.mark.parametrize("attempt", [1, 2, 3, 4])
def test_each_attempt_doubles_the_delay_below_the_cap(attempt: int) -> None:
    # One seed, so one random draw: only the exponential step differs.
    assert delay(attempt + 1) == pytest.approx(2 * delay(attempt))


def test_the_first_attempt_waits_between_half_the_base_and_the_base() -> None:
    assert BASE / 2 <= delay(1) <= BASE


@pytest.mark.parametrize("attempt", [6, 7, 10, 50, 1000])
def test_the_delay_is_capped(attempt: int) -> None:
    assert CAP / 2 <= delay(attempt) <= CAP


def test_capped_attempts_all_draw_from_the_same_range() -> None:
    assert delay(10, seed=3) == delay(60, seed=3)


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6, 9])
def test_jitter_stays_within_half_a_step_and_the_step(attempt: int) -> None:
    rng = random.Random(2030)
    step = min(CAP, BASE * 2 ** (attempt - 1))
    draws = [retry_delay(attempt, base=BASE, cap=CAP, rng=rng) for _ in range(2000)]
    assert all(step / 2 <= d <= step for d in draws)
    # It really is jitter: the draws spread over the whole range.
    assert min(draws) < step * 0.55
    assert max(draws) > step * 0.95


def test_retry_after_is_a_floor_when_longer_than_the_backoff() -> None:
    assert delay(1, retry_after=30.0) == 30.0
    assert delay(20, retry_after=600.0) == 600.0  # even beyond the cap


def test_a_shorter_retry_after_does_not_shorten_the_backoff() -> None:
    assert delay(4, seed=9, retry_after=0.5) == delay(4, seed=9)


def test_no_retry_after_and_zero_retry_after_are_the_same() -> None:
    assert delay(2, seed=5, retry_after=0.0) == delay(2, seed=5)
