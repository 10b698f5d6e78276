"""An outbound message as a MIME e-mail: what every e-mail provider sends.

``text`` → text/plain; ``html`` → multipart/alternative (the given text, or a plain
rendering of the HTML); base64 attachments → multipart/mixed. The Message-ID derives
from our message id, so every attempt carries the same one.
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from typing import Any

from shared.domain.email_headers import check_header_block, header_text
from shared.domain.encoding import b64decode_lenient_spaces
from shared.domain.errors import ProviderError

_DROP_BLOCKS = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BREAKS = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h[1-6])\b[^>]*>", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")


def html_to_text(markup: str) -> str:
    """A crude plain rendering of HTML, for the text/plain alternative."""
    text = html.unescape(_TAGS.sub("", _BREAKS.sub("\n", _DROP_BLOCKS.sub("", markup))))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() or " "


def invalid(reason: str, code: str = "INVALID_MESSAGE") -> ProviderError:
    """A message that can never be sent as built: a permanent failure."""
    return ProviderError("permanent", code, reason)


def _address(terminal: Mapping[str, Any] | None, role: str) -> tuple[Address, str]:
    address = str((terminal or {}).get("address") or "")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise invalid(f"the {role} is not an email address", "SMTP_INVALID_ADDRESS")
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    display = str((terminal or {}).get("display_name") or "")
    name = email_header(display, f"{role}'s display name")
    try:
        return Address(display_name=name, username=local, domain=domain), f"{local}@{domain}"
    except Exception:
        raise invalid(f"the {role} is not an email address", "SMTP_INVALID_ADDRESS") from None


def build_email(
    message: Mapping[str, Any], channel: Mapping[str, Any]
) -> tuple[EmailMessage, str, str]:
    """The MIME message, the envelope sender and the envelope recipient.

    The Message-ID derives from our message id, so every attempt carries the same.
    """
    sender, mail_from = _address(message.get("sender") or channel.get("default_sender"), "sender")
    receiver, rcpt_to = _address(message.get("receiver"), "receiver")
    content: Mapping[str, Any] = message.get("content") or {}
    email = EmailMessage()
    email["From"] = sender
    email["To"] = receiver
    email["Subject"] = email_header(str(message.get("subject") or ""), "subject")
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = f"<{message['id']}@ocm>"
    extra = message.get("email_headers") or {}
    for name, value in extra.items():
        email[name] = email_header(value, name)  # List-Unsubscribe (RFC 8058), set at accept
    if content.get("type") == "text":
        email.set_content(str(content["text"]))
    elif content.get("type") == "html":
        email.set_content(str(content.get("text") or html_to_text(str(content["html"]))))
        email.add_alternative(str(content["html"]), subtype="html")
    else:
        raise invalid(f"content type {content.get('type')!r} cannot be sent by email")
    for attachment in content.get("attachments") or []:
        if attachment.get("url") or not attachment.get("content"):
            raise invalid(
                "attachments must carry their content (base64); URLs are not fetched",
                "ATTACHMENT_URL_NOT_SUPPORTED",
            )
        try:
            data = b64decode_lenient_spaces(str(attachment["content"]))
        except ValueError:
            raise invalid(f"attachment {attachment.get('filename')!r} is not base64") from None
        maintype, _, subtype = str(attachment.get("content_type") or "").partition("/")
        email.add_attachment(
            data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=email_header(str(attachment.get("filename") or "attachment"), "file name"),
        )
    try:
        check_header_block(email.as_bytes(policy=SMTP), extra)
    except ValueError as exc:
        raise invalid(str(exc), "EMAIL_HEADER_INVALID") from None
    return email, mail_from, rcpt_to


def email_header(text: str, what: str) -> str:
    """``text`` as a header value, or a permanent failure (see shared.domain.email_headers)."""
    try:
        return header_text(text, what)
    except ValueError as exc:
        raise invalid(str(exc), "EMAIL_HEADER_INVALID") from None
