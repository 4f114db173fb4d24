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


def test_every_setting_the_code_reads_is_declared() -> None:
    """A setting read in code but missing from shared/app_settings.py is never deployed by infra/
    nor documented: find every literal name passed to an env lookup, by parsing the code."""
    import ast

    from shared.app_settings import APP_SETTINGS

    read: set[str] = set()
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = _setting_name(node)
            if name and name.isupper():
                read.add(name)
    assert read, "the scan found no setting at all: it is broken"
    undeclared = read - set(APP_SETTINGS) - {"IDENTITY_ENDPOINT", "IDENTITY_HEADER"}
    assert not undeclared


def _setting_name(node: object) -> str | None:
    """``env.get("X")``, ``env["X"]``, ``os.environ.get("X")`` and helpers ``_f(env, "X", ...)``."""
    import ast

    if isinstance(node, ast.Subscript) and _is_env(node.value):
        key = node.slice
        return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "get" and _is_env(func.value):
        first = node.args[0]
    elif len(node.args) >= 2 and _is_env(node.args[0]):
        first = node.args[1]
    else:
        return None
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def _is_env(node: object) -> bool:
    import ast

    if isinstance(node, ast.Name):
        return node.id in {"env", "environ"}
    return isinstance(node, ast.Attribute) and node.attr == "environ"
