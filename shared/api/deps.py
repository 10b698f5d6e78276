"""Dependencies shared by the routers: the platform, the caller, scopes."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader, SecurityScopes

from shared.domain.errors import Forbidden, Unauthorized
from shared.domain.principal import Principal
from shared.services.deps import Deps
from shared.services.identity import audit, authentication, failures, rates, tenants
from shared.services.identity.tokens import InvalidToken

WWW_AUTHENTICATE = {"WWW-Authenticate": 'ApiKey header="X-API-Key", Bearer realm="ocm"'}
BEARER_INVALID = {"WWW-Authenticate": 'Bearer realm="ocm", error="invalid_token"'}


async def get_deps(request: Request) -> Deps:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a thread pool.
    deps: Deps = request.app.state.get_deps()
    return deps


Platform = Annotated[Deps, Depends(get_deps)]
Limit = Annotated[int, Query(ge=1, le=200)]
"""A list's page size (``limit: Limit = 50``)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: the platform and who is calling."""

    deps: Deps
    principal: Principal
    request: Request | None = None
    """The request, for what only some routes need (the client's address)."""

    @property
    def address(self) -> str | None:
        """Where the request came from (see ``client_address``), worked out on use."""
        return client_address(self.request) if self.request is not None else None

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    async def audit(self, action: str, **target: Any) -> None:
        """Record a management action this caller performed (after it succeeded)."""
        await audit.record(self.deps, self.principal, action, target, self.address)


class ApiKeyAuth(APIKeyHeader):
    """Authenticates ``X-API-Key`` and checks the route's scopes in one dependency.

    Being an ``APIKeyHeader``, it puts the scheme and each route's scopes in the
    OpenAPI document; being one dependency with no sub-dependencies, it costs
    FastAPI a single resolution per request.
    """

    async def __call__(  # type: ignore[override]
        self, request: Request, security_scopes: SecurityScopes
    ) -> Caller:
        deps: Deps = request.app.state.get_deps()
        source = client_address(request) if deps.failed_sources else None
        failures.admit(deps, source)
        api_key = request.headers.get("x-api-key")
        try:
            if api_key:
                try:
                    principal = await authentication.authenticate_api_key(deps, api_key)
                except Unauthorized as exc:
                    exc.headers = {**exc.headers, **WWW_AUTHENTICATE}
                    raise
            else:
                principal = await _bearer(deps, request.headers.get("authorization"))
        except Unauthorized:
            failures.failed(deps, client_address(request))
            raise
        acting_for = request.headers.get("ocm-tenant")
        if acting_for:
            principal = await tenants.act_for(deps, principal, acting_for.strip())
        # The credential's own tenant holds its rate (acting for children shares it).
        home = principal.acting_from or principal.tenant_id
        caller_id = principal.app_id or f"user:{principal.user_id}"
        lineage = await tenants.lineage(deps, home)
        await rates.take_request(deps, lineage, caller_id)
        missing = [s for s in security_scopes.scopes if not principal.has(s)]
        if missing:
            raise Forbidden(
                f"This credential lacks the scope {', '.join(missing)}", code="SCOPE_MISSING"
            )
        return Caller(deps, principal, request)


api_key_auth = ApiKeyAuth(
    name="X-API-Key",
    scheme_name="ApiKey",
    auto_error=False,
    description="An application API key: `ocm_<prefix>_<secret>`.",
)


def scoped(*scopes: str) -> object:
    """``Security(...)`` requiring these scopes; declared next to each route."""
    return Security(api_key_auth, scopes=list(scopes))


def client_address(request: Request) -> str | None:
    """The client's address: the connection's peer, or — behind a proxy that appends
    the address it saw (``OCM_TRUST_FORWARDED_FOR``, on in Azure) — the last
    X-Forwarded-For hop. Earlier hops are the client's own say and never used: the
    address throttles sign-ins and is audited."""
    deps: Deps = request.app.state.get_deps()
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and deps.settings.OCM_TRUST_FORWARDED_FOR:
        return forwarded_address(forwarded.rsplit(",", 1)[-1])
    return request.client.host if request.client else None


def forwarded_address(hop: str) -> str | None:
    """The address in one X-Forwarded-For hop, without the port Azure's front end
    appends (``203.0.113.7:61598``, ``[2001:db8::7]:443``), in its canonical form;
    None for anything that is not an address."""
    hop = hop.strip()[:64]
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    try:
        return ipaddress.ip_address(hop).compressed
    except ValueError:
        return None


async def _bearer(deps: Deps, authorization: str | None) -> Principal:
    """``Authorization: Bearer <JWT>`` from POST /api/v1/oauth/token."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "Send an API key in X-API-Key or an access token as Authorization: Bearer",
            code="CREDENTIALS_MISSING",
            headers=WWW_AUTHENTICATE,
        )
    try:
        return await authentication.authenticate_token(deps, token.strip())
    except InvalidToken:
        raise Unauthorized(
            "The access token is not valid", code="INVALID_CREDENTIALS", headers=BEARER_INVALID
        ) from None
