"""sp-mismatch through the real authorization client and Graph (azure-core pipeline) against the emulator."""

from __future__ import annotations

from typing import Any

from emulator import scenario
from emulator.server import Emulator
from shared.checks.base import Finding, Status, Target
from shared.checks.sp_mismatch import SpMismatch
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

OLD_APP = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
NEW_APP = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
REGISTRY_ID = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/acr1"


def estate_spec(
    *, clusters: list[dict[str, Any]], breaks: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {"name": "rg-aks", "clusters": clusters},
                    {"name": "rg-acr", "registries": [{"name": "acr1"}]},
                ],
            }
        ],
        "breaks": breaks or [],
    }


SP_CLUSTER = {"name": "aks-sp", "servicePrincipal": OLD_APP, "attachedRegistries": ["acr1"]}


def run(emulator: Emulator, name: str = "aks-sp") -> Finding:
    estate = fresh_estate()
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, name)["id"])
    return SpMismatch().run(Target(cluster, REGISTRY_ID), estate)


def test_assignment_to_current_sp_passes(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(clusters=[SP_CLUSTER]))
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["clientId"] == OLD_APP
    assert (
        finding.evidence["servicePrincipalObjectId"]
        == emulator.state.graph_applications[OLD_APP]["_servicePrincipal"]["id"]
    )
    assert any("/graph/v1.0/servicePrincipals(appId=" in e.path for e in emulator.journal("graph"))


def test_assignment_left_on_old_sp_fails(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            clusters=[SP_CLUSTER],
            breaks=[{"cause": "sp-mismatch", "cluster": "aks-sp", "newAppId": NEW_APP}],
        ),
    )
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.action_id == "attach-acr"
    assert finding.evidence["clientId"] == NEW_APP
    [stale] = finding.evidence["otherServicePrincipals"]
    assert stale["appId"] == OLD_APP
    assert (
        stale["principalId"]
        == emulator.state.graph_applications[OLD_APP]["_servicePrincipal"]["id"]
    )
    assert stale["role"] == "AcrPull"
    assert OLD_APP in finding.summary and NEW_APP in finding.summary
    assert (
        "az aks show --resource-group rg-aks --name aks-sp --query servicePrincipalProfile.clientId --output tsv"
        in finding.commands
    )
    assert f"az aks update -n aks-sp -g rg-aks --attach-acr {REGISTRY_ID}" in finding.commands


def test_deleted_old_sp_still_counts_as_stale(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            clusters=[SP_CLUSTER],
            breaks=[{"cause": "sp-mismatch", "cluster": "aks-sp", "newAppId": NEW_APP}],
        ),
    )
    del emulator.state.graph_applications[OLD_APP]
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["otherServicePrincipals"][0]["deleted"] is True


def test_kubelet_identities_of_other_clusters_are_not_old_sps(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    managed = {"name": "aks-mi", "attachedRegistries": ["acr1"]}
    scenario.load(
        emulator.state,
        estate_spec(clusters=[{"name": "aks-sp", "servicePrincipal": OLD_APP}, managed]),
    )
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["otherServicePrincipals"] == []
    kubelet = scenario.find_cluster(emulator.state, "aks-mi")["properties"]["identityProfile"][
        "kubeletidentity"
    ]
    assert any(
        e.path.endswith(f"/servicePrincipals/{kubelet['objectId']}")
        for e in emulator.journal("graph")
    )


def test_managed_identity_cluster_is_not_applicable(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state, estate_spec(clusters=[{"name": "aks-mi", "attachedRegistries": ["acr1"]}])
    )
    finding = run(emulator, "aks-mi")
    assert finding.status is Status.PASS
    assert finding.summary.startswith("Not applicable")
    assert emulator.journal("graph") == []


def test_graph_denied_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(clusters=[SP_CLUSTER]))
    emulator.inject(r"^/graph/v1\.0/servicePrincipals", status=403)
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert finding.action_id is None


def test_registry_denied_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(clusters=[SP_CLUSTER]))
    emulator.deny(REGISTRY_ID)
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert finding.evidence["unreadable"] == REGISTRY_ID
