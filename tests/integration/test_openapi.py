"""The OpenAPI document describes every route, its scope, schemas and problems."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from functions.http import asgi_app
from shared import bootstrap
from shared.config import Settings
from tests.integration.public_routes import PUBLIC


@pytest.fixture(autouse=True, scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The app's platform on a temporary data directory, not the working tree's."""
    deps = bootstrap.build(Settings(OCM_DATA_DIR=tmp_path_factory.mktemp("openapi")))
    bootstrap.set_deps(deps)
    yield
    bootstrap.set_deps(None)
    for closer in deps.closers:
        closer()


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    with TestClient(asgi_app) as client:
        response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def test_the_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)


def test_every_route_is_under_api_and_documented(spec: dict[str, Any]) -> None:
    documented = {(m, p) for m, p, _ in operations(spec)}
    routes = {
        (method.lower(), route.path)
        for route in asgi_app.routes
        for method in getattr(route, "methods", ()) or ()
        if method != "HEAD" and route.path.startswith("/api/v1")
    }
    assert routes <= documented
    assert all(p.startswith("/api/") for _, p in documented)


def test_every_private_route_declares_its_scope(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        if (method, path) in PUBLIC:
            continue
        api_key, oauth2 = op["security"]  # alternatives: an API key or a bearer token
        assert set(api_key) == {"ApiKey"} and set(oauth2) == {"OAuth2"}, (method, path)
        assert api_key["ApiKey"] == oauth2["OAuth2"], (method, path)
        [scope] = api_key["ApiKey"]
        assert ":" in scope, (method, path)
        assert {"401", "403"} <= set(op["responses"]), (method, path)


def test_every_error_answer_is_a_problem(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        assert "500" in op["responses"], (method, path)
        for status, response in op["responses"].items():
            if path == "/api/v1/oauth/token" and status in ("400", "401"):
                assert list(response["content"]) == ["application/json"]  # RFC 6749 §5.2
            elif int(status) >= 400:
                assert list(response["content"]) == ["application/problem+json"]
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}


def test_message_bodies_are_described(spec: dict[str, Any]) -> None:
    send = spec["paths"]["/api/v1/messages"]["post"]
    body = send["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/MessageCreate"}
    message = spec["components"]["schemas"]["MessageCreate"]
    assert {"channel", "receiver", "content"} <= set(message["required"])


def test_the_interactive_docs_are_served() -> None:
    with TestClient(asgi_app) as client:
        response = client.get("/api/docs")
    assert response.status_code == 200
    assert "/api/openapi.json" in response.text


def test_every_declared_scope_is_in_the_one_table_and_the_table_is_documented(
    spec: dict[str, Any],
) -> None:
    import re
    from pathlib import Path

    from shared.domain.scopes import SCOPES

    declared = {
        scope
        for _, _, op in operations(spec)
        for requirement in op.get("security", [])
        for scopes in requirement.values()
        for scope in scopes
    }
    assert declared <= set(SCOPES), declared - set(SCOPES)
    assert set(SCOPES) <= declared, set(SCOPES) - declared  # no scope that guards nothing
    security_md = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+:[a-z_]+)` \|", security_md, re.MULTILINE))
    assert documented == set(SCOPES)
