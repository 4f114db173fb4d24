"""registry-throttled end to end: a scale-out the registry throttles (429 toomanyrequests) is
found by the pull-failure scan through the indexed timer function, classified as family 6 from the
kubelet's own words, diagnosed with the registry's SKU and Azure Monitor pull metrics, and ends
in one ticket that names the options with their commands. Nothing is changed automatically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulator import scenario
from emulator.server import Emulator
from emulator.tickets import github_issues
from tests.support.triggers import run_timer, ticket_policy, writes

__all__ = ["ticket_policy"]  # the fixture, used by name

CLUSTER, REGISTRY = "aks-shop-weu", "acrshopweu"
ETL = "acrshopweu.azurecr.io/batch/etl:latest"


def test_a_throttled_scale_out_is_found_classified_and_ticketed_with_the_options(
    emulator: Emulator,
    app_env: dict[str, str],
    ticket_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.load(emulator.state, "kubernetes-pulls")
    scenario.apply_break(
        emulator.state,
        {
            "cause": "registry-throttled",
            "registry": REGISTRY,
            "cluster": CLUSTER,
            "workload": "etl",
        },
    )
    emulator.clear_journal()

    outcomes, handed_over = run_timer(functions, "pull_failure_scan", caplog)

    assert handed_over == []
    (outcome,) = [
        o for o in outcomes if any(f["cause"] == "registry-throttled" for f in o["findings"])
    ]
    # 429 toomanyrequests is family 6: only its causes are checked, not authentication or network.
    assert {f["cause"] for f in outcome["findings"]} == {"registry-throttled", "pull-qps-exceeded"}
    (throttled,) = [f for f in outcome["findings"] if f["cause"] == "registry-throttled"]
    assert throttled["status"] == "FAIL", throttled
    assert throttled["evidence"]["sku"] == "Premium"
    assert throttled["evidence"]["images"] == [ETL]
    assert throttled["evidence"]["totalPulls"] > 0
    metrics = [e for e in emulator.journal("arm") if e.path.endswith("/Microsoft.Insights/metrics")]
    assert metrics and all(e.status == 200 for e in metrics)
    assert outcome["reason"].startswith("registry-throttled"), outcome["reason"]

    # One ticket, naming the options with their commands; no automatic fix was tried.
    (issue,) = github_issues(emulator.state)
    assert issue["title"] == f"[acr-pull] registry-throttled on {CLUSTER}"
    body = issue["body"]
    for option in (
        "maxSurge",
        "IfNotPresent",
        f"az acr artifact-streaming update --name {REGISTRY}",
        "az monitor metrics list",
    ):
        assert option in body, option
    assert [w for w in writes(emulator) if "/github/" not in w] == []
