"""/api/v1/users and /api/v1/auth: the tenant's users, invitations, sign-in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from shared.api.deps import Caller, Limit, client_address, scoped
from shared.api.responses import JsonResponse, page_answer
from shared.api.schemas import TokenPair, UserInvited, UserList, UserPublic, problems
from shared.domain.errors import NotFoundError
from shared.services.identity import sessions, users

router = APIRouter(tags=["users"])
NO_STORE = {"Cache-Control": "no-store"}


class RefreshToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=10, max_length=200)


@router.post(
    "/api/v1/users",
    status_code=201,
    summary="Invite a user (a role up to the inviter's own)",
    responses={201: {"model": UserInvited}, **problems(400, 401, 403, 409, 422)},
)
async def invite_user(
    data: users.UserInvite, caller: Annotated[Caller, scoped("manage:user")]
) -> JsonResponse:
    user, token = await users.invite(caller.deps, caller.principal, data)
    await caller.audit("user.invite", type="user", id=user["id"], role=user["role"])
    return JsonResponse({"user": users.public(user), "invitation_token": token}, status_code=201)


@router.get(
    "/api/v1/users",
    summary="List the tenant's users",
    responses={200: {"model": UserList}, **problems(401, 403)},
)
async def list_users(
    caller: Annotated[Caller, scoped("read:user")],
    limit: Limit = 50,
    cursor: str | None = None,
) -> JsonResponse:
    page = await users.list_users(caller.deps, caller.tenant_id, limit=limit, cursor=cursor)
    return page_answer(page, users.public)


@router.get(
    "/api/v1/users/me",
    summary="The signed-in user",
    responses={200: {"model": UserPublic}, **problems(401, 403, 404)},
)
async def me(caller: Annotated[Caller, scoped("read:user")]) -> JsonResponse:
    if not caller.principal.user_id:
        raise NotFoundError("This credential is an application's, not a user's", code="NOT_A_USER")
    user = await users.get_user(caller.deps, caller.tenant_id, caller.principal.user_id)
    return JsonResponse(users.public(user))


@router.get(
    "/api/v1/users/{user_id}",
    summary="A user",
    responses={200: {"model": UserPublic}, **problems(401, 403, 404)},
)
async def get_user(user_id: str, caller: Annotated[Caller, scoped("read:user")]) -> JsonResponse:
    return JsonResponse(users.public(await users.get_user(caller.deps, caller.tenant_id, user_id)))


@router.patch(
    "/api/v1/users/{user_id}",
    summary="Change a user's role, name or status (disable)",
    responses={200: {"model": UserPublic}, **problems(400, 401, 403, 404, 422)},
)
async def update_user(
    user_id: str, data: users.UserUpdate, caller: Annotated[Caller, scoped("manage:user")]
) -> JsonResponse:
    user = await users.update_user(caller.deps, caller.principal, user_id, data)
    changed = sorted(data.model_dump(exclude_unset=True))
    await caller.audit("user.update", type="user", id=user_id, fields=changed, role=user["role"])
    return JsonResponse(users.public(user))


@router.post(
    "/api/v1/users/accept-invite",
    summary="Accept an invitation: set the password (12 characters or more)",
    responses={200: {"model": UserPublic}, **problems(400, 422)},
)
async def accept_invite(request: Request, data: users.Password) -> JsonResponse:
    deps = request.app.state.get_deps()
    return JsonResponse(users.public(await users.accept_invite(deps, data)))


@router.post(
    "/api/v1/users/reset-password",
    summary="Set a new password with a reset token (from the operator, `ocm user reset-password`)",
    responses={200: {"model": UserPublic}, **problems(400, 422)},
)
async def reset_password(request: Request, data: users.Password) -> JsonResponse:
    deps = request.app.state.get_deps()
    return JsonResponse(users.public(await users.reset_password(deps, data)))


@router.post(
    "/api/v1/auth/login",
    summary="Sign in with e-mail and password: an access token (15 min) and a refresh token",
    responses={200: {"model": TokenPair}, **problems(401, 403, 422, 429)},
)
async def login(request: Request, data: sessions.Login) -> JsonResponse:
    deps = request.app.state.get_deps()
    return JsonResponse(await sessions.login(deps, data, client_address(request)), headers=NO_STORE)


@router.post(
    "/api/v1/auth/refresh",
    summary="Exchange a refresh token for a new pair (the old one is spent)",
    responses={200: {"model": TokenPair}, **problems(401, 422)},
)
async def refresh(request: Request, data: RefreshToken) -> JsonResponse:
    deps = request.app.state.get_deps()
    return JsonResponse(await sessions.refresh(deps, data.refresh_token), headers=NO_STORE)


@router.post(
    "/api/v1/auth/logout",
    status_code=204,
    summary="Revoke a refresh token (and every token refreshed from the same sign-in)",
    responses=problems(422),
)
async def logout(request: Request, data: RefreshToken) -> Response:
    await sessions.logout(request.app.state.get_deps(), data.refresh_token)
    return Response(status_code=204)
