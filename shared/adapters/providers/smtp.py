"""The SMTP provider (email channels), on aiosmtplib.

Connections: one per (channel, host, port, security, username, password hash),
guarded by a lock and reused across sends; one idle for more than ``idle_seconds``
is closed rather than reused. A reused connection found dropped (disconnect, or
421 / no reply) is replaced and the send retried once on the fresh one.

Egress: ``shared.egress.resolve`` checks the host's addresses; we open the TCP
socket to a checked IP ourselves and hand it to aiosmtplib (``sock=``), with
``hostname=`` the configured name, which aiosmtplib then uses only as the TLS
server name (SNI and certificate check) for implicit TLS and STARTTLS alike.

Errors (always a ``ProviderError``; kind, code):

- egress guard refused the destination ........ permanent EGRESS_REFUSED
- host name does not resolve .................. transient SMTP_DNS_FAILED
- connection refused, reset or dropped ........ transient SMTP_CONNECTION_FAILED
- timeout (connect, greeting, reply, TLS) ..... transient SMTP_TIMEOUT
- bad certificate, TLS failure, no STARTTLS ... permanent SMTP_TLS_FAILED
- any 4xx reply (421, 450, 451, 452, 454, …) .. transient SMTP_<code>
- AUTH refused (530, 534, 535, any 5xx) ....... permanent SMTP_AUTH_FAILED
- any other 5xx reply (550, 552, 554, …) ...... permanent SMTP_<code>, server text
- recipient refused ........................... by its reply code, as above; 550,
  551, 553 (no such mailbox) are hard bounces: the receiver is opted out
- no/bad address, SMTPUTF8 unsupported ........ permanent SMTP_INVALID_ADDRESS
- attachment by URL ........................... permanent ATTACHMENT_URL_NOT_SUPPORTED
- bad base64, content type not text/html ...... permanent INVALID_MESSAGE

The password never appears in an error: reasons come from server replies and
exception texts, with the password masked should a server echo it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.providers.email_mime import build_email, invalid
from shared.adapters.providers.smtp_errors import map_error
from shared.domain.channels import CredentialField, ProviderSpec
from shared.domain.errors import ProviderError
from shared.egress import resolve
from shared.ports import ProviderModule, SendRequest, SendResult


class SmtpSettings(BaseModel):
    """Where and how to reach an SMTP server."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls",
        description="starttls: upgrade a plain connection (port 587); ssl: TLS from the "
        "first byte (port 465); none: plain text (development only).",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, le=120)
    local_hostname: str | None = Field(default=None, max_length=253)


_DROPPED = (421, -1)  # "service not available" / no reply: the connection is gone
_PoolKey = tuple[str, str, int, str, str, str]


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    client: aiosmtplib.SMTP | None = None
    last_used: float = 0.0

    def drop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class SmtpSender:
    """Sends email channels' messages through the channel's SMTP server.

    ``tls_context`` verifies servers (default: the system trust store, host name
    checked); tests pass one trusting their own CA.
    """

    def __init__(
        self,
        *,
        allow_private_egress: bool,
        tls_context: ssl.SSLContext | None = None,
        idle_seconds: float = 60.0,
    ) -> None:
        self._allow_private = allow_private_egress
        self._tls_context = tls_context
        self._idle_seconds = idle_seconds
        self._slots: dict[_PoolKey, _Slot] = {}

    async def send(self, request: SendRequest) -> SendResult:
        settings: Mapping[str, Any] = request.channel.get("settings") or {}
        username = request.credentials.get("username") or None
        password = request.credentials.get("password") or ""
        try:
            email, mail_from, rcpt_to = build_email(request.message, request.channel)
        except ProviderError:
            raise
        except Exception as exc:
            raise invalid(f"the message cannot be built as email: {exc}") from None
        key: _PoolKey = (
            str(request.channel.get("id", "")),
            str(settings.get("host", "")),
            int(settings.get("port", 587)),
            str(settings.get("security", "starttls")),
            username or "",
            hashlib.sha256(password.encode()).hexdigest(),
        )
        self._reap_idle()
        slot = self._slots.setdefault(key, _Slot())
        async with slot.lock:
            try:
                await self._send_on(slot, settings, username, password, email, mail_from, rcpt_to)
            except Exception as exc:
                if slot.client is None or not slot.client.is_connected:
                    slot.drop()
                raise map_error(exc, password) from None
            except BaseException:  # cancelled mid-conversation: the state is unknown
                slot.drop()
                raise
            finally:
                slot.last_used = time.monotonic()
        return SendResult(provider_message_id=str(email["Message-ID"]).strip("<>"))

    async def close(self) -> None:
        slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            async with slot.lock:
                if slot.client is not None and slot.client.is_connected:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(slot.client.quit(), timeout=5)
                slot.drop()

    async def _send_on(
        self,
        slot: _Slot,
        settings: Mapping[str, Any],
        username: str | None,
        password: str,
        email: EmailMessage,
        mail_from: str,
        rcpt_to: str,
    ) -> None:
        client = slot.client
        if client is not None and client.is_connected:
            if time.monotonic() - slot.last_used > self._idle_seconds:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.quit(), timeout=2)
                slot.drop()
        else:
            slot.drop()
        reused = slot.client is not None
        for _ in range(2):
            if slot.client is None:
                slot.client = await self._connect(settings, username, password)
            try:
                await slot.client.send_message(email, sender=mail_from, recipients=[rcpt_to])
                return
            except (
                aiosmtplib.SMTPServerDisconnected,
                aiosmtplib.SMTPResponseException,
                aiosmtplib.SMTPRecipientsRefused,
            ) as exc:
                if not (reused and _is_dropped(exc)):
                    raise
                slot.drop()  # the server dropped the reused connection: once more
                reused = False

    async def _connect(
        self, settings: Mapping[str, Any], username: str | None, password: str
    ) -> aiosmtplib.SMTP:
        host = str(settings["host"])
        port = int(settings.get("port", 587))
        security = str(settings.get("security", "starttls"))
        timeout = float(settings.get("timeout_seconds", 30.0))
        ips = await resolve(host, port, allow_private=self._allow_private)
        async with asyncio.timeout(timeout):
            sock = await _open_socket(ips, port)
        client = aiosmtplib.SMTP(
            hostname=host,  # with sock=: only the TLS server name (SNI, verification)
            sock=sock,
            use_tls=security == "ssl",
            start_tls=security == "starttls",
            tls_context=self._tls(),
            local_hostname=settings.get("local_hostname") or None,
            timeout=timeout,
            username=username,
            password=password if username else None,
        )
        try:
            await client.connect()
        except BaseException:
            client.close()
            sock.close()
            raise
        return client

    def _tls(self) -> ssl.SSLContext:
        if self._tls_context is None:  # built once, on first use: it reads the CA store
            self._tls_context = ssl.create_default_context()
        return self._tls_context

    def _reap_idle(self) -> None:
        """Close other channels' idle connections (slots stay: a send may await them)."""
        now = time.monotonic()
        for slot in self._slots.values():
            if slot.client and not slot.lock.locked() and now - slot.last_used > self._idle_seconds:
                slot.drop()


def _is_dropped(exc: Exception) -> bool:
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return any(r.code in _DROPPED for r in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code in _DROPPED


async def _open_socket(ips: list[str], port: int) -> socket.socket:
    """A TCP socket connected to the first of ``ips`` (already checked) that accepts."""
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for ip in ips:
        sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (ip, port))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise ConnectionRefusedError(f"could not connect to port {port}: {last}")


__all__ = ["SmtpSender"]


PROVIDER = ProviderModule(
    name="smtp",
    specs=(
        ProviderSpec(
            provider="smtp",
            type="email",
            description="Any SMTP server (STARTTLS, implicit TLS or plain), with AUTH.",
            settings=SmtpSettings,
            credentials=(
                CredentialField("username", secret=False, required=False, description="AUTH user"),
                CredentialField(
                    "password", secret=True, required=False, description="AUTH password"
                ),
            ),
            destination=("host", "port", "security"),
            receiver_types=("email",),
            sender_types=("email",),
            content_types=("text", "html"),
            directions=("outbound",),
            receipts=False,
            attachments=True,
            attachment_sources=("content",),
            default=True,
        ),
    ),
    build=lambda env: SmtpSender(allow_private_egress=env.allow_private_egress),
)
