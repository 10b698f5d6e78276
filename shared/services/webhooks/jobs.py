"""The webhook queue's job: its message id and body, encoded and decoded here alone,
and its enqueuing (the fan-out's first attempts, the deliverer's retries, a replay's,
a manual retry).

A job ``{tenant_id, delivery_id, attempt}`` (message id ``{delivery_id}:{attempt}``)
names the attempt its delivery document expects next; any other job is dropped. A
manual retry's job takes an id of its own (``…:r{n}``): the attempt's may have been
used already by a job that never got to send (the subscription was disabled, say).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from shared.domain.models import Document
from shared.ports import OutgoingMessage
from shared.services.deps import Deps


@dataclass(frozen=True, slots=True)
class WebhookJob:
    tenant_id: str
    delivery_id: str
    attempt: int
    retry: int = 0
    """A manual retry's number (0: none)."""

    @classmethod
    def of(cls, delivery: Document, attempt: int, retry: int = 0) -> WebhookJob:
        return cls(delivery["tenant_id"], delivery["id"], attempt, retry)

    @property
    def message_id(self) -> str:
        return f"{self.delivery_id}:{self.attempt}{f':r{self.retry}' if self.retry else ''}"

    def encode(self) -> bytes:
        return orjson.dumps(
            {"tenant_id": self.tenant_id, "delivery_id": self.delivery_id, "attempt": self.attempt}
        )

    @classmethod
    def decode(cls, body: bytes) -> WebhookJob | None:
        """The job a queue message carries (None: the body is not one)."""
        try:
            data = orjson.loads(body)
            return cls(str(data["tenant_id"]), str(data["delivery_id"]), int(data["attempt"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def _message(job: WebhookJob, due: datetime | None) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=job.message_id, body=job.encode(), scheduled_at=due, subject="webhook"
    )


async def enqueue(deps: Deps, job: WebhookJob, due: datetime | None = None) -> None:
    """Queue one attempt (its message id makes a repeat a no-op)."""
    await deps.queue.send(deps.settings.OCM_WEBHOOK_QUEUE, [_message(job, due)])


async def enqueue_first_attempts(deps: Deps, deliveries: Sequence[Document]) -> None:
    """The first attempt of each delivery, sent together."""
    messages = [_message(WebhookJob.of(d, 1), None) for d in deliveries]
    await deps.queue.send(deps.settings.OCM_WEBHOOK_QUEUE, messages)
