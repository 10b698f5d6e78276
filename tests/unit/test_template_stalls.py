"""A hostile template value cannot hold the event loop (security review, finding 1).

Renders run off the loop (``asyncio.to_thread``), which protects it only from work that
lets go of the GIL: a single C call over a large value — a regex that backtracks, say —
holds every tenant's requests until it returns. The review's ``{{ v % 1 }}`` with
``v = "%(" * 60000`` held the process 3.9 s. Each case here renders one operator or
filter over values built to be worst cases, at the largest size template data may
have, while a task on the loop measures its longest stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import Any

import pytest

from shared.domain.errors import OcmError
from shared.domain.template_budget import MAX_VALUE
from shared.domain.template_sandbox import ENVIRONMENTS, ROUTED
from shared.domain.templates import render

MAX_STALL = 0.050

HOSTILE: dict[str, Any] = {
    "percent keys": "%(" * (MAX_VALUE // 2),
    "percent widths": "%9" * (MAX_VALUE // 2),
    "open tags": "<" * MAX_VALUE,
    "open comments": "<!--" * (MAX_VALUE // 4),
    "lines": "\n" * MAX_VALUE,
    "one word": "a" * MAX_VALUE,
    "urls": "http://a." * (MAX_VALUE // 9),
    "entities": "&#" * (MAX_VALUE // 2),
    "many items": ["%("] * (MAX_VALUE // 8),
}

CALLS = {
    "attr": "v|attr('x')",
    "batch": "v|batch(3)|list",
    "center": "v|center(10)",
    "format": "v|format(1)",
    "groupby": "v|groupby('x')",
    "indent": "v|indent(2)",
    "join": "v|join(',')",
    "map": "v|map('upper')|list",
    "reject": "v|reject('odd')|list",
    "rejectattr": "v|rejectattr('x')|list",
    "replace": "v|replace('%(', 'xy')",
    "round": "v|round(2)",
    "select": "v|select('odd')|list",
    "selectattr": "v|selectattr('x')|list",
    "slice": "v|slice(3)|list",
    "truncate": "v|truncate(10)",
    "wordwrap": "v|wordwrap(5)",
    "xmlattr": "{'a': v}|xmlattr",
}
FILTERS = sorted(f for f in ENVIRONMENTS[False].filters if f not in ROUTED)
EXPRESSIONS = [
    *(CALLS.get(f, f"v|{f}") for f in FILTERS),
    "v % 1",
    "v % (1, 2)",
    "v % {'a': 1}",
    "v + v",
    "v * 2",
    "v ~ v",
    "v == v",
    "'%(' in v",
    "v[1:]",
    "v.split('%(')|length",
    "v is upper",
]


def _template(expression: str) -> dict[str, Any]:
    return {
        "name": "hostile",
        "variables": [{"name": "v", "type": "any", "required": True}],
        "variants": {"default": {"text": "{{ " + expression + " }}x"}},
    }


def _render(expression: str, value: Any) -> Callable[[], None]:
    def work() -> None:
        with contextlib.suppress(OcmError):  # refused, quickly: as a hostile render should be
            render(_template(expression), "sms", {"v": value})

    return work


async def _longest_stall(work: Callable[[], None]) -> float:
    """The longest the loop went without running, while ``work`` ran off it."""
    loop = asyncio.get_running_loop()
    done = False
    longest = 0.0

    async def watch() -> None:
        nonlocal longest
        last = loop.time()
        while not done:
            await asyncio.sleep(0.001)
            now = loop.time()
            longest = max(longest, now - last)
            last = now

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.002)
    try:
        await asyncio.to_thread(work)
    finally:
        done = True
        await watcher
    return longest


@pytest.mark.parametrize("expression", EXPRESSIONS)
async def test_no_operator_or_filter_holds_the_loop_on_a_hostile_value(expression: str) -> None:
    for name, value in HOSTILE.items():
        # The least of three tries: a busy machine can stall a loop once, a render every time.
        stall = min([await _longest_stall(_render(expression, value)) for _ in range(3)])
        assert stall < MAX_STALL, f"{expression} on {name}: the loop stalled {stall:.3f} s"


def test_the_cases_cover_every_filter_the_sandbox_allows() -> None:
    used = {e.split("|")[1].split("(")[0] for e in EXPRESSIONS if "|" in e}
    assert set(FILTERS) <= used | {"xmlattr"}


async def test_work_that_holds_the_gil_is_seen_as_a_stall() -> None:
    """The meter itself: one regex call that backtracks (~0.2 s) holds the loop."""
    stall = await _longest_stall(lambda: re.match(r"(a*)*b", "a" * 22) and None)
    assert stall > MAX_STALL
