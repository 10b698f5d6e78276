"""The send routes, served without FastAPI's per-request machinery.

Every message enters through ``POST /api/v1/messages`` (or ``/batch``). FastAPI's
generic work per request — matching the path against every route, resolving the
dependency graph, the exit stack — costs about as much as OCM's own work of
accepting a message. These routes need none of it: their endpoints take the request
and one ``Security(api_key_auth, scopes)`` caller, read their body themselves and
return a ready ``Response``. So this layer calls the very same endpoint and the same
authentication, and answers failures through the app's own exception handlers.

It is one ASGI layer inside ``RequestBoundary`` (so the size limit and
answer-after-durability hold as for every route). The routes stay declared on their
routers as usual (the OpenAPI document is theirs); ``direct_routes`` checks, when the
app is built, that each route still has exactly that shape — its endpoint's
parameters, and no dependency but the caller's (none from the decorator or the
router) — and refuses to start otherwise: a parameter or dependency added to a send
route later cannot be silently skipped. (The routers must be included without
dependencies of their own, as ``create_app`` does.)

When FastAPI's own telemetry records the request (an OpenTelemetry SDK is set up),
the request goes the framework's way, so its spans and metrics name the route.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute, APIRouter
from fastapi.security import SecurityScopes
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.api.deps import Caller, api_key_auth

Endpoint = Callable[[Request, Caller], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class DirectRoute:
    endpoint: Endpoint
    scopes: SecurityScopes


def direct_routes(
    routers: Iterable[APIRouter], endpoints: Iterable[Callable[..., Any]]
) -> dict[tuple[str, str], DirectRoute]:
    """``(method, path) → route`` for these endpoints, as their routers declare them;
    ``TypeError`` for one that cannot be served directly (see ``_caller_scopes``)."""
    wanted = set(endpoints)
    table: dict[tuple[str, str], DirectRoute] = {}
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.endpoint in wanted:
                direct = DirectRoute(route.endpoint, _caller_scopes(route))
                for method in route.methods or ():
                    table[(method, route.path)] = direct
                wanted.discard(route.endpoint)
    if wanted:
        raise TypeError(f"not a route of these routers: {sorted(e.__name__ for e in wanted)}")
    return table


def _caller_scopes(route: APIRoute) -> SecurityScopes:
    """The scopes of a route that resolves nothing but its caller: its endpoint takes
    exactly ``(request: Request, caller: Annotated[Caller, scoped(...)])``, and FastAPI
    found no other parameter and no other dependency (the decorator's and the
    router's dependencies land in the same list)."""
    dependant = route.dependant
    subs = dependant.dependencies
    caller = typing.get_type_hints(route.endpoint, include_extras=True).get("caller")
    marks: tuple[Any, ...] = getattr(caller, "__metadata__", ())
    if (
        list(inspect.signature(route.endpoint).parameters) != ["request", "caller"]
        or dependant.request_param_name != "request"
        or any(
            (
                dependant.path_params,
                dependant.query_params,
                dependant.header_params,
                dependant.cookie_params,
                dependant.body_params,
            )
        )
        or len(subs) != 1
        or subs[0].call is not api_key_auth
        or subs[0].dependencies
        or len(marks) != 1
        or not isinstance(marks[0], params.Security)
    ):
        raise TypeError(
            f"{route.name} cannot be served directly: it must take exactly "
            "(request: Request, caller: Annotated[Caller, scoped(...)]) and resolve "
            "nothing else"
        )
    return SecurityScopes(list(marks[0].scopes or ()))


class DirectRoutes:
    """Serve the routes of ``table`` directly; pass everything else on."""

    def __init__(
        self,
        app: ASGIApp,
        table: Mapping[tuple[str, str], DirectRoute],
        handlers: Mapping[Any, Callable[[Request, Any], Response | Awaitable[Response]]],
    ) -> None:
        self.app, self.table, self.handlers = app, table, handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        # Behind a root path (a mount), the router strips it first: leave that to it;
        # and a request FastAPI's telemetry records goes its way (see above).
        if (
            scope["type"] == "http"
            and not scope.get("root_path")
            and scope.get("fastapi.telemetry") is None
        ):
            route = self.table.get((scope["method"], scope["path"]))
        if route is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            caller = await api_key_auth(request, route.scopes)
            response = await route.endpoint(request, caller)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # as from the router: the server-error layer answers 500
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def _handler(
        self, exc: Exception
    ) -> Callable[[Request, Any], Response | Awaitable[Response]] | None:
        """The app's handler for this exception, looked up as Starlette does (by the
        exception's class hierarchy); the catch-all ``Exception`` handler belongs to
        the outer server-error layer, not to this one."""
        for kind in type(exc).__mro__:
            if kind is Exception:
                return None
            handler = self.handlers.get(kind)
            if handler is not None:
                return handler
        return None
