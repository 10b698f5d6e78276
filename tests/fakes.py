"""In-memory fakes of the ports, with the embedded adapters' semantics (tests/contract)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import operator
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.adapters.documents import (
    apply_changes,
    check_partition,
    decode_cursor,
    encode_cursor,
    expiry,
    transaction_key,
)
from shared.adapters.embedded.sqlite_queue import (
    DEAD_LETTER,
    MAX_DELIVERY_EXCEEDED,
    dead_letter_queue,
    epoch,
    subscriptions,
)
from shared.containers import CONTAINERS
from shared.domain.models import Document
from shared.ports import (
    SYSTEM,
    BatchFailed,
    Clock,
    Conflict,
    ContainerSpec,
    Filter,
    MessageLockLost,
    NotFound,
    OutgoingMessage,
    Page,
    PreconditionFailed,
    Query,
    ReceivedMessage,
    Scope,
    StoreError,
    Subscription,
    Write,
    reaches_anyone,
    refuse_oversized,
    subscribers,
)


class FakeClock:
    """A clock that stands still until told to move."""

    def __init__(self, start: datetime = datetime(2030, 1, 1, tzinfo=UTC)) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by a timedelta or a number of seconds."""
        self._now += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        return self._now


# --- documents -------------------------------------------------------------------------


def _get(doc: Document, path: str) -> Any:
    node: Any = doc
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _sort_key(value: Any) -> tuple[int, Any]:
    """SQLite's order across types: NULL, then numbers (booleans are 0/1), then text."""
    if value is None:
        return (0, 0)
    if isinstance(value, int | float):
        return (1, value)
    return (2, value if isinstance(value, str) else orjson.dumps(value).decode())


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}


def _matches(doc: Document, f: Filter) -> bool:
    actual = _sort_key(_get(doc, f.field))
    if f.op == "eq":
        return actual == _sort_key(f.value)
    if f.op == "ne":
        return actual != _sort_key(f.value)
    if f.op == "in":
        return any(actual == _sort_key(v) for v in f.value)
    return actual[0] != 0 and _ORDER[f.op](actual, _sort_key(f.value))


@dataclass(frozen=True, slots=True)
class _Stored:
    tenant_id: str
    etag: str
    expires_at: float | None
    body: bytes  # serialized, so every read hands out a fresh dict


class FakeDocumentStore:
    """DocumentStore in dicts; bodies kept serialized, as a real store would."""

    def __init__(
        self, containers: Sequence[ContainerSpec] = CONTAINERS, clock: Clock | None = None
    ) -> None:
        self._specs = {spec.name: spec for spec in containers}
        self._data: dict[str, dict[str, _Stored]] = {spec.name: {} for spec in containers}
        self._clock = clock or FakeClock()
        self._etags = itertools.count(1)

    async def create(self, container: str, doc: Document) -> Document:
        if self._live(container, doc.get("id")) is not None:
            raise Conflict(f"{container}/{doc['id']} exists")
        return self._write(container, doc)

    async def create_many(self, container: str, docs: Sequence[Document]) -> None:
        backup = dict(self._table(container))
        try:
            for doc in docs:
                await self.create(container, doc)
        except BaseException:
            self._data[container] = backup
            raise

    async def read(self, container: str, scope: Scope, doc_id: str) -> Document | None:
        stored = self._live(container, doc_id)
        if stored is None or (scope is not SYSTEM and stored.tenant_id != scope):
            return None
        return self._load(stored)

    async def replace(self, container: str, doc: Document, *, etag: str | None = None) -> Document:
        self._checked(container, doc.get("tenant_id"), doc.get("id"), etag)
        return self._write(container, doc)

    async def upsert(self, container: str, doc: Document) -> Document:
        stored = self._live(container, doc.get("id"))
        if stored is not None and stored.tenant_id != doc.get("tenant_id"):
            raise Conflict(f"{container}/{doc['id']} belongs to another tenant")
        return self._write(container, doc)

    async def patch(
        self,
        container: str,
        tenant_id: str,
        doc_id: str,
        changes: Mapping[str, Any],
        *,
        etag: str | None = None,
    ) -> Document:
        doc = self._load(self._checked(container, tenant_id, doc_id, etag))
        apply_changes(doc, changes)
        return self._write(container, doc)

    async def patch_many(
        self,
        container: str,
        items: Sequence[tuple[str, str, Mapping[str, Any], str | None]],
    ) -> int:
        applied = 0
        for tenant_id, doc_id, changes, etag in items:
            with contextlib.suppress(NotFound, PreconditionFailed, Conflict):
                await self.patch(container, tenant_id, doc_id, changes, etag=etag)
                applied += 1
        return applied

    async def delete(
        self, container: str, tenant_id: str, doc_id: str, *, etag: str | None = None
    ) -> bool:
        try:
            self._checked(container, tenant_id, doc_id, etag)
        except NotFound:
            return False
        del self._data[container][doc_id]
        return True

    async def transact(self, container: str, writes: Sequence[Write]) -> list[Document]:
        transaction_key(self._specs[container], writes)
        backup = dict(self._table(container))
        done: list[Document] = []
        for index, write in enumerate(writes):
            try:
                if write.kind == "create":
                    done.append(await self.create(container, write.doc))
                elif write.kind == "replace":
                    done.append(await self.replace(container, write.doc, etag=write.etag))
                else:
                    done.append(await self.upsert(container, write.doc))
            except StoreError as exc:
                self._data[container] = backup
                raise BatchFailed(index, exc) from exc
        return done

    async def query(self, container: str, query: Query) -> Page:
        if query.limit < 1:
            raise ValueError("limit must be at least 1")
        if any(f.op in _ORDER and f.value is None for f in query.where):
            raise ValueError("a comparison needs a value")
        self._table(container)
        self._specs[container].check_query(query)
        docs = [
            doc
            for doc in self._documents(container)
            if (query.scope is SYSTEM or doc["tenant_id"] == query.scope)
            and all(_matches(doc, f) for f in query.where)
        ]

        def key(doc: Document) -> tuple[tuple[int, Any], str]:
            return _sort_key(_get(doc, query.order_by)), doc["id"]

        docs.sort(key=key, reverse=query.descending)
        if query.cursor is not None:
            value, last_id = decode_cursor(query.cursor, query.order_by)
            bound = (_sort_key(value), last_id)
            docs = [d for d in docs if (key(d) < bound if query.descending else key(d) > bound)]
        page = docs[: query.limit]
        more = len(docs) > query.limit
        last = page[-1] if page else {}
        cursor = encode_cursor(query.order_by, _get(last, query.order_by), last.get("id", ""))
        return Page(page, cursor if more else None)

    async def increment(
        self, container: str, tenant_id: str, doc_id: str, field: str, by: int, *, ttl: int
    ) -> int:
        stored = self._live(container, doc_id)
        if stored is None:
            doc: Document = {"id": doc_id, "tenant_id": tenant_id, field: by, "ttl": ttl}
            return int(self._write(container, doc)[field])
        if stored.tenant_id != tenant_id:
            raise Conflict(f"{container}/{doc_id} belongs to another tenant")
        doc = orjson.loads(stored.body)
        doc[field] = int(doc.get(field) or 0) + by
        written = self._write(container, doc)
        table = self._table(container)  # an increment keeps the counter's expiry
        table[doc_id] = dataclasses.replace(table[doc_id], expires_at=stored.expires_at)
        return int(written[field])

    async def purge_expired(self) -> int:
        now = self._clock.now().timestamp()
        expired = [
            (name, doc_id)
            for name, table in self._data.items()
            for doc_id, stored in table.items()
            if stored.expires_at is not None and stored.expires_at <= now
        ]
        for name, doc_id in expired:
            del self._data[name][doc_id]
        return len(expired)

    def _table(self, container: str) -> dict[str, _Stored]:
        if container not in self._specs:
            raise ValueError(f"unknown container {container!r}")
        return self._data[container]

    def _live(self, container: str, doc_id: Any) -> _Stored | None:
        stored = self._table(container).get(doc_id)
        if stored and stored.expires_at is not None:
            return stored if stored.expires_at > self._clock.now().timestamp() else None
        return stored

    def _documents(self, container: str) -> list[Document]:
        live = (self._live(container, doc_id) for doc_id in list(self._table(container)))
        return [self._load(stored) for stored in live if stored is not None]

    def _checked(self, container: str, tenant_id: Any, doc_id: Any, etag: str | None) -> _Stored:
        stored = self._live(container, doc_id)
        if stored is None or stored.tenant_id != tenant_id:
            raise NotFound(f"{container}/{doc_id}")
        if etag is not None and etag != stored.etag:
            raise PreconditionFailed(f"{container}/{doc_id} has changed")
        return stored

    def _write(self, container: str, doc: Document) -> Document:
        body = {k: v for k, v in doc.items() if k != "_etag"}
        if not isinstance(body.get("id"), str) or not isinstance(body.get("tenant_id"), str):
            raise ValueError("a document needs a string id and tenant_id")
        check_partition(self._specs[container], body)
        for field in self._specs[container].unique:
            value = _get(body, field)
            if value is not None and any(
                other["id"] != body["id"]
                and other["tenant_id"] == body["tenant_id"]
                and _sort_key(_get(other, field)) == _sort_key(value)
                for other in self._documents(container)
            ):
                raise Conflict(f"{field} must be unique in {container}")
        stored = _Stored(
            body["tenant_id"],
            f"fake-{next(self._etags)}",
            expiry(body, self._clock.now().timestamp()),
            orjson.dumps(body),
        )
        self._data[container][body["id"]] = stored
        return self._load(stored)

    @staticmethod
    def _load(stored: _Stored) -> Document:
        doc: Document = orjson.loads(stored.body)
        doc["_etag"] = stored.etag
        return doc


# --- queues ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Message:
    seq: int
    entity: str
    sent: OutgoingMessage
    enqueued_at: float
    visible_at: float
    lock_token: str | None = None
    delivery_count: int = 0
    dead_letter_reason: str | None = None


class FakeQueue:
    """Queue in a dict of messages, with the same peek-lock and dead-letter rules."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        topics: Mapping[str, Sequence[str | Subscription]] | None = None,
        max_delivery_count: int = 10,
        duplicate_window: timedelta = timedelta(minutes=10),
    ) -> None:
        self._clock = clock or FakeClock()
        self._topics = subscriptions(topics or {})
        self._max_delivery_count = max_delivery_count
        self._window = duplicate_window.total_seconds()
        self._messages: dict[int, _Message] = {}
        self._seen: dict[tuple[str, str], float] = {}
        self._seq = itertools.count(1)
        self._events: dict[str, asyncio.Event] = {}

    def reaches_anyone(self, entity: str, application_properties: Mapping[str, str | int]) -> bool:
        return reaches_anyone(self._topics, entity, application_properties)

    async def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None:
        now = self._now()
        messages, refused = refuse_oversized(entity, messages)
        for m in messages:
            seen_at = self._seen.get((entity, m.message_id))
            if seen_at is not None and seen_at > now - self._window:
                continue
            self._seen[(entity, m.message_id)] = now
            visible_at = max(now, epoch(m.scheduled_at)) if m.scheduled_at else now
            for target in subscribers(self._topics, entity, m):
                seq = next(self._seq)
                self._messages[seq] = _Message(seq, target, m, now, visible_at)
                self._notify(target)
        if refused is not None:
            raise refused

    async def receive(
        self, entity: str, *, max_messages: int = 1, lock_seconds: float = 60.0
    ) -> list[ReceivedMessage]:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        now = self._now()
        ready = sorted(
            (m for m in self._messages.values() if m.entity == entity and m.visible_at <= now),
            key=lambda m: (m.visible_at, m.seq),
        )
        received = []
        for m in ready:
            if len(received) == max_messages:
                break
            if self._exhausted(m):
                self._move_to_dead_letter(m, MAX_DELIVERY_EXCEEDED)
                continue
            m.lock_token, m.visible_at = str(uuid.uuid4()), now + lock_seconds
            m.delivery_count += 1
            received.append(
                ReceivedMessage(
                    message_id=m.sent.message_id,
                    body=m.sent.body,
                    delivery_count=m.delivery_count,
                    lock_token=m.lock_token,
                    enqueued_at=datetime.fromtimestamp(m.enqueued_at, UTC),
                    subject=m.sent.subject,
                    application_properties=dict(m.sent.application_properties),
                    dead_letter_reason=m.dead_letter_reason,
                )
            )
        return received

    async def complete(self, entity: str, message: ReceivedMessage) -> None:
        del self._messages[self._locked(entity, message).seq]

    async def abandon(self, entity: str, message: ReceivedMessage) -> None:
        m = self._locked(entity, message)
        if self._exhausted(m):
            self._move_to_dead_letter(m, MAX_DELIVERY_EXCEEDED)
        else:
            m.lock_token, m.visible_at = None, self._now()
            self._notify(entity)

    async def dead_letter(self, entity: str, message: ReceivedMessage, reason: str) -> None:
        self._move_to_dead_letter(self._locked(entity, message), reason)

    async def wait_for_messages(self, entity: str, timeout: float) -> None:
        now = self._now()
        times = [m.visible_at for m in self._messages.values() if m.entity == entity]
        if times and min(times) <= now:
            return
        if times:
            timeout = min(timeout, min(times) - now)
        event = self._events.setdefault(entity, asyncio.Event())
        event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(timeout, 0.0))

    async def counts(self, entity: str) -> dict[str, int]:
        now = self._now()
        mine = [m for m in self._messages.values() if m.entity == entity]
        dead = dead_letter_queue(entity)
        return {
            "active": sum(m.visible_at <= now for m in mine),
            "scheduled": sum(m.visible_at > now and m.lock_token is None for m in mine),
            "locked": sum(m.visible_at > now and m.lock_token is not None for m in mine),
            "dead_letter": 0
            if dead == entity
            else sum(m.entity == dead for m in self._messages.values()),
        }

    def _locked(self, entity: str, message: ReceivedMessage) -> _Message:
        now = self._now()
        for m in self._messages.values():
            if (m.lock_token, m.entity) == (message.lock_token, entity) and m.visible_at > now:
                return m
        raise MessageLockLost(f"the lock on {message.message_id} in {entity} is lost")

    def _exhausted(self, m: _Message) -> bool:
        return m.delivery_count >= self._max_delivery_count and not m.entity.endswith(DEAD_LETTER)

    def _move_to_dead_letter(self, m: _Message, reason: str) -> None:
        m.entity = dead_letter_queue(m.entity)
        m.lock_token, m.visible_at, m.dead_letter_reason = None, self._now(), reason
        self._notify(m.entity)

    def _notify(self, entity: str) -> None:
        if entity in self._events:
            self._events[entity].set()

    def _now(self) -> float:
        return self._clock.now().timestamp()


# --- secrets ---------------------------------------------------------------------------


class FakeSecretStore:
    """SecretStore in a dict (``values`` is there for assertions)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def set(self, name: str, value: str) -> None:
        self.values[name] = value

    async def get(self, name: str) -> str | None:
        return self.values.get(name)

    async def delete(self, name: str) -> None:
        self.values.pop(name, None)
