"""Provider-events queue: delivery receipts and inbound messages."""

from __future__ import annotations

import azure.functions as func

from shared.bootstrap import get_deps
from shared.ports.queues import dead_letter_reason
from shared.services import backpressure
from shared.services.delivery import dead_letters, provider_events

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="%OCM_PROVIDER_EVENTS_QUEUE%", connection="ServiceBusConnection"
)
async def apply_provider_event(msg: func.ServiceBusMessage) -> None:
    deps = get_deps()
    queue = deps.settings.OCM_PROVIDER_EVENTS_QUEUE
    await backpressure.queue_trigger(deps, queue, msg, lambda b: provider_events.handle(deps, b))


@bp.service_bus_queue_trigger(
    arg_name="msg",
    queue_name="%OCM_PROVIDER_EVENTS_QUEUE%/$DeadLetterQueue",
    connection="ServiceBusConnection",
)
async def log_dead_provider_event(msg: func.ServiceBusMessage) -> None:
    await dead_letters.log_dead_provider_event(msg.get_body(), dead_letter_reason(msg))
