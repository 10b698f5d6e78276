"""Optimistic concurrency, written once: read a document, change it, write it back
under the etag it was read with; when another writer got there first, read it again
and change that, a few times at most.

A change is a function of the document as read: it changes it in place and returns
its outcome, or returns ``Keep(outcome)`` to leave it as it is (nothing is written).
It may run more than once, so it must not act on the world before the write — what
follows from the change happens after ``update`` returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from shared.domain.errors import ConflictError
from shared.domain.models import Document
from shared.ports import DocumentStore, PreconditionFailed

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
D = TypeVar("D", bound=Mapping[str, Any])


@dataclass(frozen=True, slots=True)
class Keep(Generic[T_co]):
    """What a change returns to write nothing: the document stays as it is."""

    outcome: T_co


@dataclass(frozen=True, slots=True)
class Updated(Generic[D, T]):
    doc: D | None
    """The document as written (with its new etag); None if the change kept it."""
    outcome: T


@dataclass(frozen=True, slots=True)
class Tries:
    """How often to try, and what to raise when every try lost the race."""

    count: int
    exhausted: Callable[[], Exception]


def for_request(what: str) -> Tries:
    """Three tries, then 409 CONCURRENT_UPDATE: the client may try again."""
    return Tries(3, lambda: ConflictError(f"{what}; try again", code="CONCURRENT_UPDATE"))


def for_queue(what: str) -> Tries:
    """Five tries, then an error: the queue redelivers the message later."""
    return Tries(5, lambda: RuntimeError(f"{what}: concurrent updates; the queue will redeliver"))


async def rewrite(
    store: DocumentStore,
    container: str,
    load: Callable[[], Awaitable[Document]],
    change: Callable[[Document], Awaitable[None]],
    tries: Tries,
) -> Document:
    """``update`` for a change that always writes, of a document ``load`` always finds
    (it raises when there is none, as a request's 404): the document as written."""
    done = await update(store, container, load, change, tries)
    if done is None or done.doc is None:
        raise AssertionError("load found no document, or the change kept it")
    return done.doc


async def update(
    store: DocumentStore,
    container: str,
    load: Callable[[], Awaitable[D | None]],
    change: Callable[[D], Awaitable[T | Keep[T]]],
    tries: Tries,
    *,
    first: D | None = None,
) -> Updated[D, T] | None:
    """Apply ``change`` to the document ``load`` reads (``first``: a copy already
    read, for the first try) and replace it under its etag; None if it does not exist.
    """
    doc = first
    for _ in range(tries.count):
        if doc is None:
            doc = await load()
            if doc is None:
                return None
        outcome = await change(doc)
        if isinstance(outcome, Keep):
            return Updated(None, cast(T, outcome.outcome))
        try:
            written = await store.replace(container, cast(Document, doc), etag=doc["_etag"])
        except PreconditionFailed:
            doc = None
            continue
        return Updated(cast(D, written), outcome)
    raise tries.exhausted()
