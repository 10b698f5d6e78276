"""Dependencies shared by the routers: the platform, the caller, scopes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, SecurityScopes

from shared.domain.errors import Forbidden, Unauthorized
from shared.services import tenants
from shared.services.deps import Deps, Principal

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="An application API key: `ocm_<prefix>_<secret>`.",
)
WWW_AUTHENTICATE = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}


async def get_deps(request: Request) -> Deps:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a thread pool.
    deps: Deps = request.app.state.get_deps()
    return deps


Platform = Annotated[Deps, Depends(get_deps)]


async def authenticate(
    security: SecurityScopes,
    deps: Platform,
    api_key: Annotated[str | None, Security(api_key_header)],
) -> Principal:
    """The caller's principal; 401 without a valid credential, 403 without the scope."""
    if not api_key:
        raise Unauthorized(
            "Send an API key in the X-API-Key header",
            code="CREDENTIALS_MISSING",
            headers=WWW_AUTHENTICATE,
        )
    try:
        principal = await tenants.authenticate_api_key(deps, api_key)
    except Unauthorized as exc:
        exc.headers = {**exc.headers, **WWW_AUTHENTICATE}
        raise
    missing = [s for s in security.scopes if not principal.has(s)]
    if missing:
        raise Forbidden(
            f"This credential lacks the scope {', '.join(missing)}", code="SCOPE_MISSING"
        )
    return principal


def scoped(*scopes: str) -> object:
    """``Security(...)`` requiring these scopes; declared next to each route."""
    return Security(authenticate, scopes=list(scopes))
