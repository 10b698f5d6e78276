"""The Apprise provider (chat channels): one Apprise URL per channel, on ``apprise``.

One URL names the service and carries its tokens (``slack://…``, ``discord://…``,
``ntfy://…``, ``json://host/path`` …), so it is the channel's write-only credential
``url``, never a setting, and it appears in no error, log line or answer. Which
schemes are accepted, and how their destination is checked, is in apprise_chat_urls.

Sending: a fresh ``Apprise`` per send, holding only this channel's URL, with an asset
that keeps Apprise off the disk (no plugin paths scanned, persistent storage in
memory, no key generation, no templates, no local icons) and follows no redirect,
whatever the URL asks. Apprise is blocking (requests): ``notify`` runs in a worker
thread under the channel's ``timeout_seconds``, which is also Apprise's own deadline.
Apprise answers with a status and the log lines of that one call (its result object
captures them per call); a failure's reason is the last of those lines, with every
part of the URL masked. Apprise's records never reach the platform's log handlers:
it logs whole URLs when it cannot load one.

Egress: Apprise opens its own connections, so OCM cannot hand it an address it
checked as the other providers do. The closest real check: when the URL names the
host Apprise will connect to, that host is resolved with ``shared.egress.resolve``
just before sending and refused if any of its addresses is a metadata address, or a
private one without permission. The gap, stated plainly: requests resolves the name
again when it connects, so a name whose DNS answer changes between the two lookups
(DNS rebinding) can still lead Apprise to an address OCM never checked.

Errors (always a ``ProviderError``; kind, code):

- no URL, or a URL Apprise cannot load ........... permanent APPRISE_URL_INVALID
- scheme not accepted, or disabled here .......... permanent APPRISE_SCHEME_UNSUPPORTED
- destination refused by the egress guard ........ permanent EGRESS_REFUSED
- destination host does not resolve .............. transient APPRISE_DNS_FAILED
- nothing to send (empty push) ................... permanent APPRISE_INVALID_MESSAGE
- the service answered 429 ....................... throttled APPRISE_THROTTLED
- no answer within timeout_seconds ............... transient APPRISE_TIMEOUT
- any other failure (HTTP status, connection) .... transient APPRISE_SEND_FAILED

Apprise reports a failure as a log line, not as a typed error, so only the two
cases above are told apart by the line's text (``error=<status>``); anything else
is retried, since a token that was revoked and a service that is down look alike.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from apprise import (
    Apprise,
    AppriseAsset,
    AppriseResultStatus,
    NotifyBase,
)
from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.providers.apprise_chat_urls import Destination, load, secrets_of
from shared.adapters.providers.apprise_logs import keep_apprise_logs_in_results
from shared.domain.channels import CredentialField, ProviderSpec
from shared.domain.errors import ProviderError
from shared.egress import EgressRefused, resolve
from shared.ports import ProviderModule, SendRequest, SendResult

_GRACE_SECONDS = 2.0
"""How long past its deadline Apprise may take to hand back an abandoned call."""

_HTTP_STATUS = re.compile(r"error=(\d{3})\d*\b")
"""The status Apprise logs on a refused request; ntfy's own codes (42901) start with it."""


class AppriseSettings(BaseModel):
    """How a send is titled and bounded. Where it goes is the credential ``url``.

    There is no ``base_url``: the destination is inside the Apprise URL, which is a
    credential because it carries the service's tokens.
    """

    model_config = ConfigDict(extra="forbid")

    title_prefix: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Put before every title, e.g. '[Acme]'.",
    )
    timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=120,
        description="The most one send may take, retries inside Apprise included.",
    )


class AppriseSender:
    """Sends chat channels' messages to the service their Apprise URL names."""

    def __init__(self, *, allow_private_egress: bool) -> None:
        self._allow_private = allow_private_egress
        keep_apprise_logs_in_results()

    async def send(self, request: SendRequest) -> SendResult:
        settings: Mapping[str, Any] = request.channel.get("settings") or {}
        timeout = float(settings.get("timeout_seconds") or 15.0)
        title, body, body_format = _payload(request.message, settings.get("title_prefix"))
        url = (request.credentials.get("url") or "").strip()
        # the first load imports Apprise's plugins: not on the event loop
        service, destination = await asyncio.to_thread(load, url, _asset(timeout))
        _bound(service, timeout)
        if destination is not None:
            await self._check(destination)
        hidden = secrets_of(url, keep_host=destination is not None)
        try:
            async with asyncio.timeout(timeout + _GRACE_SECONDS):
                failure = await asyncio.to_thread(
                    _notify, service, title, body, body_format, timeout, hidden
                )
        except TimeoutError:
            failure = _timed_out(timeout)
        except Exception as exc:  # Apprise's own bug: never let its text (the URL) out
            failure = ProviderError(
                "transient", "APPRISE_SEND_FAILED", f"Apprise failed: {type(exc).__name__}"
            )
        if failure is not None:
            raise failure
        return SendResult(provider_message_id=None)

    async def close(self) -> None:
        return None

    async def _check(self, destination: Destination) -> None:
        try:
            await resolve(destination.host, destination.port, allow_private=self._allow_private)
        except EgressRefused as exc:
            raise ProviderError("permanent", "EGRESS_REFUSED", str(exc)) from None
        except OSError:
            raise ProviderError(
                "transient", "APPRISE_DNS_FAILED", f"{destination.host} does not resolve"
            ) from None


def _asset(timeout: float) -> AppriseAsset:
    """Apprise's settings for one send: nothing read from or written to disk."""
    return AppriseAsset(
        storage_mode="memory",
        allow_templates=False,
        image_path_mask=False,
        service_timeout=timeout,
        language="en",
        http_redirects=False,
        pgp_autogen=False,
        pem_autogen=False,
        interpret_emojis=False,
    )


def _bound(service: NotifyBase, timeout: float) -> None:
    """Override what the URL may say about redirects and socket timeouts.

    The sockets wait a little longer than Apprise's deadline, so that a silent
    service ends as Apprise's TIMEOUT and the abandoned request still ends soon.
    """
    service.redirects = False
    service.socket_connect_timeout = min(timeout, 10.0) + 1.0
    service.socket_read_timeout = timeout + 1.0


def _payload(message: Mapping[str, Any], prefix: str | None) -> tuple[str, str, str]:
    """``(title, body, body_format)`` for Apprise from a message's content."""
    content: Mapping[str, Any] = message.get("content") or {}
    kind = content.get("type")
    if kind == "text":
        title, body, body_format = message.get("subject") or "", content.get("text"), "text"
    elif kind == "html":
        title, body, body_format = message.get("subject") or "", content.get("html"), "html"
    elif kind == "push":
        title, body, body_format = content.get("title") or "", content.get("body"), "text"
        if not body:  # a title alone is the message
            title, body = "", title
    else:
        raise ProviderError(
            "permanent", "APPRISE_INVALID_MESSAGE", f"{kind} content is not sent through Apprise"
        )
    if not body or not str(body).strip():
        raise ProviderError("permanent", "APPRISE_INVALID_MESSAGE", "the message has no text")
    if prefix:
        title = f"{prefix} {title}".strip()
    return str(title), str(body), body_format


def _notify(
    service: NotifyBase,
    title: str,
    body: str,
    body_format: str,
    timeout: float,
    hidden: tuple[str, ...],
) -> ProviderError | None:
    """One blocking Apprise call (in a worker thread); its failure, if any."""
    notifier = Apprise(asset=service.asset)
    notifier.add(service)
    with notifier.notify(
        body=body, title=title, body_format=body_format, timeout=timeout
    ) as result:
        if result.status == AppriseResultStatus.SUCCESS:
            return None
        if result.status == AppriseResultStatus.TIMEOUT:
            return _timed_out(timeout)
        lines = [_mask(entry.message, hidden) for entry in result.logs()]
    statuses = [m[1] for line in lines if (m := _HTTP_STATUS.search(line))]
    status = statuses[-1] if statuses else None
    reason = f"{service.service_name}: " + ("; ".join(lines[-3:]) or "the send failed")
    if status == "429":
        return ProviderError("throttled", "APPRISE_THROTTLED", reason[:1000], provider_status="429")
    return ProviderError("transient", "APPRISE_SEND_FAILED", reason[:1000], provider_status=status)


def _timed_out(timeout: float) -> ProviderError:
    return ProviderError(
        "transient", "APPRISE_TIMEOUT", f"the service did not answer within {timeout:g} s"
    )


def _mask(text: str, hidden: tuple[str, ...]) -> str:
    for piece in hidden:
        text = text.replace(piece, "***")
    return text


__all__ = ["AppriseSender", "AppriseSettings"]


PROVIDER = ProviderModule(
    name="apprise",
    specs=(
        ProviderSpec(
            provider="apprise",
            type="chat",
            description="Slack, Discord, Telegram, Teams (Workflows), Google Chat, Webex, "
            "Mattermost, Rocket.Chat, Matrix, ntfy, Gotify and JSON/form/XML webhooks, "
            "through one Apprise URL.",
            settings=AppriseSettings,
            credentials=(
                CredentialField(
                    "url",
                    secret=True,
                    required=True,
                    description="The Apprise URL (slack://…, discord://…, ntfy://…, "
                    "json://host/path); it holds the service's tokens.",
                ),
            ),
            receiver_types=("topic",),
            sender_types=("topic",),
            content_types=("text", "html", "push"),
            directions=("outbound",),
            receipts=False,
            attachments=False,
            default=True,
        ),
    ),
    build=lambda env: AppriseSender(allow_private_egress=env.allow_private_egress),
)
