"""Outbound queue: dispatch each message to its provider; dead letters fail it."""

from __future__ import annotations

import azure.functions as func

from shared.bootstrap import get_deps
from shared.ports.queues import dead_letter_reason
from shared.services.delivery import dead_letters, dispatch

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="%OCM_OUTBOUND_QUEUE%", connection="ServiceBusConnection"
)
async def dispatch_message(msg: func.ServiceBusMessage) -> None:
    await dispatch.handle(get_deps(), msg.get_body())


@bp.service_bus_queue_trigger(
    arg_name="msg",
    queue_name="%OCM_OUTBOUND_QUEUE%/$DeadLetterQueue",
    connection="ServiceBusConnection",
)
async def fail_dead_lettered(msg: func.ServiceBusMessage) -> None:
    await dead_letters.fail_dead_lettered(get_deps(), msg.get_body(), dead_letter_reason(msg))
