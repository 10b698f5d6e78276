"""OCM_BACKEND=azure: the composition root picks the Azure adapters, builds nothing
at import time, connects on first use, and says clearly what is missing."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared import bootstrap, telemetry
from shared.adapters.azure.cosmos import CosmosDocumentStore, build_cosmos_client, create_containers
from shared.adapters.azure.keyvault import KeyVaultSecretStore
from shared.adapters.azure.servicebus import ServiceBusQueue
from shared.config import Settings
from shared.containers import CONTAINERS
from shared.services.identity import authentication
from shared.services.onboarding import signup
from tests.support import cosmos
from tests.support.cosmos import CosmosServer

ROOT = Path(__file__).resolve().parents[2]
AZURE = {
    "OCM_BACKEND": "azure",
    "OCM_KEY_VAULT_URL": "https://ocm-kv.vault.azure.net/",
    "ServiceBusConnection__fullyQualifiedNamespace": "ocm-sb.servicebus.windows.net",
}


@pytest.fixture(scope="module")
def server() -> Iterator[CosmosServer]:
    with cosmos.running() as running:
        yield running


async def test_the_azure_backend_runs_on_cosmos_service_bus_and_key_vault(
    server: CosmosServer,
) -> None:
    async with build_cosmos_client(server.endpoint, server.key) as client:
        database = await client.create_database_if_not_exists("bootstrap")
        await create_containers(database, CONTAINERS)
    settings = Settings(
        **AZURE,
        OCM_COSMOS_ENDPOINT=server.endpoint,
        OCM_COSMOS_KEY=server.key,
        OCM_COSMOS_DATABASE="bootstrap",
        OCM_LOG_LEVEL="DEBUG",
    )
    before = {name: logging.getLogger(name).level for name in telemetry.OUR_LOGGERS}
    deps = bootstrap.build(settings)
    try:
        # Azure review C7: OCM_LOG_LEVEL did nothing in Azure (only the CLI applied it).
        assert all(logging.getLogger(n).getEffectiveLevel() == logging.DEBUG for n in before)
        assert isinstance(deps.store, CosmosDocumentStore)
        assert isinstance(deps.queue, ServiceBusQueue)
        assert isinstance(deps.secrets, KeyVaultSecretStore)
        # Azure review C8: the adapter said every event reaches the topic, so every
        # one was sent and billed; it now applies the subscriptions' own rules.
        topic = settings.OCM_EVENTS_TOPIC
        assert not deps.queue.reaches_anyone(topic, {"type": "message.queued"})
        assert deps.queue.reaches_anyone(topic, {"type": "message.failed"})
        assert deps.queue.reaches_anyone(topic, {"type": "message.queued", "webhooks": "1"})
        # The store is live: a tenant goes to Cosmos and its key authenticates.
        created = await signup.create_tenant(deps, "acme")
        principal = await authentication.authenticate_api_key(deps, created.api_key)
        assert principal.tenant_id == created.tenant["id"]
        # Azure review L4: the async client was never entered, and only entering it
        # sets the consistency header and the session container (azure-cosmos's
        # CosmosClient.__aenter__ → _setup), so no session token was ever sent.
        assert deps.store.client is not None
        connection = deps.store.client.client_connection
        assert connection.session is not None
        assert connection.default_headers.get("x-ms-consistency-level") == "Session"
    finally:
        await bootstrap.close(deps)
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("OCM_COSMOS_ENDPOINT", "OCM_COSMOS_ENDPOINT must be the Cosmos DB endpoint"),
        ("OCM_KEY_VAULT_URL", "OCM_KEY_VAULT_URL must be the Key Vault URI"),
        (
            "ServiceBusConnection__fullyQualifiedNamespace",
            "ServiceBusConnection__fullyQualifiedNamespace must name the Service Bus namespace",
        ),
    ],
)
def test_a_missing_setting_is_named_with_what_it_should_look_like(missing: str, named: str) -> None:
    values = {**AZURE, "OCM_COSMOS_ENDPOINT": "https://ocm.documents.azure.com:443/"}
    del values[missing]
    with pytest.raises(ValidationError) as refused:
        Settings(**values)  # type: ignore[arg-type]
    assert named in str(refused.value)
    assert sum(s in str(refused.value) for s in AZURE) <= 2  # only what is wrong is named


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("OCM_COSMOS_ENDPOINT", "http://ocm.documents.azure.com/"),
        ("OCM_KEY_VAULT_URL", "ocm-kv.vault.azure.net"),
        ("ServiceBusConnection__fullyQualifiedNamespace", "sb://ocm-sb.servicebus.windows.net/"),
        ("OCM_COSMOS_KEY", "a-key"),
    ],
)
def test_production_refuses_plain_http_urls_and_keys(setting: str, value: str) -> None:
    values = {
        **AZURE,
        "OCM_ENV": "production",
        "OCM_COSMOS_ENDPOINT": "https://ocm.documents.azure.com:443/",
        setting: value,
    }
    with pytest.raises(ValidationError) as refused:
        Settings(**values)  # type: ignore[arg-type]
    assert setting in str(refused.value)
    assert "a-key" not in str(refused.value)


@pytest.mark.parametrize(
    "setting",
    ["OCM_KEY_VAULT_URL", "OCM_COSMOS_ENDPOINT", "ServiceBusConnection__fullyQualifiedNamespace"],
)
def test_a_placeholder_left_from_the_sample_is_refused_at_start_up(setting: str) -> None:
    """Azure review C12: `https://<vault>.vault.azure.net/` passed, and failed only at
    the first secret read."""
    sample = {
        "OCM_KEY_VAULT_URL": "https://<vault>.vault.azure.net/",
        "OCM_COSMOS_ENDPOINT": "https://<account>.documents.azure.com:443/",
        "ServiceBusConnection__fullyQualifiedNamespace": "<namespace>.servicebus.windows.net",
    }
    values = {**AZURE, "OCM_COSMOS_ENDPOINT": "https://ocm.documents.azure.com:443/"}
    values[setting] = sample[setting]
    with pytest.raises(ValidationError) as refused:
        Settings(**values)  # type: ignore[arg-type]
    assert setting in str(refused.value)


def test_the_public_origin_falls_back_to_the_host_name_azure_gives_the_app() -> None:
    """Azure review C10: the origin was hard-coded as func-<name>.azurewebsites.net in
    Terraform; App Service's newer names carry a hash and a region."""
    values = {**AZURE, "OCM_COSMOS_ENDPOINT": "https://ocm.documents.azure.com:443/"}
    named = "func-ocm-x1-a1b2c3.westeurope-01.azurewebsites.net"
    unset = Settings(**values, OCM_PUBLIC_BASE_URL="", WEBSITE_HOSTNAME=named)  # type: ignore[arg-type]
    assert unset.OCM_PUBLIC_BASE_URL is None
    assert unset.public_base_url == f"https://{named}"
    custom = Settings(  # type: ignore[arg-type]
        **values, OCM_PUBLIC_BASE_URL="https://ocm.example.com", WEBSITE_HOSTNAME=named
    )
    assert custom.public_base_url == "https://ocm.example.com"
    assert Settings(OCM_PUBLIC_BASE_URL="").public_base_url is None  # embedded: the request's


def test_a_refused_configuration_never_echoes_a_secret() -> None:
    secret = "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=SBSECRETxyz="
    with pytest.raises(ValidationError) as refused:
        Settings(  # type: ignore[call-arg]
            OCM_BACKEND="azure",
            ServiceBusConnection=secret,
            APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=AISECRET",
            OCM_COSMOS_KEY="COSMOSSECRET",
        )
    message = str(refused.value)
    assert "OCM_COSMOS_ENDPOINT" in message
    for leaked in ("SBSECRET", "AISECRET", "COSMOSSECRET", "SharedAccessKey"):
        assert leaked not in message


def test_importing_the_app_builds_nothing_and_loads_no_azure_sdk() -> None:
    script = (
        "import sys, function_app\n"
        "from shared import bootstrap\n"
        "assert bootstrap._deps is None\n"
        "print(*sorted(m for m in sys.modules if m.startswith(('azure.cosmos', "
        "'azure.servicebus', 'azure.keyvault', 'azure.identity', 'azure.monitor'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_the_host_refuses_to_load_an_app_with_a_missing_setting() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "OCM_BACKEND": "azure",
        "OCM_COSMOS_ENDPOINT": "https://ocm.documents.azure.com:443/",
        "ServiceBusConnection__fullyQualifiedNamespace": "ocm-sb.servicebus.windows.net",
    }
    loaded = subprocess.run(
        [sys.executable, "-c", "import function_app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert loaded.returncode != 0
    assert "OCM_KEY_VAULT_URL must be the Key Vault URI" in loaded.stderr
