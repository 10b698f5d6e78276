"""Credentials kept out of text OCM stores or shows: a provider's error answer may echo
the request it was sent (its Authorization header, its URL), in any encoding."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
SHORTEST = 4
"""A secret shorter than this is not searched for (it would mask ordinary words)."""


def _forms(secret: str, companions: Iterable[str]) -> set[str]:
    """How ``secret`` may travel: itself, URL-encoded, base64 (alone, and as HTTP Basic
    credentials with any other credential as the user name or the password)."""
    forms = {secret, quote(secret, safe=""), quote(secret)}
    pairs = [secret] + [f"{c}:{secret}" for c in companions] + [f"{secret}:{c}" for c in companions]
    for plain in pairs:
        encoded = base64.b64encode(plain.encode())
        forms.add(encoded.decode())
        forms.add(encoded.rstrip(b"=").decode())
        forms.add(base64.urlsafe_b64encode(plain.encode()).rstrip(b"=").decode())
    return forms


def redact(text: str, secrets: Iterable[str], companions: Iterable[str] = ()) -> str:
    """``text`` with every form of every secret replaced by ``***``."""
    others = list(companions)
    forms = {f for s in secrets if len(s) >= SHORTEST for f in _forms(s, others)}
    for form in sorted(forms, key=len, reverse=True):  # the longest first: no partial masks
        text = text.replace(form, MASK)
    return text
