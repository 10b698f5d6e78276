"""Status moves: forward only, failures and cancellations from the right places."""

from __future__ import annotations

import itertools

import pytest

from shared.domain.status import STATUSES, can_move, emits_event

# Written out from the rules in ARCHITECTURE.md, not from the code: for each
# current status, every status it may move to.
ALLOWED: dict[str, set[str]] = {
    "scheduled": {
        "queued",
        "sending",
        "sent",
        "delivered",
        "read",
        "failed",
        "expired",
        "cancelled",
    },
    "queued": {"sending", "sent", "delivered", "read", "failed", "expired", "cancelled"},
    "sending": {"queued", "sent", "delivered", "read", "failed"},
    "sent": {"delivered", "read", "failed"},
    "delivered": {"read"},
    "read": set(),
    "failed": set(),
    "expired": set(),
    "cancelled": set(),
    "received": set(),
}
PAIRS = list(itertools.product(STATUSES, repeat=2))


def test_the_expected_table_covers_every_status() -> None:
    assert set(ALLOWED) == set(STATUSES)


@pytest.mark.parametrize(("current", "new"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_a_move_is_allowed_exactly_when_the_table_says_so(current: str, new: str) -> None:
    assert can_move(current, new) is (new in ALLOWED[current])


def test_a_late_sent_after_delivered_is_refused() -> None:
    assert not can_move("delivered", "sent")


def test_a_delivery_failure_may_follow_sent_but_not_delivered_or_read() -> None:
    assert can_move("sent", "failed")
    assert not can_move("delivered", "failed")
    assert not can_move("read", "failed")


@pytest.mark.parametrize("new", ["cancelled", "expired"])
def test_only_pending_messages_can_be_cancelled_or_expire(new: str) -> None:
    assert {s for s in STATUSES if can_move(s, new)} == {"scheduled", "queued"}


def test_a_retry_moves_a_sending_message_back_to_queued() -> None:
    assert can_move("sending", "queued")
    assert not can_move("sent", "queued")


@pytest.mark.parametrize("final", ["read", "failed", "expired", "cancelled", "received"])
def test_nothing_leaves_a_final_status(final: str) -> None:
    assert not any(can_move(final, s) for s in STATUSES)


def test_staying_in_the_same_status_is_not_a_move() -> None:
    assert not any(can_move(s, s) for s in STATUSES)


def test_only_sending_emits_no_event() -> None:
    assert [s for s in STATUSES if not emits_event(s)] == ["sending"]
