"""Encodings written once: base64url without padding (tokens, Web Push keys), standard
base64 as people paste it (attachments, signatures), and text shortened to a limit."""

from __future__ import annotations

import base64


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2, RFC 8291)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding (browsers send it without); ValueError if
    it is not base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64decode_lenient_spaces(text: str) -> bytes:
    """Standard base64 that may be wrapped over lines or spaced (as e-mail and PEM
    wrap it), refusing any other character (binascii.Error, a ValueError)."""
    return base64.b64decode("".join(text.split()), validate=True)


def shortened(text: str, limit: int) -> str:
    """``text`` if it fits ``limit`` characters, else its start and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
