"""Prefixed, sortable, globally unique ids (ULIDs), and credential material."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from datetime import datetime
from functools import lru_cache

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
# RFC 4648 base32 groups bits exactly as a ULID does; only the alphabet differs.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD.encode())


@lru_cache(maxsize=1024)
def _ulid_time(milliseconds: int) -> str:
    """The 10 characters of a ULID's 48-bit timestamp (cached: a batch shares it)."""
    return "".join(_CROCKFORD[(milliseconds >> shift) & 31] for shift in range(45, -1, -5))


_RANDOMNESS: list[str] = []
# A forked child must not hand out the ids its parent drew.
os.register_at_fork(after_in_child=_RANDOMNESS.clear)


def _randomness() -> str:
    """80 random bits as 16 characters; drawn 256 at a time (one system call)."""
    if not _RANDOMNESS:
        drawn = base64.b32encode(os.urandom(10 * 256)).translate(_TO_CROCKFORD).decode()
        _RANDOMNESS.extend(drawn[i : i + 16] for i in range(0, len(drawn), 16))
    return _RANDOMNESS.pop()


_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits → 2 characters
_COUNTER_LIMIT = 1 << 20


class _Monotonic:
    """Within one millisecond, ids of this process count up (ULID's monotonic
    variant): the last 20 of the 80 random bits are a counter from zero, so ids made
    in the same millisecond sort in the order they were made (a batch's messages, an
    audit trail), and the other 60 bits are drawn afresh each millisecond."""

    def __init__(self) -> None:
        self.ms = -1
        self.stem = ""
        self.count = 0

    def next(self, ms: int) -> str:
        if ms != self.ms or self.count + 1 >= _COUNTER_LIMIT:
            self.ms, self.stem, self.count = ms, _ulid_time(ms) + _randomness()[:12], 0
        else:
            self.count += 1
        n = self.count
        return f"{self.stem}{_PAIRS[n >> 10]}{_PAIRS[n & 1023]}"


_MONOTONIC = _Monotonic()
os.register_at_fork(after_in_child=lambda: setattr(_MONOTONIC, "ms", -1))


def new_id(prefix: str, at: datetime | None = None) -> str:
    """``msg_01j…``: a ULID (time-ordered, 80 bits after the time, counting up within
    a millisecond), lower-case, behind a prefix.

    Written out here because it is on the intake path of every message: this
    costs about a microsecond, a general ULID library ten.
    """
    ms = int(at.timestamp() * 1000) if at is not None else time.time_ns() // 1_000_000
    return f"{prefix}_{_MONOTONIC.next(ms)}"


def digest(*parts: str) -> bytes:
    """SHA-256 over ``parts``, one per line: what every id derived from what it stands
    for is cut from (each kind keeps the form it was first stored in)."""
    return hashlib.sha256("\n".join(parts).encode()).digest()


def hashed_id(prefix: str, *parts: str) -> str:
    """An id derived from what it stands for (128 bits of SHA-256 over ``parts``), for
    documents found by a point read of what they are about, never by a query."""
    return f"{prefix}_{digest(*parts).hex()[:32]}"


def derived_id(prefix: str, parent_id: str, purpose: str) -> str:
    """A stable id made from another (a fallback of a message): the parent's time,
    then 80 bits of a hash, so deriving it twice names the same document."""
    ulid = parent_id.split("_", 1)[-1]
    tail = base64.b32encode(digest(parent_id, purpose)[:10]).translate(_TO_CROCKFORD).decode()
    return f"{prefix}_{ulid[:10]}{tail}"


API_KEY_PREFIX_BYTES = 6
API_KEY_SECRET_BYTES = 32


def new_api_key() -> tuple[str, str, str]:
    """Return ``(key, public_prefix, sha256_of_secret)``; the key is shown once."""
    prefix = secrets.token_hex(API_KEY_PREFIX_BYTES)
    secret = secrets.token_urlsafe(API_KEY_SECRET_BYTES)
    return f"ocm_{prefix}_{secret}", prefix, hash_secret(secret)


def split_api_key(key: str) -> tuple[str, str] | None:
    """``ocm_<prefix>_<secret>`` → ``(prefix, secret)``, or None if malformed."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "ocm" or not parts[1] or not parts[2]:
        return None
    prefix, secret = parts[1], parts[2]
    if len(prefix) != API_KEY_PREFIX_BYTES * 2 or len(secret) < 22:
        return None
    return prefix, secret


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
