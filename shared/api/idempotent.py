"""Run a create route under its ``Idempotency-Key`` (if the client sent one)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from shared.api.deps import Caller
from shared.api.responses import JsonResponse, ProblemResponse, problem_body
from shared.domain.errors import OcmError
from shared.services import idempotency

Handler = Callable[[], Awaitable[tuple[int, Any]]]


async def run(
    caller: Caller,
    request: Request,
    body: Any,
    handler: Handler,
    *,
    secret_fields: tuple[str, ...] = (),
) -> JsonResponse:
    """``secret_fields`` of the answer (a new key) are shown once: the kept copy, which
    a replay answers with, has them as null — a stored answer never holds a secret."""
    deps, principal = caller.deps, caller.principal
    key = request.headers.get("idempotency-key")
    if key is None:
        status, content = await handler()
        return JsonResponse(content, status_code=status)
    route = f"{request.method} {request.url.path}"
    holder = principal.app_id or f"user:{principal.user_id}"
    state = await idempotency.begin(
        deps, principal.tenant_id, route, key, idempotency.body_hash(body), holder=holder
    )
    if isinstance(state, idempotency.Replay):
        cls = ProblemResponse if state.status_code >= 400 else JsonResponse
        return cls(
            state.body, status_code=state.status_code, headers={"Idempotent-Replayed": "true"}
        )
    try:
        status, content = await handler()
    except OcmError as exc:
        if exc.status >= 500:
            await idempotency.abandon(deps, state)
            raise
        body_out = problem_body(
            exc.status, exc.code, exc.title, exc.detail, exc.errors, request.url.path
        )
        await idempotency.complete(deps, state, exc.status, body_out)
        raise
    except BaseException:
        await idempotency.abandon(deps, state)
        raise
    kept = content
    if secret_fields and isinstance(content, dict):
        kept = {**content, **{f: None for f in secret_fields if f in content}}
    await idempotency.complete(deps, state, status, kept)
    return JsonResponse(content, status_code=status)
