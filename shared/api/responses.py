"""JSON and problem+json responses (RFC 9457), rendered with orjson."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.responses import Response

from shared.domain.encoding import shortened
from shared.domain.errors import FieldError
from shared.domain.models import Document
from shared.ports import Page

PROBLEM_TYPE_BASE = "https://ocm.dev/problems/"


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ProblemResponse(JsonResponse):
    media_type = "application/problem+json"


def page_answer(page: Page, public: Callable[[Document], Document]) -> JsonResponse:
    """A list's answer: ``{"items": [...], "next_cursor": ...}``, each item's public view."""
    return JsonResponse({"items": [public(d) for d in page.items], "next_cursor": page.next_cursor})


ECHO_LIMIT = 512
"""The most characters of a detail or path a problem answers with: details quote the
client's input (a name, a path), which must not come back 100 KB long, twice."""


def _echoed(text: str) -> str:
    return shortened(text, ECHO_LIMIT)


def problem_body(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code.lower().replace("_", "-"),
        "title": title,
        "status": status,
        "code": code,
        "detail": _echoed(detail),
    }
    if instance:
        body["instance"] = _echoed(instance)
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    return body


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> ProblemResponse:
    return ProblemResponse(
        problem_body(status, code, title, detail, errors, instance),
        status_code=status,
        headers=headers,
    )
