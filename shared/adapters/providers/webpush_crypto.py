"""The cryptography of Web Push: the subscription's keys, RFC 8291 message
encryption (aes128gcm) and RFC 8292 VAPID identification."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import http_ece  # type: ignore[import-untyped]
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.domain.encoding import b64url, b64url_decode
from shared.domain.errors import ProviderError

VAPID_LIFETIME = timedelta(hours=12)
"""RFC 8292 §2: a VAPID token must expire within 24 hours of the request."""


@dataclass(frozen=True, slots=True)
class PushSubscription:
    """A browser's subscription: where to POST, and the keys to encrypt for."""

    endpoint: str
    p256dh: bytes
    auth: bytes

    @classmethod
    def parse(cls, address: str, *, plain_http: bool) -> PushSubscription:
        try:
            data = json.loads(address)
            endpoint, keys = data["endpoint"], data["keys"]
            p256dh, auth = b64url_decode(keys["p256dh"]), b64url_decode(keys["auth"])
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
            origin(endpoint)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise _bad_subscription("not a PushSubscription JSON with endpoint and keys") from None
        if len(p256dh) != 65 or len(auth) != 16:
            raise _bad_subscription("keys.p256dh or keys.auth has the wrong length")
        if not endpoint.startswith("https://") and not (
            plain_http and endpoint.startswith("http://")
        ):
            raise _bad_subscription("the endpoint is not an https URL")
        return cls(endpoint, p256dh, auth)


def origin(endpoint: str) -> str:
    """The endpoint's origin (scheme, host, non-default port): the VAPID audience."""
    parts = urlsplit(endpoint)
    default = {"https": 443, "http": 80}[parts.scheme]
    if not parts.hostname or "@" in parts.netloc:
        raise ValueError("no host, or credentials in the URL")
    host = parts.netloc.lower()
    return f"{parts.scheme}://{host.rsplit(':', 1)[0] if parts.port == default else host}"


@dataclass(frozen=True, slots=True)
class Vapid:
    """The application server's identity: its P-256 key and a contact (``sub``)."""

    key: ec.EllipticCurvePrivateKey
    subject: str

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, str]) -> Vapid:
        subject = credentials.get("vapid_subject", "")
        if not subject.startswith(("mailto:", "https://")):
            raise ProviderError(
                "permanent",
                "WEBPUSH_BAD_VAPID_SUBJECT",
                "vapid_subject is not a mailto: or https: URL",
            )
        try:
            raw = b64url_decode(credentials.get("vapid_private_key", "").strip())
            if len(raw) != 32:
                raise ValueError("not 32 octets")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        except ValueError:
            raise ProviderError(
                "permanent",
                "WEBPUSH_BAD_VAPID_KEY",
                "vapid_private_key is not a base64url P-256 private key (32 octets)",
            ) from None
        return cls(key, subject)

    def authorization(self, endpoint: str, now: datetime) -> str:
        """The ``Authorization`` header value for a request to ``endpoint``."""
        claims = {
            "aud": origin(endpoint),
            "exp": int((now + VAPID_LIFETIME).timestamp()),
            "sub": self.subject,
        }
        token = jwt.encode(claims, self.key, algorithm="ES256")
        point = self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return f"vapid t={token}, k={b64url(point)}"


def encrypt(
    plaintext: bytes,
    subscription: PushSubscription,
    *,
    ephemeral: ec.EllipticCurvePrivateKey | None = None,
    salt: bytes | None = None,
) -> bytes:
    """RFC 8291 aes128gcm for the subscription: one record, keyid the sender's public
    key; a new ephemeral key and salt unless given (RFC 8291's example gives them)."""
    body: bytes = http_ece.encrypt(
        plaintext,
        salt=salt,
        private_key=ephemeral or ec.generate_private_key(ec.SECP256R1()),
        dh=subscription.p256dh,
        auth_secret=subscription.auth,
        version="aes128gcm",
    )
    return body


def _bad_subscription(reason: str) -> ProviderError:
    return ProviderError("permanent", "WEBPUSH_BAD_SUBSCRIPTION", f"The receiver: {reason}")


__all__ = ["PushSubscription", "Vapid", "encrypt", "origin"]
