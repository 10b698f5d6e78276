"""Outbound queue: dispatch each message to its provider; dead letters fail it."""

from __future__ import annotations

import azure.functions as func

from shared.bootstrap import get_deps
from shared.ports.queues import dead_letter_reason
from shared.services import backpressure
from shared.services.delivery import dead_letters, dispatch

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="%OCM_OUTBOUND_QUEUE%", connection="ServiceBusConnection"
)
async def dispatch_message(msg: func.ServiceBusMessage) -> None:
    deps = get_deps()
    outbound = deps.settings.OCM_OUTBOUND_QUEUE
    await backpressure.queue_trigger(deps, outbound, msg, lambda b: dispatch.handle(deps, b))


@bp.service_bus_queue_trigger(
    arg_name="msg",
    queue_name="%OCM_OUTBOUND_QUEUE%/$DeadLetterQueue",
    connection="ServiceBusConnection",
)
async def fail_dead_lettered(msg: func.ServiceBusMessage) -> None:
    deps, reason = get_deps(), dead_letter_reason(msg)
    await backpressure.dead_letter_trigger(
        deps,
        deps.settings.OCM_OUTBOUND_QUEUE,
        msg,
        lambda b: dead_letters.fail_dead_lettered(deps, b, reason),
    )
