"""Events topic: the operators' event log subscription (webhooks and analytics
add their own subscriptions)."""

from __future__ import annotations

import azure.functions as func

from shared.ports.queues import dead_letter_reason
from shared.services.events import log as event_log

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated


@bp.service_bus_topic_trigger(
    arg_name="msg",
    topic_name="%OCM_EVENTS_TOPIC%",
    subscription_name="%OCM_EVENTS_LOG_SUBSCRIPTION%",
    connection="ServiceBusConnection",
)
async def log_event(msg: func.ServiceBusMessage) -> None:
    event_log.record(msg.get_body())


@bp.service_bus_topic_trigger(
    arg_name="msg",
    topic_name="%OCM_EVENTS_TOPIC%",
    subscription_name="%OCM_EVENTS_LOG_SUBSCRIPTION%/$DeadLetterQueue",
    connection="ServiceBusConnection",
)
async def log_dead_event(msg: func.ServiceBusMessage) -> None:
    event_log.record_dead_lettered(msg.get_body(), dead_letter_reason(msg))
