"""Health and the catalogue of channel types."""

from __future__ import annotations

from fastapi import APIRouter

from shared.api.deps import Platform
from shared.api.responses import JsonResponse

router = APIRouter(tags=["platform"])


@router.get("/api/health", summary="Liveness: answers when the app can serve")
async def health(deps: Platform) -> JsonResponse:
    return JsonResponse({"status": "ok", "backend": deps.settings.OCM_BACKEND})


@router.get("/api/v1/channel-types", summary="Channel types, providers and what they carry")
async def channel_types(deps: Platform) -> JsonResponse:
    return JsonResponse(
        {
            "items": [
                {
                    "type": spec.type,
                    "provider": spec.provider,
                    "description": spec.description,
                    "settings": spec.settings_schema(),
                    "credentials": [
                        {
                            "name": f.name,
                            "secret": f.secret,
                            "required": f.required,
                            "description": f.description,
                        }
                        for f in spec.credentials
                    ],
                    "receiver_types": list(spec.receiver_types),
                    "sender_types": list(spec.sender_types),
                    "content_types": list(spec.content_types),
                    "directions": list(spec.directions),
                    "receipts": spec.receipts,
                    "attachments": spec.attachments,
                    "attachment_sources": list(spec.attachment_sources),
                    "callbacks": spec.callbacks,
                    "default": spec.default,
                    "rate_per_second": spec.rate_per_second,
                }
                for spec in deps.catalog
            ]
        }
    )
