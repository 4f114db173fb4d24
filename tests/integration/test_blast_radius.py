"""One actor per blast radius: a rotation that resets several clusters holds a lease on the
service principal and on each cluster it resets, or does nothing and is retried later.

Two instances each act on a cluster they hold the lease of; if both clusters share a service
principal, a rotation started for one would reset the other under the second instance's feet
(with a different secret, if that one rotates too). So the rotation takes every lease first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulator import scenario
from emulator.server import Emulator
from emulator.tickets import github_issues
from shared.azure.tables import TableStateStore
from shared.remediations.rotate_sp_secret import service_principal_key
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate
from tests.support.triggers import process_handover, run_timer, writes

APP = "0a1b2c3d-0000-4000-8000-0000000000b1"
CLUSTERS = ("aks-blue", "aks-green")
POLICY = """\
mode: enforce
actions:
  rotate-sp-secret: auto
rateLimit: {perClusterPerHour: 100}
cooldown: {minutes: 0}
tickets:
  provider: github
  route: {repo: contoso/aks-platform}
"""


@pytest.fixture
def shared_sp(
    emulator: Emulator, app_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Two clusters share one service principal whose only secret expired yesterday."""
    policy = tmp_path / "rotate.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    monkeypatch.setenv("POLICY_PATH", str(policy))
    scenario.load(
        emulator.state,
        {
            "subscriptions": [
                {
                    "id": PROD_SUB,
                    "resourceGroups": [
                        {
                            "name": "rg-aks",
                            "servicePrincipals": [
                                {
                                    "appId": APP,
                                    "displayName": "aks-shared",
                                    "secrets": [{"displayName": "rbac", "expiresInDays": -1}],
                                }
                            ],
                            "clusters": [{"name": n, "servicePrincipal": APP} for n in CLUSTERS],
                        }
                    ],
                }
            ]
        },
    )
    return {n: scenario.find_cluster(emulator.state, n)["id"] for n in CLUSTERS}


def store() -> TableStateStore:
    return TableStateStore.from_factory(fresh_estate().factory)


def rotation_writes(emulator: Emulator) -> list[str]:
    return [
        w for w in writes(emulator) if "/graph/" in w or w.endswith("/resetServicePrincipalProfile")
    ]


def passwords(emulator: Emulator) -> int:
    return len(emulator.state.graph_applications[APP]["passwordCredentials"])


@pytest.mark.parametrize("held", ["the other cluster", "the service principal"])
def test_a_rotation_waits_for_every_lease_in_its_blast_radius(
    emulator: Emulator,
    shared_sp: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    held: str,
) -> None:
    # The sweep acts on the first cluster using the app; another instance holds a lease the
    # rotation also needs: the second cluster's, or the service principal's.
    target, other = sorted(shared_sp.values(), key=str.lower)
    key = service_principal_key(APP) if held == "the service principal" else other
    leases = store()
    lease = leases.acquire_lease(key, "instance-2", 600)
    assert lease is not None
    emulator.clear_journal()

    outcomes, handed_over = run_timer(functions, "expiry_sweep", caplog)
    assert outcomes == []  # nothing concluded: deferred work is handed over, not dropped
    assert len(handed_over) == 1
    assert "owns the lease" in caplog.text
    assert rotation_writes(emulator) == []  # no secret minted, no cluster reset
    assert passwords(emulator) == 1
    assert github_issues(emulator.state) == []  # waiting is not a problem to ticket

    leases.release(lease)  # the other instance is done
    emulator.clear_journal()
    [redone] = process_handover(functions, handed_over, caplog)
    assert redone["verdict"] == "remediated", redone["reason"]
    resets = [w for w in rotation_writes(emulator) if w.endswith("/resetServicePrincipalProfile")]
    assert sorted(r.split("/managedClusters/")[1].split("/")[0] for r in resets) == sorted(CLUSTERS)
    assert passwords(emulator) == 2  # exactly one new secret
    # The rotation released every lease it took: another instance may act on any of them now.
    for resource in (target, other, service_principal_key(APP)):
        taken = leases.acquire_lease(resource, "instance-3", 60)
        assert taken is not None, resource
        leases.release(taken)


def test_the_expiry_sweep_finishes_a_rotation_a_dead_worker_left(
    emulator: Emulator,
    shared_sp: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker died after addPassword: the application has a fresh secret (the sweep's window
    logic alone would call it healthy) and the rotation's mark. The sweep rotates again."""
    from datetime import UTC, datetime, timedelta

    from emulator.providers import graph

    started = datetime.now(UTC) - timedelta(minutes=3)
    dead, _ = graph.add_password(
        emulator.state, APP, display_name=f"acr-pull-remediator {started:%Y-%m-%d}", start=started
    )
    with emulator.state.lock:
        emulator.state.graph_applications[APP]["tags"] = [
            f"acr-pull-remediator:rotating:{started.isoformat()}"
        ]
    emulator.clear_journal()

    outcomes, handed_over = run_timer(functions, "expiry_sweep", caplog)
    assert handed_over == []
    [outcome] = outcomes
    assert outcome["verdict"] == "remediated", outcome["reason"]
    assert "has not finished" in outcome["findings"][0]["summary"]
    resets = [w for w in rotation_writes(emulator) if w.endswith("/resetServicePrincipalProfile")]
    assert len(resets) == len(CLUSTERS)
    keys = {c["keyId"] for c in emulator.state.graph_applications[APP]["passwordCredentials"]}
    assert dead["keyId"] not in keys
    assert emulator.state.graph_applications[APP]["tags"] == []
