"""`ocm azure init` (azure review R3): `func start` on the sample settings needs the
Cosmos DB containers and the Service Bus entities to exist, and nothing created them.

The Cosmos DB part runs for real, on the local Cosmos server. No Service Bus emulator
installs here: the entities it would create are checked against what Terraform
declares, their creation against an in-memory namespace at the SDK boundary, and a
refusal with the real SDK against a local HTTPS server that answers as Service Bus
does to a caller without the Manage right.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.cosmos import PartitionKey
from azure.servicebus.aio.management import ServiceBusAdministrationClient
from azure.servicebus.management import SqlRuleFilter

from ocm_cli import azure_init
from ocm_cli.main import main
from shared.adapters.azure.cosmos import build_cosmos_client
from shared.adapters.azure.cosmos_layout import layout
from shared.adapters.azure.provision import sql_filter
from shared.config import Settings
from shared.containers import CONTAINERS
from shared.ports import Subscription
from tests.infra.deployment import read_deployment
from tests.support import cosmos, tls
from tests.support.cosmos import CosmosServer

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text())
# The form Microsoft's Service Bus emulator documents for its connection string.
EMULATOR = (
    "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
)


@pytest.fixture(scope="module")
def server() -> Iterator[CosmosServer]:
    with cosmos.running() as running:
        yield running


def settings(**values: Any) -> Settings:
    base = {
        "OCM_BACKEND": "azure",
        "OCM_COSMOS_ENDPOINT": "https://ocm-cosmos.documents.azure.com:443/",
        "OCM_KEY_VAULT_URL": "https://ocm-kv.vault.azure.net/",
        "ServiceBusConnection__fullyQualifiedNamespace": "ocm-sb.servicebus.windows.net",
    }
    return Settings(**{**base, **values})


# --- Cosmos DB, for real --------------------------------------------------------------


def local_settings_file(tmp_path: Path, server: CosmosServer, database: str) -> Path:
    """The sample as a developer fills it in for the emulators (its Cosmos key as it
    ships: the emulator's well-known key, which the local server takes too)."""
    values = dict(SAMPLE["Values"])
    values["OCM_KEY_VAULT_URL"] = values["OCM_KEY_VAULT_URL"].replace("<vault>", "kv")
    values["OCM_COSMOS_ENDPOINT"] = server.endpoint
    values["OCM_COSMOS_DATABASE"] = database
    values["ServiceBusConnection"] = EMULATOR
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({**SAMPLE, "Values": values}))
    return path


def test_init_creates_every_container_once_as_the_adapter_lays_them_out(
    server: CosmosServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"init-{uuid.uuid4().hex[:8]}"
    path = local_settings_file(tmp_path, server, database)

    assert main(["azure", "init", "--settings", str(path)]) == 0
    first = capsys.readouterr()
    assert f"created  database {database}" in first.out
    for spec in CONTAINERS:
        assert f"created  container {spec.name}\n" in first.out
    assert f"{len(CONTAINERS) + 1} created, 0 already existed." in first.out
    assert first.err == ""

    assert main(["azure", "init", "--settings", str(path)]) == 0
    second = capsys.readouterr()
    assert "created " not in second.out
    assert f"exists   database {database}" in second.out
    for spec in CONTAINERS:
        assert f"exists   container {spec.name}\n" in second.out
    assert f"0 created, {len(CONTAINERS) + 1} already existed." in second.out

    found = asyncio.run(containers(server, database))
    assert set(found) == {spec.name for spec in CONTAINERS}
    for spec in CONTAINERS:
        shape, properties = layout(spec), found[spec.name]
        assert properties["partitionKey"] == shape.partition_key(), spec.name
        assert properties["uniqueKeyPolicy"] == shape.unique_key_policy(), spec.name
        assert properties["defaultTtl"] == shape.default_ttl, spec.name
        policy = properties["indexingPolicy"]
        for part in ("includedPaths", "excludedPaths", "compositeIndexes"):
            assert policy[part] == shape.indexing_policy[part], (spec.name, part)


async def containers(server: CosmosServer, database: str) -> dict[str, dict[str, Any]]:
    """The containers of ``database`` by id, with their properties (then deletes it)."""
    async with build_cosmos_client(server.endpoint, server.key) as client:
        db = client.get_database_client(database)
        found = {c["id"]: c async for c in db.list_containers()}
        await client.delete_database(database)
    return found


def test_with_the_service_bus_emulator_init_lists_what_its_config_must_declare(
    server: CosmosServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = local_settings_file(tmp_path, server, f"init-{uuid.uuid4().hex[:8]}")
    assert main(["azure", "init", "--settings", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Service Bus emulator" in out and "Config.json" in out
    for queue in ("ocm-outbound", "ocm-provider-events", "ocm-webhook-deliveries"):
        assert f"  queue {queue}\n" in out
    assert "  subscription ocm-events/ocm-webhooks, rule: [webhooks] = '1'" in out
    assert "  subscription ocm-events/ocm-analytics, rule: [analytics] = '1'" in out


async def test_a_container_partitioned_otherwise_is_reported_not_altered(
    server: CosmosServer,
) -> None:
    database = f"init-{uuid.uuid4().hex[:8]}"
    async with build_cosmos_client(server.endpoint, server.key) as client:
        db = await client.create_database(database)
        await db.create_container("directory", partition_key=PartitionKey(path="/tenant_id"))
    lines: list[str] = []
    code = await azure_init.run(
        settings(
            OCM_COSMOS_ENDPOINT=server.endpoint,
            OCM_COSMOS_KEY=server.key,
            OCM_COSMOS_DATABASE=database,
            ServiceBusConnection=EMULATOR,
        ),
        out=lines.append,
    )
    assert code == 1
    (line,) = [line for line in lines if "container directory" in line]
    assert line.startswith("  differs  container directory")
    assert "['/tenant_id']" in line and "['/id']" in line


async def test_without_a_key_cosmos_is_left_to_terraform() -> None:
    """An Entra ID token is data-plane only: it cannot create a container."""
    lines: list[str] = []
    code = await azure_init.run(settings(ServiceBusConnection=EMULATOR), out=lines.append)
    assert code == 0
    assert lines[0] == azure_init.NO_COSMOS_KEY
    assert "control-plane" in lines[0] and "OCM_COSMOS_KEY" in lines[0]


def test_init_refuses_the_embedded_backend(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OCM_BACKEND", "embedded")
    assert main(["azure", "init"]) == 2
    assert "OCM_BACKEND=azure" in capsys.readouterr().err


def test_a_missing_settings_file_is_named_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["azure", "init", "--settings", str(tmp_path / "nope.json")]) == 2
    assert "cannot read the settings file" in capsys.readouterr().err


# --- Service Bus: what should exist -----------------------------------------------------


def _duration(iso: str) -> timedelta:
    """The ISO 8601 durations infra/ writes (PT1M, PT10M, PT30S)."""
    assert iso.startswith("PT")
    units = {"H": 3600, "M": 60, "S": 1}
    return timedelta(seconds=units[iso[-1]] * int(iso[2:-1]))


def test_the_entities_are_those_terraform_declares() -> None:
    deployed = read_deployment()
    entities = azure_init.service_bus_layout(Settings())
    assert {q.name for q in entities.queues} == set(deployed.queues)
    assert set(entities.topics) == set(deployed.topics)
    assert {(s.topic, s.name) for s in entities.subscriptions} == set(deployed.subscriptions)
    for queue in entities.queues:
        declared = deployed.queues[queue.name]
        assert queue.lock_duration == _duration(declared["lock_duration"])
        assert queue.max_delivery_count == declared["max_delivery_count"]
        window = _duration(declared["duplicate_detection_history_time_window"])
        assert entities.duplicate_detection_window == window
    for topic in deployed.topics.values():
        window = _duration(topic["duplicate_detection_history_time_window"])
        assert entities.duplicate_detection_window == window
    for sub in entities.subscriptions:
        declared = deployed.subscriptions[sub.topic, sub.name]
        assert sub.lock_duration == _duration(declared["lock_duration"])
        assert sub.max_delivery_count == declared["max_delivery_count"]
        (rule,) = declared["rules"]
        assert rule["name"] == "event-types"
        types = rule["event_types"]
        expected = (
            types.expression
            if not isinstance(types, list)
            else "[type] IN (" + ", ".join(f"'{t}'" for t in types) + ")"
        )
        assert sub.sql_filter == expected


@pytest.mark.parametrize(
    ("subscription", "expected"),
    [
        (Subscription("all"), "1=1"),
        (Subscription("none", only=("type", ())), "1=0"),
        (Subscription("one", only=("type", ("message.failed",))), "[type] = 'message.failed'"),
        (Subscription("quoted", only=("type", ("it's",))), "[type] = 'it''s'"),
        (Subscription("two", only=("type", ("a", "b"))), "[type] IN ('a', 'b')"),
    ],
)
def test_a_port_subscription_becomes_a_sql_filter(
    subscription: Subscription, expected: str
) -> None:
    assert sql_filter(subscription) == expected


def test_the_log_subscription_follows_its_setting() -> None:
    entities = azure_init.service_bus_layout(Settings(OCM_EVENTS_LOG_TYPES="*"))
    log = next(s for s in entities.subscriptions if s.name == "ocm-events-log")
    assert log.sql_filter == "1=1"


@pytest.mark.parametrize(
    ("connection", "emulator"),
    [
        (EMULATOR, True),
        ("Endpoint=sb://localhost;UseDevelopmentEmulator = TRUE", True),
        (
            "Endpoint=sb://ocm.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b",
            False,
        ),
        ("Endpoint=sb://localhost;UseDevelopmentEmulator=false", False),
        (None, False),
    ],
)
def test_the_emulator_is_told_by_its_connection_string(
    connection: str | None, emulator: bool
) -> None:
    assert azure_init.is_emulator(connection) is emulator


# --- Service Bus: creating it, at the SDK boundary ----------------------------------------


class FakeNamespace:
    """The few ServiceBusAdministrationClient methods provisioning calls, on an
    in-memory namespace; a new subscription gets Service Bus's `$Default` rule."""

    fully_qualified_namespace = "fake.servicebus.windows.net"

    def __init__(self) -> None:
        self.queues: dict[str, dict[str, Any]] = {}
        self.topics: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[tuple[str, str], dict[str, Any]] = {}
        self.rules: dict[tuple[str, str], dict[str, str]] = {}
        self.calls: list[str] = []

    async def __aenter__(self) -> FakeNamespace:
        return self

    async def __aexit__(self, *_: object) -> None:
        pass

    @staticmethod
    async def _named(names: Any) -> AsyncIterator[SimpleNamespace]:
        for name in list(names):
            yield SimpleNamespace(name=name)

    def list_queues(self) -> AsyncIterator[SimpleNamespace]:
        return self._named(self.queues)

    def list_topics(self) -> AsyncIterator[SimpleNamespace]:
        return self._named(self.topics)

    def list_subscriptions(self, topic: str) -> AsyncIterator[SimpleNamespace]:
        assert topic in self.topics
        return self._named(s for t, s in self.subscriptions if t == topic)

    def list_rules(self, topic: str, subscription: str) -> AsyncIterator[SimpleNamespace]:
        return self._named(self.rules[topic, subscription])

    async def create_queue(self, name: str, **properties: Any) -> None:
        self.calls.append(f"create_queue {name}")
        self.queues[name] = properties

    async def create_topic(self, name: str, **properties: Any) -> None:
        self.calls.append(f"create_topic {name}")
        self.topics[name] = properties

    async def create_subscription(self, topic: str, name: str, **properties: Any) -> None:
        self.calls.append(f"create_subscription {topic}/{name}")
        self.subscriptions[topic, name] = properties
        self.rules[topic, name] = {"$Default": "1=1"}

    async def create_rule(self, topic: str, sub: str, name: str, *, filter: Any) -> None:
        assert isinstance(filter, SqlRuleFilter)
        self.calls.append(f"create_rule {topic}/{sub}/{name}")
        self.rules[topic, sub][name] = filter.sql_expression

    async def delete_rule(self, topic: str, sub: str, name: str) -> None:
        self.calls.append(f"delete_rule {topic}/{sub}/{name}")
        del self.rules[topic, sub][name]


async def test_init_creates_the_missing_entities_once() -> None:
    namespace = FakeNamespace()
    first: list[str] = []
    assert await azure_init.run(settings(), admin=namespace, out=first.append) == 0  # type: ignore[arg-type]
    assert set(namespace.queues) == {
        "ocm-outbound",
        "ocm-provider-events",
        "ocm-webhook-deliveries",
    }
    for properties in namespace.queues.values():
        assert properties["lock_duration"] == timedelta(minutes=1)
        assert properties["max_delivery_count"] == 10
        assert properties["requires_duplicate_detection"] is True
        assert properties["duplicate_detection_history_time_window"] == timedelta(minutes=10)
        assert properties["dead_lettering_on_message_expiration"] is True
    assert namespace.topics["ocm-events"]["requires_duplicate_detection"] is True
    for properties in namespace.subscriptions.values():
        assert properties["dead_lettering_on_filter_evaluation_exceptions"] is True
    assert namespace.rules == {
        ("ocm-events", "ocm-events-log"): {
            "event-types": "[type] IN ('message.failed', 'message.expired', 'analytics.drift')"
        },
        ("ocm-events", "ocm-webhooks"): {"event-types": "[webhooks] = '1'"},
        ("ocm-events", "ocm-analytics"): {"event-types": "[analytics] = '1'"},
    }
    assert "  created  queue ocm-outbound" in first
    assert "  removed  rule ocm-events/ocm-webhooks/$Default (takes every event)" in first
    assert (
        first[-1] == "10 created, 0 already existed."
    )  # 3 queues, a topic, 3 subscriptions, 3 rules

    calls = len(namespace.calls)
    second: list[str] = []
    assert await azure_init.run(settings(), admin=namespace, out=second.append) == 0  # type: ignore[arg-type]
    assert len(namespace.calls) == calls  # nothing changed
    assert not [line for line in second if line.lstrip().startswith(("created", "removed"))]
    assert second[-1] == "0 created, 10 already existed."


async def test_a_default_rule_left_behind_is_removed_on_the_next_run() -> None:
    namespace = FakeNamespace()
    await azure_init.run(settings(), admin=namespace, out=lambda _: None)  # type: ignore[arg-type]
    namespace.rules["ocm-events", "ocm-events-log"]["$Default"] = "1=1"  # a run cut short
    lines: list[str] = []
    await azure_init.run(settings(), admin=namespace, out=lines.append)  # type: ignore[arg-type]
    assert "$Default" not in namespace.rules["ocm-events", "ocm-events-log"]
    assert "  removed  rule ocm-events/ocm-events-log/$Default (takes every event)" in lines


# --- Service Bus: refused, with the real SDK ----------------------------------------------


class Token:
    """An Entra ID credential of our own (a token, or the refusal
    DefaultAzureCredential raises when nobody is signed in)."""

    def __init__(self, signed_in: bool = True) -> None:
        self.signed_in = signed_in

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if not self.signed_in:
            raise ClientAuthenticationError(
                "DefaultAzureCredential failed to retrieve a token from the included "
                "credentials.\nAttempted credentials:\n\tEnvironmentCredential: ..."
            )
        return AccessToken("token", int(time.time()) + 3600)

    async def close(self) -> None:
        pass


@pytest.fixture
async def refusing_namespace(tmp_path: Path) -> AsyncIterator[tuple[int, Path, list[int]]]:
    """HTTPS on 127.0.0.1 answering every management call as Service Bus answers a
    token without the Manage claim (the status is the test's to choose)."""
    certificate = tls.self_signed(tmp_path)
    status = [401]

    async def refuse(request: web.Request) -> web.Response:
        body = (
            f"<Error><Code>{status[0]}</Code><Detail>Manage,EntityRead claims required for "
            "this operation.</Detail></Error>"
        )
        return web.Response(status=status[0], body=body, content_type="application/xml")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certificate.server_context())
    await site.start()
    port = runner.addresses[0][1]
    yield port, certificate.cert, status
    await runner.cleanup()


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refusal_says_the_manage_right_is_needed(
    refusing_namespace: tuple[int, Path, list[int]], status: int
) -> None:
    port, ca, answer = refusing_namespace
    answer[0] = status
    admin = ServiceBusAdministrationClient(
        f"127.0.0.1:{port}", Token(), connection_verify=str(ca), retry_total=0
    )
    lines: list[str] = []
    code = await azure_init.run(settings(), admin=admin, out=lines.append)
    assert code == 1
    (refusal,) = [line for line in lines if line.startswith("Service Bus refused")]
    assert f"HTTP {status}" in refusal
    assert "Manage right" in refusal and "Azure Service Bus Data Owner" in refusal


async def test_no_sign_in_says_how_to_sign_in(
    refusing_namespace: tuple[int, Path, list[int]],
) -> None:
    port, ca, _ = refusing_namespace
    admin = ServiceBusAdministrationClient(
        f"127.0.0.1:{port}", Token(signed_in=False), connection_verify=str(ca), retry_total=0
    )
    lines: list[str] = []
    assert await azure_init.run(settings(), admin=admin, out=lines.append) == 1
    (refusal,) = [line for line in lines if "no Entra ID token" in line]
    assert "az login" in refusal and "Manage right" in refusal
    assert "Attempted credentials" not in refusal  # the first line only
