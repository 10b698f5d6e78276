"""Facts: what analytics counts of a message, the same from its stored timeline and
from its events, keyed on each transition's own time."""

from __future__ import annotations

from typing import Any

from shared.domain import facts
from shared.domain.timeline import event_payload


def message(**more: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "msg_1",
        "tenant_id": "tn_a",
        "direction": "outbound",
        "status": "delivered",
        "channel": "sms",
        "channel_id": "ch_1",
        "provider": "twilio",
        "receiver": {"type": "phone", "address": "+4791234567"},
        "sender": {"type": "phone", "address": "+15005550006"},
        "content": {"type": "text", "text": "hi"},
        "tags": ["promo", "promo", "q4"],
        "error": None,
        "created_at": "2030-01-01T10:00:00.000Z",
        "events": [
            {
                "id": "evt_1_0",
                "type": "message.queued",
                "status": "queued",
                "at": "2030-01-01T10:00:00.000Z",
            },
            {
                "id": "evt_1_1",
                "type": "message.sent",
                "status": "sent",
                "at": "2030-01-01T10:00:01.500Z",
            },
            {
                "id": "evt_1_2",
                "type": "message.retrying",
                "status": "queued",
                "at": "2030-01-01T10:00:01.600Z",
            },
            {
                "id": "evt_1_3",
                "type": "message.delivered",
                "status": "delivered",
                "at": "2030-01-01T11:00:03.500Z",
            },
        ],
    }
    doc.update(more)
    return doc


def test_a_stored_message_has_one_fact_per_counted_transition() -> None:
    found = facts.facts_of(message(), channel_type="sms")
    assert [(f.transition, f.hour) for f in found] == [
        ("accepted", "2030-01-01T10"),
        ("sent", "2030-01-01T10"),
        ("delivered", "2030-01-01T11"),  # its own hour, not the message's first
    ]
    delivered = found[-1]
    assert delivered.key == "msg_1:delivered"
    assert delivered.latencies() == {"sent_to_delivered": 3602.0, "accept_to_delivered": 3603.5}
    assert found[1].latencies() == {"accept_to_sent": 1.5}
    assert delivered.dims == {
        "channel": "sms",
        "channel_type": "sms",
        "provider": "twilio",
        "direction": "outbound",
        "sender": "+15005550006",
        "country": "NO",
        "fallback_step": "0",
    }
    assert delivered.tags == ("promo", "q4")


def test_an_event_carries_the_same_fact() -> None:
    doc = message()
    for entry in doc["events"]:
        event = event_payload(doc, entry)
        event["analytics"] = facts.event_fields(doc, "sms")
        from_event = facts.fact_from_event(event)
        from_store = facts.fact_of(doc, entry, "sms")
        assert from_event == from_store


def test_scheduled_and_queued_are_one_acceptance_at_creation() -> None:
    doc = message(
        events=[
            {
                "id": "e0",
                "type": "message.scheduled",
                "status": "scheduled",
                "at": "2030-01-01T10:00:00.000Z",
            },
            {
                "id": "e1",
                "type": "message.queued",
                "status": "queued",
                "at": "2030-01-01T12:00:00.000Z",
            },
        ]
    )
    found = facts.facts_of(doc)
    assert [f.key for f in found] == ["msg_1:accepted", "msg_1:accepted"]
    assert found[0] == found[1]


def test_dimensions_of_email_inbound_and_errors() -> None:
    email = message(
        channel="mail",
        receiver={"type": "email", "address": "Ann@Example.COM"},
        sender={"type": "email", "address": "no-reply@ocm.test"},
        error={"code": "PROVIDER_REJECTED", "reason": "x", "permanent": True},
        template={"name": "welcome", "data": {}},
        app_id="app_1",
        fallback_step=1,
    )
    dims = facts.dimensions(email)
    assert dims["domain"] == "example.com" and "country" not in dims
    assert "error" not in dims  # each failure's own error, not the message's last
    assert dims["template"] == "welcome" and dims["app"] == "app_1"
    assert dims["fallback_step"] == "1"
    inbound = message(
        direction="inbound",
        sender={"type": "phone", "address": "+447700900123"},
        receiver={"type": "phone", "address": "+15005550006"},
    )
    assert facts.dimensions(inbound)["country"] == "GB"
    assert facts.dimensions(inbound)["sender"] == "+15005550006"  # our own number
    assert facts.country_of("not a number") is None
    assert facts.country_of("+999123") is None
    assert facts.domain_of("nobody") is None


def test_a_failure_counts_its_own_error_and_a_failover_keeps_the_chosen_channel() -> None:
    retried_error = {"code": "TIMEOUT", "reason": "slow", "permanent": False}
    doc = message(
        channel="backup",
        provider="vonage",
        sender={"type": "phone", "address": "+15005550007"},
        origin_channel="sms",
        origin_provider="twilio",
        origin_sender={"type": "phone", "address": "+15005550006"},
        error=retried_error,  # the earlier attempt's, still on the document
    )
    doc["events"].append(
        {
            "id": "evt_1_9",
            "type": "message.failed",
            "status": "failed",
            "at": "2030-01-01T10:00:09.000Z",
            "error": {"code": "30003", "reason": "unreachable", "permanent": True},
        }
    )
    by_key = {f.transition: f for f in facts.facts_of(doc)}
    assert "error" not in by_key["sent"].dims
    assert by_key["failed"].dims["error"] == "30003"
    for fact in by_key.values():
        assert fact.dims["channel"] == "sms" and fact.dims["provider"] == "twilio"
        assert fact.dims["sender"] == "+15005550006"
    event = event_payload(doc, doc["events"][-1])
    event["analytics"] = facts.event_fields(doc)
    assert facts.fact_from_event(event) == by_key["failed"]


def test_events_analytics_does_not_count() -> None:
    doc = message()
    retrying = event_payload(doc, doc["events"][2])
    retrying["analytics"] = facts.event_fields(doc)
    assert facts.fact_from_event(retrying) is None
    sent = event_payload(doc, doc["events"][1])  # no analytics fields: not counted
    assert facts.fact_from_event(sent) is None


def test_every_tag_the_send_api_takes_is_counted() -> None:
    from shared.domain.messages import MessageCreate

    limits = [
        m.max_length
        for m in MessageCreate.model_fields["tags"].metadata
        if hasattr(m, "max_length")
    ]
    assert limits == [facts.MAX_TAGS]
    doc = message(tags=[f"t{i}" for i in range(facts.MAX_TAGS)])
    assert len(facts.facts_of(doc)[0].tags) == facts.MAX_TAGS


def test_an_sms_counts_its_segments_once_on_its_sent() -> None:
    from shared.services.analytics import compact, reconcile, rollup

    doc = message(segments=3)
    found = facts.facts_of(doc)
    assert [(f.transition, f.segments) for f in found] == [
        ("accepted", 0),
        ("sent", 3),
        ("delivered", 0),
    ]
    event = event_payload(doc, doc["events"][1])
    event["analytics"] = facts.event_fields(doc)
    assert facts.fact_from_event(event) == found[1]
    bucket = rollup.new_bucket("tn_a", found[0].day, found[0].hour)
    for fact in found:
        rollup.count(bucket, fact)
    assert bucket["usage"] == {"segments": 3}
    assert compact.merged([bucket, bucket])["usage"] == {"segments": 6}
    assert reconcile.differences({**bucket, "usage": {"segments": 2}}, bucket) == ["usage"]
