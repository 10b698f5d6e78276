"""A Firebase Cloud Messaging peer: Google's OAuth 2.0 token endpoint (the JWT
bearer grant for service accounts) and FCM HTTP v1 ``messages:send``.

The token endpoint checks the assertion's RS256 signature with the public key of
the service account it names (``service_account()`` makes one), its ``aud``, scope
and lifetime, and answers ``invalid_grant`` like Google otherwise. Sends need a
bearer token it issued (401 UNAUTHENTICATED otherwise) for an account of that
project (403 PERMISSION_DENIED otherwise), and answer the google.rpc.Status error
bodies FCM documents, with an ``FcmError`` detail: for a receiver listed in
``errors`` (token or topic → errorCode), or for the next sends in ``fail_next``.
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.peers.base import Peer

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"

ERRORS = {  # errorCode → HTTP status, canonical status, message (FCM's ErrorCode reference)
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for sending messages."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
}


@dataclass
class FcmPeer(Peer):
    accounts: dict[str, tuple[str, Any]] = field(default_factory=dict)
    """client_email → (project_id, RSA public key)."""
    tokens: dict[str, str] = field(default_factory=dict)
    """Access tokens issued → client_email."""
    assertions: list[dict[str, Any]] = field(default_factory=list)
    """The verified claims of every assertion exchanged, in order."""
    sent: list[dict[str, Any]] = field(default_factory=list)
    """The ``message`` of every accepted send."""
    errors: dict[str, str] = field(default_factory=dict)
    fail_next: list[str] = field(default_factory=list)
    token_errors: list[str] = field(default_factory=list)
    """OAuth error codes the next token requests answer (400)."""
    retry_after: str = "7"
    expires_in: int = 3599
    """The lifetime of the access tokens it issues, in seconds."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def service_account(self, project_id: str = "demo-project", name: str = "ocm") -> str:
        """A new service account's key file (JSON), its public key known to the peer."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        email = f"{name}-{secrets.token_hex(3)}@{project_id}.iam.gserviceaccount.com"
        self.accounts[email] = (project_id, key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return json.dumps(
            {
                "type": "service_account",
                "project_id": project_id,
                "private_key_id": secrets.token_hex(20),
                "private_key": pem.decode(),
                "client_email": email,
                "client_id": str(secrets.randbelow(10**20)),
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )

    def revoke_tokens(self) -> None:
        """Forget every access token issued (as if revoked or expired early)."""
        self.tokens.clear()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type")
        if self.token_errors:
            return _oauth_error(self.token_errors.pop(0), "Refused by the test")
        try:
            claims = self._verified(str(form.get("assertion", "")))
        except (KeyError, jwt.PyJWTError):
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        if claims["exp"] - claims["iat"] > 3600:
            return _oauth_error("invalid_grant", "Invalid JWT: Token must be a short-lived token")
        if SCOPE not in str(claims["scope"]).split():
            return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience")
        self.assertions.append(claims)
        token = "ya29." + secrets.token_urlsafe(32)
        self.tokens[token] = claims["iss"]
        return web.json_response(
            {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )

    def _verified(self, assertion: str) -> dict[str, Any]:
        issuer = jwt.decode(assertion, options={"verify_signature": False})["iss"]
        _, public_key = self.accounts[issuer]
        claims: dict[str, Any] = jwt.decode(
            assertion,
            public_key,
            algorithms=["RS256"],
            audience=self.token_uri,
            issuer=issuer,
            options={"require": ["iss", "aud", "iat", "exp", "scope"]},
        )
        return claims

    async def _send(self, request: web.Request) -> web.Response:
        project = request.match_info["project"]
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        email = self.tokens.get(token) if scheme == "Bearer" else None
        if email is None:
            return _status(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. "
                "Expected OAuth 2 access token, login cookie or other valid "
                "authentication credential.",
            )
        if self.accounts[email][0] != project:
            return _status(
                403,
                "PERMISSION_DENIED",
                f"Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{project}'",
            )
        try:
            message = (await request.json())["message"]
            targets = [k for k in ("token", "topic", "condition") if k in message]
        except (ValueError, KeyError, TypeError):
            return _status(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if len(targets) != 1:
            return _invalid("message", "Recipient of the message is not set.")
        for i, value in enumerate((message.get("data") or {}).values()):
            if not isinstance(value, str):
                return _invalid(
                    f"message.data[{i}].value",
                    f"Invalid value at 'message.data[{i}].value' (TYPE_STRING), {value}",
                )
        code = self.fail_next.pop(0) if self.fail_next else self.errors.get(message[targets[0]])
        if code:
            return self._fcm_error(code)
        self.sent.append(message)
        return web.json_response({"name": f"projects/{project}/messages/{next(self._ids)}"})

    def _fcm_error(self, code: str) -> web.Response:
        status, canonical, text = ERRORS[code]
        headers = {"Retry-After": self.retry_after} if status in (429, 503) else None
        detail = {"@type": FCM_ERROR, "errorCode": code}
        return _status(status, canonical, text, [detail], headers)


def _status(
    code: int,
    status: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=code, headers=headers)


def _invalid(field_name: str, description: str) -> web.Response:
    violation = {"field": field_name, "description": description}
    details = [
        {"@type": BAD_REQUEST, "fieldViolations": [violation]},
        {"@type": FCM_ERROR, "errorCode": "INVALID_ARGUMENT"},
    ]
    return _status(400, "INVALID_ARGUMENT", description, details)


def _oauth_error(error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=400)
