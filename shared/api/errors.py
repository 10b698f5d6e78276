"""Every failure becomes problem+json with a stable code; never a traceback."""

from __future__ import annotations

import logging
import math
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from shared.api.responses import problem
from shared.domain.errors import FieldError, OcmError
from shared.ports import Throttled

log = logging.getLogger("ocm.api")

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "body"


async def on_ocm_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OcmError)
    return problem(
        exc.status,
        exc.code,
        exc.title,
        exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        instance=request.url.path,
    )


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem(
            400,
            "MALFORMED_JSON",
            "Malformed JSON",
            "The request body is not valid JSON",
            instance=request.url.path,
        )
    fields = [FieldError(_field(tuple(e.get("loc", ()))), str(e.get("msg"))) for e in errors]
    return problem(
        422,
        "VALIDATION_FAILED",
        "The request is not valid",
        "The request is not valid",
        errors=fields,
        instance=request.url.path,
    )


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    code = _HTTP_CODES.get(status, "HTTP_ERROR")
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    return problem(
        status,
        code,
        phrase,
        detail,
        headers=dict(exc.headers) if exc.headers else None,
        instance=request.url.path,
    )


async def on_client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up while sending its body: nothing was done, nobody to answer."""
    log.debug("client disconnected during %s %s", request.method, request.url.path)
    return problem(
        400, "CLIENT_DISCONNECTED", "Client disconnected", "The request body was cut off"
    )


async def on_throttled(request: Request, exc: Exception) -> Response:
    """The store or queue is throttling past its SDK's retries: the client's work is
    not done (a write that was, is found again by its Idempotency-Key)."""
    assert isinstance(exc, Throttled)
    log.warning("%s %s throttled: %s", request.method, request.url.path, exc)
    return problem(
        503,
        "TEMPORARILY_OVERLOADED",
        "Temporarily overloaded",
        "The platform is shedding load; retry after the Retry-After delay with the same "
        "Idempotency-Key",
        headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
        instance=request.url.path,
    )


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        500,
        "INTERNAL_ERROR",
        "Internal error",
        "Something went wrong on our side; nothing was lost, retry with the same Idempotency-Key",
        instance=request.url.path,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(OcmError, on_ocm_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(ClientDisconnect, on_client_gone)
    app.add_exception_handler(Throttled, on_throttled)
    app.add_exception_handler(Exception, on_unexpected)
