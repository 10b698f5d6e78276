"""Provider callbacks: delivery receipts and inbound messages (no OCM credential;
each provider's own signature scheme authenticates them)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from shared.api.deps import Platform
from shared.ports import CallbackRequest
from shared.services.delivery import callbacks

router = APIRouter(tags=["callbacks"])

PATH = "/api/v1/callbacks/{provider}/{channel_id}"


def signed_url(request: Request, public_base: str | None) -> str:
    """The URL the provider called: behind a front end or a custom domain the
    request's own URL differs, so ``OCM_PUBLIC_BASE_URL`` replaces its origin."""
    if not public_base:
        return str(request.url)
    query = request.url.query
    return public_base.rstrip("/") + request.url.path + (f"?{query}" if query else "")


REJECTED: dict[int | str, dict[str, str]] = {
    401: {"description": "The provider's signature did not verify"}
}


@router.post(
    PATH, summary="A provider's callback: receipts and inbound messages", responses=REJECTED
)
async def callback(provider: str, channel_id: str, request: Request, deps: Platform) -> Response:
    return await _receive(provider, channel_id, request, deps)


@router.get(PATH, summary="A provider's URL verification (Meta's handshake)", responses=REJECTED)
async def verify_url(provider: str, channel_id: str, request: Request, deps: Platform) -> Response:
    return await _receive(provider, channel_id, request, deps)


async def _receive(provider: str, channel_id: str, request: Request, deps: Platform) -> Response:
    received = CallbackRequest(
        method=request.method,
        url=signed_url(request, deps.settings.public_base_url),
        headers={k.lower(): v for k, v in request.headers.items()},
        query=request.query_params.multi_items(),
        body=await request.body(),
    )
    reply = await callbacks.receive(deps, provider, channel_id, received)
    return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)
