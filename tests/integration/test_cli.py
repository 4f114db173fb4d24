"""The stable command-line interface, run as users run it: a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from emulator import scenario
from emulator.server import Emulator

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def test_classify_json() -> None:
    message = (
        'Failed to pull image "myacr.azurecr.io/app:v1": rpc error: code = Unknown desc = failed to '
        'pull and unpack image "myacr.azurecr.io/app:v1": failed to resolve reference '
        '"myacr.azurecr.io/app:v1": failed to authorize: failed to fetch anonymous token: '
        "unexpected status: 403 Forbidden"
    )
    result = cli("classify", "--json", message)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["cause"] == "3"
    assert body["candidates"][0] == "3"


def test_classify_unknown() -> None:
    body = json.loads(cli("classify", "--json", "Back-off restarting failed container").stdout)
    assert body == {**body, "cause": "unknown", "candidates": []}


def test_diagnose_json_against_the_emulator(
    emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str]
) -> None:
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"}
    )
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    result = cli(
        "diagnose", "--cluster", cluster["id"], "--registry", "acrprodweu", "--json", env=app_env
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["registry"].endswith("/registries/acrprodweu")
    by_cause = {f["cause"]: f for f in report["findings"]}
    assert by_cause["kubelet-identity-detached"]["status"] == "FAIL"
    assert by_cause["kubelet-identity-detached"]["action"] == "reconcile-cluster"


def test_diagnose_table_and_bad_input(
    emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str]
) -> None:
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    table = cli("diagnose", "--cluster", cluster["id"], "--registry", "acrprodweu", env=app_env)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:4] == ["CAUSE", "STATUS", "ACTION", "WHY"]
    assert "kubelet-identity-detached" in table.stdout
    bad = cli("diagnose", "--cluster", "not-an-id", "--registry", "acrprodweu", env=app_env)
    assert bad.returncode == 2
    assert "not an ARM resource id" in bad.stderr
    missing = cli("diagnose", "--cluster", cluster["id"], "--registry", "nope", env=app_env)
    assert missing.returncode == 2
    assert "no registry named nope" in missing.stderr


def test_fleet_diagnosis_reports_progress_on_stderr(
    emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str]
) -> None:
    """No --cluster/--registry: every pair in scope, one progress line per pair on stderr."""
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"}
    )
    result = cli("diagnose", "--output", "json", env=app_env)
    assert result.returncode == 1, result.stderr
    pairs = json.loads(result.stdout)["pairs"]
    assert len(pairs) >= 2
    progress = [line for line in result.stderr.splitlines() if "] " in line]
    assert len(progress) == len(pairs)
    assert progress[-1].startswith(f"acr-pull-doctor: [{len(pairs)}/{len(pairs)}] ")
    broken = [
        p
        for p in pairs
        if p["cluster"] == scenario.find_cluster(emulator.state, "aks-prod-weu")["id"]
    ]
    causes = {f["cause"]: f["status"] for p in broken for f in p["findings"]}
    assert causes["kubelet-identity-detached"] == "FAIL"
    table = cli("diagnose", "--quiet", env=app_env)
    assert table.returncode == 1
    assert table.stderr == ""
    assert table.stdout.splitlines()[0].split()[:4] == ["CLUSTER", "REGISTRY", "CAUSE", "STATUS"]
    assert "aks-prod-weu" in table.stdout and "kubelet-identity-detached" in table.stdout
    assert table.stdout.rstrip().endswith(f"{len(pairs)} pairs diagnosed, 1 with a failed check")


def test_half_a_pair_is_bad_input(app_env: dict[str, str]) -> None:
    result = cli("diagnose", "--registry", "acrprodweu", env=app_env)
    assert result.returncode == 2
    assert "--cluster and --registry go together" in result.stderr
