"""Prefixed, sortable, globally unique ids (ULIDs), and credential material."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from ulid import ULID

PREFIXES = ("msg", "ch", "tn", "app", "key", "evt", "bat", "idem")


def new_id(prefix: str, at: datetime | None = None) -> str:
    """``msg_01J…``: a ULID (time-ordered) behind a type prefix."""
    ulid = ULID.from_datetime(at) if at is not None else ULID()
    return f"{prefix}_{str(ulid).lower()}"


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
