"""The Meta WhatsApp Cloud API provider (``whatsapp`` channels), on the Graph API.

A send is ``POST {base_url}/{api_version}/{phone_number_id}/messages`` with the
channel's ``access_token`` as a Bearer token; the ``wamid`` Meta answers with is
the provider message id that receipts name later. The message's sender is not
sent: the channel's ``phone_number_id`` is the number WhatsApp sends from.

Content:

- ``text`` .............. ``text.body`` (link previews off)
- ``media`` ............. ``image``/``video``/``audio`` by the major MIME type, any
  other type a ``document``; ``link`` is the URL (Meta fetches it), with the caption
  (audio takes none) and, for documents, the file name from the URL's path
- ``template`` .......... ``template.name``, ``language.code``, and ``components``:
  ``data.components`` as Meta's own list, or ``data.parameters`` (strings) as the
  body's text parameters

Errors (always a ``ProviderError``; see meta_errors for the code lists):

- rate limits 4, 80007, 130429, 131048, 131056, HTTP 429 .. throttled WHATSAPP_<code>
- 1, 2, 131000, 131016, 131057, 133004, HTTP 5xx .......... transient WHATSAPP_<code>
- 131047, more than 24 h since the customer replied ...... permanent WHATSAPP_OUTSIDE_WINDOW
- 0, 10, 190, 200-299 (token, permissions) ............... permanent WHATSAPP_AUTH_FAILED
- 100, 131026, 132000-132015 and any other 4xx ........... permanent WHATSAPP_<code>
- content WhatsApp cannot carry as given ................. permanent WHATSAPP_INVALID_MESSAGE
- network failures, egress guard ......................... as shared.adapters.providers.http

The Cloud API takes no idempotency key, so none is sent. The token never
appears in an error: reasons come from Meta's error texts, masked should one
echo it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.adapters.providers.http import LazyClient, call
from shared.adapters.providers.meta_callbacks import MetaCallbacks
from shared.adapters.providers.meta_errors import AUTH_CODE, PREFIX, graph_error
from shared.domain.channels import CredentialField, ProviderSpec
from shared.domain.errors import ProviderError
from shared.ports import ProviderModule, SendRequest, SendResult

log = logging.getLogger(__name__)

GRAPH_API = "https://graph.facebook.com"
MEDIA_KINDS = ("image", "video", "audio")
TEMPLATE_DATA = frozenset({"components", "parameters"})


class MetaSettings(BaseModel):
    """Which business phone number sends, through which Graph API version."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        default=GRAPH_API,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        max_length=2048,
        description="The Graph API's origin.",
    )
    api_version: str = Field(
        default="v21.0", pattern=r"^v\d{1,3}\.\d{1,2}$", description="A Graph API version."
    )
    phone_number_id: str = Field(
        pattern=r"^\d{1,32}$",
        description="The business phone number's id (WhatsApp Manager, API setup), "
        "not the number itself.",
    )


def invalid(reason: str) -> ProviderError:
    return ProviderError("permanent", f"{PREFIX}_INVALID_MESSAGE", reason)


def message_body(message: Mapping[str, Any]) -> dict[str, Any]:
    """The Cloud API's JSON for one OCM message to one customer."""
    receiver = message.get("receiver") or {}
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": str(receiver.get("address", "")).lstrip("+"),
    }
    content: Mapping[str, Any] = message.get("content") or {}
    kind = content.get("type")
    if kind == "text":
        body.update(type="text", text={"preview_url": False, "body": content["text"]})
    elif kind == "media":
        body.update(_media(content))
    elif kind == "template":
        body.update(type="template", template=_template(content))
    else:
        raise invalid(f"WhatsApp cannot carry {kind} content")
    return body


def _media(content: Mapping[str, Any]) -> dict[str, Any]:
    url = str(content["url"])
    major = str(content.get("media_type", "")).split("/", 1)[0].lower()
    kind = major if major in MEDIA_KINDS else "document"
    media: dict[str, Any] = {"link": url}
    caption = content.get("caption")
    if caption and kind == "audio":
        raise invalid("WhatsApp audio messages take no caption; send the text on its own")
    if caption:
        media["caption"] = caption
    if kind == "document":
        filename = unquote(PurePosixPath(urlsplit(url).path).name)
        if filename:
            media["filename"] = filename
    return {"type": kind, kind: media}


def _template(content: Mapping[str, Any]) -> dict[str, Any]:
    language = content.get("language")
    if not language:
        raise invalid("A WhatsApp template needs its language (content.language, e.g. en_US)")
    data: Mapping[str, Any] = content.get("data") or {}
    unknown = sorted(set(data) - TEMPLATE_DATA)
    if unknown or len(data) > 1:
        raise invalid(
            "WhatsApp template data is either {components: [...]} (Meta's own list) "
            "or {parameters: [...]} (the body's text parameters)"
        )
    template: dict[str, Any] = {"name": content["template"], "language": {"code": language}}
    components = data.get("components")
    parameters = data.get("parameters")
    if components is not None:
        if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
            raise invalid("template data.components must be a list of Meta component objects")
        template["components"] = components
    elif parameters is not None:
        if not isinstance(parameters, list) or not all(isinstance(p, str) for p in parameters):
            raise invalid("template data.parameters must be a list of strings")
        if parameters:
            body = [{"type": "text", "text": p} for p in parameters]
            template["components"] = [{"type": "body", "parameters": body}]
    return template


class MetaSender:
    """Sends whatsapp channels' messages through the Cloud API (one shared client)."""

    def __init__(self, *, allow_private_egress: bool, timeout_seconds: float = 30.0) -> None:
        self._clients = LazyClient(allow_private=allow_private_egress, timeout=timeout_seconds)

    async def send(self, request: SendRequest) -> SendResult:
        try:
            settings = MetaSettings.model_validate(request.channel.get("settings") or {})
        except ValidationError:
            raise ProviderError(
                "permanent", f"{PREFIX}_SETTINGS_INVALID", "The channel's settings are not valid"
            ) from None
        token = request.credentials.get("access_token") or ""
        if not token:
            raise ProviderError("permanent", AUTH_CODE, "The channel has no access_token")
        body = message_body(request.message)
        url = (
            f"{settings.base_url.rstrip('/')}/{settings.api_version}/"
            f"{settings.phone_number_id}/messages"
        )
        headers = {"Authorization": f"Bearer {token}"}
        response = await call(self._http(), PREFIX, "POST", url, json=body, headers=headers)
        if not response.is_success:
            raise graph_error(response, token=token)
        return SendResult(provider_message_id=_wamid(response))

    async def close(self) -> None:
        await self._clients.close()

    def _http(self) -> httpx.AsyncClient:
        return self._clients.get()


def _wamid(response: httpx.Response) -> str | None:
    """The id of the accepted message; Meta accepted it even if the id is missing."""
    try:
        wamid = response.json()["messages"][0]["id"]
    except (ValueError, LookupError, TypeError):
        wamid = None
    if not isinstance(wamid, str) or not wamid:
        log.warning("WhatsApp accepted a message without naming its id")
        return None
    return wamid


PROVIDER = ProviderModule(
    name="meta",
    specs=(
        ProviderSpec(
            provider="meta",
            type="whatsapp",
            description="Meta's WhatsApp Cloud API: text, media and template messages, "
            "receipts and inbound messages by webhook.",
            settings=MetaSettings,
            credentials=(
                CredentialField(
                    "access_token",
                    secret=True,
                    required=True,
                    description="A system user's access token with whatsapp_business_messaging",
                ),
                CredentialField(
                    "app_secret",
                    secret=True,
                    required=True,
                    description="The Meta app's secret: verifies X-Hub-Signature-256",
                ),
                CredentialField(
                    "verify_token",
                    secret=True,
                    required=True,
                    description="The Verify Token you enter in the app's webhook settings",
                ),
            ),
            destination=("base_url",),
            receiver_types=("phone",),
            sender_types=("phone",),
            content_types=("text", "media", "template"),
            directions=("outbound", "inbound"),
            receipts=True,
            attachments=False,
            default=True,
            rate_per_second=80.0,
            callbacks=True,
        ),
    ),
    build=lambda env: MetaSender(
        allow_private_egress=env.allow_private_egress, timeout_seconds=env.timeout_seconds
    ),
    callbacks=MetaCallbacks(),
)
