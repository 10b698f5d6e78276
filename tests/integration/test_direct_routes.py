"""The send routes served directly (shared.api.direct) answer exactly as FastAPI
serving them would: the same request to both apps, over one platform, gets the same
status, headers and body (ids and times aside)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import httpx
import orjson
import pytest
from fastapi import APIRouter, Depends, Request
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.responses import Response

from shared.api.app import create_app
from shared.api.deps import Caller, Platform, get_deps, scoped
from shared.api.direct import DirectRoutes, direct_routes
from shared.api.routers import messages as messages_router
from shared.services.deps import Deps
from shared.services.onboarding import signup

SMS = {
    "channel": "sandbox",
    "receiver": {"type": "phone", "address": "+4791234567"},
    "content": {"type": "text", "text": "hi"},
    "send_at": "2099-01-01T00:00:00Z",
}
VOLATILE = {"id", "batch_id", "created_at", "updated_at", "at"}


def steady(value: Any) -> Any:
    """The answer without what differs between two sends (ids, times)."""
    if isinstance(value, dict):
        return {k: steady(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value


Pair = tuple[httpx.AsyncClient, httpx.AsyncClient]


@pytest.fixture
async def pair(deps: Deps) -> AsyncIterator[Pair]:
    """The app as it runs (direct) and the same app with FastAPI serving every route."""
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(
                app=create_app(lambda: deps, direct=direct), raise_app_exceptions=False
            ),
            base_url="http://ocm",
        )
        for direct in (True, False)
    ]
    yield clients[0], clients[1]
    for client in clients:
        await client.aclose()


@pytest.fixture
async def keys(deps: Deps, pair: Pair) -> dict[str, str]:
    created = await signup.create_tenant(deps, "acme")
    key = {"X-API-Key": created.api_key}
    made = await pair[1].post(
        "/api/v1/channels", json={"name": "sandbox", "type": "sandbox"}, headers=key
    )
    assert made.status_code == 201
    reader = await pair[1].post(
        "/api/v1/apps", json={"name": "reader", "scopes": ["read:message"]}, headers=key
    )
    return {"all": created.api_key, "reader": reader.json()["api_key"]}


def bad_key(key: str) -> str:
    return key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")


CASES: list[tuple[str, str, str, Callable[[dict[str, str]], dict[str, str]], bytes]] = [
    ("sent", "POST", "/api/v1/messages", lambda k: {"X-API-Key": k["all"]}, orjson.dumps(SMS)),
    ("no credentials", "POST", "/api/v1/messages", lambda k: {}, orjson.dumps(SMS)),
    (
        "a wrong key",
        "POST",
        "/api/v1/messages",
        lambda k: {"X-API-Key": bad_key(k["all"])},
        orjson.dumps(SMS),
    ),
    (
        "a malformed bearer token",
        "POST",
        "/api/v1/messages",
        lambda k: {"Authorization": "Bearer not-a-jwt"},
        orjson.dumps(SMS),
    ),
    (
        "a key without send:message",
        "POST",
        "/api/v1/messages",
        lambda k: {"X-API-Key": k["reader"]},
        orjson.dumps(SMS),
    ),
    (
        "acting for an unknown tenant",
        "POST",
        "/api/v1/messages",
        lambda k: {"X-API-Key": k["all"], "OCM-Tenant": "tn_nope"},
        orjson.dumps(SMS),
    ),
    ("malformed JSON", "POST", "/api/v1/messages", lambda k: {"X-API-Key": k["all"]}, b"{"),
    (
        "an unknown channel",
        "POST",
        "/api/v1/messages",
        lambda k: {"X-API-Key": k["all"]},
        orjson.dumps({**SMS, "channel": "nope"}),
    ),
    (
        "an invalid number",
        "POST",
        "/api/v1/messages",
        lambda k: {"X-API-Key": k["all"]},
        orjson.dumps({**SMS, "receiver": {"type": "phone", "address": "12"}}),
    ),
    (
        "a batch",
        "POST",
        "/api/v1/messages/batch",
        lambda k: {"X-API-Key": k["all"]},
        orjson.dumps({"messages": [SMS, {**SMS, "channel": "nope"}]}),
    ),
    (
        "a batch that is a list",
        "POST",
        "/api/v1/messages/batch",
        lambda k: {"X-API-Key": k["all"]},
        orjson.dumps([SMS]),
    ),
    (
        "a batch too large",
        "POST",
        "/api/v1/messages/batch",
        lambda k: {"X-API-Key": k["all"]},
        orjson.dumps({"messages": [SMS] * 1001}),
    ),
    # Not served directly: the same answers come from FastAPI through the layer.
    ("a list", "GET", "/api/v1/messages?limit=1", lambda k: {"X-API-Key": k["all"]}, b""),
    ("another method", "PUT", "/api/v1/messages", lambda k: {"X-API-Key": k["all"]}, b"{}"),
    ("a trailing slash", "POST", "/api/v1/messages/", lambda k: {"X-API-Key": k["all"]}, b"{}"),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_the_direct_and_the_framework_route_answer_alike(
    pair: Pair,
    keys: dict[str, str],
    method: str,
    path: str,
    headers: Callable[[dict[str, str]], dict[str, str]],
    body: bytes,
) -> None:
    answers = [
        await client.request(
            method,
            path,
            content=body or None,
            headers={"content-type": "application/json", **headers(keys)},
        )
        for client in pair
    ]
    direct, framework = answers
    assert direct.status_code == framework.status_code, (direct.text, framework.text)
    for name in ("content-type", "www-authenticate", "location", "allow", "retry-after"):
        assert direct.headers.get(name) == framework.headers.get(name), name
    if direct.content:
        assert steady(direct.json()) == steady(framework.json())


async def test_an_idempotent_replay_is_answered_alike(pair: Pair, keys: dict[str, str]) -> None:
    for n, client in enumerate(pair):
        headers = {"X-API-Key": keys["all"], "Idempotency-Key": f"replay-{n}"}
        first = await client.post("/api/v1/messages", json=SMS, headers=headers)
        again = await client.post("/api/v1/messages", json=SMS, headers=headers)
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        other = await client.post("/api/v1/messages", json={**SMS, "tags": ["x"]}, headers=headers)
        assert (other.status_code, other.json()["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")


async def test_an_unexpected_failure_is_a_problem_500_on_both(deps: Deps) -> None:
    def broken() -> Deps:
        raise RuntimeError("the platform could not be built")

    for direct in (True, False):
        transport = httpx.ASGITransport(
            app=create_app(broken, direct=direct), raise_app_exceptions=False
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://ocm") as client:
            answer = await client.post(
                "/api/v1/messages", json=SMS, headers={"X-API-Key": "ocm_x_y"}
            )
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "INTERNAL_ERROR"
        assert "could not be built" not in answer.text


async def test_the_send_routes_are_served_directly(deps: Deps, keys: dict[str, str]) -> None:
    """The layer really serves them (the framework's router never sees the request),
    and passes every other request on."""
    seen: list[str] = []

    async def router(scope: Any, receive: Any, send: Any) -> None:
        seen.append(f"{scope['method']} {scope['path']}")
        await Response(status_code=204)(scope, receive, send)

    app = create_app(lambda: deps)
    table = direct_routes([messages_router.router], [messages_router.send_message])
    layer = DirectRoutes(router, table, app.exception_handlers)

    async def whole(scope: Any, receive: Any, send: Any) -> None:
        scope["app"] = app  # as Starlette sets it for its middleware
        await layer(scope, receive, send)

    transport = httpx.ASGITransport(app=whole)
    async with httpx.AsyncClient(transport=transport, base_url="http://ocm") as client:
        sent = await client.post("/api/v1/messages", json=SMS, headers={"X-API-Key": keys["all"]})
        listed = await client.get("/api/v1/messages")
    await deps.flush()
    assert sent.status_code == 202 and sent.json()["status"] == "scheduled"
    assert listed.status_code == 204
    assert seen == ["GET /api/v1/messages"]


def test_a_route_that_takes_more_cannot_be_served_directly() -> None:
    router = APIRouter(prefix="/x")

    @router.post("/extra")
    async def extra(
        request: Request, caller: Annotated[Caller, scoped("send:message")], dry_run: bool = False
    ) -> Response:
        raise AssertionError

    @router.post("/other-dependency")
    async def other(request: Request, caller: Platform) -> Response:
        raise AssertionError

    @router.post("/fine")
    async def fine(request: Request, caller: Annotated[Caller, scoped("a", "b")]) -> Response:
        raise AssertionError

    @router.post("/decorated", dependencies=[Depends(get_deps)])
    async def decorated(request: Request, caller: Annotated[Caller, scoped("a")]) -> Response:
        raise AssertionError

    guarded = APIRouter(prefix="/y", dependencies=[Depends(get_deps)])

    @guarded.post("/fine-but-for-its-router")
    async def routed(request: Request, caller: Annotated[Caller, scoped("a")]) -> Response:
        raise AssertionError

    for routers, endpoint in (
        ([router], extra),
        ([router], other),
        ([router], decorated),
        ([guarded], routed),
    ):
        with pytest.raises(TypeError, match="cannot be served directly"):
            direct_routes(routers, [endpoint])
    table = direct_routes([router], [fine])
    assert list(table) == [("POST", "/x/fine")]
    assert table["POST", "/x/fine"].scopes.scopes == ["a", "b"]
    with pytest.raises(TypeError, match="not a route"):
        direct_routes([APIRouter()], [fine])


async def test_traced_requests_name_their_route_as_the_framework_does(
    deps: Deps, keys: dict[str, str]
) -> None:
    """With FastAPI's telemetry recording (an OpenTelemetry SDK set up), the send
    routes' spans carry the route as every other route's do."""
    spans: dict[bool, list[tuple[str, Any]]] = {}
    for direct in (True, False):
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        app = create_app(lambda: deps, direct=direct, telemetry={"tracer_provider": provider})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ocm") as client:
            sent = await client.post(
                "/api/v1/messages", json=SMS, headers={"X-API-Key": keys["all"]}
            )
        assert sent.status_code == 202
        spans[direct] = [
            (span.name, (span.attributes or {}).get("http.route"))
            for span in exporter.get_finished_spans()
        ]
    assert ("POST /api/v1/messages", "/api/v1/messages") in spans[True]
    assert spans[True] == spans[False]
