"""Analytics: the events topic's analytics subscription counts message events into
the rollups, a batch at a time (one transaction per tenant and day); its dead
letters are said at ERROR (the hourly reconciliation recounts their hours)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.bootstrap import get_deps
from shared.ports.queues import dead_letter_reason
from shared.services import backpressure
from shared.services.analytics import consumer

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
log = logging.getLogger(__name__)


@bp.service_bus_topic_trigger(
    arg_name="msgs",
    topic_name="%OCM_EVENTS_TOPIC%",
    subscription_name="%OCM_ANALYTICS_SUBSCRIPTION%",
    connection="ServiceBusConnection",
    cardinality=func.Cardinality.MANY,
)
async def count_events(msgs: list[func.ServiceBusMessage]) -> None:
    deps = get_deps()
    await backpressure.batch_trigger(msgs, lambda bodies: consumer.count(deps, bodies))


@bp.service_bus_topic_trigger(
    arg_name="msg",
    topic_name="%OCM_EVENTS_TOPIC%",
    subscription_name="%OCM_ANALYTICS_SUBSCRIPTION%/$DeadLetterQueue",
    connection="ServiceBusConnection",
)
async def note_dead_event(msg: func.ServiceBusMessage) -> None:
    log.error(
        "event %s dead-lettered on the analytics subscription (%s); the reconciliation "
        "recounts its hour",
        msg.message_id,
        dead_letter_reason(msg),
    )
