"""What may stand in a header of an e-mail OCM writes, whatever the interpreter.

A subject or display name holding an RFC 2047 encoded word (``=?utf-8?q?…=0D=0ABcc:…?=``)
is decoded by the standard library when it is set on a message, and interpreters before
3.11.10 / 3.12.6 (CVE-2024-6923) then write its CR/LF out raw: an added ``Bcc``, a second
``From``, a replaced body. Nobody types an encoded word; a client sends the text itself.
So header text is refused if it holds one or a control character (line breaks and tabs
inside a value fold into spaces first), and the header block a message serialises to is
checked before it goes out: only the headers OCM set, each as often as it set them.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable

SINGLE = frozenset({"from", "to", "subject", "date", "message-id"})
"""Headers every e-mail has exactly once."""
MIME = frozenset({"mime-version", "content-type", "content-transfer-encoding"})


def header_problem(text: str) -> str | None:
    """Why ``text`` may not stand in a header (None: it may)."""
    start = text.find("=?")
    if start != -1 and text.find("?=", start + 2) != -1:
        return "holds an RFC 2047 encoded word (=?…?=): send the text itself"
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text):
        return "holds a control character"
    return None


def header_text(text: str, what: str) -> str:
    """``text`` as a header value: runs of white space (line breaks too) as one space;
    ValueError naming ``what`` if it may not stand in a header."""
    problem = header_problem(text)
    if problem:
        raise ValueError(f"the {what} {problem}")
    return " ".join(text.split())


def check_header_block(message: bytes, extra: Iterable[str] = ()) -> None:
    """Refuse (ValueError) a serialised e-mail whose top-level headers are not those
    OCM writes: each of ``SINGLE`` once, the MIME headers, and ``extra``."""
    head = message.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii", "replace")
    names = Counter(
        line.split(":", 1)[0].strip().lower()
        for line in head.split("\n")
        if line and not line[0].isspace()
    )
    allowed = SINGLE | MIME | {name.lower() for name in extra}
    unknown = sorted(set(names) - allowed)
    if unknown:
        raise ValueError(f"the e-mail would carry headers OCM did not set: {', '.join(unknown)}")
    wrong = sorted(name for name in SINGLE | MIME if names[name] > 1)
    wrong += sorted(name for name in SINGLE if names[name] == 0)
    if wrong:
        raise ValueError(f"the e-mail's headers are not as OCM set them: {', '.join(wrong)}")
