"""What a name a person reads may hold: no control characters, no bidirectional
overrides or isolates (which make ``abc\u202egnp.exe`` show as ``abcexe.png``), no
invisible characters (zero-width space, word joiner, byte-order mark) that make two
names look the same. Zero-width joiners and non-joiners stay: scripts and emoji use them.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

INVISIBLE = frozenset(
    "\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"
)


def name_problem(text: str) -> str | None:
    """Why ``text`` may not be a name (None: it may)."""
    if any(unicodedata.category(c) == "Cc" for c in text):
        return "holds a control character"
    if any(c in INVISIBLE for c in text):
        return "holds an invisible or text-direction character"
    return None


def _checked(text: str | None) -> str | None:
    problem = None if text is None else name_problem(text)
    if problem:
        raise ValueError(problem)
    return text


Name = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_checked)]
"""A name (an application's, a user's, a tenant's): 1 to 128 readable characters."""
DisplayName = Annotated[str, Field(max_length=256), AfterValidator(_checked)]
"""How a sender or receiver is shown."""
