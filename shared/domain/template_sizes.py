"""The most an operation of a template can build, judged before it builds it: the
``%`` operator and the ``format`` filter (by their widths and precisions), the other
intercepted operators (``+``, ``*``, ``**``) and the filters that grow a value."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sized
from typing import Any

from jinja2.exceptions import SecurityError

from shared.domain.template_budget import MAX_DIGITS, MAX_VALUE, spend, weight, within

_SPEC = re.compile(r"[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?")
"""What follows ``%`` (and its key): anchored, and every part linear in what it matches."""


def _formatted_size(fmt: Any, args: Any) -> int:
    """The most ``fmt % args`` can print: widths and precisions count, ``*`` is refused.

    The format is charged to the render's budget and held to MAX_VALUE before it is
    read, and read once, left to right (a regex over the whole of it backtracked on
    ``%(`` without a ``)``, quadratically, holding the GIL)."""
    if not isinstance(fmt, str):
        return weight(fmt)
    spend(within(len(fmt)))
    values = (
        args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple) else (args,)
    )
    widest = max((weight(v) for v in values), default=0)
    size = len(fmt)
    for width, precision in _conversions(fmt):
        spend()
        if "*" in (width, precision):
            raise SecurityError("a width or precision taken from the arguments (*)")
        size += max(_number(width), _number(precision), widest)
    return size


def _conversions(fmt: str) -> Iterator[tuple[str, str]]:
    """The width and precision of each conversion of ``fmt``, as ``%`` reads them (a
    mapping key's parentheses nest); where ``%`` would refuse the rest, it stops. Each
    search starts where the last ended, so the whole is read once."""
    at = fmt.find("%")
    while at != -1:
        at += 1
        if fmt.startswith("(", at):
            at = _after_key(fmt, at)
            if at == -1:
                return  # an unclosed key: ``%`` refuses the format
        spec = _SPEC.match(fmt, at)
        assert spec is not None  # every part of it may match nothing
        at = spec.end()
        if at >= len(fmt):
            return  # no conversion character: ``%`` refuses the format
        yield spec.group(1), spec.group(2) or ""  # ``%%`` too: an estimate may be high
        at = fmt.find("%", at + 1)


def _after_key(fmt: str, at: int) -> int:
    """Where the ``(key)`` opening at ``at`` ends (parentheses nest), or -1."""
    depth, at = 1, at + 1
    while depth:
        close = fmt.find(")", at)
        if close == -1:
            return -1
        depth += fmt.count("(", at, close) - 1
        at = close + 1
    return at


def _number(digits: str) -> int:
    """A width or precision written in a format (absurdly long ones count as too big)."""
    if not digits:
        return 0
    return int(digits) if len(digits) < 10 else MAX_VALUE + 1


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def filter_size(name: str, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """The most a filter can build from its arguments (most build no more than they get)."""
    size = weight(value)
    if name == "format":
        return _formatted_size(value, kwargs or args)
    if name == "join":
        count = len(value) if isinstance(value, Sized) else size
        return size + weight(_arg(args, kwargs, 0, "d") or "") * count
    if name == "replace" and isinstance(value, str):
        old, new = _arg(args, kwargs, 0, "old"), _arg(args, kwargs, 1, "new")
        if isinstance(old, str) and isinstance(new, str):
            return size + len(new) * (value.count(old) if old else size + 1)
    if name == "indent" and isinstance(value, str):
        width = _arg(args, kwargs, 0, "width")
        indent = len(width) if isinstance(width, str) else width if isinstance(width, int) else 4
        return size + indent * (value.count("\n") + 1)
    sizing = {"center": "width", "batch": "linecount", "slice": "slices", "tojson": "indent"}
    amount = _arg(args, kwargs, 0, sizing[name]) if name in sizing else None
    if isinstance(amount, int):
        return size * (amount + 1) if name == "tojson" else size + amount
    return size


def binop_size(op: str, left: Any, right: Any) -> int:
    """The most an intercepted operator (+, *, **, %) can build; numbers stay printable."""
    if op == "+":
        return weight(left) + weight(right)
    if op in ("*", "**") and isinstance(left, int) and isinstance(right, int):
        if op == "*":
            bits = left.bit_length() + right.bit_length()
        else:
            bits = left.bit_length() * max(right, 0)
        if bits // 3 > MAX_DIGITS:
            raise SecurityError(f"a number would grow past {MAX_DIGITS} digits")
    elif op == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                return weight(seq) * times
    if op == "%" and isinstance(left, str):
        return _formatted_size(left, right)
    return 0
