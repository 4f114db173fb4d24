"""The app as the Functions worker indexes it: names, triggers and bindings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import azure.functions as func

ROOT = Path(__file__).resolve().parents[2]


def raw_bindings(fn: Any) -> list[dict[str, Any]]:
    return [json.loads(b) for b in fn.get_raw_bindings()]


def test_indexed_functions(functions: dict[str, Any]) -> None:
    assert set(functions) == {
        "arm_events",
        "registry_events",
        "expiry_sweep",
        "drift_sweep",
        "pull_failure_scan",
        "retention_sweep",
        "sweep_handover",
        "sweep_batch",
        "alert_webhook",
        "diagnose",
        "health",
    }


def test_arm_events_is_an_event_grid_trigger(functions: dict[str, Any]) -> None:
    fn = functions["arm_events"]
    assert fn.get_trigger().get_binding_name() == "eventGridTrigger"
    assert raw_bindings(fn) == [{"direction": "IN", "type": "eventGridTrigger", "name": "event"}]


def test_health_is_an_anonymous_get(functions: dict[str, Any]) -> None:
    fn = functions["health"]
    bindings = {b["type"]: b for b in raw_bindings(fn)}
    assert bindings["httpTrigger"]["authLevel"] == "ANONYMOUS"
    assert bindings["httpTrigger"]["methods"] == ["GET"]
    assert bindings["httpTrigger"]["route"] == "health"
    assert bindings["http"]["direction"] == "OUT"
    response = fn.get_user_function()(func.HttpRequest("GET", "/api/health", body=b""))
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ok"}


def test_import_function_app_loads_no_management_sdk() -> None:
    """Cold start: the worker imports function_app before every first invocation."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import function_app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    assert "function_app" in imported
    assert not [m for m in imported if m.startswith(("azure.mgmt", "azure.identity", "lightkube"))]


def test_diagnose_needs_a_function_key(functions: dict[str, Any]) -> None:
    bindings = {b["type"]: b for b in raw_bindings(functions["diagnose"])}
    assert bindings["httpTrigger"]["authLevel"] == "FUNCTION"
    assert bindings["httpTrigger"]["route"] == "diagnose"


def test_the_example_settings_document_every_setting_the_code_reads() -> None:
    from shared.app_settings import APP_SETTINGS

    documented = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    platform = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "AzureWebJobsFeatureFlags"}
    assert set(documented) - platform == set(APP_SETTINGS)
