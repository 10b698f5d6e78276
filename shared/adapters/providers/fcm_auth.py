"""Google service-account auth for FCM: a self-signed JWT exchanged for an access token.

The OAuth 2.0 JWT bearer flow (RFC 7523) as Google documents it for server
applications: an RS256 JWT with ``iss`` the account's ``client_email``, ``scope``
the FCM scope, ``aud`` the token endpoint, ``iat`` now and ``exp`` an hour later,
posted as ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…``;
the answer's ``access_token`` serves until shortly before its ``expires_in``.

Tokens are cached per (token endpoint, account, key): a rotated key gets a new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import jwt

from shared.adapters.providers.http import call, json_object, status_error
from shared.domain.errors import ProviderError
from shared.ports import Clock

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = timedelta(hours=1)
REFRESH_MARGIN = timedelta(minutes=5)
"""A cached token is replaced this long before it expires."""


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The fields of a service-account key file (JSON) that FCM needs."""

    project_id: str
    client_email: str
    private_key: str
    private_key_id: str | None

    @classmethod
    def parse(cls, raw: str) -> ServiceAccount:
        """The account in a key file, or a permanent FCM_BAD_CREDENTIALS (never quoting it)."""
        try:
            data = json.loads(raw)
        except ValueError:
            raise _bad_credentials("service_account_json is not JSON") from None
        if not isinstance(data, dict):
            raise _bad_credentials("service_account_json is not a JSON object")
        missing = [
            k
            for k in ("project_id", "client_email", "private_key")
            if not isinstance(data.get(k), str) or not data[k]
        ]
        if missing:
            raise _bad_credentials(f"service_account_json lacks {', '.join(missing)}")
        key_id = data.get("private_key_id")
        return cls(
            project_id=data["project_id"],
            client_email=data["client_email"],
            private_key=data["private_key"],
            private_key_id=key_id if isinstance(key_id, str) and key_id else None,
        )

    def assertion(self, token_uri: str, now: datetime) -> str:
        """The signed JWT that asks ``token_uri`` for an FCM access token."""
        issued = int(now.timestamp())
        claims = {
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": token_uri,
            "iat": issued,
            "exp": issued + int(ASSERTION_LIFETIME.total_seconds()),
        }
        headers = {"kid": self.private_key_id} if self.private_key_id else None
        try:
            return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError):
            raise _bad_credentials("the private_key is not a usable RSA key") from None


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    renew_at: datetime


class AccessTokens:
    """Access tokens per service account, fetched once and reused until near expiry."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    async def get(self, client: httpx.AsyncClient, account: ServiceAccount, token_uri: str) -> str:
        key = _cache_key(account, token_uri)
        async with self._locks.setdefault(key, asyncio.Lock()):
            token = self._tokens.get(key)
            if token is None or self._clock.now() >= token.renew_at:
                token = await self._fetch(client, account, token_uri)
                self._tokens[key] = token
            return token.value

    def forget(self, account: ServiceAccount, token_uri: str) -> None:
        """Drop an account's token (FCM refused it): the next ``get`` fetches anew."""
        self._tokens.pop(_cache_key(account, token_uri), None)

    async def _fetch(
        self, client: httpx.AsyncClient, account: ServiceAccount, token_uri: str
    ) -> _Token:
        now = self._clock.now()
        form = {"grant_type": JWT_BEARER, "assertion": account.assertion(token_uri, now)}
        response = await call(client, "FCM_TOKEN", "POST", token_uri, data=form)
        body = json_object(response)
        if response.status_code in (400, 401, 403):
            error = f"{body.get('error', '')}: {body.get('error_description', '')}".strip(": ")
            raise ProviderError(
                "permanent",
                "FCM_AUTH_FAILED",
                f"The token endpoint refused the service account ({error or 'no reason'})"[:500],
                provider_status=str(response.status_code),
            )
        if not response.is_success:
            raise status_error(response, "FCM_TOKEN", "The token endpoint failed")
        value, lifetime = body.get("access_token"), body.get("expires_in")
        if not isinstance(value, str) or not value or not isinstance(lifetime, int | float):
            raise ProviderError(
                "transient", "FCM_TOKEN_BAD_ANSWER", "The token endpoint answered no token"
            )
        renew = max(timedelta(seconds=lifetime) - REFRESH_MARGIN, timedelta(0))
        return _Token(value, now + renew)


def _cache_key(account: ServiceAccount, token_uri: str) -> tuple[str, str, str]:
    digest = hashlib.sha256(account.private_key.encode()).hexdigest()
    return token_uri, account.client_email, digest


def _bad_credentials(reason: str) -> ProviderError:
    return ProviderError("permanent", "FCM_BAD_CREDENTIALS", reason)


__all__ = ["SCOPE", "AccessTokens", "ServiceAccount", "json_object"]
