"""Firebase Cloud Messaging (push channels), through the HTTP v1 API.

One call per message: ``POST {base_url}/v1/projects/{project_id}/messages:send``
with ``{"message": {"token"|"topic": …, "notification": {title, body}, "data": {…}}}``
and an OAuth 2.0 access token of the channel's service account (fcm_auth). The
answer's ``name`` (``projects/…/messages/…``) is the provider message id. FCM has no
idempotency key: a re-send after a crash may show the notification twice.

Errors (always a ``ProviderError``; kind, code), from the ``FcmError`` detail of
FCM's google.rpc.Status error body:

- UNREGISTERED (404): the token is gone ............ permanent FCM_UNREGISTERED
- INVALID_ARGUMENT (400) ........................... permanent FCM_INVALID_ARGUMENT
- SENDER_ID_MISMATCH (403) ......................... permanent FCM_SENDER_ID_MISMATCH
- THIRD_PARTY_AUTH_ERROR (401): APNs/web push auth . permanent FCM_THIRD_PARTY_AUTH_ERROR
- QUOTA_EXCEEDED (429) ............................. throttled FCM_QUOTA_EXCEEDED, Retry-After
- UNAVAILABLE (503), INTERNAL (500) ................ transient FCM_UNAVAILABLE, FCM_INTERNAL
- access token refused (401 UNAUTHENTICATED) ....... fetched anew once, then
                                                     permanent FCM_AUTH_FAILED
- token endpoint refused the account (invalid_grant) permanent FCM_AUTH_FAILED
- key file not JSON, fields missing, bad key ....... permanent FCM_BAD_CREDENTIALS
- anything else: by HTTP status (shared.adapters.providers.http)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.providers.fcm_auth import AccessTokens, ServiceAccount
from shared.adapters.providers.http import (
    LazyClient,
    answer_error,
    call,
    json_object,
    status_error,
)
from shared.domain.channels import CredentialField, ProviderSpec
from shared.domain.errors import ProviderError, ProviderErrorKind
from shared.domain.messages import FreeJson
from shared.ports import ProviderEnv, ProviderModule, SendRequest, SendResult

HTTP_URL = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"
DEFAULT_BASE_URL = "https://fcm.googleapis.com"
GOOGLE_OAUTH_URL = "https://oauth2.googleapis.com/token"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

_ERROR_KINDS: dict[str, ProviderErrorKind] = {
    "UNREGISTERED": "permanent",
    "INVALID_ARGUMENT": "permanent",
    "SENDER_ID_MISMATCH": "permanent",
    "THIRD_PARTY_AUTH_ERROR": "permanent",
    "QUOTA_EXCEEDED": "throttled",
    "UNAVAILABLE": "transient",
    "INTERNAL": "transient",
}


class FcmSettings(BaseModel):
    """Where FCM and Google's token endpoint are, and platform options for every message."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(default=DEFAULT_BASE_URL, pattern=HTTP_URL)
    token_uri: str = Field(
        default=GOOGLE_OAUTH_URL,
        pattern=HTTP_URL,
        description="The OAuth 2.0 token endpoint; used instead of the key file's token_uri.",
    )
    android: FreeJson | None = Field(default=None, description="AndroidConfig, sent as is.")
    apns: FreeJson | None = Field(default=None, description="ApnsConfig, sent as is.")
    webpush: FreeJson | None = Field(default=None, description="WebpushConfig, sent as is.")


class FcmSender:
    """Sends push channels' messages through FCM; one HTTP client for every channel."""

    def __init__(self, env: ProviderEnv) -> None:
        self._clients = LazyClient(
            allow_private=env.allow_private_egress, timeout=env.timeout_seconds
        )
        self._tokens = AccessTokens(env.clock)

    async def send(self, request: SendRequest) -> SendResult:
        settings: Mapping[str, Any] = request.channel.get("settings") or {}
        account = ServiceAccount.parse(request.credentials.get("service_account_json", ""))
        token_uri = str(settings.get("token_uri") or GOOGLE_OAUTH_URL)
        base_url = str(settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        url = f"{base_url}/v1/projects/{quote(account.project_id, safe='')}/messages:send"
        body = {"message": fcm_message(request.message, settings)}
        response = await self._post(url, body, account, token_uri)
        if response.status_code == 401 and _fcm_error(response)[0] is None:
            self._tokens.forget(account, token_uri)  # revoked or expired early: once more
            response = await self._post(url, body, account, token_uri)
        if not response.is_success:
            raise send_error(response)
        name = json_object(response).get("name")
        return SendResult(provider_message_id=name if isinstance(name, str) else None)

    async def close(self) -> None:
        await self._clients.close()

    async def _post(
        self, url: str, body: dict[str, Any], account: ServiceAccount, token_uri: str
    ) -> httpx.Response:
        client = self._http()
        token = await self._tokens.get(client, account, token_uri)
        headers = {"Authorization": f"Bearer {token}"}
        return await call(client, "FCM", "POST", url, json=body, headers=headers)

    def _http(self) -> httpx.AsyncClient:
        return self._clients.get()


def fcm_message(message: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The v1 ``Message`` for an OCM message: target, notification, data, platform options."""
    receiver, content = message["receiver"], message["content"]
    target = "token" if receiver["type"] == "device" else "topic"
    out: dict[str, Any] = {target: receiver["address"]}
    if content["type"] == "text":
        out["notification"] = {"body": content["text"]}
    elif content["type"] == "push":
        notification = {k: content[k] for k in ("title", "body") if content.get(k)}
        if notification:
            out["notification"] = notification
        if content.get("data"):
            out["data"] = {str(k): str(v) for k, v in content["data"].items()}
    else:
        raise ProviderError(
            "permanent", "FCM_CONTENT_NOT_SUPPORTED", f"FCM cannot carry {content['type']} content"
        )
    for platform in ("android", "apns", "webpush"):
        if settings.get(platform):
            out[platform] = settings[platform]
    return out


def send_error(response: httpx.Response) -> ProviderError:
    """The ProviderError for an unsuccessful send, by the FcmError code FCM documents."""
    code, message = _fcm_error(response)
    status = response.status_code
    reason = (message or f"FCM answered {status}")[:500]
    kind = _ERROR_KINDS.get(code or "")
    if code is not None and kind is not None:
        return answer_error(response, kind, f"FCM_{code}", reason)
    if status == 401:
        return ProviderError("permanent", "FCM_AUTH_FAILED", reason, provider_status="401")
    return status_error(response, "FCM", reason)


def _fcm_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """The ``errorCode`` of the FcmError detail (if any) and the error's message."""
    error = json_object(response).get("error")
    if not isinstance(error, dict):
        return None, None
    message, details = error.get("message"), error.get("details")
    message = message if isinstance(message, str) else None
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE:
            code = detail.get("errorCode")
            return (code if isinstance(code, str) else None), message
    return None, message


__all__ = ["FcmSender", "FcmSettings", "fcm_message", "send_error"]


PROVIDER = ProviderModule(
    name="fcm",
    specs=(
        ProviderSpec(
            provider="fcm",
            type="push",
            description="Firebase Cloud Messaging (HTTP v1): Android, Apple and web apps.",
            settings=FcmSettings,
            credentials=(
                CredentialField(
                    "service_account_json",
                    secret=True,
                    required=True,
                    description="The service account's key file (JSON), with "
                    "project_id, client_email and private_key",
                ),
            ),
            destination=("base_url", "token_uri"),
            receiver_types=("device", "topic"),
            sender_types=(),  # a push has no sender: the Firebase project is the channel
            content_types=("push", "text"),
            directions=("outbound",),
            receipts=False,
            attachments=False,
            default=True,
            rate_per_second=10_000.0,  # 600,000 messages a minute per project
        ),
    ),
    build=FcmSender,
)
