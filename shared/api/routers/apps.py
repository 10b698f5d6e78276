"""/api/v1/apps: the tenant's client applications, their scopes and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from shared.api.deps import Caller, Limit, scoped
from shared.api.idempotent import run as idempotent
from shared.api.responses import JsonResponse, page_answer
from shared.api.schemas import AppList, AppPublic, AppWithKey, ClientSecretIssued, problems
from shared.services.identity import apps

router = APIRouter(prefix="/api/v1/apps", tags=["apps"])


@router.post(
    "",
    status_code=201,
    summary="Create a client application and its primary API key",
    description="The key is in this answer only. An application gets at most the scopes "
    "of the credential creating it. Honours `Idempotency-Key` (a replay answers the app "
    "with `api_key: null`: the key is never stored).",
    responses={201: {"model": AppWithKey}, **problems(400, 401, 403, 409, 422)},
)
async def create_app(
    request: Request,
    data: apps.AppCreate,
    caller: Annotated[Caller, scoped("create:app")],
) -> JsonResponse:
    async def create() -> tuple[int, object]:
        app, key = await apps.create_app(caller.deps, caller.principal, data)
        await caller.audit("app.create", type="app", id=app["id"], scopes=app["scopes"])
        return 201, {"app": apps.public(app), "api_key": key, "slot": "primary"}

    body = data.model_dump(mode="json")
    return await idempotent(caller, request, body, create, secret_fields=("api_key",))


@router.get(
    "",
    summary="List client applications",
    responses={200: {"model": AppList}, **problems(401, 403)},
)
async def list_apps(
    caller: Annotated[Caller, scoped("read:app")],
    limit: Limit = 50,
    cursor: str | None = None,
) -> JsonResponse:
    page = await apps.list_apps(caller.deps, caller.tenant_id, limit=limit, cursor=cursor)
    return page_answer(page, apps.public)


@router.get(
    "/{app_id}",
    summary="A client application",
    responses={200: {"model": AppPublic}, **problems(401, 403, 404)},
)
async def get_app(app_id: str, caller: Annotated[Caller, scoped("read:app")]) -> JsonResponse:
    return JsonResponse(apps.public(await apps.get_app(caller.deps, caller.tenant_id, app_id)))


@router.patch(
    "/{app_id}",
    summary="Change an application's name, description, scopes or status",
    description="Scopes and status apply to its keys at once on this instance, within "
    "`OCM_LOOKUP_CACHE_SECONDS` elsewhere. A disabled application's keys get 401.",
    responses={200: {"model": AppPublic}, **problems(400, 401, 403, 404, 409, 422)},
)
async def update_app(
    app_id: str, data: apps.AppUpdate, caller: Annotated[Caller, scoped("update:app")]
) -> JsonResponse:
    app = await apps.update_app(caller.deps, caller.principal, app_id, data)
    changed = sorted(data.model_dump(exclude_unset=True))
    await caller.audit("app.update", type="app", id=app_id, fields=changed, scopes=app["scopes"])
    return JsonResponse(apps.public(app))


@router.delete(
    "/{app_id}",
    status_code=204,
    summary="Delete an application: both its keys stop working",
    responses=problems(401, 403, 404),
)
async def delete_app(app_id: str, caller: Annotated[Caller, scoped("delete:app")]) -> Response:
    await apps.delete_app(caller.deps, caller.principal, app_id)
    await caller.audit("app.delete", type="app", id=app_id)
    return Response(status_code=204)


@router.post(
    "/{app_id}/keys/{slot}",
    status_code=201,
    summary="Issue a new key in a slot (primary or secondary), replacing the one there",
    description="Rotate without a gap: issue the secondary, move clients to it, then "
    "rotate or revoke the primary. The key is in this answer only.",
    responses={201: {"model": AppWithKey}, **problems(401, 403, 404, 422)},
)
async def rotate_key(
    app_id: str, slot: apps.Slot, caller: Annotated[Caller, scoped("update:app")]
) -> JsonResponse:
    app, key = await apps.rotate_key(caller.deps, caller.principal, app_id, slot)
    prefix = app["keys"][slot]["prefix"]
    await caller.audit("app.key.rotate", type="app", id=app_id, slot=slot, key_prefix=prefix)
    return JsonResponse({"app": apps.public(app), "api_key": key, "slot": slot}, status_code=201)


@router.delete(
    "/{app_id}/keys/{slot}",
    summary="Revoke the key in a slot",
    responses={200: {"model": AppPublic}, **problems(401, 403, 404, 422)},
)
async def revoke_key(
    app_id: str, slot: apps.Slot, caller: Annotated[Caller, scoped("update:app")]
) -> JsonResponse:
    app = await apps.revoke_key(caller.deps, caller.principal, app_id, slot)
    await caller.audit("app.key.revoke", type="app", id=app_id, slot=slot)
    return JsonResponse(apps.public(app))


@router.post(
    "/{app_id}/client-secret",
    status_code=201,
    summary="Issue the application's OAuth2 client secret, replacing any",
    description="The client id is the application's id. Exchange both for an access "
    "token at `POST /api/v1/oauth/token`. The secret is in this answer only.",
    responses={201: {"model": ClientSecretIssued}, **problems(401, 403, 404)},
)
async def issue_client_secret(
    app_id: str, caller: Annotated[Caller, scoped("update:app")]
) -> JsonResponse:
    app, secret = await apps.issue_client_secret(caller.deps, caller.principal, app_id)
    await caller.audit("app.client_secret.issue", type="app", id=app_id)
    body = {"app": apps.public(app), "client_id": app_id, "client_secret": secret}
    return JsonResponse(body, status_code=201)


@router.delete(
    "/{app_id}/client-secret",
    summary="Revoke the application's client secret (its tokens stop working too)",
    responses={200: {"model": AppPublic}, **problems(401, 403, 404)},
)
async def revoke_client_secret(
    app_id: str, caller: Annotated[Caller, scoped("update:app")]
) -> JsonResponse:
    app = await apps.revoke_client_secret(caller.deps, caller.principal, app_id)
    await caller.audit("app.client_secret.revoke", type="app", id=app_id)
    return JsonResponse(apps.public(app))
