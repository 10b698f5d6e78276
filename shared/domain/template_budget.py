"""What one template render may spend and build: the limits, and the meter that counts
a render's work and remembers what its values weigh.

The meter lives in a context variable that ``budget`` sets for one render; outside a
budget nothing is counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import chain
from types import GeneratorType
from typing import Any

from jinja2.exceptions import SecurityError

MAX_VALUE = 262_144
"""The most characters any value built during a render may have (a message's size)."""
MAX_WORK = 50_000
"""The units of work one render (all fields of a message) may spend."""
MAX_DIGITS = 4300
"""The most digits a number may grow to (Python prints no longer ones)."""


@dataclass
class _Meter:
    """What one render has spent; weights of containers are remembered by identity."""

    work: int = 0
    weights: dict[int, tuple[object, int]] = field(default_factory=dict)


_METER: ContextVar[_Meter | None] = ContextVar("ocm_template_meter", default=None)


def spend(elements: int = 0, cost: int = 1) -> None:
    """Count an operation going through ``elements`` characters or items."""
    meter = _METER.get()
    if meter is not None:
        meter.work += 1 + elements * cost // 64
        if meter.work > MAX_WORK:
            raise SecurityError("the template does too much work")


def elements(value: Any) -> int:
    """How many characters or items an operation on ``value`` goes through."""
    sized = isinstance(value, str | bytes | Mapping | list | tuple | set | frozenset | range)
    return len(value) if sized else 1


def weight(value: Any, limit: int = MAX_VALUE) -> int:
    """About how many characters ``value`` prints as; counting stops past ``limit``."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if not isinstance(value, Mapping | list | tuple | set | frozenset):
        return 8
    meter = _METER.get()
    known = meter.weights.get(id(value)) if meter else None
    if known is not None:
        return known[1]
    total = 2 + 2 * len(value)
    for item in chain.from_iterable(value.items()) if isinstance(value, Mapping) else value:
        if total > limit:
            return total  # partial, so not remembered
        total += weight(item, limit - total)
    if meter is not None:
        meter.weights[id(value)] = (value, total)
    return total


def within(size: int) -> int:
    """Refuse to build a value of more than MAX_VALUE characters."""
    if size > MAX_VALUE:
        raise SecurityError(f"a value would grow past {MAX_VALUE} characters")
    return size


def sized(value: Any) -> Any:
    """``value`` as built, refused if it prints past MAX_VALUE characters; a generator
    passes unmeasured (the loop or filter that consumes it meters it)."""
    if not isinstance(value, GeneratorType):
        within(weight(value))
    return value


@contextmanager
def budget() -> Iterator[None]:
    """One render's budget (``MAX_WORK``), shared by every source rendered inside."""
    token = _METER.set(_Meter())
    try:
        yield
    finally:
        _METER.reset(token)
