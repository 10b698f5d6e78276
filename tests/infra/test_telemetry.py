"""One telemetry pipeline in Azure (azure review C6): Learn's "Use OpenTelemetry
with Azure Functions" asks for host.json's ``telemetryMode`` and, for Python, the
``PYTHON_ENABLE_OPENTELEMETRY`` app setting; without either, the host's classic
pipeline copies every worker log line beside shared/telemetry.py's exporter."""

from __future__ import annotations

import json
from pathlib import Path

from tests.infra.deployment import Deployment

ROOT = Path(__file__).resolve().parents[2]


def test_host_json_hands_telemetry_to_opentelemetry() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["telemetryMode"] == "OpenTelemetry"


def test_the_function_app_enables_the_python_workers_pipeline(deployment: Deployment) -> None:
    assert deployment.app_settings.get("PYTHON_ENABLE_OPENTELEMETRY") == "true"


def test_the_local_sample_does_as_azure_does() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())
    assert sample["Values"]["PYTHON_ENABLE_OPENTELEMETRY"] == "true"
