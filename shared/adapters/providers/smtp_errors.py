"""SMTP failures as ProviderErrors: the kinds and codes ``smtp``'s docstring lists."""

from __future__ import annotations

import socket
import ssl

import aiosmtplib

from shared.domain.errors import ProviderError, ProviderErrorKind
from shared.egress import EgressRefused

_MAILBOX_GONE = frozenset({550, 551, 553})
_AUTH_CODES = frozenset({530, 534, 535})


def map_error(exc: BaseException, password: str) -> ProviderError:
    """``exc``, raised while sending, as the ProviderError its kind and reply code call for."""

    def fail(
        kind: ProviderErrorKind,
        code: str,
        reason: str,
        status: int | None = None,
        details: dict[str, str] | None = None,
    ) -> ProviderError:
        if password:
            reason = reason.replace(password, "***")
        status_text = None if status is None else str(status)
        return ProviderError(
            kind, code, reason[:1000], provider_status=status_text, details=details or {}
        )

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, EgressRefused):
        return fail("permanent", "EGRESS_REFUSED", str(exc))
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused) and exc.code in _MAILBOX_GONE:
        # The server refused this mailbox for good: a hard bounce.
        return fail("permanent", f"SMTP_{exc.code}", exc.message, exc.code, {"opt_out": "bounce"})
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code, text = exc.code, exc.message
        if 400 <= code < 500:
            return fail("transient", f"SMTP_{code}", text, code)
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError) or code in _AUTH_CODES:
            return fail("permanent", "SMTP_AUTH_FAILED", f"authentication failed: {text}", code)
        if 500 <= code < 600:
            return fail("permanent", f"SMTP_{code}", text, code)
        return fail("transient", "SMTP_PROTOCOL_ERROR", f"unexpected reply {code} {text}", code)
    tls = _find(exc, ssl.SSLError)
    if tls is not None and not isinstance(tls, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return fail("permanent", "SMTP_TLS_FAILED", f"TLS failed: {tls}")
    if _find(exc, socket.gaierror) is not None:
        return fail("transient", "SMTP_DNS_FAILED", f"the host name did not resolve: {exc}")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return fail("transient", "SMTP_TIMEOUT", str(exc) or "timed out")
    if isinstance(exc, aiosmtplib.SMTPNotSupported | ValueError):
        return fail("permanent", "SMTP_INVALID_ADDRESS", str(exc))
    if isinstance(exc, OSError):  # ConnectionError, SMTPConnectError, disconnects
        return fail("transient", "SMTP_CONNECTION_FAILED", str(exc) or type(exc).__name__)
    text = str(exc)
    if isinstance(exc, aiosmtplib.SMTPException) and "starttls" in text.lower():
        return fail("permanent", "SMTP_TLS_FAILED", text)
    if isinstance(exc, aiosmtplib.SMTPException) and "auth" in text.lower():
        return fail("permanent", "SMTP_AUTH_FAILED", text)
    return fail("transient", "SMTP_ERROR", text or type(exc).__name__)


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
