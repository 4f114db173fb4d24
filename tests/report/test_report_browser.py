"""``acr-pull-doctor report`` against the emulator, opened in a real headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from emulator import scenario
from emulator.server import Emulator
from scripts.browser import visit
from shared.checks import Target

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def test_fleet_report_renders_in_chromium(
    emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str], tmp_path: Path
) -> None:
    from shared import runtime

    state = emulator.state
    scenario.apply_break(
        state, {"cause": "pull-secret-sp-invalid", "cluster": "aks-prod-weu", "daysAgo": 3}
    )
    scenario.apply_break(state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"})
    # One remediation first, so the audit log has an action to show.
    engine = runtime.engine(respond=True, source="test")
    cluster = engine.estate.get_cluster(scenario.find_cluster(state, "aks-prod-weu")["id"])
    outcome = engine.diagnose_and_respond(
        "test:kubelet", Target(cluster), ("kubelet-identity-detached",)
    )
    assert outcome.verdict.value == "remediated", outcome.reason
    scenario.apply_break(state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"})

    env = dict(app_env)
    page = tmp_path / "fleet.html"
    result = cli("report", "--out", str(page), env=env)
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if "] aks-" in line]
    assert len(progress) == 2 and "[2/2] " in progress[-1]  # one line per pair

    seen = visit(
        page,
        screenshot=tmp_path / "fleet.png",
        count=("#clusters tbody tr", ".finding.FAIL", "#expiry svg", "#actions tbody tr"),
    )
    assert seen.console_errors == [] and seen.page_errors == []
    assert {url.split(":", 1)[0] for url in seen.requests} == {"file"}  # nothing from a CDN
    assert seen.title.startswith("ACR pull fleet report")
    assert seen.counts["#clusters tbody tr"] == 2  # aks-batch-weu, aks-prod-weu
    assert seen.counts[".finding.FAIL"] >= 2
    assert seen.counts["#expiry svg"] == 1
    assert seen.counts["#actions tbody tr"] >= 1
    for text in (
        "6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",  # the pull secret's service principal
        "pull-secret-sp-invalid",
        "kubelet-identity-detached",
        "reconcile-cluster",
    ):
        assert text in seen.text
    assert "expired 3 d ago" in seen.text  # the expired secret on the timeline's table
    assert (tmp_path / "fleet.png").stat().st_size > 10_000

    stored = tmp_path / "stored.html"
    from_store = cli("report", "--from", "store", "--out", str(stored), "--quiet", env=env)
    assert from_store.returncode == 0, from_store.stderr
    assert from_store.stderr == ""
    html = stored.read_text(encoding="utf-8")
    assert "from state store" in html and "reconcile-cluster" in html


def test_report_without_a_state_store_from_store_is_a_clear_error(
    app_env: dict[str, str],
) -> None:
    env = {**app_env, "STATE_STORAGE_CONNECTION_STRING": "", "STATE_TABLE_SERVICE_URI": ""}
    result = cli("report", "--from", "store", "--out", os.devnull, env=env)
    assert result.returncode == 2
    assert "no state store configured" in result.stderr
