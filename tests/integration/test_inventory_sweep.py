"""Sweep discovery from the Resource Graph inventory: the same verdicts as ARM discovery, fewer
ARM reads, ARM again when Resource Graph fails, and ARM's word on anything found broken."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from emulator import scenario
from emulator.server import Emulator
from shared import runtime
from shared.azure.factory import ClientFactory
from shared.azure.inventory import load_inventory
from shared.config import Settings
from shared.policy import load_policy
from shared.sweeps import Budget, Sweeps
from tests.conftest import PROD_SUB, SANDBOX_SUB

BREAKS = (
    {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"},
    {"cause": "acrpull-missing", "cluster": "aks-batch-weu"},
)


@pytest.fixture
def both_subscriptions(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", f"{PROD_SUB},{SANDBOX_SUB}")


def drift(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, inventory: str) -> dict[str, Any]:
    """A diagnosing drift sweep (no responder: nothing changes); verdicts and requests."""
    monkeypatch.setenv("RESOURCE_GRAPH_INVENTORY", inventory)
    runtime.reset_clients()
    engine = runtime.engine(respond=False)
    sweeps = Sweeps(engine, load_policy(engine.settings.policy_path), budget=Budget(300))
    emulator.clear_journal()
    report = sweeps.drift(f"test-{inventory}")
    journal = [e for e in emulator.journal() if e.service == "arm"]
    return {
        "verdicts": sorted(
            (
                o.cluster_id.rsplit("/", 1)[-1],
                o.verdict.value,
                tuple(sorted((f.cause_id, f.status.value) for f in o.findings)),
            )
            for o in report.outcomes
        ),
        "notes": report.notes,
        "arm_reads": [e.path for e in journal if e.method == "GET"],
        "graph": [e for e in journal if "microsoft.resourcegraph" in e.path.lower()],
    }


def test_drift_via_inventory_gives_the_verdicts_of_arm_discovery(
    emulator: Emulator,
    sample: dict[str, Any],
    both_subscriptions: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for broken in BREAKS:
        scenario.apply_break(emulator.state, broken)

    arm = drift(emulator, monkeypatch, "off")
    graph = drift(emulator, monkeypatch, "on")

    assert graph["verdicts"] == arm["verdicts"]
    assert graph["notes"] == arm["notes"]
    failing = {name for name, verdict, _ in arm["verdicts"] if verdict != "healthy"}
    assert failing == {"aks-prod-weu", "aks-batch-weu"}
    assert arm["graph"] == [] and len(graph["graph"]) == 4  # one page of each query
    assert len(graph["arm_reads"]) < len(arm["arm_reads"])
    discovery = ("/managedclusters", "/registries", "/virtualmachinescalesets")
    listed = [p for p in graph["arm_reads"] if p.lower().endswith(discovery)]
    # Only the clusters found failing are read again from ARM (their scale sets, themselves).
    assert all(
        "aks-prod-weu" in p or "aks-batch-weu" in p or "mc_rg-aks-prod" in p.lower() for p in listed
    )


def test_on_the_demo_estate_private_networks_included_the_verdicts_are_the_same(
    emulator: Emulator, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario.load(emulator.state, "demo")
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", ",".join(emulator.state.subscriptions))

    arm = drift(emulator, monkeypatch, "off")
    graph = drift(emulator, monkeypatch, "on")

    assert graph["verdicts"] == arm["verdicts"]
    assert len({v for _, v, _ in arm["verdicts"]}) > 1  # healthy and broken pairs alike
    assert len(graph["arm_reads"]) < len(arm["arm_reads"])


def test_a_resource_graph_failure_falls_back_to_arm_discovery(
    emulator: Emulator,
    sample: dict[str, Any],
    both_subscriptions: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.apply_break(emulator.state, BREAKS[0])
    arm = drift(emulator, monkeypatch, "off")
    monkeypatch.setenv("ARM_RETRY_TOTAL", "0")
    emulator.inject(r"/providers/Microsoft\.ResourceGraph/resources$", status=500, times=1)

    with caplog.at_level(logging.WARNING, logger="shared.azure.inventory"):
        graph = drift(emulator, monkeypatch, "on")

    assert graph["verdicts"] == arm["verdicts"]
    assert "inventory unavailable, discovering through ARM" in caplog.text
    assert any(p.endswith("/managedClusters") for p in graph["arm_reads"])


def test_a_failure_in_a_stale_inventory_is_confirmed_from_arm(
    emulator: Emulator,
    sample: dict[str, Any],
    both_subscriptions: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    healthy = {
        rid: copy.deepcopy(body)
        for rid, body in emulator.state.resources.items()
        if body["type"] == "Microsoft.Compute/virtualMachineScaleSets"
    }
    scenario.apply_break(emulator.state, BREAKS[0])
    drift(emulator, monkeypatch, "on")  # Resource Graph indexes the broken scale sets
    emulator.state.graph_frozen = True  # and lags behind while someone fixes them in ARM
    for body in healthy.values():
        emulator.state.put(body)

    graph = drift(emulator, monkeypatch, "on")

    prod = next(v for v in graph["verdicts"] if v[0] == "aks-prod-weu")
    assert prod[1] == "healthy"  # ARM, the source of truth, has the identity on every pool
    assert any(p.endswith("/virtualMachineScaleSets") for p in graph["arm_reads"])


def test_inventory_pages_and_waits_for_the_quota(
    emulator: Emulator,
    sample: dict[str, Any],
    both_subscriptions: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.azure import inventory

    monkeypatch.setattr(inventory, "PAGE_SIZE", 2)
    emulator.state.graph_quota, emulator.state.graph_quota_window = 3, 1.0
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        import time

        time.sleep(seconds)

    settings = Settings.from_env(dict(app_env_of(emulator)))
    found = load_inventory(ClientFactory(settings), [PROD_SUB, SANDBOX_SUB], sleep=sleep)

    clusters = [
        r["id"] for r in emulator.state.resources.values() if r["type"].endswith("managedClusters")
    ]
    assert sorted(c.id for c in found.clusters) == sorted(clusters)
    assert found.requests > 3 and waits  # more pages than the quota: it waited for the reset
    statuses = [e.status for e in emulator.journal() if "ResourceGraph" in e.path]
    assert statuses == [200] * found.requests  # and never earned a 429
    assert set(found.subscriptions) == {PROD_SUB, SANDBOX_SUB}
    kubelet = {c.kubelet_identity.object_id for c in found.clusters if c.kubelet_identity}
    assert {a.principal_id for a in found.role_assignments} & kubelet


def app_env_of(emulator: Emulator) -> dict[str, str]:
    import os

    return {**os.environ}
