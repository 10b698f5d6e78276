"""Which events a subscription takes: its event types (with wildcards), its channel
and direction filters, the inbound text rules, and never when it is disabled."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.webhooks import EVENT_TYPES, WebhookCreate, matches, valid_pattern


def subscription(events: list[str], enabled: bool = True, **filters: Any) -> dict[str, Any]:
    return {"id": "whk_1", "events": events, "enabled": enabled, "filters": filters}


def event(
    event_type: str = "message.delivered",
    *,
    channel: str = "sms-main",
    direction: str = "outbound",
    content: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"message_id": "msg_1", "channel": channel, "direction": direction}
    if content is not None:
        data["content"] = content
    return {
        "id": "evt_1",
        "type": event_type,
        "timestamp": "2026-01-01T00:00:00.000Z",
        "data": data,
    }


def inbound(text: str | None = None, **content: Any) -> dict[str, Any]:
    body = {"type": "text", "text": text} if text is not None else content
    return event("message.received", direction="inbound", content=body)


def test_a_subscription_takes_the_event_types_it_names_and_no_others() -> None:
    sub = subscription(["message.delivered", "message.failed"])
    assert matches(sub, event("message.delivered"))
    assert matches(sub, event("message.failed"))
    assert not matches(sub, event("message.sent"))


def test_a_family_wildcard_takes_every_type_of_that_family_only() -> None:
    sub = subscription(["message.*"])
    assert all(matches(sub, event(t)) for t in EVENT_TYPES if t.startswith("message."))
    assert not matches(sub, event("webhook.endpoint.failing"))
    assert matches(subscription(["webhook.endpoint.*"]), event("webhook.endpoint.disabled"))
    assert not matches(subscription(["webhook.endpoint.*"]), event("webhook.test"))


def test_a_star_takes_every_event_type() -> None:
    assert all(matches(subscription(["*"]), event(t)) for t in EVENT_TYPES)


def test_a_wildcard_is_not_a_prefix_match_on_the_name() -> None:
    assert not matches(subscription(["message.*"]), event("messages.sent"))


def test_a_disabled_subscription_takes_nothing() -> None:
    assert not matches(subscription(["*"], enabled=False), event())
    assert not matches(subscription(["message.delivered"], enabled=False), event())


def test_the_channel_filter_keeps_the_named_channels_only() -> None:
    sub = subscription(["message.*"], channels=["sms-main", "email-main"])
    assert matches(sub, event(channel="email-main"))
    assert not matches(sub, event(channel="sms-backup"))
    assert matches(subscription(["message.*"], channels=[]), event(channel="anything"))


def test_the_direction_filter_keeps_one_direction() -> None:
    sub = subscription(["message.*"], direction="inbound")
    assert matches(sub, inbound("hello"))
    assert not matches(sub, event("message.delivered", direction="outbound"))
    assert matches(subscription(["message.*"], direction="outbound"), event())


@pytest.mark.parametrize(
    ("text", "taken"),
    [
        ("STOP", True),
        ("stop please", True),
        ("  Stop now", True),
        ("please stop", False),
        ("", False),
    ],
)
def test_starts_with_matches_inbound_text_ignoring_case_and_leading_space(
    text: str, taken: bool
) -> None:
    sub = subscription(["message.received"], text_starts_with="stop")
    assert matches(sub, inbound(text)) is taken


@pytest.mark.parametrize(
    ("text", "taken"),
    [("My ORDER is late", True), ("order", True), ("ordinary", False)],
)
def test_contains_matches_inbound_text_anywhere_ignoring_case(text: str, taken: bool) -> None:
    sub = subscription(["message.received"], text_contains="order")
    assert matches(sub, inbound(text)) is taken


def test_starts_with_and_contains_must_both_hold() -> None:
    sub = subscription(["message.*"], text_starts_with="order", text_contains="late")
    assert matches(sub, inbound("Order 17 is late"))
    assert not matches(sub, inbound("Order 17 arrived"))
    assert not matches(sub, inbound("It is late, order 17"))


def test_text_rules_read_html_text_and_media_captions() -> None:
    sub = subscription(["message.*"], text_contains="invoice")
    assert matches(sub, inbound(type="html", html="<p>x</p>", text="Your invoice"))
    assert matches(sub, inbound(type="media", url="https://x/y.png", caption="invoice scan"))
    assert not matches(sub, inbound(type="media", url="https://x/y.png"))


def test_text_rules_take_no_outbound_events_and_no_events_without_text() -> None:
    sub = subscription(["message.*"], text_contains="hi")
    outbound = event(content={"type": "text", "text": "hi"})  # outbound content is not read
    assert not matches(sub, outbound)
    assert not matches(sub, event("message.delivered"))
    assert not matches(sub, inbound(type="push", title="hi"))


def test_every_filter_applies_together() -> None:
    sub = subscription(
        ["message.received"], channels=["sms-main"], direction="inbound", text_starts_with="yes"
    )
    assert matches(sub, inbound("Yes!"))
    other_channel = inbound("Yes!")
    other_channel["data"]["channel"] = "sms-backup"
    assert not matches(sub, other_channel)


@pytest.mark.parametrize(
    "pattern", ["message.sent", "message.*", "webhook.*", "webhook.endpoint.*", "*"]
)
def test_patterns_name_known_types_or_families(pattern: str) -> None:
    assert valid_pattern(pattern)


@pytest.mark.parametrize("pattern", ["message.sending", "messages.*", "message.", "*.sent", ""])
def test_unknown_types_and_families_are_refused(pattern: str) -> None:
    assert not valid_pattern(pattern)
    with pytest.raises(ValidationError):
        WebhookCreate(url="https://example.com/hook", events=[pattern])
