"""Housekeeping: drop expired documents where the store does not do it itself."""

from __future__ import annotations

import logging

from shared.services.deps import Deps

log = logging.getLogger(__name__)


async def run(deps: Deps) -> int:
    purge = getattr(deps.store, "purge_expired", None)
    if purge is None:  # Cosmos DB expires documents by TTL on its own
        return 0
    removed: int = await purge()
    if removed:
        log.info("housekeeping removed %d expired documents", removed)
    return removed
