"""infra/ deploys what the code uses: every entity a trigger names, every setting
Settings reads, every container of the Cosmos layout, and Service Bus behaving as
the queue port promises. The second half changes one side at a time and shows
the check notices."""

from __future__ import annotations

import copy
import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic.fields import FieldInfo

from shared.adapters.azure.cosmos_layout import CosmosContainer
from shared.config import Settings
from shared.containers import APPS, MESSAGES
from tests.infra.checks import (
    binding_problems,
    container_problems,
    dead_letter_problems,
    service_bus_problems,
    settings_problems,
)
from tests.infra.deployment import INFRA, Deployment, Trigger, read_deployment

# The code's names of things, which the changes below pick on.
DEFAULTS = {name: field.default for name, field in Settings.model_fields.items()}
OUTBOUND = DEFAULTS["OCM_OUTBOUND_QUEUE"]
PROVIDER_EVENTS = DEFAULTS["OCM_PROVIDER_EVENTS_QUEUE"]
TOPIC = DEFAULTS["OCM_EVENTS_TOPIC"]
LOG_SUBSCRIPTION = DEFAULTS["OCM_EVENTS_LOG_SUBSCRIPTION"]


def test_the_check_sees_the_apps_service_bus_triggers(triggers: list[Trigger]) -> None:
    entities = {key for trigger in triggers for key in trigger.binding}
    assert {"queueName", "topicName", "subscriptionName", "connection"} <= entities


def test_every_trigger_finds_its_queue_topic_and_subscription(
    triggers: list[Trigger], deployment: Deployment
) -> None:
    assert binding_problems(triggers, deployment) == []


def test_every_queue_and_subscription_has_a_dead_letter_consumer(
    triggers: list[Trigger], deployment: Deployment
) -> None:
    assert dead_letter_problems(triggers, deployment) == []


def test_a_subscription_without_a_dead_letter_consumer_is_caught(
    triggers: list[Trigger], deployment: Deployment
) -> None:
    """Azure review L5: the subscriptions' dead-letter queues had no consumer."""
    kept = [t for t in triggers if not t.binding.get("subscriptionName", "").endswith("Queue")]
    problems = dead_letter_problems(kept, deployment)
    assert any(LOG_SUBSCRIPTION in p and "dead letters" in p for p in problems), problems


def test_the_function_app_sets_every_setting_the_code_reads(deployment: Deployment) -> None:
    assert settings_problems(deployment) == []


def test_service_bus_keeps_the_queue_ports_promises(deployment: Deployment) -> None:
    assert service_bus_problems(deployment) == []


def test_cosmos_containers_are_laid_out_as_the_adapter_expects(
    layouts: list[CosmosContainer], deployment: Deployment
) -> None:
    assert container_problems(layouts, deployment) == []


def test_the_log_subscription_takes_the_codes_default_event_types(deployment: Deployment) -> None:
    (rule,) = deployment.subscriptions[TOPIC, LOG_SUBSCRIPTION]["rules"]
    assert rule["event_types"] == DEFAULTS["OCM_EVENTS_LOG_TYPES"].split(",")


# --- each check notices a change on one side --------------------------------


def rename_queue(d: Deployment) -> None:
    d.queues[OUTBOUND + "-renamed"] = d.queues.pop(OUTBOUND)


def drop_subscription(d: Deployment) -> None:
    d.subscriptions.clear()


def unset_setting(d: Deployment) -> None:
    del d.app_settings["OCM_KEY_VAULT_URL"]


def add_unknown_setting(d: Deployment) -> None:
    d.app_settings["OCM_KEYVAULT_URL"] = "https://typo.vault.azure.net/"


def set_local_only_setting(d: Deployment) -> None:
    d.app_settings["OCM_COSMOS_KEY"] = "a-key"


def set_invalid_value(d: Deployment) -> None:
    d.app_settings["OCM_MAX_ATTEMPTS"] = 0


def run_embedded(d: Deployment) -> None:
    d.app_settings["OCM_BACKEND"] = "embedded"


def lower_delivery_count(d: Deployment) -> None:
    d.queues[OUTBOUND]["max_delivery_count"] = 5


def lengthen_lock(d: Deployment) -> None:
    d.queues[PROVIDER_EVENTS]["lock_duration"] = "PT2M"


def drop_duplicate_detection(d: Deployment) -> None:
    d.topics[TOPIC]["requires_duplicate_detection"] = False


def filter_other_events(d: Deployment) -> None:
    d.subscriptions[TOPIC, LOG_SUBSCRIPTION]["rules"][0]["event_types"] = ["message.sent"]


def change_partition_key(d: Deployment) -> None:
    d.containers[MESSAGES]["partition_key_paths"] = ["/tenant_id"]


def drop_composite_index(d: Deployment) -> None:
    d.containers[MESSAGES]["indexing_policy"][0]["composite_index"].pop()


def add_container(d: Deployment) -> None:
    d.containers["reports"] = copy.deepcopy(d.containers[APPS])


@pytest.mark.parametrize(
    ("change", "check", "said"),
    [
        (rename_queue, "bindings", f"queue {OUTBOUND!r} is not in Terraform"),
        (drop_subscription, "bindings", f"subscription {LOG_SUBSCRIPTION!r}"),
        (unset_setting, "settings", "Settings.OCM_KEY_VAULT_URL is not set"),
        (add_unknown_setting, "settings", "OCM_KEYVAULT_URL is not a field of Settings"),
        (set_local_only_setting, "settings", "OCM_COSMOS_KEY is LOCAL_ONLY"),
        (set_invalid_value, "settings", "OCM_MAX_ATTEMPTS='0' is not valid"),
        (run_embedded, "settings", "OCM_BACKEND must be 'azure'"),
        (lower_delivery_count, "service bus", f"{OUTBOUND}: max_delivery_count 5"),
        (lengthen_lock, "service bus", f"{PROVIDER_EVENTS}: lock_duration PT2M"),
        (drop_duplicate_detection, "service bus", f"{TOPIC}: requires_duplicate_detection"),
        (filter_other_events, "service bus", "not OCM_EVENTS_LOG_TYPES"),
        (change_partition_key, "containers", f"{MESSAGES!r}: partition key paths"),
        (drop_composite_index, "containers", f"{MESSAGES!r}: composite indexes"),
        (add_container, "containers", "'reports' is in Terraform but not in shared/containers.py"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_a_change_to_terraform_alone_is_caught(
    change: Callable[[Deployment], None],
    check: str,
    said: str,
    deployment: Deployment,
    triggers: list[Trigger],
    layouts: list[CosmosContainer],
) -> None:
    changed = copy.deepcopy(deployment)
    change(changed)
    problems = {
        "bindings": lambda: binding_problems(triggers, changed),
        "settings": lambda: settings_problems(changed),
        "service bus": lambda: service_bus_problems(changed),
        "containers": lambda: container_problems(layouts, changed),
    }[check]()
    assert any(said in problem for problem in problems), problems


def test_a_queue_renamed_in_the_code_alone_is_caught(
    triggers: list[Trigger], deployment: Deployment
) -> None:
    fields = dict(Settings.model_fields)
    fields["OCM_OUTBOUND_QUEUE"] = FieldInfo(default=OUTBOUND + "-renamed")
    problems = binding_problems(triggers, deployment, fields)
    said = f"differs from the code's default {OUTBOUND + '-renamed'!r}"
    assert any(said in p for p in problems), problems


def test_a_trigger_on_a_setting_terraform_lacks_is_caught(deployment: Deployment) -> None:
    trigger = Trigger(
        "audit", {"queueName": "%OCM_AUDIT_QUEUE%", "connection": "ServiceBusConnection"}
    )
    problems = binding_problems([trigger], deployment)
    assert problems == [
        "audit(): queueName uses %OCM_AUDIT_QUEUE%, which the Function App's app settings lack",
        "audit(): queue '%OCM_AUDIT_QUEUE%' is not in Terraform",
    ]


def test_a_new_setting_in_the_code_alone_is_caught(deployment: Deployment) -> None:
    fields = {**Settings.model_fields, "OCM_AUDIT_QUEUE": FieldInfo(default="ocm-audit")}
    assert settings_problems(deployment, fields) == [
        "Settings.OCM_AUDIT_QUEUE is not set by the Function App's app settings"
    ]


def test_a_partition_key_changed_in_the_code_alone_is_caught(
    layouts: list[CosmosContainer], deployment: Deployment
) -> None:
    changed = [
        dataclasses.replace(c, partition_key_paths=("/tenant_id",)) if c.name == MESSAGES else c
        for c in layouts
    ]
    problems = container_problems(changed, deployment)
    assert any(f"{MESSAGES!r}: partition key paths" in p for p in problems), problems


@pytest.mark.parametrize(
    ("file", "text", "replacement", "said"),
    [
        ("main.tf", f'"{OUTBOUND}"', '"renamed"', "differs from the code's default"),
        ("containers.tf", '["/tenant_id", "/id"]', '["/tenant_id"]', "partition key paths"),
        ("main.tf", "OCM_SECRET_CACHE_SECONDS = 60", "", "OCM_SECRET_CACHE_SECONDS is not set"),
        ("main.tf", "max_delivery_count = 10", "max_delivery_count = 3", "max_delivery_count 3"),
    ],
)
def test_an_edit_of_the_terraform_files_is_caught(
    file: str,
    text: str,
    replacement: str,
    said: str,
    tmp_path: Path,
    triggers: list[Trigger],
    layouts: list[CosmosContainer],
) -> None:
    """The same checks on a copy of infra/ with one line edited: the facts are
    traced from the HCL itself, through locals, variables and module inputs."""
    copy_of_infra = tmp_path / "infra"
    shutil.copytree(INFRA, copy_of_infra)
    edited = copy_of_infra / file
    source = edited.read_text()
    assert text in source
    edited.write_text(source.replace(text, replacement, 1))
    changed = read_deployment(copy_of_infra)
    problems = (
        binding_problems(triggers, changed)
        + settings_problems(changed)
        + service_bus_problems(changed)
        + container_problems(layouts, changed)
    )
    assert any(said in problem for problem in problems), problems
