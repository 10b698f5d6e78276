"""A standard OAuth2 client library (Authlib, not our code) gets a token with client
credentials from `ocm serve`, sends a message with it, and the token verifies
against the served JWKS with PyJWT's own JWKS client."""

from __future__ import annotations

import jwt
from authlib.integrations.httpx_client import OAuth2Client

from shared.services.identity import tokens
from tests.e2e.conftest import Client, Server


def test_an_oauth2_library_gets_a_token_and_sends_with_it(server: Server, client: Client) -> None:
    app = client.post(
        "/api/v1/apps", json={"name": "partner", "scopes": ["send:message", "read:message"]}
    ).json()
    issued = client.post(f"/api/v1/apps/{app['app']['id']}/client-secret").json()

    for method in ("client_secret_basic", "client_secret_post"):
        with OAuth2Client(
            client_id=issued["client_id"],
            client_secret=issued["client_secret"],
            token_endpoint_auth_method=method,
            scope="send:message read:message",
        ) as session:
            token = session.fetch_token(
                f"{server.url}/api/v1/oauth/token", grant_type="client_credentials"
            )
            assert token["token_type"].lower() == "bearer"
            sent = session.post(
                f"{server.url}/api/v1/messages",
                json={
                    "channel": "sandbox",
                    "receiver": {"type": "phone", "address": "+4791234567"},
                    "content": {"type": "text", "text": f"via {method}"},
                },
            )
            assert sent.status_code == 202, sent.text
            assert client.wait_for(sent.json()["id"])["status"] in ("sent", "delivered")

        keys = jwt.PyJWKClient(f"{server.url}/api/.well-known/jwks.json")
        signing_key = keys.get_signing_key_from_jwt(token["access_token"])
        claims = jwt.decode(
            token["access_token"],
            signing_key.key,
            algorithms=["ES256"],
            audience=tokens.AUDIENCE,
            issuer=tokens.ISSUER,
        )
        assert claims["tenant"] == client.tenant_id
        assert claims["scope"] == "read:message send:message"
