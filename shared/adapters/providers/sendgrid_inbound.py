"""SendGrid Inbound Parse's form: its text fields, their charsets, and the bodies and
addresses of the email they carry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses

import orjson

from shared.domain.errors import CallbackInvalid


def form_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """The form's text fields (files — attachments — are left out)."""
    head = f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n".encode()
    form = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not isinstance(form, EmailMessage) or not form.is_multipart():
        raise CallbackInvalid("The Inbound Parse body is not multipart/form-data")
    fields: dict[str, bytes] = {}
    for part in form.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and name and part.get_filename() is None:
            payload = part.get_payload(decode=True)
            fields[name] = payload if isinstance(payload, bytes) else b""
    if not fields:
        raise CallbackInvalid("The Inbound Parse form has no fields")
    return fields


def decoder(fields: Mapping[str, bytes]) -> Callable[[str], str]:
    """Reads a field in the charset SendGrid's ``charsets`` field names for it."""
    try:
        charsets = orjson.loads(fields.get("charsets") or b"{}")
    except orjson.JSONDecodeError:
        charsets = {}

    def text(name: str) -> str:
        raw = fields.get(name, b"")
        charset = charsets.get(name) if isinstance(charsets, dict) else None
        try:
            return raw.decode(str(charset or "utf-8"), errors="replace")
        except LookupError:
            return raw.decode("utf-8", errors="replace")

    return text


def bodies(mime: Message) -> tuple[str, str]:
    """The text and HTML bodies of a raw MIME message ("" where it has none)."""
    if not isinstance(mime, EmailMessage):
        return "", ""
    found = []
    for kind in ("plain", "html"):
        part = mime.get_body(preferencelist=(kind,))
        try:
            text = str(part.get_content()) if part is not None else ""
            found.append(text.replace("\r\n", "\n"))
        except (LookupError, ValueError):
            found.append("")
    return found[0], found[1]


def email_terminal(name: str, address: str) -> dict[str, str]:
    """An email terminal: the address, and the display name if there is one."""
    terminal = {"type": "email", "address": address}
    name = " ".join(name.split())[:256]
    if name:
        terminal["display_name"] = name
    return terminal


def receiver(to: str, envelope: str) -> dict[str, str] | None:
    """The first ``to`` address, else the envelope's first recipient."""
    addresses = [a for _, a in getaddresses([to]) if "@" in a and len(a) <= 320]
    if not addresses:
        try:
            recipients = orjson.loads(envelope or "{}").get("to") or []
        except (orjson.JSONDecodeError, AttributeError):
            recipients = []
        if not isinstance(recipients, list):
            recipients = []
        addresses = [str(a) for a in recipients if "@" in str(a) and len(str(a)) <= 320]
    return email_terminal("", addresses[0]) if addresses else None


def inbound_content(plain: str, markup: str) -> dict[str, str]:
    """The email's content: HTML (with its text part, if any) when it has HTML, else text."""
    if markup.strip():
        content = {"type": "html", "html": markup}
        if plain.strip():
            content["text"] = plain
        return content
    return {"type": "text", "text": plain}
