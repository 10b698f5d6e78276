"""Webhooks: the events topic's webhooks subscription fans events out to deliveries;
the webhook queue delivers them (one attempt per message); dead letters of the
subscription are kept for replay, those of the queue fail their deliveries."""

from __future__ import annotations

import azure.functions as func

from shared.bootstrap import get_deps
from shared.ports.queues import dead_letter_reason
from shared.services import backpressure
from shared.services.webhooks import deliverer as webhook_delivery
from shared.services.webhooks import fanout as webhook_fanout

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated


@bp.service_bus_topic_trigger(
    arg_name="msg",
    topic_name="%OCM_EVENTS_TOPIC%",
    subscription_name="%OCM_WEBHOOKS_SUBSCRIPTION%",
    connection="ServiceBusConnection",
)
async def fan_out_event(msg: func.ServiceBusMessage) -> None:
    deps = get_deps()
    await backpressure.subscription_trigger(msg, lambda b: webhook_fanout.fan_out(deps, b))


@bp.service_bus_topic_trigger(
    arg_name="msg",
    topic_name="%OCM_EVENTS_TOPIC%",
    subscription_name="%OCM_WEBHOOKS_SUBSCRIPTION%/$DeadLetterQueue",
    connection="ServiceBusConnection",
)
async def keep_dead_fan_out(msg: func.ServiceBusMessage) -> None:
    await webhook_fanout.record_dead_lettered(get_deps(), msg.get_body(), dead_letter_reason(msg))


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="%OCM_WEBHOOK_QUEUE%", connection="ServiceBusConnection"
)
async def deliver_webhook(msg: func.ServiceBusMessage) -> None:
    deps = get_deps()
    queue = deps.settings.OCM_WEBHOOK_QUEUE
    await backpressure.queue_trigger(deps, queue, msg, lambda b: webhook_delivery.deliver(deps, b))


@bp.service_bus_queue_trigger(
    arg_name="msg",
    queue_name="%OCM_WEBHOOK_QUEUE%/$DeadLetterQueue",
    connection="ServiceBusConnection",
)
async def fail_dead_webhook(msg: func.ServiceBusMessage) -> None:
    deps, reason = get_deps(), dead_letter_reason(msg)
    await backpressure.dead_letter_trigger(
        deps,
        deps.settings.OCM_WEBHOOK_QUEUE,
        msg,
        lambda b: webhook_delivery.fail_dead_lettered(deps, b, reason),
    )
