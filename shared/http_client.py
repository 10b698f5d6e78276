"""HTTP to destinations tenants control (provider APIs, webhook endpoints): one
egress-guarded httpx client, and Retry-After read safely.

The guard sits where connections are opened (an httpcore network backend), so
the address checked by ``shared.egress.resolve`` is the address connected to,
on every connection alike; TLS still verifies the host name, since httpcore
starts TLS with the URL's host as server name. Redirects are never followed.
"""

from __future__ import annotations

import socket
import ssl
import typing
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpcore
import httpx

from shared.domain.retry import MAX_RETRY_AFTER
from shared.egress import EgressRefused, resolve

USER_AGENT = "OCM/0.1 (+https://github.com/ocm)"


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks every host before connecting, then connects to a checked IP."""

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve(host, port, allow_private=self._allow_private)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from None
        except UnicodeError:  # a label empty or too long: no such host can exist
            raise EgressRefused("not a valid host name") from None
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("unix sockets are not a provider destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, *, allow_private: bool, verify: ssl.SSLContext | bool) -> None:
        # One SSL context (loading the CA bundle takes milliseconds), for httpx's pool
        # and ours alike.
        ssl_context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context()
        super().__init__(verify=ssl_context, trust_env=False)
        # httpx builds its pool without a way to pass a network backend; ours is
        # the same pool with the guard (each provider's EGRESS_REFUSED test holds it).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=30.0,
            network_backend=_GuardedBackend(allow_private=allow_private),
        )


def guarded_client(
    *, allow_private: bool, timeout: float = 30.0, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncClient:
    """An httpx client whose every connection passes the egress guard.

    Redirects are not followed: a provider API answering with one is an error.
    """
    return httpx.AsyncClient(
        transport=_GuardedTransport(allow_private=allow_private, verify=verify),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,
    )


class LazyClient:
    """An egress-guarded client built on first use (constructing its owner connects
    nothing) and closed with its owner: a provider's sender, the webhook deliverer."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout: float,
        on_build: typing.Callable[[], None] | None = None,
    ) -> None:
        self._allow_private, self._timeout, self._on_build = allow_private, timeout, on_build
        self._client: httpx.AsyncClient | None = None

    def get(self) -> httpx.AsyncClient:
        if self._client is None:
            if self._on_build is not None:
                self._on_build()
            self._client = guarded_client(allow_private=self._allow_private, timeout=self._timeout)
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), if any, at most
    MAX_RETRY_AFTER."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


__all__ = ["MAX_RETRY_AFTER", "USER_AGENT", "LazyClient", "guarded_client", "retry_after"]
