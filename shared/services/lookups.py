"""A short-lived cache for what every request looks up: the credential behind an API
key, the channel a message names.

Without it each single send pays two reads before its one write (in Cosmos DB, a
point read and a query). Entries live ``OCM_LOOKUP_CACHE_SECONDS``; a write through
this process drops its entry at once, so only other instances (Azure) may see a
change that much later — documented in docs/design.md. Misses are not cached: a key
or channel created elsewhere works at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from shared.domain.models import Document
from shared.ports import DocumentStore, Filter, Query


class LookupCache:
    def __init__(
        self,
        ttl_seconds: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Document]] = OrderedDict()

    async def get(
        self, key: Hashable, load: Callable[[], Awaitable[Document | None]]
    ) -> Document | None:
        """The cached document for ``key``, or what ``load`` finds (kept if found).

        Callers get a copy they may change freely.
        """
        if self._ttl <= 0:
            return await load()
        now = self._clock()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return dict(hit[1])
        doc = await load()
        if doc is None:
            self._entries.pop(key, None)
            return None
        self._entries[key] = (now + self._ttl, dict(doc))
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return doc

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


async def find_named(
    store: DocumentStore, container: str, tenant_id: str, name: str
) -> Document | None:
    """A tenant's document by its (unique, lower-case) name, fresh from the store."""
    query = Query(scope=tenant_id, where=(Filter("name", "eq", name.lower()),), limit=1)
    page = await store.query(container, query)
    return page.items[0] if page.items else None


async def find_named_cached(
    cache: LookupCache, store: DocumentStore, container: str, tenant_id: str, name: str
) -> Document | None:
    """The same, cached briefly: what every send names (a channel, a template)."""
    key = name.lower()
    return await cache.get(
        _named_key(container, tenant_id, key),
        lambda: find_named(store, container, tenant_id, key),
    )


def forget_named(cache: LookupCache, container: str, tenant_id: str, name: str) -> None:
    """Drop what ``find_named_cached`` keeps for this name (after a write to it)."""
    cache.forget(_named_key(container, tenant_id, name.lower()))


def _named_key(container: str, tenant_id: str, name: str) -> tuple[str, str, str]:
    return (container, tenant_id, name)
