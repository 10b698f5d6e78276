"""Channels: unique names per tenant, validated settings, write-only credentials."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.containers import CHANNELS, MESSAGES
from shared.domain.channels import ChannelCreate, ChannelUpdate
from shared.domain.errors import ConflictError, NotFoundError, ValidationFailed
from shared.domain.messages import Terminal
from shared.services.channels import channels
from shared.services.channels.channels import credentials_secret_name
from shared.services.messaging import intake, messages
from shared.services.onboarding import signup
from tests.fakes import FakeDocumentStore, FakeSecretStore
from tests.unit.conftest import World

SMTP = {"host": "smtp.example.com"}
NOREPLY = {"type": "email", "address": "noreply@acme.example"}


async def smtp_channel(world: World, name: str = "email-main", **fields: Any) -> dict[str, Any]:
    data = ChannelCreate(name=name, type="email", settings=SMTP, default_sender=NOREPLY, **fields)
    return await channels.create_channel(world.deps, world.tenant_id, data)


async def other_tenant(world: World) -> str:
    created = await signup.create_tenant(world.deps, "globex")
    tenant_id: str = created.tenant["id"]
    return tenant_id


def stored_bytes(world: World) -> bytes:
    store = world.deps.store
    assert isinstance(store, FakeDocumentStore)
    return b"\n".join(s.body for table in store._data.values() for s in table.values())


def secrets(world: World) -> FakeSecretStore:
    store = world.deps.secrets
    assert isinstance(store, FakeSecretStore)
    return store


async def test_a_new_channel_gets_an_id_defaults_and_no_credentials(world: World) -> None:
    doc = await smtp_channel(world)
    assert doc["id"].startswith("ch_")
    assert (doc["type"], doc["provider"], doc["status"]) == ("email", "smtp", "active")
    assert doc["settings"]["port"] == 587  # defaults are filled in
    assert doc["has_credentials"] is False


async def test_a_channel_name_is_unique_within_a_tenant(world: World) -> None:
    await smtp_channel(world)
    with pytest.raises(ConflictError) as caught:
        await smtp_channel(world)
    assert caught.value.code == "CHANNEL_NAME_TAKEN"


async def test_two_tenants_may_use_the_same_channel_name(world: World) -> None:
    other = await other_tenant(world)
    data = ChannelCreate(name="sandbox", type="sandbox")
    doc = await channels.create_channel(world.deps, other, data)
    assert doc["tenant_id"] == other


async def test_an_unknown_channel_type_is_refused(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await channels.create_channel(
            world.deps, world.tenant_id, ChannelCreate(name="x", type="carrier-pigeon")
        )
    assert caught.value.code == "CHANNEL_TYPE_UNKNOWN"


@pytest.mark.parametrize(
    "settings",
    [{}, {"host": "h", "port": 0}, {"host": "h", "security": "tls"}, {"host": "h", "x": 1}],
)
async def test_invalid_smtp_settings_are_refused(world: World, settings: dict[str, Any]) -> None:
    data = ChannelCreate(name="email-main", type="email", settings=settings)
    with pytest.raises(ValidationFailed) as caught:
        await channels.create_channel(world.deps, world.tenant_id, data)
    assert all(e.field.startswith("settings.") for e in caught.value.errors)


async def test_a_default_sender_of_a_type_the_channel_cannot_send_from_is_refused(
    world: World,
) -> None:
    sender = Terminal(type="phone", address="+4791234567")
    data = ChannelCreate(name="email-main", type="email", settings=SMTP, default_sender=sender)
    with pytest.raises(ValidationFailed) as caught:
        await channels.create_channel(world.deps, world.tenant_id, data)
    assert [e.field for e in caught.value.errors] == ["default_sender.type"]
    await smtp_channel(world)
    with pytest.raises(ValidationFailed):
        await channels.update_channel(
            world.deps, world.tenant_id, "email-main", ChannelUpdate(default_sender=sender)
        )


async def test_a_default_sender_with_an_invalid_address_is_refused(world: World) -> None:
    sender = Terminal(type="email", address="not-an-address")
    data = ChannelCreate(name="email-main", type="email", settings=SMTP, default_sender=sender)
    with pytest.raises(ValidationFailed) as caught:
        await channels.create_channel(world.deps, world.tenant_id, data)
    assert [e.field for e in caught.value.errors] == ["default_sender.address"]


async def test_an_update_merges_settings_and_validates_the_result(world: World) -> None:
    await smtp_channel(world)
    update = ChannelUpdate(settings={"port": 465, "security": "ssl"}, description="main")
    doc = (await channels.update_channel(world.deps, world.tenant_id, "email-main", update)).doc
    assert doc["settings"]["host"] == "smtp.example.com"  # kept
    assert (doc["settings"]["port"], doc["settings"]["security"]) == (465, "ssl")
    assert doc["description"] == "main"
    with pytest.raises(ValidationFailed):
        await channels.update_channel(
            world.deps, world.tenant_id, "email-main", ChannelUpdate(settings={"port": 70000})
        )
    after = await channels.get_channel(world.deps, world.tenant_id, "email-main")
    assert after["settings"]["port"] == 465  # a refused update stores nothing


async def test_an_update_may_clear_the_default_sender(world: World) -> None:
    await smtp_channel(world)
    update = ChannelUpdate.model_validate({"default_sender": None})
    doc = (await channels.update_channel(world.deps, world.tenant_id, "email-main", update)).doc
    assert doc["default_sender"] is None


async def test_credentials_are_kept_in_the_secret_store_only(world: World) -> None:
    doc = await smtp_channel(world)
    creds = {"username": "mailer", "password": "hunter2-very-secret"}
    updated = await channels.set_credentials(world.deps, world.tenant_id, "email-main", creds)
    assert updated["has_credentials"] is True
    name = credentials_secret_name(doc["id"])
    assert name == f"channel-{doc['id'].replace('_', '-')}-credentials"
    assert orjson.loads(secrets(world).values[name]) == creds
    assert b"hunter2-very-secret" not in stored_bytes(world)
    assert await channels.load_credentials(world.deps, updated) == creds


async def test_an_unknown_credential_field_is_refused(world: World) -> None:
    await smtp_channel(world)
    with pytest.raises(ValidationFailed) as caught:
        await channels.set_credentials(
            world.deps, world.tenant_id, "email-main", {"username": "u", "api_key": "k"}
        )
    assert [e.field for e in caught.value.errors] == ["api_key"]
    assert secrets(world).values == {}


async def test_a_sandbox_channel_takes_no_credentials(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await channels.set_credentials(world.deps, world.tenant_id, "sandbox", {"username": "u"})
    assert caught.value.code == "CREDENTIALS_NOT_SUPPORTED"


async def test_deleting_a_channel_frees_its_name_and_its_credentials(world: World) -> None:
    doc = await smtp_channel(world)
    await channels.set_credentials(world.deps, world.tenant_id, "email-main", {"username": "u"})
    assert await messages.delete_channel(world.deps, world.tenant_id, "email-main") == 0
    with pytest.raises(NotFoundError):
        await channels.get_channel(world.deps, world.tenant_id, "email-main")
    assert credentials_secret_name(doc["id"]) not in secrets(world).values
    again = await smtp_channel(world)
    assert again["id"] != doc["id"]
    deleted = await world.deps.store.read(CHANNELS, world.tenant_id, doc["id"])
    assert deleted is not None
    assert (deleted["status"], deleted["former_name"]) == ("deleted", "email-main")


async def test_deleting_a_channel_fails_its_pending_messages(world: World) -> None:
    raw = {
        "channel": "sandbox",
        "receiver": {"type": "phone", "address": "+4791234567"},
        "content": {"type": "text", "text": "hi"},
    }
    msg = await intake.accept_message(world.deps, world.tenant_id, raw)
    assert await messages.delete_channel(world.deps, world.tenant_id, "sandbox") == 1
    doc = await world.deps.store.read(MESSAGES, world.tenant_id, msg["id"])
    assert doc is not None
    assert doc["status"] == "failed"
    assert doc["error"]["code"] == "CHANNEL_DELETED"
    assert doc["outbox_at"] is None
    assert [e["type"] for e in doc["events"]] == ["message.queued", "message.failed"]
    with pytest.raises(NotFoundError) as caught:
        await intake.accept_message(world.deps, world.tenant_id, raw)
    assert caught.value.code == "CHANNEL_NOT_FOUND"


async def test_another_tenants_channel_is_not_found(world: World) -> None:
    await smtp_channel(world)
    other = await other_tenant(world)
    with pytest.raises(NotFoundError) as caught:
        await channels.get_channel(world.deps, other, "email-main")
    assert caught.value.code == "CHANNEL_NOT_FOUND"
    with pytest.raises(NotFoundError):
        await channels.update_channel(
            world.deps, other, "email-main", ChannelUpdate(description="x")
        )
    with pytest.raises(NotFoundError):
        await channels.set_credentials(world.deps, other, "email-main", {"username": "u"})
    with pytest.raises(NotFoundError):
        await messages.delete_channel(world.deps, other, "email-main")
    page = await channels.list_channels(world.deps, other, limit=10, cursor=None)
    assert page.items == []
    assert (await channels.get_channel(world.deps, world.tenant_id, "email-main"))["status"] == (
        "active"
    )


async def test_an_update_may_clear_the_description_and_pause_the_channel(world: World) -> None:
    await channels.update_channel(
        world.deps, world.tenant_id, "sandbox", ChannelUpdate(description="main")
    )
    updated = await channels.update_channel(
        world.deps,
        world.tenant_id,
        "sandbox",
        ChannelUpdate.model_validate({"description": None, "status": "paused"}),
    )
    doc = updated.doc
    assert doc["description"] is None
    assert doc["status"] == "paused"
