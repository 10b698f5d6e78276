"""The one FastAPI app: every route under /api, problems for every failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.telemetry import TelemetryConfig

from shared.api import errors
from shared.api.direct import DirectRoutes, direct_routes
from shared.api.limits import RequestBoundary
from shared.api.routers import (
    analytics,
    apps,
    audit,
    callbacks,
    channels,
    event_types,
    messages,
    meta,
    oauth,
    opt_outs,
    templates,
    tenants,
    terminals,
    unsubscribe,
    users,
    webhook_deliveries,
    webhooks,
)
from shared.api.schemas import Problem
from shared.domain.messages import BatchCreate, MessageCreate
from shared.services.deps import Deps

DESCRIPTION = """One HTTP API for e-mail, SMS, WhatsApp, Telegram, push and chat.

Authenticate with `X-API-Key`, or `Authorization: Bearer` with a token from
`POST /api/v1/oauth/token` (client credentials) or `POST /api/v1/auth/login` (users).
Errors are RFC 9457 `application/problem+json` with a
stable `code`. Create routes honour `Idempotency-Key` (24 h, per tenant and route).
"""


def create_app(
    get_deps: Callable[[], Deps],
    *,
    direct: bool = True,
    telemetry: TelemetryConfig | None = None,
) -> FastAPI:
    """Build the app; ``get_deps`` is called per request (it builds lazily, once).

    ``direct``: serve the send routes without FastAPI's per-request machinery
    (``shared.api.direct``); False serves them like every other route, which the
    tests compare answers with. ``telemetry``: FastAPI's own (its default: on once an
    OpenTelemetry SDK is set up, as ``shared.telemetry`` does in Azure).
    """
    app = FastAPI(
        title="OCM",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        telemetry=telemetry,
    )
    app.state.get_deps = get_deps
    errors.install(app)
    hot = (messages.router, channels.router)  # the routes every send takes, matched first
    routers = (
        *hot,
        apps.router,
        users.router,
        tenants.router,
        audit.router,
        oauth.router,
        callbacks.router,
        terminals.router,
        templates.router,
        opt_outs.router,
        unsubscribe.router,
        webhooks.router,
        webhook_deliveries.router,
        event_types.router,
        analytics.router,
    )
    for router in (*routers, meta.router):
        app.include_router(router)
    if direct:  # the routes every message enters by, without the generic machinery
        table = direct_routes([messages.router], [messages.send_message, messages.send_batch])
        app.add_middleware(DirectRoutes, table=table, handlers=app.exception_handlers)
    app.add_middleware(RequestBoundary, flush=lambda: get_deps().flush())
    event_types.document_webhooks(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        webhooks=app.webhooks.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (MessageCreate, BatchCreate, Problem):
        definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
        defs = definition.pop("$defs", {})
        for name, sub in defs.items():
            components.setdefault(name, sub)
        # A recursive model (a message's fallback is a message) is itself in $defs.
        components[model.__name__] = defs.get(model.__name__, definition)
    _answers_are_problems(schema)
    _oauth2_too(schema)
    app.openapi_schema = schema
    return schema


TOKEN_PATH = "/api/v1/oauth/token"  # noqa: S105 (a path, not a secret)


def _oauth2_too(schema: dict[str, Any]) -> None:
    """Every route that takes an API key takes a bearer token from the token endpoint
    too, with the same scope: document both, as alternatives."""
    from shared.domain.scopes import SCOPES

    schema["components"].setdefault("securitySchemes", {})["OAuth2"] = {
        "type": "oauth2",
        "description": "Client credentials (RFC 6749 §4.4): a JWT signed with ES256, whose "
        "keys are at /api/.well-known/jwks.json.",
        "flows": {"clientCredentials": {"tokenUrl": TOKEN_PATH, "scopes": SCOPES}},
    }
    for operations in schema["paths"].values():
        for operation in operations.values():
            for requirement in list(operation.get("security", [])):
                if "ApiKey" in requirement:
                    operation["security"].append({"OAuth2": requirement["ApiKey"]})
    token = schema["paths"][TOKEN_PATH]["post"]
    oauth_error = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    }
    for status in ("400", "401"):
        token["responses"][status]["content"] = {"application/json": {"schema": oauth_error}}


def _answers_are_problems(schema: dict[str, Any]) -> None:
    """FastAPI documents its own 422 shape; ours are problem+json, and so is a 500."""
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            responses = operation["responses"]
            responses["500"] = {"description": "Internal error (a bug on our side; no traceback)"}
            for status, response in responses.items():
                if path == TOKEN_PATH and status in ("400", "401"):
                    continue  # RFC 6749 §5.2 errors (set by _oauth2_too)
                if int(status) >= 400:
                    response["content"] = {"application/problem+json": {"schema": problem}}
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(name, None)
