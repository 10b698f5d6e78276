"""Errors the domain and services raise; the API maps them to problem+json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class OcmError(Exception):
    """An expected failure with a stable code, shown to the client as a problem."""

    status: int = 400
    code: str = "BAD_REQUEST"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.errors = errors or []
        self.headers = headers or {}


class ValidationFailed(OcmError):
    status = 422
    code = "VALIDATION_FAILED"
    title = "The request is not valid"


class NotFoundError(OcmError):
    status = 404
    code = "NOT_FOUND"
    title = "Not found"


class ConflictError(OcmError):
    status = 409
    code = "CONFLICT"
    title = "Conflict"


class Unauthorized(OcmError):
    status = 401
    code = "UNAUTHORIZED"
    title = "Not authenticated"


class Forbidden(OcmError):
    status = 403
    code = "FORBIDDEN"
    title = "Forbidden"


class PayloadTooLarge(OcmError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    title = "Payload too large"


ProviderErrorKind = Literal["transient", "throttled", "permanent"]


@dataclass
class ProviderError(Exception):
    """A provider refused or failed a send.

    ``kind`` decides what happens: transient → retry with backoff, throttled →
    re-schedule without using an attempt, permanent → fail at once.
    """

    kind: ProviderErrorKind
    code: str
    reason: str
    retry_after: float | None = None
    provider_status: str | None = None
    details: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, f"{self.kind} {self.code}: {self.reason}")


class CallbackRejected(OcmError):
    """A provider callback whose signature (or token) did not verify: 401, nothing stored."""

    status = 401
    code = "CALLBACK_SIGNATURE_INVALID"
    title = "Callback not verified"


class CallbackInvalid(OcmError):
    """A verified provider callback that cannot be understood: 400, nothing stored."""

    status = 400
    code = "CALLBACK_INVALID"
    title = "Callback not understood"
