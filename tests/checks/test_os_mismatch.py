"""os-mismatch through the real ARM and registry data-plane clients against the emulator."""

from __future__ import annotations

from typing import Any

from emulator import scenario
from emulator.server import Emulator
from shared.checks.base import Finding, Status, Target
from shared.checks.os_mismatch import OsMismatch
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

REGISTRY_ID = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/acr1"
LINUX = [{"name": "system", "vmSize": "Standard_D4s_v5", "mode": "System"}]
MIXED = [*LINUX, {"name": "win", "vmSize": "Standard_D4s_v5", "osType": "Windows"}]
REPOSITORIES = {
    "app": {"v1": ["linux/amd64"]},
    "both": {"v1": ["linux/amd64", "windows/amd64"]},
    "win/api": {"ltsc2022": ["windows/amd64"]},
}


def estate_spec(
    pools: list[dict[str, Any]], breaks: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {"name": "rg-aks", "clusters": [{"name": "aks1", "nodePools": pools}]},
                    {
                        "name": "rg-acr",
                        "registries": [{"name": "acr1", "repositories": REPOSITORIES}],
                    },
                ],
            }
        ],
        "breaks": breaks or [],
    }


def run(image: str, emulator: Emulator) -> Finding:
    estate = fresh_estate()
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, "aks1")["id"])
    return OsMismatch().run(Target(cluster, REGISTRY_ID, image), estate)


def test_linux_image_on_linux_cluster_passes(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(LINUX))
    finding = run("acr1.azurecr.io/app:v1", emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["imageOs"] == ["linux"]


def test_image_for_both_oses_passes_on_mixed_cluster(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(MIXED))
    finding = run("acr1.azurecr.io/both:v1", emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["imageOs"] == ["linux", "windows"]


def test_linux_only_push_on_mixed_cluster_needs_node_selector(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            MIXED,
            [
                {
                    "cause": "os-mismatch",
                    "registry": "acr1",
                    "repository": "both",
                    "tag": "v1",
                    "cluster": "aks1",
                }
            ],
        ),
    )
    finding = run("acr1.azurecr.io/both:v1", emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["needsNodeSelector"] is True
    assert finding.evidence["suggestedNodeSelector"] == {"kubernetes.io/os": "linux"}
    assert finding.evidence["poolsWithoutImage"] == ["win"]
    assert finding.evidence["poolOs"] == {"system": "linux", "win": "windows"}
    assert finding.action_id == "set-os-node-selector"


def test_windows_image_on_linux_only_cluster_fails_unfixable(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            LINUX,
            [
                {
                    "cause": "os-mismatch",
                    "registry": "acr1",
                    "repository": "app",
                    "tag": "v1",
                    "cluster": "aks1",
                }
            ],
        ),
    )
    finding = run("acr1.azurecr.io/app:v1", emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["imageOs"] == ["windows"]
    assert finding.evidence["needsNodeSelector"] is False
    assert "no node can run it" in finding.summary
    assert finding.action_id is None


def test_denied_identity_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(MIXED))
    emulator.deny(REGISTRY_ID)
    finding = run("acr1.azurecr.io/app:v1", emulator)
    assert finding.status is Status.UNKNOWN
    assert emulator.journal("acr") == []


def test_image_from_another_host_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(MIXED))
    finding = run("acr1.azureacr.io/app:v1", emulator)
    assert finding.status is Status.UNKNOWN
    assert "image-not-found reports the host" in finding.summary
    assert emulator.journal("acr") == []
