"""Timers: the outbox sweep, housekeeping and the analytics reconciliation. Each is
safe to run twice."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.bootstrap import get_deps
from shared.services import housekeeping
from shared.services.analytics import reconcile
from shared.services.messaging import outbox

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
log = logging.getLogger(__name__)


@bp.timer_trigger(arg_name="timer", schedule="%OCM_OUTBOX_SWEEP_SCHEDULE%", use_monitor=False)
async def outbox_sweep(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.info("outbox sweep is running late")
    await outbox.sweep(get_deps())


@bp.timer_trigger(arg_name="timer", schedule="%OCM_HOUSEKEEPING_SCHEDULE%", use_monitor=False)
async def housekeeping_sweep(timer: func.TimerRequest) -> None:
    await housekeeping.run(get_deps())


@bp.timer_trigger(
    arg_name="timer", schedule="%OCM_ANALYTICS_RECONCILE_SCHEDULE%", use_monitor=False
)
async def analytics_reconcile(timer: func.TimerRequest) -> None:
    done = await reconcile.run(get_deps())
    log.info("analytics reconciled %s", done)
