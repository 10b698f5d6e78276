"""Throttling is back-pressure, never failure (azure review L2).

A trigger whose store or queue throttles (``Throttled``) does not raise: raising
would have the host abandon the message, redeliver it at once and, after its
maximum delivery count, dead-letter it, so a busy database would fail messages for
good. Instead:

- a queue trigger puts the same message back on its queue, scheduled after the
  advised delay, under a new id (duplicate detection would drop the same one), and
  returns normally: the delivery is completed, no delivery count is spent;
- a topic subscription's trigger cannot do that (a message sent to the topic
  reaches every subscription), so it waits the advised delay in place and tries
  again, holding its concurrency slot, which slows its intake;
- a dead-letter trigger never raises: Service Bus cannot dead-letter from a
  dead-letter queue, and a failure there would loop on the message.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

from shared.ports import OutgoingMessage, Throttled
from shared.services.deps import Deps

log = logging.getLogger(__name__)

THROTTLED = "ocm_throttled"
"""Application property: how many times throttling put the message back."""
MAX_DELAY = 300.0
"""Seconds at most between two tries, whatever the advice."""
WAIT_IN_PLACE = 120.0
"""Seconds at most a subscription's trigger waits in place before it gives up (the
host renews the message's lock meanwhile: host.json maxAutoLockRenewalDuration)."""
_ID_ROOM = 100


class Received(Protocol):
    """What a trigger is given (``azure.functions.ServiceBusMessage``)."""

    @property
    def message_id(self) -> str: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def application_properties(self) -> Mapping[str, Any]: ...
    def get_body(self) -> bytes: ...


def _delay(deps: Deps, advice: float, times: int) -> float:
    """The advice, growing with each throttle of the same message, jittered."""
    base = max(advice, 0.1) * (1 << min(times - 1, 5))
    return min(base * (1 + 0.2 * deps.rng.random()), MAX_DELAY)


async def queue_trigger(
    deps: Deps, queue: str, msg: Received, work: Callable[[bytes], Awaitable[object]]
) -> None:
    """Run ``work`` on the message's body; when throttled, put the message back on
    ``queue`` after the advised delay and return normally."""
    body = msg.get_body()
    try:
        await work(body)
    except Throttled as exc:
        await put_back(deps, queue, msg, body, exc)


async def put_back(deps: Deps, queue: str, msg: Received, body: bytes, exc: Throttled) -> None:
    """The same message, due after the advised delay, under a new id."""
    properties = dict(msg.application_properties or {})
    times = int(properties.get(THROTTLED) or 0) + 1
    delay = _delay(deps, exc.retry_after, times)
    root = (msg.message_id or "").split("~throttled-")[0][:_ID_ROOM]
    again = OutgoingMessage(
        message_id=f"{root}~throttled-{times}",
        body=body,
        scheduled_at=deps.clock.now() + timedelta(seconds=delay),
        subject=msg.subject,
        application_properties={
            **{k: v for k, v in properties.items() if isinstance(v, str | int)},
            THROTTLED: times,
        },
    )
    # If this send is throttled too, the trigger raises: the host redelivers.
    await deps.queue.send(queue, [again])
    log.warning("%s on %s throttled (%s); again in %.1f s", root, queue, exc, delay)


async def subscription_trigger(
    msg: Received, work: Callable[[bytes], Awaitable[object]], *, rng: random.Random | None = None
) -> None:
    """Run ``work``; when throttled, wait the advised delay and run it again, for
    ``WAIT_IN_PLACE`` seconds at most, then let the host redeliver."""
    body = msg.get_body()
    await _in_place(msg.message_id, lambda: work(body), rng)


async def batch_trigger(
    msgs: Sequence[Received],
    work: Callable[[list[bytes]], Awaitable[object]],
    *,
    rng: random.Random | None = None,
) -> None:
    """``subscription_trigger`` for a trigger given a batch (``cardinality="many"``):
    the batch is worked, waited on and redelivered as one."""
    bodies = [m.get_body() for m in msgs]
    label = f"a batch of {len(bodies)} from {msgs[0].message_id}" if msgs else "an empty batch"
    await _in_place(label, lambda: work(bodies), rng)


async def _in_place(
    label: str, attempt: Callable[[], Awaitable[object]], rng: random.Random | None
) -> None:
    waited = 0.0
    while True:
        try:
            await attempt()
            return
        except Throttled as exc:
            pause = min(max(exc.retry_after, 0.1), WAIT_IN_PLACE - waited)
            if pause <= 0:
                raise
            log.warning("%s throttled (%s); trying again in %.1f s", label, exc, pause)
            await asyncio.sleep(pause * (1 + 0.1 * (rng or random).random()))
            waited += pause


async def dead_letter_trigger(
    deps: Deps, queue: str | None, msg: Received, work: Callable[[bytes], Awaitable[object]]
) -> None:
    """Run ``work``, never raising. Throttled: the message goes back to ``queue``
    (the entity it was dead-lettered from) after the advice, so nothing it stands
    for is lost (None: the subscription's, which cannot be resent; logged)."""
    body = msg.get_body()
    try:
        await work(body)
    except Throttled as exc:
        if queue is None:
            log.error("dead letter %s not recorded, throttled: %s", msg.message_id, exc)
            return
        try:
            await put_back(deps, queue, msg, body, exc)
        except Exception:
            log.exception("dead letter %s not recorded nor put back (throttled)", msg.message_id)
    except Exception:
        log.exception("dead letter %s could not be handled; completed", msg.message_id)
