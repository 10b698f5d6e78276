"""POST /api/v1/oauth/token (RFC 6749 §4.4) and the JWKS at /api/.well-known/jwks.json.

Errors here follow RFC 6749 §5.2 (``{"error": "invalid_client"}``), not problem+json,
so standard OAuth2 client libraries understand them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.api.deps import client_address
from shared.api.responses import JsonResponse
from shared.services.identity import client_credentials, failures, tokens
from shared.services.identity.client_credentials import OAuthError

router = APIRouter(tags=["oauth"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_FORM = 8192


def _error(exc: OAuthError, basic: bool) -> JSONResponse:
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="ocm"' if basic else 'Bearer realm="ocm"'
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _basic(header: str | None) -> tuple[str, str] | None:
    """client_secret_basic: the form-urlencoded id and secret, base64 in Basic."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "Malformed Basic credentials", 401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "Malformed Basic credentials", 401)
    return unquote_plus(client_id), unquote_plus(secret)


@router.post(
    "/api/v1/oauth/token",
    summary="Get an access token with client credentials (RFC 6749 §4.4)",
    description="`application/x-www-form-urlencoded`: `grant_type=client_credentials`, "
    "optional `scope` (space-separated, at most the application's). The client "
    "authenticates with HTTP Basic (`client_secret_basic`) or `client_id` and "
    "`client_secret` in the form (`client_secret_post`). The answer is a JWT (ES256) "
    "valid for an hour; send it as `Authorization: Bearer`. Errors follow RFC 6749 §5.2.",
    responses={
        200: {"description": "`{access_token, token_type: Bearer, expires_in, scope}`"},
        400: {"description": "`invalid_request`, `unsupported_grant_type`, `invalid_scope`"},
        401: {"description": "`invalid_client`"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "scope": {"type": "string"},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def token(request: Request) -> JSONResponse:
    basic = request.headers.get("authorization", "").lower().startswith("basic ")
    deps = request.app.state.get_deps()
    failures.admit(deps, client_address(request))
    try:
        body = await request.body()
        if len(body) > MAX_FORM:
            raise OAuthError("invalid_request", "The form is too large")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise OAuthError(
                "invalid_request", "Send the form as application/x-www-form-urlencoded"
            )
        try:
            form = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise OAuthError("invalid_request", "The form is not UTF-8") from None
        if any(len(values) > 1 for values in form.values()):
            raise OAuthError("invalid_request", "A parameter is repeated")
        fields: dict[str, Any] = {k: v[0] for k, v in form.items()}
        if fields.get("grant_type") != "client_credentials":
            raise OAuthError(
                "unsupported_grant_type" if fields.get("grant_type") else "invalid_request",
                "Only grant_type=client_credentials is supported",
            )
        credentials = _basic(request.headers.get("authorization"))
        if credentials is not None and ("client_secret" in fields):
            raise OAuthError("invalid_request", "Authenticate the client one way only")
        if credentials is None:
            if not fields.get("client_id") or not fields.get("client_secret"):
                raise OAuthError("invalid_client", "Client authentication is missing", 401)
            credentials = (fields["client_id"], fields["client_secret"])
        answer = await client_credentials.issue_token(
            deps, credentials[0], credentials[1], fields.get("scope")
        )
    except OAuthError as exc:
        if exc.error == "invalid_client":
            failures.failed(deps, client_address(request))
        return _error(exc, basic)
    return JSONResponse(answer, headers=NO_STORE)


@router.get(
    "/api/.well-known/jwks.json",
    summary="The public keys access tokens are signed with (JWKS)",
    responses={200: {"description": '`{"keys": [...]}` (EC P-256, `alg` ES256)'}},
)
async def jwks(request: Request) -> JsonResponse:
    keys = await tokens.published_keys(request.app.state.get_deps())
    return JsonResponse({"keys": keys}, headers={"Cache-Control": "public, max-age=300"})
