"""What Azure Functions Core Tools and the Functions host would see, checked without
them (they cannot run here): function_app.py indexed as the host indexes it, every
binding's names, connections and %settings% against local.settings.sample.json."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest

import function_app
from ocm_cli.triggers import app_functions
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
SETTING = re.compile(r"%([A-Za-z0-9_]+)%")


def bindings() -> list[tuple[str, dict[str, Any]]]:
    """(function name, binding) for every binding, as the worker reports them."""
    return [
        (fn.get_function_name(), json.loads(raw))
        for fn in app_functions(function_app.app)
        for raw in fn.get_raw_bindings()
    ]


def test_the_sample_settings_run_the_host_and_the_worker() -> None:
    assert SAMPLE["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert SAMPLE["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"


def test_the_sample_lists_every_setting_the_code_reads() -> None:
    assert set(Settings.model_fields) <= set(SAMPLE)


def test_the_sample_is_a_valid_configuration_once_placeholders_are_filled() -> None:
    values = {k: v.replace("<vault>", "kv").replace("<namespace>", "sb") for k, v in SAMPLE.items()}
    settings = Settings(**{k: v for k, v in values.items() if k in Settings.model_fields})
    assert settings.OCM_BACKEND == "azure"


def test_function_names_are_unique_and_every_function_is_async() -> None:
    functions = app_functions(function_app.app)
    names = [fn.get_function_name() for fn in functions]
    assert len(names) == len(set(names))
    for fn in functions:
        if fn.get_function_name() != "http_app_func":  # the SDK's ASGI bridge
            assert inspect.iscoroutinefunction(fn.get_user_function()), fn.get_function_name()


@pytest.mark.parametrize(("function", "binding"), bindings(), ids=lambda v: str(v)[:40])
def test_every_binding_resolves_from_the_sample_settings(
    function: str, binding: dict[str, Any]
) -> None:
    for key in ("queueName", "topicName", "subscriptionName", "schedule"):
        if key in binding:
            for name in SETTING.findall(binding[key]):
                assert name in SAMPLE, f"{function}.{key} needs {name} in the sample"
                assert name in Settings.model_fields, f"{name} is not a setting the code knows"
            assert "%" not in SETTING.sub("", binding[key]), f"{function}.{key} has a stray %"
    if binding["type"] == "serviceBusTrigger":
        # Identity-based connection: <connection>__fullyQualifiedNamespace
        assert binding["connection"] == "ServiceBusConnection"
        assert f"{binding['connection']}__fullyQualifiedNamespace" in SAMPLE
        assert ("queueName" in binding) != ("topicName" in binding)
        assert ("topicName" in binding) == ("subscriptionName" in binding)
    elif binding["type"] == "httpTrigger":
        assert binding["authLevel"] == "ANONYMOUS"  # OCM authenticates itself
        assert binding["route"] == "/{*route}"
    elif binding["type"] == "timerTrigger":
        assert binding["useMonitor"] is False
    else:
        assert binding["type"] == "http" and binding["direction"] == "OUT", binding


def test_dead_letter_triggers_name_a_sub_queue_of_a_trigger_queue() -> None:
    queues = {b["queueName"] for _, b in bindings() if "queueName" in b}
    for queue in queues:
        if queue.endswith("/$DeadLetterQueue"):
            assert queue.removesuffix("/$DeadLetterQueue") in queues


def test_host_json_routes_under_api_and_bounds_service_bus_work() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensions"]["http"]["routePrefix"] == "api"
    service_bus = host["extensions"]["serviceBus"]
    assert service_bus["autoCompleteMessages"] is True  # a return completes, a raise abandons
    assert service_bus["maxConcurrentCalls"] >= 1
    assert host["logging"]["applicationInsights"]["samplingSettings"]["isEnabled"] is True


def test_the_package_leaves_out_tests_infra_and_the_venv() -> None:
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".funcignore").read_text().splitlines()}
    assert {"tests", "infra", ".venv", "local.settings.json", "bench"} <= ignored
    for needed in ("function_app.py", "functions", "shared", "host.json", "requirements.txt"):
        assert needed not in ignored


def test_the_readme_explains_every_sample_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Settings") :]
    explained = set(re.findall(r"`([A-Za-z][A-Za-z0-9_]*)`", table))
    assert set(SAMPLE) - explained == set()


def test_every_invocation_reaches_application_insights_as_a_request() -> None:
    """Azure review C5: `Host.Results` (the category behind the `requests` table,
    written at Information) was at Error, so only failed invocations were requests;
    sampling leaves requests and exceptions alone."""
    host = json.loads((ROOT / "host.json").read_text())
    levels = host["logging"]["logLevel"]
    assert levels.get("Host.Results", levels["default"]) in {"Information", "Debug", "Trace"}
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    assert {"Request", "Exception"} <= set(sampling["excludedTypes"].split(";"))
