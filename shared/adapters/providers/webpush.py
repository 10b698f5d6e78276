"""Web Push (push channels to browsers): RFC 8030 delivery, RFC 8291 encryption,
RFC 8292 (VAPID) identification.

The receiver (type ``device``) is the browser's PushSubscription as JSON:
``{"endpoint": "https://…", "keys": {"p256dh": "…", "auth": "…"}}``. Each message
is encrypted for that subscription (aes128gcm, a fresh ECDH key per message, one
4096-octet record) and POSTed to its endpoint with ``TTL``, ``Urgency``, a ``Topic``
derived from the idempotency key (a re-sent message replaces an undelivered copy)
and ``Authorization: vapid t=<ES256 JWT for the endpoint's origin>, k=<public key>``.
The answer's ``Location`` is the provider message id.

The endpoint is the tenant's (its subscription's), so it passes the egress guard;
plain http is accepted only where private egress is (development).

Errors (always a ``ProviderError``; kind, code):

- subscription not JSON, no https endpoint, bad keys .. permanent WEBPUSH_BAD_SUBSCRIPTION
- VAPID key or subject unusable ....................... permanent WEBPUSH_BAD_VAPID_KEY,
                                                        WEBPUSH_BAD_VAPID_SUBJECT
- payload over 3993 octets, or 413 .................... permanent WEBPUSH_PAYLOAD_TOO_LARGE
- 404, 410: the subscription is gone .................. permanent WEBPUSH_SUBSCRIPTION_GONE
- 401, 403: the push service refused the VAPID token .. permanent WEBPUSH_VAPID_REJECTED
- anything else: by HTTP status (shared.adapters.providers.http): 429 throttled,
  5xx transient, other 4xx permanent
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.providers.http import LazyClient, call, status_error
from shared.adapters.providers.webpush_crypto import PushSubscription, Vapid, encrypt
from shared.domain.channels import CredentialField, ProviderSpec
from shared.domain.encoding import b64url
from shared.domain.errors import ProviderError
from shared.domain.message_document import receiver_of
from shared.ports import ProviderEnv, ProviderModule, SendRequest, SendResult

MAX_PAYLOAD = 3993
"""RFC 8291 §4: the most plaintext that fits the one 4096-octet record push services take."""
_CODES = {
    401: "WEBPUSH_VAPID_REJECTED",
    403: "WEBPUSH_VAPID_REJECTED",
    413: "WEBPUSH_PAYLOAD_TOO_LARGE",
}


class WebPushSettings(BaseModel):
    """How long push services keep an undelivered message, and how urgent it is."""

    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int = Field(default=86_400, ge=0, le=2_419_200)
    urgency: Literal["very-low", "low", "normal", "high"] = "normal"


def payload(message: Mapping[str, Any]) -> bytes:
    """What the service worker receives: the push content as JSON."""
    content = message["content"]
    if content["type"] == "text":
        fields: dict[str, Any] = {"body": content["text"]}
    elif content["type"] == "push":
        fields = {k: content[k] for k in ("title", "body", "data") if content.get(k)}
    else:
        raise ProviderError(
            "permanent",
            "WEBPUSH_CONTENT_NOT_SUPPORTED",
            f"Web Push cannot carry {content['type']} content",
        )
    data = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    if len(data) > MAX_PAYLOAD:
        raise ProviderError(
            "permanent",
            "WEBPUSH_PAYLOAD_TOO_LARGE",
            f"the payload is {len(data)} octets; Web Push carries at most {MAX_PAYLOAD}",
        )
    return data


def topic(idempotency_key: str) -> str:
    """An RFC 8030 ``Topic`` (≤ 32 base64url characters) standing for the message."""
    return b64url(hashlib.sha256(idempotency_key.encode()).digest())[:32]


class WebPushSender:
    """Sends push channels' messages to browsers' push services."""

    def __init__(self, env: ProviderEnv) -> None:
        self._env = env
        self._clients = LazyClient(
            allow_private=env.allow_private_egress, timeout=env.timeout_seconds
        )

    async def send(self, request: SendRequest) -> SendResult:
        settings: Mapping[str, Any] = request.channel.get("settings") or {}
        subscription = PushSubscription.parse(
            receiver_of(request.message)["address"], plain_http=self._env.allow_private_egress
        )
        vapid = Vapid.from_credentials(request.credentials)
        body = encrypt(payload(request.message), subscription)
        headers = {
            "TTL": str(settings.get("ttl_seconds", 86_400)),
            "Urgency": str(settings.get("urgency", "normal")),
            "Topic": topic(request.idempotency_key),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": vapid.authorization(subscription.endpoint, self._env.clock.now()),
        }
        response = await call(
            self._http(), "WEBPUSH", "POST", subscription.endpoint, content=body, headers=headers
        )
        if not response.is_success:
            raise send_error(response)
        return SendResult(provider_message_id=response.headers.get("location"))

    async def close(self) -> None:
        await self._clients.close()

    def _http(self) -> httpx.AsyncClient:
        return self._clients.get()


def send_error(response: httpx.Response) -> ProviderError:
    """The ProviderError for a push service's refusal (RFC 8030, RFC 8292)."""
    status = response.status_code
    reason = f"the push service answered {status}: {response.text[:300]}".rstrip(": ")
    if status in (404, 410):
        return ProviderError(
            "permanent",
            "WEBPUSH_SUBSCRIPTION_GONE",
            "the subscription is gone (expired or unsubscribed); delete it",
            provider_status=str(status),
        )
    error = status_error(response, "WEBPUSH", reason, code=_CODES.get(status))
    if error.kind == "throttled":
        # One push service (often for one subscription) is slowing us, not the channel.
        error.details["per_receiver"] = "true"
    return error


def subscription_problem(_type: str, address: str) -> str | None:
    """Checked when a message is accepted: is the receiver a PushSubscription's JSON?
    (Plain-http endpoints pass here; outside development the send refuses them.)"""
    try:
        PushSubscription.parse(address, plain_http=True)
    except ProviderError as exc:
        return exc.reason.removeprefix("The receiver: ")
    return None


__all__ = ["WebPushSender", "WebPushSettings", "payload", "send_error", "topic"]


PROVIDER = ProviderModule(
    name="webpush",
    specs=(
        ProviderSpec(
            provider="webpush",
            type="push",
            description="Web Push to browsers (VAPID, aes128gcm), to any push service.",
            settings=WebPushSettings,
            credentials=(
                CredentialField(
                    "vapid_private_key",
                    secret=True,
                    required=True,
                    description="The VAPID P-256 private key: 32 octets, base64url",
                ),
                CredentialField(
                    "vapid_subject",
                    secret=False,
                    required=True,
                    description="A contact for push services: mailto: or https: URL",
                ),
            ),
            receiver_types=("device",),
            sender_types=(),  # a push has no sender: the app (project, VAPID key) is the channel
            content_types=("push", "text"),
            directions=("outbound",),
            receipts=False,
            attachments=False,
            receiver_problem=subscription_problem,
        ),
    ),
    build=WebPushSender,
)
