"""One-click unsubscribe links of e-mails (RFC 8058): no credential, the signed token."""

from __future__ import annotations

import html

from fastapi import APIRouter, Request, Response

from shared.api.deps import Platform
from shared.services.receivers import unsubscribe

router = APIRouter(tags=["unsubscribe"])

PATH = "/api/v1/unsubscribe/{token}"
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><title>Unsubscribe</title></head>
<body><h1>Unsubscribe</h1><p>Stop receiving these e-mails?</p>
<form method="post" action="{action}"><input type="hidden" name="List-Unsubscribe"
value="One-Click"><button type="submit">Unsubscribe</button></form></body></html>"""


@router.post(PATH, summary="Unsubscribe in one click (RFC 8058)")
async def unsubscribe_now(token: str, deps: Platform) -> Response:
    await unsubscribe.unsubscribe(deps, token)
    return Response("You are unsubscribed.\n", media_type="text/plain")


@router.get(PATH, summary="The unsubscribe page (a button; only the POST unsubscribes)")
async def unsubscribe_page(token: str, request: Request) -> Response:
    action = html.escape(request.url.path, quote=True)
    return Response(PAGE.replace("{action}", action), media_type="text/html")
