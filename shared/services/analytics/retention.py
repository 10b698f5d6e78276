"""How long a tenant's rollups are kept: hour buckets, day buckets and month buckets,
each for a number of days after its last write (its ``ttl``). The platform's
defaults are 90 days, 13 months and for good; a tenant may keep less (cheaper) or
more. A change applies to buckets as they are next written (Cosmos DB and the
embedded store count a ``ttl`` from the last write), and to how far back queries
reach at once."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.containers import ROLLUPS
from shared.domain.models import Document
from shared.services.deps import Deps

MONTHS_QUERIED_DAYS = 3650
"""How far back a month query reaches when months are kept for good."""


class Retention(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hour_days: int = Field(default=90, ge=1, le=400, description="Hour buckets, in days.")
    day_days: int = Field(default=396, ge=1, le=3660, description="Day buckets, in days.")
    month_days: int | None = Field(
        default=None, ge=31, le=36_600, description="Month buckets, in days; null: for good."
    )

    def ttl(self, kind: str) -> int | None:
        """A bucket's ``ttl`` in seconds (None: kept for good)."""
        days = {"hour": self.hour_days, "day": self.day_days, "month": self.month_days}[kind]
        return None if days is None else days * 86_400

    def reach(self, interval: str) -> tuple[int, str]:
        """How many days back a query at ``interval`` reaches, and from which buckets."""
        if interval == "hour":
            return self.hour_days, "hour"
        if interval in ("day", "week"):
            return self.day_days, "day"
        return self.month_days or MONTHS_QUERIED_DAYS, "month"


DEFAULT = Retention()


def _id(tenant_id: str) -> str:
    return f"state|{tenant_id}|retention"


async def of(deps: Deps, tenant_id: str) -> Retention:
    """The tenant's retention (cached briefly, like the other lookups)."""

    async def load() -> Document:
        doc = await deps.store.read(ROLLUPS, tenant_id, _id(tenant_id))
        return {"retention": (doc or {}).get("retention") or {}}

    cached = await deps.lookups.get(("analytics_retention", tenant_id), load)
    return Retention.model_validate((cached or {}).get("retention") or {})


async def put(deps: Deps, tenant_id: str, wanted: Retention) -> Retention:
    doc = {
        "id": _id(tenant_id),
        "tenant_id": tenant_id,
        "partition": "state",
        "kind": "retention",
        "retention": wanted.model_dump(),
    }
    await deps.store.upsert(ROLLUPS, doc)
    deps.lookups.forget(("analytics_retention", tenant_id))
    return wanted
