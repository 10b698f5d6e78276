"""E-mail header and body injection through RFC 2047 encoded words (security review,
finding 2): a subject, a display name, a file name or a template's rendered subject such
as ``=?utf-8?q?Invoice=0D=0ABcc:_hidden@evil.example?=`` was decoded by the standard
library and written out with a raw CR/LF (CVE-2024-6923 on this interpreter), adding
``Bcc``, ``Reply-To``, a second ``From`` or a whole body. These are refused when the
message is accepted, refused again when it is built (a message accepted before), and
the header block is checked before it goes out — whatever the interpreter's patch level.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.adapters.providers.sendgrid import mail_send_body
from shared.adapters.providers.smtp import SmtpSender
from shared.domain.email_headers import check_header_block
from shared.domain.errors import ProviderError
from shared.services.deps import Deps
from shared.services.onboarding import signup
from tests.integration.test_smtp_sender import Recorder, free_port, make_request, serve

PAYLOADS = {
    "q with CR/LF": "=?utf-8?q?Invoice=0D=0ABcc:_hidden@evil.example?=",
    "b with CR/LF": "=?utf-8?b?SGkNClJlcGx5LVRvOiBhdHRhY2tlckBldmlsLmV4YW1wbGU=?=",
    "a second From": "=?utf-8?q?Hi=0D=0AFrom:_ceo@bank.example?=",
    "LF alone": "=?utf-8?q?Hi=0ABcc:_lf@evil.example?=",
    "a replaced body": "=?utf-8?q?Hi=0D=0AContent-Type:_text/html=0D=0A=0D=0A<h1>Spoofed</h1>?=",
}
ATTACHMENT = {"filename": "a.txt", "content_type": "text/plain", "content": "aGk="}


def _place(message: dict[str, Any], where: str, payload: str) -> None:
    if where == "subject":
        message["subject"] = payload
    elif where == "file name":
        message["content"] = {
            "type": "text",
            "text": "x",
            "attachments": [{**ATTACHMENT, "filename": payload}],
        }
    else:
        message[where]["display_name"] = payload


WHERE = ("subject", "sender", "receiver", "file name")


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[SmtpSender, Recorder, int]]:
    """An SMTP sender and a recording aiosmtpd server on 127.0.0.1."""
    handler, port, started = Recorder(), free_port(), []
    serve(started, handler, port)
    sender = SmtpSender(allow_private_egress=True)
    yield sender, handler, port
    await sender.close()
    started[0].stop(no_assert=True)


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
async def test_smtp_refuses_an_encoded_word_in_any_header_and_sends_nothing(
    smtp: tuple[SmtpSender, Recorder, int], where: str, payload: str
) -> None:
    sender, handler, port = smtp
    request = make_request(port)
    _place(request.message, where, payload)  # type: ignore[arg-type]
    with pytest.raises(ProviderError) as caught:
        await sender.send(request)
    assert (caught.value.kind, caught.value.code) == ("permanent", "EMAIL_HEADER_INVALID")
    assert handler.received == []


@pytest.mark.parametrize("where", WHERE)
def test_sendgrid_refuses_an_encoded_word_in_any_header(where: str) -> None:
    message: dict[str, Any] = {
        "id": "msg_1",
        "sender": {"type": "email", "address": "a@example.com"},
        "receiver": {"type": "email", "address": "b@example.com"},
        "subject": "Hi",
        "content": {"type": "text", "text": "x"},
    }
    _place(message, where, PAYLOADS["q with CR/LF"])
    with pytest.raises(ProviderError) as caught:
        mail_send_body(message, {"id": "ch_1", "settings": {}})
    assert caught.value.code == "EMAIL_HEADER_INVALID"


GOOD = (
    b"From: A <a@example.com>\r\nTo: b@example.com\r\nSubject: Hi\r\n"
    b"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m@ocm>\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\nMIME-Version: 1.0\r\n\r\nbody\r\n'
)


def test_the_header_block_check_passes_what_ocm_writes_and_refuses_the_rest() -> None:
    check_header_block(GOOD)
    check_header_block(
        GOOD.replace(b"MIME", b"List-Unsubscribe: <x>\r\nMIME"), ["List-Unsubscribe"]
    )
    added = GOOD.replace(b"Subject: Hi\r\n", b"Subject: Hi\r\nBcc: x@evil.example\r\n")
    second_from = GOOD.replace(b"Subject: Hi\r\n", b"Subject: Hi\r\nFrom: ceo@bank.example\r\n")
    body = GOOD.replace(b"To: b", b"Content-Type: text/html\r\n\r\n<h1>x</h1>\r\nTo: b")
    folded = GOOD.replace(b"Subject: Hi\r\n", b"Subject: Hi\r\n there\r\n")
    for injected in (added, second_from, body):
        with pytest.raises(ValueError):
            check_header_block(injected)
    check_header_block(folded)  # a folded line continues a header, it is not one


async def _tenant(api: httpx.AsyncClient, deps: Deps) -> dict[str, str]:
    key = {"X-API-Key": (await signup.create_tenant(deps, "acme")).api_key}
    channel = {
        "name": "mail",
        "type": "email",
        "provider": "smtp",
        "settings": {"host": "smtp.example.com"},
        "default_sender": {"type": "email", "address": "noreply@acme.example"},
    }
    assert (await api.post("/api/v1/channels", json=channel, headers=key)).status_code == 201
    return key


def _message(where: str, payload: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "channel": "mail",
        "sender": {"type": "email", "address": "noreply@acme.example"},
        "receiver": {"type": "email", "address": "bob@example.com"},
        "content": {"type": "text", "text": "x"},
        "subject": "Hi",
    }
    _place(message, where, payload)
    return message


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
async def test_the_api_refuses_an_encoded_word_in_any_header_field(
    api: httpx.AsyncClient, deps: Deps, where: str, payload: str
) -> None:
    key = await _tenant(api, deps)
    answer = await api.post("/api/v1/messages", json=_message(where, payload), headers=key)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "VALIDATION_FAILED"
    field = {"subject": "subject", "file name": "content.text.attachments.0.filename"}.get(
        where, f"{where}.display_name"
    )
    assert any(e["field"] == field and "encoded word" in e["message"] for e in problem["errors"])


async def test_a_template_subject_rendering_an_encoded_word_is_refused(
    api: httpx.AsyncClient, deps: Deps
) -> None:
    key = await _tenant(api, deps)
    template = {
        "name": "order",
        "variables": [{"name": "s"}],
        "variants": {"email": {"subject": "Order {{ s }}", "text": "x"}},
    }
    assert (await api.post("/api/v1/templates", json=template, headers=key)).status_code == 201
    message = _message("subject", "Hi")
    del message["subject"]
    message["content"] = {
        "type": "template",
        "template": "order",
        "data": {"s": "=?utf-8?q?1=0D=0ABcc:_tpl@evil.example?="},
    }
    answer = await api.post("/api/v1/messages", json=message, headers=key)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "TEMPLATE_RENDER_FAILED"
