"""The dispatch job: its queue message id and its body, encoded and decoded here alone.

A message document names the one job dispatch will accept next (``dispatch.job``);
any other job for it is stale and dropped. Job ids are the queue's message ids, so a
job handed off twice inside the duplicate-detection window is delivered once:

- ``{message_id}:{attempt}`` sends attempt ``attempt``;
- ``{message_id}:{attempt}:t{n}`` / ``:p{n}`` sends the same attempt again after the
  n-th throttle (the provider's 429) or hold (a paused or paced channel), using none;
- ``{message_id}:fb:f`` / ``:fb:t`` fires the message's fallback: on failure or
  expiry, or on the timer when no delivery receipt came in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import orjson

Hold = Literal["throttled", "paused"]
FallbackOn = Literal["failure", "timer"]
FALLBACK = ":fb:"
_HOLD_MARKS: dict[Hold, str] = {"throttled": "t", "paused": "p"}
_FALLBACK_MARKS: dict[FallbackOn, str] = {"failure": "f", "timer": "t"}


def dispatch_job_id(message_id: str, attempt: int, suffix: str = "") -> str:
    """``{message_id}:{attempt}[:suffix]``."""
    return f"{message_id}:{attempt}{':' + suffix if suffix else ''}"


def held_job_id(message_id: str, attempt: int, hold: Hold, count: int) -> str:
    """The job sending ``attempt`` again after the ``count``-th throttle or hold."""
    return dispatch_job_id(message_id, attempt, f"{_HOLD_MARKS[hold]}{count}")


def fallback_job_id(message_id: str, on: FallbackOn) -> str:
    return f"{message_id}{FALLBACK}{_FALLBACK_MARKS[on]}"


def is_fallback(job: str) -> bool:
    return FALLBACK in job


def fallback_on_timer(job: str) -> bool:
    """A fallback job armed by the receipt timer (not by a failure or expiry)."""
    return job.endswith(FALLBACK + _FALLBACK_MARKS["timer"])


@dataclass(frozen=True, slots=True)
class DispatchJob:
    """What a dispatch queue message carries: ids, never the message itself."""

    tenant_id: str
    message_id: str
    job: str
    traceparent: str | None = None
    """The accepting request's trace, so dispatch's spans join it."""

    @property
    def is_fallback(self) -> bool:
        return is_fallback(self.job)

    def encode(self) -> bytes:
        body = {"tenant_id": self.tenant_id, "message_id": self.message_id, "job": self.job}
        if self.traceparent is not None:
            body["traceparent"] = self.traceparent
        return orjson.dumps(body)

    @classmethod
    def decode(cls, body: bytes) -> DispatchJob | None:
        """The job a queue message carries (None: the body is not one)."""
        try:
            data = orjson.loads(body)
            tenant_id, message_id, job = data["tenant_id"], data["message_id"], data["job"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        if not all(isinstance(v, str) for v in (tenant_id, message_id, job)):
            return None
        trace = data.get("traceparent")
        return cls(tenant_id, message_id, job, trace if isinstance(trace, str) else None)
