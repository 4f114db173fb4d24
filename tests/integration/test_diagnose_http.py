"""The on-demand diagnose endpoint, invoked as the worker would with a real HttpRequest."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
import pytest

from emulator import scenario
from emulator.server import Emulator
from tests.conftest import SANDBOX_SUB


def call(
    functions: dict[str, Any], *, params: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, Any]:
    request = func.HttpRequest(
        "POST" if body else "GET", "/api/diagnose", params=params or {}, body=body
    )
    response = functions["diagnose"].get_user_function()(request)
    return response.status_code, json.loads(response.get_body())


def test_report_for_a_broken_pair(
    emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str], functions: dict[str, Any]
) -> None:
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"}
    )
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    status, report = call(
        functions, body=json.dumps({"cluster": cluster["id"], "registry": "acrprodweu"}).encode()
    )
    assert status == 200
    assert report["registry"].endswith("/registries/acrprodweu")
    finding = next(f for f in report["findings"] if f["cause"] == "kubelet-identity-detached")
    assert finding["status"] == "FAIL"
    assert [e.method for e in emulator.journal("arm")].count("PUT") == 0  # diagnosis never writes


@pytest.mark.parametrize(
    ("params", "body", "status", "error"),
    [
        ({}, b"", 400, "required"),
        ({"cluster": "nope", "registry": "acrprodweu"}, b"", 400, "not an ARM resource id"),
        ({}, b"{broken", 400, "not JSON"),
        ({}, b"[1]", 400, "JSON object"),
        ({}, b"x" * 70000, 413, "larger than"),
    ],
)
def test_bad_requests(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    params: dict[str, str],
    body: bytes,
    status: int,
    error: str,
) -> None:
    code, report = call(functions, params=params, body=body)
    assert code == status
    assert error in report["error"]
    assert emulator.journal("arm") == []


def test_out_of_scope_and_missing(
    emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str], functions: dict[str, Any]
) -> None:
    dev = scenario.find_cluster(emulator.state, "aks-dev-neu")
    code, report = call(functions, params={"cluster": dev["id"], "registry": "acrprodweu"})
    assert (code, report["error"]) == (
        403,
        f"subscription {SANDBOX_SUB} is outside the configured scope",
    )
    prod = scenario.find_cluster(emulator.state, "aks-prod-weu")
    code, report = call(functions, params={"cluster": prod["id"] + "x", "registry": "acrprodweu"})
    assert code == 404
    assert "was not found" in report["error"]
