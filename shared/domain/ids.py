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


def new_id(prefix: str, at: datetime | None = None) -> str:
    """``msg_01j…``: a ULID (time-ordered, 80 random bits), lower-case, behind a prefix.

    Written out here because it is on the intake path of every message: this
    costs about a microsecond, a general ULID library ten.
    """
    ms = int(at.timestamp() * 1000) if at is not None else time.time_ns() // 1_000_000
    return f"{prefix}_{_ulid_time(ms)}{_randomness()}"


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
