"""What each channel type requires of a message's content, checked at accept time.

- SMS: text is counted in segments — GSM-7 (3GPP TS 23.038; characters of the
  extension table take two septets) fits 160 septets in one message and 153 in
  each part of a concatenated one; any other character makes the whole text
  UCS-2, 70 and 67 UTF-16 code units. More than the channel's ``max_segments``
  is refused. Media (MMS) only where the provider carries it.
- E-mail: a subject is required.
- Push: a title or a body is required.
"""

from __future__ import annotations

from typing import Any

from shared.domain.errors import FieldError, ValidationFailed

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


def sms_segments(text: str) -> tuple[str, int]:
    """(encoding, segments) of an SMS text: ``gsm7`` or ``ucs2``."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        septets = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        return "gsm7", 1 if septets <= 160 else -(-septets // 153)
    units = len(text.encode("utf-16-le")) // 2
    return "ucs2", 1 if units <= 70 else -(-units // 67)


def check_content(
    channel_type: str, content: dict[str, Any], subject: str | None, *, max_segments: int
) -> int | None:
    """Refuse content its channel type cannot take (ValidationFailed, 422); returns an
    SMS text's segments (None for other content)."""
    kind = content.get("type")
    if channel_type == "sms" and kind == "text":
        encoding, segments = sms_segments(content["text"])
        if segments > max_segments:
            raise ValidationFailed(
                f"The text is {segments} SMS segments ({encoding}); this channel takes "
                f"at most {max_segments}",
                code="CONTENT_TOO_LONG",
                errors=[FieldError("content.text", f"{segments} segments > {max_segments}")],
            )
        return segments
    if channel_type == "email" and not (subject or "").strip():
        raise ValidationFailed(
            "An e-mail needs a subject",
            code="SUBJECT_REQUIRED",
            errors=[FieldError("subject", "required for e-mail")],
        )
    if (
        channel_type == "push"
        and kind == "push"
        and not (content.get("title") or content.get("body"))
    ):
        raise ValidationFailed(
            "A push notification needs a title or a body",
            code="PUSH_CONTENT_EMPTY",
            errors=[FieldError("content", "give a title or a body")],
        )
    return None
