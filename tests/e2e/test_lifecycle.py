"""Stopping and restarting the platform loses nothing; e-mail goes out over SMTP."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.e2e.conftest import Client, Server, free_port, ocm, server_env
from tests.e2e.test_sending import in_seconds


def test_stop_and_restart_with_messages_in_flight_loses_nothing(tmp_path: Path) -> None:
    srv = Server(data_dir=tmp_path, port=free_port(), env=server_env(tmp_path))
    srv.start()
    try:
        client = srv.tenant("restart")
        client.channel("sandbox")
        soon = [client.send(send_at=in_seconds(1.5))["id"] for _ in range(20)]
        slow = [client.send(options={"sandbox": {"delay_ms": 1500}})["id"] for _ in range(20)]
        batch = client.post(
            "/api/v1/messages/batch",
            json={
                "messages": [
                    {
                        "channel": "sandbox",
                        "receiver": {"type": "phone", "address": "+4791234567"},
                        "content": {"type": "text", "text": f"n{i}"},
                    }
                    for i in range(200)
                ]
            },
        ).json()
        now = [item["id"] for item in batch["items"]]
        assert srv.stop(signal.SIGINT) == 0
        srv.start()
        for message_id in soon + slow + now:
            done = client.wait_for(message_id, timeout=30)
            assert done["status"] == "delivered", done
            assert done["attempts"] == 1
            assert [e["type"] for e in done["events"]].count("message.sent") == 1
    finally:
        if srv.process and srv.process.poll() is None:
            srv.stop()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        )
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_an_email_goes_out_through_an_smtp_channel(server: Server, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    client: Client = server.tenant("mailer")
    created = client.post(
        "/api/v1/channels",
        json={
            "name": "email-main",
            "type": "email",
            "settings": {"host": "127.0.0.1", "port": port, "security": "none"},
            "default_sender": {
                "type": "email",
                "address": "noreply@acme.example",
                "display_name": "Acme",
            },
        },
    )
    assert created.status_code == 201, created.text
    msg = client.send(
        channel="email-main",
        receiver={"type": "email", "address": "bob@example.com"},
        subject="Sign-in code",
        content={
            "type": "html",
            "html": "<p>Your code is <b>1234</b></p>",
            "text": "Your code is 1234",
        },
    )
    done = client.wait_for(msg["id"], lambda m: m["status"] in ("sent", "failed"))
    assert done["status"] == "sent", done
    deadline = time.monotonic() + 5
    while not inbox.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    mail_from, rcpt, email = inbox.messages[0]
    assert mail_from == "noreply@acme.example"
    assert rcpt == ["bob@example.com"]
    assert email["Subject"] == "Sign-in code"
    assert email["From"] == "Acme <noreply@acme.example>"
    assert email.get_content_type() == "multipart/alternative"
    assert done["provider_message_id"] == email["Message-ID"].strip("<>")


def test_serve_takes_its_port_and_data_directory_from_settings_or_flags(tmp_path: Path) -> None:
    import httpx

    from tests.e2e.conftest import OCM

    port = free_port()
    env = server_env(tmp_path / "unused", OCM_PORT=str(port))
    data = tmp_path / "flagged"
    process = subprocess.Popen(
        [*OCM, "serve", "--data-dir", str(data)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "ocm serve did not listen on OCM_PORT"
                time.sleep(0.1)
        assert (data / "ocm.sqlite3").exists()
        assert not (tmp_path / "unused").exists()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


def test_an_operator_suspends_and_resumes_a_tenant_from_the_cli(server: Server) -> None:
    """The CLI writes to the data directory a running server reads: the server sees
    the change once its lookup cache lapses (OCM_LOOKUP_CACHE_SECONDS: 5 s by default,
    1 s for these servers)."""
    acme = server.tenant("suspendable")
    assert acme.get("/api/v1/channels").status_code == 200
    done = ocm("tenant", "suspend", acme.tenant_id, "--json", env=server.env)
    assert done.returncode == 0, done.stderr
    assert '"suspended"' in done.stdout
    deadline = time.monotonic() + 10
    while (answer := acme.get("/api/v1/channels")).status_code == 200:
        assert time.monotonic() < deadline, "the suspension never reached the server"
        time.sleep(0.25)
    assert answer.status_code == 403 and answer.json()["code"] == "TENANT_SUSPENDED"
    listed = ocm("tenant", "list", "--json", env=server.env)
    assert {"tenant_id": acme.tenant_id, "name": "suspendable", "status": "suspended"} in (
        json.loads(listed.stdout)
    )
    assert ocm("tenant", "resume", acme.tenant_id, env=server.env).returncode == 0
    deadline = time.monotonic() + 10
    while acme.get("/api/v1/channels").status_code != 200:
        assert time.monotonic() < deadline, "the resumption never reached the server"
        time.sleep(0.25)
    unknown = ocm("tenant", "suspend", "tn_nobody", env=server.env)
    assert unknown.returncode == 1 and "No tenant" in unknown.stderr


def test_an_operator_caps_a_tenant_across_its_applications_from_the_cli(server: Server) -> None:
    """Security review, finding 10: the tenant's ceiling is set with `ocm tenant limits`
    and holds whichever of its applications asks (a new second of the bucket starts
    after the lookup cache lapses, 1 s for these servers)."""
    acme = server.tenant("capped")
    made = acme.post("/api/v1/apps", json={"name": "second", "scopes": ["read:channel"]})
    other = Client(server, acme.tenant_id, made.json()["api_key"])
    bad = ocm("tenant", "limits", acme.tenant_id, "--tenant-burst", "lots", env=server.env)
    assert bad.returncode == 1 and "--tenant-burst takes a number" in bad.stderr
    done = ocm(
        "tenant", "limits", acme.tenant_id, "--tenant-requests-per-second", "1",
        "--tenant-burst", "4", "--children-count", "yes", "--json", env=server.env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["limits"] == {
        "tenant_requests_per_second": 1,
        "tenant_burst": 4,
        "children_count": True,
    }
    time.sleep(1.5)
    statuses = [client.get("/api/v1/channels").status_code for client in (acme, other) * 4]
    assert statuses.count(429) >= 3, statuses  # 8 asks, at most 4 + 1 a second let through
    refused = other.get("/api/v1/channels")
    assert refused.status_code == 429
    assert "This tenant is over its rate limit" in refused.json()["detail"]
