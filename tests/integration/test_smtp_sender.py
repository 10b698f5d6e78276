"""The SMTP sender against a real (aiosmtpd) server on 127.0.0.1."""

from __future__ import annotations

import base64
import datetime as dt
import email
import socket
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.adapters.providers.smtp import SmtpSender
from shared.domain.errors import ProviderError
from shared.ports import SendRequest


class Recorder:
    """Records what arrives; answers ``answers[address]`` to RCPT TO for some."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.peers: list[Any] = []
        self.answers: dict[str, str] = {}
        self.mail_answers: list[str] = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_answers:
            return self.mail_answers.pop(0)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.answers:
            return self.answers[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(msg)  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.peers.append(session.peer)
        return "250 Message accepted"

    @property
    def connections(self) -> int:
        return len(set(self.peers))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def servers() -> Iterator[list[Controller]]:
    started: list[Controller] = []
    yield started
    for controller in started:
        controller.stop(no_assert=True)


def serve(servers: list[Controller], handler: Recorder, port: int, **kw: Any) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kw)
    controller.start()
    servers.append(controller)
    return controller


def make_request(port: int, **kw: Any) -> SendRequest:
    content = kw.pop("content", {"type": "text", "text": "Hello Bob"})
    message = {
        "id": kw.pop("message_id", "msg_01"),
        "tenant_id": "ten_1",
        "sender": {"type": "email", "address": "alice@example.com", "display_name": "Alice A"},
        "receiver": {"type": "email", "address": kw.pop("to", "bob@example.com")},
        "subject": "Greetings",
        "content": content,
    }
    settings = {
        "host": kw.pop("host", "127.0.0.1"),
        "port": port,
        "security": kw.pop("security", "none"),
        "timeout_seconds": kw.pop("timeout", 5.0),
        "local_hostname": "ocm.test",
    }
    channel = {"id": kw.pop("channel_id", "chn_1"), "tenant_id": "ten_1", "settings": settings}
    return SendRequest(
        tenant_id="ten_1",
        message=message,
        channel=channel,
        credentials=kw.pop("credentials", {}),
        attempt=1,
        throttles=0,
        idempotency_key=message["id"],
    )


@pytest.fixture
async def sender() -> Any:
    s = SmtpSender(allow_private_egress=True)
    yield s
    await s.close()


async def test_a_text_email_arrives_with_its_headers(servers, sender) -> None:
    handler, port = Recorder(), free_port()
    serve(servers, handler, port)
    result = await sender.send(make_request(port))
    [msg] = handler.received
    assert msg["From"] == "Alice A <alice@example.com>"
    assert msg["To"] == "bob@example.com"
    assert msg["Subject"] == "Greetings"
    assert msg["Message-ID"] == "<msg_01@ocm>"
    assert msg["Date"]
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().strip() == "Hello Bob"
    assert handler.envelopes == [("alice@example.com", ["bob@example.com"])]
    assert result.provider_message_id == "msg_01@ocm"


async def test_html_arrives_as_alternative_with_both_parts_and_attachment(servers, sender):
    handler, port = Recorder(), free_port()
    serve(servers, handler, port)
    pdf = b"%PDF-1.4 fake"
    content = {
        "type": "html",
        "html": "<p>Hello <b>Bob</b></p><script>x()</script>",
        "attachments": [
            {
                "filename": "a.pdf",
                "content_type": "application/pdf",
                "content": base64.b64encode(pdf).decode(),
            }
        ],
    }
    await sender.send(make_request(port, content=content))
    [msg] = handler.received
    assert msg.get_content_type() == "multipart/mixed"
    body, attachment = list(msg.iter_parts())
    assert body.get_content_type() == "multipart/alternative"
    plain, rich = list(body.iter_parts())
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().strip() == "Hello Bob"
    assert rich.get_content_type() == "text/html"
    assert "<b>Bob</b>" in rich.get_content()
    assert attachment.get_filename() == "a.pdf"
    assert attachment.get_content() == pdf


async def test_an_attachment_by_url_is_a_permanent_error(sender) -> None:
    content = {
        "type": "text",
        "text": "x",
        "attachments": [{"filename": "a", "content_type": "a/b", "url": "https://x/a"}],
    }
    with pytest.raises(ProviderError) as err:
        await sender.send(make_request(free_port(), content=content))
    assert (err.value.kind, err.value.code) == ("permanent", "ATTACHMENT_URL_NOT_SUPPORTED")


@pytest.mark.parametrize(
    ("answer", "kind", "code"),
    [
        ("451 4.3.0 try later", "transient", "SMTP_451"),
        ("550 no such user", "permanent", "SMTP_550"),
    ],
)
async def test_a_refused_recipient_maps_by_reply_code(servers, sender, answer, kind, code):
    handler, port = Recorder(), free_port()
    serve(servers, handler, port)
    handler.answers["nobody@example.com"] = answer
    with pytest.raises(ProviderError) as err:
        await sender.send(make_request(port, to="nobody@example.com"))
    assert (err.value.kind, err.value.code) == (kind, code)
    assert answer.split(" ", 1)[1] in err.value.reason
    await sender.send(make_request(port))  # the connection is still good
    assert handler.connections == 1


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = auth_data.login == b"alice" and auth_data.password == b"s3cret-pass"
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_with_the_right_password_sends(servers, sender) -> None:
    handler, port = Recorder(), free_port()
    serve(
        servers,
        handler,
        port,
        authenticator=_authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    creds = {"username": "alice", "password": "s3cret-pass"}
    await sender.send(make_request(port, credentials=creds))
    assert len(handler.received) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_a_wrong_password_is_permanent_and_never_shown(servers, sender) -> None:
    handler, port = Recorder(), free_port()
    serve(
        servers,
        handler,
        port,
        authenticator=_authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    creds = {"username": "alice", "password": "wrong-hunter2"}
    with pytest.raises(ProviderError) as err:
        await sender.send(make_request(port, credentials=creds))
    assert (err.value.kind, err.value.code) == ("permanent", "SMTP_AUTH_FAILED")
    assert "wrong-hunter2" not in f"{err.value} {err.value!r} {err.value.details}"
    assert handler.received == []


async def test_a_closed_port_is_transient(sender) -> None:
    with pytest.raises(ProviderError) as err:
        await sender.send(make_request(free_port()))
    assert (err.value.kind, err.value.code) == ("transient", "SMTP_CONNECTION_FAILED")


async def test_a_silent_server_is_a_transient_timeout(sender) -> None:
    with socket.socket() as listener:  # accepts TCP (backlog) but never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(ProviderError) as err:
            await sender.send(make_request(port, timeout=0.3))
    assert (err.value.kind, err.value.code) == ("transient", "SMTP_TIMEOUT")


async def test_private_destinations_are_refused_without_permission() -> None:
    sender = SmtpSender(allow_private_egress=False)
    with pytest.raises(ProviderError) as err:
        await sender.send(make_request(free_port()))
    assert (err.value.kind, err.value.code) == ("permanent", "EGRESS_REFUSED")


async def test_two_sends_share_one_connection_per_channel(servers, sender) -> None:
    handler, port = Recorder(), free_port()
    serve(servers, handler, port)
    await sender.send(make_request(port, message_id="msg_1"))
    await sender.send(make_request(port, message_id="msg_2"))
    assert handler.connections == 1
    await sender.send(make_request(port, message_id="msg_3", channel_id="chn_2"))
    assert handler.connections == 2


async def test_an_idle_connection_is_not_reused(servers) -> None:
    handler, port = Recorder(), free_port()
    serve(servers, handler, port)
    sender = SmtpSender(allow_private_egress=True, idle_seconds=0)
    await sender.send(make_request(port, message_id="msg_1"))
    await sender.send(make_request(port, message_id="msg_2"))
    await sender.close()
    assert handler.connections == 2


async def test_a_server_restart_between_sends_is_survived(servers, sender) -> None:
    handler, port = Recorder(), free_port()
    first = serve(servers, handler, port)
    await sender.send(make_request(port, message_id="msg_1"))
    first.stop()
    servers.remove(first)
    serve(servers, handler, port)
    await sender.send(make_request(port, message_id="msg_2"))
    assert [m["Message-ID"] for m in handler.received] == ["<msg_1@ocm>", "<msg_2@ocm>"]
    assert handler.connections == 2


async def test_a_reused_connection_answering_421_is_retried_on_a_fresh_one(servers, sender):
    handler, port = Recorder(), free_port()
    serve(servers, handler, port)
    await sender.send(make_request(port, message_id="msg_1"))
    handler.mail_answers.append("421 4.4.2 idle too long, closing")
    await sender.send(make_request(port, message_id="msg_2"))
    assert [m["Message-ID"] for m in handler.received] == ["<msg_1@ocm>", "<msg_2@ocm>"]
    assert handler.connections == 2


async def test_a_421_on_a_fresh_connection_is_transient(servers, sender) -> None:
    handler, port = Recorder(), free_port()
    serve(servers, handler, port)
    handler.mail_answers.append("421 4.3.2 shutting down")
    with pytest.raises(ProviderError) as err:
        await sender.send(make_request(port))
    assert (err.value.kind, err.value.code, err.value.provider_status) == (
        "transient",
        "SMTP_421",
        "421",
    )


# -- TLS ------------------------------------------------------------------------


def _cert(subject: str, issuer: str, key: Any, signer: Any, *exts: Any) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    for ext, critical in exts:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def _certificates(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context for ``name`` signed by a fresh CA, and a client trusting it."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert(
        "OCM test CA",
        "OCM test CA",
        ca_key,
        ca_key,
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
        (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False),
    )
    leaf = _cert(
        name,
        "OCM test CA",
        key,
        ca_key,
        (x509.SubjectAlternativeName([x509.DNSName(name)]), False),  # no IP address in it
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "cert.pem").write_bytes(leaf.public_bytes(pem))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server, client


async def test_starttls_verifies_the_host_name_while_connecting_by_ip(servers, tmp_path):
    server_ctx, client_ctx = _certificates(tmp_path, "localhost")
    handler, port = Recorder(), free_port()
    serve(servers, handler, port, tls_context=server_ctx, require_starttls=True)
    sender = SmtpSender(allow_private_egress=True, tls_context=client_ctx)
    await sender.send(make_request(port, host="localhost", security="starttls"))
    await sender.close()
    assert len(handler.received) == 1


async def test_implicit_tls_works(servers, tmp_path) -> None:
    server_ctx, client_ctx = _certificates(tmp_path, "localhost")
    handler, port = Recorder(), free_port()
    serve(servers, handler, port, ssl_context=server_ctx)
    sender = SmtpSender(allow_private_egress=True, tls_context=client_ctx)
    await sender.send(make_request(port, host="localhost", security="ssl"))
    await sender.close()
    assert len(handler.received) == 1


async def test_a_certificate_for_another_name_is_a_permanent_tls_failure(servers, tmp_path):
    server_ctx, client_ctx = _certificates(tmp_path, "mail.example.test")
    handler, port = Recorder(), free_port()
    serve(servers, handler, port, tls_context=server_ctx, require_starttls=True)
    sender = SmtpSender(allow_private_egress=True, tls_context=client_ctx)
    with pytest.raises(ProviderError) as err:
        await sender.send(make_request(port, host="localhost", security="starttls"))
    await sender.close()
    assert (err.value.kind, err.value.code) == ("permanent", "SMTP_TLS_FAILED")
    assert handler.received == []


async def test_starttls_not_offered_is_a_permanent_tls_failure(servers, sender) -> None:
    handler, port = Recorder(), free_port()
    serve(servers, handler, port)  # plain server, no STARTTLS
    with pytest.raises(ProviderError) as err:
        await sender.send(make_request(port, security="starttls"))
    assert (err.value.kind, err.value.code) == ("permanent", "SMTP_TLS_FAILED")
    assert handler.received == []
