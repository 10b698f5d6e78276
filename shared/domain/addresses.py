"""Address rules per terminal type, and what a channel's provider can carry.

Parsing phone numbers and e-mail addresses costs ~20 µs each, so results are
cached: batches often repeat senders and receivers.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from shared.domain.channels import ProviderSpec
from shared.domain.errors import FieldError, ValidationFailed
from shared.domain.messages import MessageCreate, Terminal

_ALNUM_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 .&_-]{1,11}$")
_TELEGRAM = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
_TOPIC = re.compile(r"^[A-Za-z0-9_.~%-]{1,900}$")


@lru_cache(maxsize=65_536)
def normalise_email(address: str) -> str | None:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


@lru_cache(maxsize=65_536)
def normalise_phone(address: str) -> str | None:
    """E.164 only: ``+`` and the country code are required."""
    if not address.startswith("+"):
        return None
    try:
        number = phonenumbers.parse(address, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def wa_id_to_e164(wa_id: str) -> str:
    """The phone number a WhatsApp id stands for, as tenants send to it.

    A wa_id is mostly the number's digits, but not for every country: Mexican
    mobiles keep the ``1`` after ``52`` that Mexico dropped from its numbering in
    2019 (``521 55…`` is ``+52 55…``), and Brazilian accounts made before the ninth
    mobile digit lack it (``55 11 8765-4321`` is ``+55 11 98765-4321``).
    """
    if wa_id.startswith("521") and len(wa_id) == 13:
        return "+52" + wa_id[3:]
    if wa_id.startswith("55") and len(wa_id) == 12 and wa_id[4] in "6789":
        return f"+55{wa_id[2:4]}9{wa_id[4:]}"
    return "+" + wa_id


def _url_ok(address: str) -> bool:
    parts = urlsplit(address)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def normalise_address(kind: str, address: str) -> str | None:
    """The canonical form of an address of a terminal type, or None if invalid."""
    if kind == "email":
        return normalise_email(address)
    if kind == "phone":
        return normalise_phone(address)
    if kind == "alphanumeric":
        return address if _ALNUM_SENDER.match(address) else None
    if kind == "telegram":
        return address if _TELEGRAM.match(address) else None
    if kind == "topic":
        return address if _TOPIC.match(address) else None
    if kind == "url":
        return address if _url_ok(address) else None
    return address if address.strip() else None  # device: an opaque push token


_EXPECTED = {
    "email": "an e-mail address",
    "phone": "an E.164 phone number (+ and country code)",
    "alphanumeric": "1-11 letters, digits or spaces, with at least one letter",
    "telegram": "a chat id or @username",
    "topic": "a topic name",
    "url": "an http(s) URL",
}


def check_terminal(
    field: str, terminal: Terminal, allowed: tuple[str, ...], errors: list[FieldError]
) -> Terminal:
    """Validate one sender/receiver against a channel; append problems to ``errors``."""
    if terminal.type not in allowed:
        errors.append(
            FieldError(f"{field}.type", f"this channel takes {', '.join(allowed)} {field}s")
        )
        return terminal
    normal = normalise_address(terminal.type, terminal.address)
    if normal is None:
        errors.append(
            FieldError(f"{field}.address", f"must be {_EXPECTED.get(terminal.type, 'valid')}")
        )
        return terminal
    if normal == terminal.address:
        return terminal
    return terminal.model_copy(update={"address": normal})


def check_message_for_channel(
    message: MessageCreate, spec: ProviderSpec, default_sender: Terminal | None
) -> tuple[Terminal, Terminal | None]:
    """Check receiver, sender and content against what the provider carries.

    Returns the normalised ``(receiver, sender)``; raises ValidationFailed with
    code ``RECEIVER_NOT_SUPPORTED``/``CONTENT_NOT_SUPPORTED``/``VALIDATION_FAILED``.
    """
    content = message.content
    if content.type not in spec.content_types:
        raise ValidationFailed(
            f"A {spec.type} channel ({spec.provider}) cannot carry {content.type} content; "
            f"it takes {', '.join(spec.content_types)}",
            code="CONTENT_NOT_SUPPORTED",
            errors=[FieldError("content.type", "not supported by this channel")],
        )
    attachments = getattr(content, "attachments", [])
    if attachments and not spec.attachments:
        raise ValidationFailed(
            "This channel cannot carry attachments",
            code="CONTENT_NOT_SUPPORTED",
            errors=[FieldError("content.attachments", "not supported by this channel")],
        )
    errors: list[FieldError] = []
    for i, att in enumerate(attachments):
        if (att.content is None) == (att.url is None):
            errors.append(FieldError(f"content.attachments.{i}", "give one of content or url"))
        elif att.url is not None and "url" not in spec.attachment_sources:
            errors.append(FieldError(f"content.attachments.{i}.url", "give content (base64)"))
        elif att.content is not None and "content" not in spec.attachment_sources:
            errors.append(
                FieldError(
                    f"content.attachments.{i}.content", "give a url: the provider fetches it"
                )
            )
    if message.receiver.type not in spec.receiver_types:
        raise ValidationFailed(
            f"This channel sends to {', '.join(spec.receiver_types)} receivers, "
            f"not {message.receiver.type}",
            code="RECEIVER_NOT_SUPPORTED",
            errors=[FieldError("receiver.type", "not supported by this channel")],
        )
    receiver = check_terminal("receiver", message.receiver, spec.receiver_types, errors)
    if not errors and spec.receiver_problem is not None:
        problem = spec.receiver_problem(receiver.type, receiver.address)
        if problem is not None:
            errors.append(FieldError("receiver.address", problem))
    sender = message.sender or default_sender
    if sender is not None:
        sender = check_terminal("sender", sender, spec.sender_types, errors)
    elif spec.provider != "sandbox" and spec.sender_types:
        errors.append(FieldError("sender", "required: this channel has no default sender"))
    if errors:
        raise ValidationFailed("The message is not valid for this channel", errors=errors)
    return receiver, sender
