"""/api/v1/channels: the tenant's channels, their credentials, simulated inbound."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from shared.api.deps import Caller, Limit, scoped
from shared.api.idempotent import run as idempotent
from shared.api.responses import JsonResponse, page_answer
from shared.api.schemas import ChannelList, InboundAccepted, problems
from shared.domain.channels import ChannelCreate, ChannelPublic, ChannelUpdate
from shared.domain.errors import ValidationFailed
from shared.domain.messages import InboundCreate
from shared.domain.models import Document
from shared.services.channels import channels
from shared.services.delivery import provider_events
from shared.services.messaging import messages

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])


def _view(caller: Caller, request: Request, doc: Document) -> Document:
    """A channel as the API shows it, with the callback URL for its provider's console."""
    spec = caller.deps.catalog.specs.get((doc["type"], doc["provider"]))
    settings = caller.deps.settings
    # In production the URL is the configured one only: a request's Host header is the
    # client's to choose. Locally, it is where the platform was reached.
    base = settings.public_base_url or (
        None if settings.OCM_ENV == "production" else str(request.base_url)
    )
    return channels.public(doc, base if spec is not None and spec.callbacks else None)


@router.post(
    "",
    status_code=201,
    summary="Create a channel",
    responses={201: {"model": ChannelPublic}, **problems(400, 401, 403, 409, 422)},
)
async def create_channel(
    request: Request,
    data: ChannelCreate,
    caller: Annotated[Caller, scoped("create:channel")],
) -> JsonResponse:
    async def create() -> tuple[int, object]:
        doc = await channels.create_channel(caller.deps, caller.tenant_id, data)
        await caller.audit("channel.create", type="channel", id=doc["id"], name=doc["name"])
        return 201, _view(caller, request, doc)

    return await idempotent(caller, request, data.model_dump(mode="json"), create)


@router.get(
    "", summary="List channels", responses={200: {"model": ChannelList}, **problems(401, 403)}
)
async def list_channels(
    request: Request,
    caller: Annotated[Caller, scoped("read:channel")],
    limit: Limit = 50,
    cursor: str | None = None,
) -> JsonResponse:
    page = await channels.list_channels(caller.deps, caller.tenant_id, limit=limit, cursor=cursor)
    return page_answer(page, lambda d: _view(caller, request, d))


@router.get(
    "/{name}",
    summary="A channel",
    responses={200: {"model": ChannelPublic}, **problems(401, 403, 404)},
)
async def get_channel(
    name: str, request: Request, caller: Annotated[Caller, scoped("read:channel")]
) -> JsonResponse:
    return JsonResponse(
        _view(caller, request, await channels.get_channel(caller.deps, caller.tenant_id, name))
    )


@router.patch(
    "/{name}",
    summary="Change a channel's description, settings, default sender or status",
    responses={200: {"model": ChannelPublic}, **problems(400, 401, 403, 404, 409, 422)},
)
async def update_channel(
    name: str,
    request: Request,
    data: ChannelUpdate,
    caller: Annotated[Caller, scoped("update:channel")],
) -> JsonResponse:
    updated = await channels.update_channel(caller.deps, caller.tenant_id, name, data)
    doc = updated.doc
    changed = sorted(data.model_dump(exclude_unset=True))
    await caller.audit(
        "channel.update", type="channel", id=doc["id"], name=doc["name"], fields=changed
    )
    if updated.credentials_dropped:
        dropped = [f"settings.{k}" for k in updated.credentials_dropped]
        await caller.audit(
            "channel.credentials.drop", type="channel", id=doc["id"], because=dropped
        )
    return JsonResponse(_view(caller, request, doc))


@router.delete(
    "/{name}",
    status_code=204,
    summary="Delete a channel: new sends stop, pending messages fail with CHANNEL_DELETED",
    responses=problems(401, 403, 404),
)
async def delete_channel(
    name: str, caller: Annotated[Caller, scoped("delete:channel")]
) -> Response:
    doc = await channels.get_channel(caller.deps, caller.tenant_id, name)
    await messages.delete_channel(caller.deps, caller.tenant_id, name)
    await caller.audit("channel.delete", type="channel", id=doc["id"], name=doc["name"])
    return Response(status_code=204)


@router.put(
    "/{name}/credentials",
    status_code=204,
    summary="Set the channel's provider credentials (write-only)",
    description="Kept in the secret store; never returned or logged. The fields are "
    "the provider's credential fields (GET /api/v1/channel-types lists them).",
    responses=problems(400, 401, 403, 404, 422),
)
async def put_credentials(
    name: str,
    caller: Annotated[Caller, scoped("update:channel")],
    credentials: dict[str, str] = Body(..., examples=[{"username": "u", "password": "p"}]),
) -> Response:
    doc = await channels.set_credentials(caller.deps, caller.tenant_id, name, credentials)
    # The field names, never their values.
    await caller.audit(
        "channel.credentials.set",
        type="channel",
        id=doc["id"],
        name=doc["name"],
        fields=sorted(credentials),
    )
    return Response(status_code=204)


@router.post(
    "/{name}/simulate-inbound",
    status_code=202,
    summary="Inject an inbound message into a sandbox channel, as a provider would",
    responses={202: {"model": InboundAccepted}, **problems(400, 401, 403, 404, 409, 422)},
)
async def simulate_inbound(
    request: Request,
    name: str,
    data: InboundCreate,
    caller: Annotated[Caller, scoped("update:channel")],
) -> JsonResponse:
    channel = await channels.get_channel(caller.deps, caller.tenant_id, name)
    if channel["provider"] != "sandbox":
        raise ValidationFailed(
            "Only sandbox channels take simulated inbound messages", code="SIMULATION_NOT_SUPPORTED"
        )

    async def inject() -> tuple[int, object]:
        pid = await provider_events.simulate_inbound(caller.deps, channel, data)
        return 202, {"provider_message_id": pid, "status": "accepted"}

    return await idempotent(caller, request, data.model_dump(mode="json"), inject)
