"""infra's scale_tier: each tier lays out Cosmos DB and Service Bus as their kind
allows, and the functions' instances x Service Bus calls stay within what those
stores sustain, recomputed here from the resources as deployed. The second half
changes one side at a time (the evaluated deployment, or a copy of the Terraform
files) and shows the check notices; the last part evaluates the variables'
validations as `terraform plan` would."""

from __future__ import annotations

import copy
import functools
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import hcl2
import pytest

from shared.containers import COUNTERS, MESSAGES
from tests.infra.checks import MAX_CONCURRENT_CALLS, scale_problems, service_bus_problems
from tests.infra.conftest import SCALE_TIERS
from tests.infra.deployment import INFRA, Deployment, read_deployment
from tests.infra.hcl import OPTIONS, Module, Scope


def test_each_tier_lays_out_its_stores_within_their_ceiling(deployment: Deployment) -> None:
    assert scale_problems(deployment) == []


def test_each_tier_passes_its_validations_and_checks(deployment: Deployment) -> None:
    assert deployment.validation_errors == []
    assert deployment.check_warnings == []


def test_the_host_setting_overrides_host_json_by_its_documented_name(
    deployment: Deployment,
) -> None:
    """Learn "host.json reference for Azure Functions 2.x and later", "Override
    host.json values": AzureFunctionsJobHost__ and the path with __ between levels."""
    assert (
        MAX_CONCURRENT_CALLS == "AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls"
    )
    assert MAX_CONCURRENT_CALLS in deployment.app_settings


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        (
            "serverless",
            {
                # Cosmos DB: 5,000 RU/s per container / 24.6 RU on messages, 15.2
                # on rollups; Service Bus Standard: 1,000 credits/s / (6.05
                # operations + 0.015 topic sends x 3 subscriptions' filters).
                "store_ceilings_messages_per_second": {
                    "cosmos messages": 203,
                    "cosmos counters": 5000,
                    "cosmos rollups": 328,
                    "cosmos (shared)": 5000,
                    "service bus": 164,
                },
                "ceiling_messages_per_second": 164,
                "dispatch_concurrency": 82,
                "function_maximum_instance_count": 16,
                "service_bus_max_concurrent_calls": 5,
            },
        ),
        (
            "provisioned",
            {
                # messages 8,000 RU/s / 24.6; rollups 6,000 / 15.2; Premium 1 unit x
                # 2,000 operations/s / 6.095.
                "store_ceilings_messages_per_second": {
                    "cosmos messages": 325,
                    "cosmos counters": 1000,
                    "cosmos rollups": 394,
                    "cosmos (shared)": 1000,
                    "service bus": 328,
                },
                "ceiling_messages_per_second": 325,
                "dispatch_concurrency": 162,
                "function_maximum_instance_count": 16,
                "service_bus_max_concurrent_calls": 10,
            },
        ),
    ],
)
def test_the_tiers_derived_figures(tier: str, expected: Mapping[str, Any]) -> None:
    """The figures infra/README.md "Scale tiers" states, as the output reports them."""
    scale = deployment_of(tier).outputs["scale"]
    assert {name: scale[name] for name in expected} == expected


def test_more_messaging_units_and_request_units_raise_the_ceiling() -> None:
    deployment = read_deployment(
        variables={
            "scale_tier": "provisioned",
            "servicebus_messaging_units": 4,
            "cosmos_autoscale_max_throughput": {
                "messages": 30000,
                "counters": 1000,
                "rollups": 30000,
            },
        }
    )
    scale = deployment.outputs["scale"]
    # Now the counters' 1,000 RU/s (1 RU a message) and the shared 1,000 bound it.
    assert scale["ceiling_messages_per_second"] == 1000
    assert (
        scale["function_maximum_instance_count"] * scale["service_bus_max_concurrent_calls"] <= 500
    )
    assert scale_problems(deployment) == []


def test_a_hand_set_instance_count_rederives_the_calls() -> None:
    deployment = read_deployment(
        variables={"scale_tier": "serverless", "function_maximum_instance_count": 8}
    )
    assert deployment.function_app["maximum_instance_count"] == 8
    assert deployment.app_settings[MAX_CONCURRENT_CALLS] == 10  # 83 // 8
    assert scale_problems(deployment) == [] and deployment.check_warnings == []


def test_a_hand_set_instance_count_above_the_budget_warns() -> None:
    deployment = read_deployment(
        variables={"scale_tier": "serverless", "function_maximum_instance_count": 100}
    )
    assert deployment.validation_errors == []
    assert [w for w in deployment.check_warnings if "functions_stay_within" in w]
    assert any("sustained throttling" in p for p in scale_problems(deployment))


# --- each check notices a change on one side --------------------------------------


def drop_messages_autoscale(d: Deployment) -> None:
    d.containers[MESSAGES]["autoscale_settings"] = []


def drop_counters_autoscale(d: Deployment) -> None:
    d.containers[COUNTERS]["autoscale_settings"] = []


def drop_database_autoscale(d: Deployment) -> None:
    d.cosmos_database["autoscale_settings"] = []


def manual_throughput(d: Deployment) -> None:
    d.containers[MESSAGES]["throughput"] = 400


def standard_namespace(d: Deployment) -> None:
    d.service_bus_namespace["sku"] = "Standard"


def partitioned_namespace(d: Deployment) -> None:
    d.service_bus_namespace["premium_messaging_partitions"] = 2


def odd_messaging_units(d: Deployment) -> None:
    d.service_bus_namespace["capacity"] = 3


def serverless_with_autoscale(d: Deployment) -> None:
    d.containers[MESSAGES]["autoscale_settings"] = [{"max_throughput": 4000}]


def serverless_database_autoscale(d: Deployment) -> None:
    d.cosmos_database["autoscale_settings"] = [{"max_throughput": 1000}]


def premium_namespace(d: Deployment) -> None:
    d.service_bus_namespace["sku"] = "Premium"


def host_json_calls(d: Deployment) -> None:
    d.app_settings[MAX_CONCURRENT_CALLS] = 16  # host.json's own value


def no_calls_setting(d: Deployment) -> None:
    del d.app_settings[MAX_CONCURRENT_CALLS]


def forty_instances(d: Deployment) -> None:
    d.function_app["maximum_instance_count"] = 40  # the old default


def one_call_on_one_instance(d: Deployment) -> None:
    d.function_app["maximum_instance_count"] = 1
    d.app_settings[MAX_CONCURRENT_CALLS] = 1


def misreported_ceiling(d: Deployment) -> None:
    d.outputs["scale"] = {**d.outputs["scale"], "ceiling_messages_per_second": 1000}


CHANGES = [
    (["provisioned"], drop_messages_autoscale, f"container {MESSAGES!r} has no autoscale"),
    (["provisioned"], drop_counters_autoscale, f"container {COUNTERS!r} has no autoscale"),
    (["provisioned"], drop_database_autoscale, "the database's shared autoscale maximum"),
    (["provisioned"], manual_throughput, f"container {MESSAGES!r}: manual throughput"),
    (["provisioned"], standard_namespace, "Service Bus is Standard, not Premium"),
    (["provisioned"], partitioned_namespace, "premium_messaging_partitions is 2"),
    (["provisioned"], odd_messaging_units, "capacity 3"),
    (["serverless"], serverless_with_autoscale, f"container {MESSAGES!r} sets throughput"),
    (["serverless"], serverless_database_autoscale, "the database sets throughput"),
    (["serverless"], premium_namespace, "Service Bus is Premium, not Standard"),
    (SCALE_TIERS, host_json_calls, "sustained throttling"),
    (SCALE_TIERS, no_calls_setting, f"{MAX_CONCURRENT_CALLS} is None"),
    (SCALE_TIERS, forty_instances, "sustained throttling"),
    (SCALE_TIERS, one_call_on_one_instance, "not derived from the tier"),
    (SCALE_TIERS, misreported_ceiling, "output scale.ceiling"),
]


@functools.cache
def deployment_of(tier: str) -> Deployment:
    return read_deployment(variables={"scale_tier": tier})


@pytest.mark.parametrize(
    ("tier", "change", "said"),
    [(tier, change, said) for tiers, change, said in CHANGES for tier in tiers],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_a_change_to_the_deployment_alone_is_caught(
    tier: str, change: Callable[[Deployment], None], said: str
) -> None:
    changed = copy.deepcopy(deployment_of(tier))
    change(changed)
    problems = scale_problems(changed)
    assert any(said in problem for problem in problems), problems


def test_a_partitioned_entity_is_caught(deployment: Deployment) -> None:
    changed = copy.deepcopy(deployment)
    queue = next(iter(changed.queues.values()))
    queue["partitioning_enabled"] = True
    problems = service_bus_problems(changed)
    assert any("partitioning_enabled is not false" in p for p in problems), problems


@pytest.mark.parametrize(
    ("tier", "file", "text", "replacement", "said"),
    [
        (
            "provisioned",
            "scale.tf",
            "maxConcurrentCalls = local.service_bus_max_concurrent_calls",
            "maxConcurrentCalls = 16",
            "sustained throttling",
        ),
        (
            "serverless",
            "main.tf",
            "maximum_instance_count        = local.function_instance_count",
            "maximum_instance_count        = 40",
            "sustained throttling",
        ),
        (
            "provisioned",
            "modules/cosmos/main.tf",
            "!var.serverless && contains(var.hot_containers, each.key)",
            "false",
            f"container {MESSAGES!r} has no autoscale",
        ),
        (
            "serverless",
            "modules/cosmos/main.tf",
            "for_each = var.serverless ? [] : [var.database_autoscale_max_throughput]",
            "for_each = [var.database_autoscale_max_throughput]",
            "the database sets throughput",
        ),
        (
            "serverless",
            "modules/cosmos/main.tf",
            'for_each = var.serverless ? ["EnableServerless"] : []',
            "for_each = []",
            f"container {MESSAGES!r} has no autoscale",  # read as a provisioned account
        ),
        (
            "provisioned",
            "main.tf",
            'sku             = var.scale_tier == "serverless" ? "Standard" : "Premium"',
            'sku             = "Standard"',
            "Service Bus is Standard, not Premium",
        ),
        (
            "serverless",
            "scale.tf",
            "service_bus_standard_credits_per_second = 1000",
            "service_bus_standard_credits_per_second = 10000",
            "sustained throttling",  # a limit above the published one
        ),
        (
            "provisioned",
            "scale.tf",
            "ceiling_messages_per_second = min(",
            "ceiling_messages_per_second = max(",
            "sustained throttling",  # the most a store sustains, not the least
        ),
    ],
)
def test_an_edit_of_the_terraform_files_is_caught(
    tier: str, file: str, text: str, replacement: str, said: str, tmp_path: Path
) -> None:
    """The same checks on a copy of infra/ with one line edited, read with
    scale_tier = ``tier``."""
    copy_of_infra = tmp_path / "infra"
    shutil.copytree(INFRA, copy_of_infra, ignore=shutil.ignore_patterns(".terraform*"))
    edited = copy_of_infra / file
    source = edited.read_text()
    assert text in source
    edited.write_text(source.replace(text, replacement, 1))
    problems = scale_problems(read_deployment(copy_of_infra, {"scale_tier": tier}))
    assert any(said in problem for problem in problems), problems


# --- the variables' validations ----------------------------------------------------


def validation_errors(variables: Mapping[str, Any]) -> list[str]:
    return Scope(Module.load(INFRA), variables).validation_errors()


@pytest.mark.parametrize(
    ("variables", "said"),
    [
        ({"scale_tier": "premium"}, "scale_tier must be"),
        (
            {
                "cosmos_hot_containers": ["messages", "nonesuch"],
                "cosmos_autoscale_max_throughput": {"messages": 8000, "nonesuch": 1000},
            },
            "cosmos_hot_containers must name containers of containers.tf",
        ),
        (
            {"cosmos_hot_containers": ["messages", "messages"]},
            "must not name a container twice",
        ),
        (
            {"cosmos_autoscale_max_throughput": {"messages": 8500, "counters": 1000}},
            "values must be multiples of 1000",
        ),
        (
            {"cosmos_autoscale_max_throughput": {"messages": 8000}},
            "one entry per container of cosmos_hot_containers",
        ),
        (
            {
                "cosmos_autoscale_max_throughput": {
                    "messages": 8000,
                    "counters": 1000,
                    "audit": 1000,
                }
            },
            "one entry per container of cosmos_hot_containers",
        ),
        ({"cosmos_database_autoscale_max_throughput": 500}, "at least 1000"),
        ({"servicebus_messaging_units": 3}, "must be 1, 2, 4, 8 or 16"),
        ({"function_maximum_instance_count": 0}, "from 1 to 1000"),
        ({"function_maximum_instance_count": 1001}, "from 1 to 1000"),
        ({"function_maximum_instance_count": 2.5}, "from 1 to 1000"),
    ],
)
def test_a_bad_variable_fails_its_validation(variables: Mapping[str, Any], said: str) -> None:
    errors = validation_errors(variables)
    assert any(said in error for error in errors), errors


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"scale_tier": "provisioned", "servicebus_messaging_units": 16},
        {"function_maximum_instance_count": 1000},
        {
            "cosmos_hot_containers": ["messages"],
            "cosmos_autoscale_max_throughput": {"messages": 1000},
        },
    ],
)
def test_good_variables_pass_their_validations(variables: Mapping[str, Any]) -> None:
    assert validation_errors(variables) == []


def test_the_tfvars_example_sets_declared_variables_that_validate() -> None:
    example = INFRA / "terraform.tfvars.example"
    variables = hcl2.loads(example.read_text(), serialization_options=OPTIONS)
    assert "scale_tier" in variables
    assert validation_errors(variables) == []
    # The commented provisioned settings, uncommented, validate too.
    lines = [
        line.removeprefix("# ")
        for line in example.read_text().splitlines()
        if line.startswith("# ") and " = " in line and not line.startswith("# subscription_id")
    ]
    provisioned = hcl2.loads("\n".join(lines) + "\n", serialization_options=OPTIONS)
    assert provisioned.get("scale_tier") == "provisioned"
    assert validation_errors({**variables, **provisioned}) == []
