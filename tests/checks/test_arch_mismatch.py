"""arch-mismatch through the real ARM and registry data-plane clients against the emulator."""

from __future__ import annotations

from typing import Any

from emulator import scenario
from emulator.server import Emulator
from shared.checks.arch_mismatch import ArchMismatch
from shared.checks.base import Finding, Status, Target
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

REGISTRY_ID = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/acr1"
MIXED_ARCH = [
    {"name": "system", "vmSize": "Standard_D4s_v5", "mode": "System"},
    {"name": "arm", "vmSize": "Standard_D4ps_v5"},
]
REPOSITORIES = {
    "app": {"v1": ["linux/amd64", "linux/arm64"], "amd": ["linux/amd64"]},
    "legacy": {"1.0": {"platforms": ["linux/amd64", "linux/arm64/v8"], "format": "docker"}},
    "win/api": {"ltsc2022": ["windows/amd64"]},
}


def estate_spec(
    pools: list[dict[str, Any]],
    *,
    registry: dict[str, Any] | None = None,
    breaks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {"name": "rg-aks", "clusters": [{"name": "aks1", "nodePools": pools}]},
                    {
                        "name": "rg-acr",
                        "registries": [
                            {"name": "acr1", "repositories": REPOSITORIES, **(registry or {})}
                        ],
                    },
                ],
            }
        ],
        "breaks": breaks or [],
    }


def run(image: str | None, emulator: Emulator) -> Finding:
    estate = fresh_estate()
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, "aks1")["id"])
    return ArchMismatch().run(Target(cluster, REGISTRY_ID, image), estate)


def test_multi_arch_image_passes_on_mixed_pools(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(MIXED_ARCH))
    finding = run("acr1.azurecr.io/app:v1", emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["platformsNeeded"] == ["linux/amd64", "linux/arm64"]
    assert finding.evidence["poolsAffected"] == []


def test_docker_manifest_list_with_variant_passes(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(MIXED_ARCH))
    finding = run("acr1.azurecr.io/legacy:1.0", emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["platformsFound"] == ["linux/amd64", "linux/arm64/v8"]


def test_single_arch_push_fails_for_the_arm64_pool(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            MIXED_ARCH,
            breaks=[
                {
                    "cause": "arch-mismatch",
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
    assert finding.evidence["platformsFound"] == ["linux/amd64"]
    assert finding.evidence["poolsAffected"] == [
        {"pool": "arm", "vmSize": "Standard_D4ps_v5", "os": "Linux", "architecture": "arm64"}
    ]
    assert "no match for platform in manifest" in finding.summary
    assert finding.action_id is None
    assert "kubectl get nodes -L kubernetes.io/arch,kubernetes.io/os" in finding.commands
    # The single-platform manifest was read through its config blob (a 307 to storage).
    assert [e.status for e in emulator.journal("acr") if "/blobs/" in e.path] == [307]
    assert [e.status for e in emulator.journal("acr-storage")] == [200]


def test_arm64_only_image_fails_on_amd64_cluster(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    pools = [
        {"name": "system", "vmSize": "Standard_D2s_v5", "mode": "System"},
        {"name": "user", "vmSize": "Standard_E8ds_v5"},
    ]
    scenario.load(
        emulator.state,
        estate_spec(
            pools,
            breaks=[
                {
                    "cause": "arch-mismatch",
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
    assert finding.evidence["platformsFound"] == ["linux/arm64"]
    assert [p["pool"] for p in finding.evidence["poolsAffected"]] == ["system", "user"]


def test_windows_image_on_linux_pools_is_left_to_os_mismatch(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(MIXED_ARCH))
    finding = run("acr1.azurecr.io/win/api:ltsc2022", emulator)
    assert finding.status is Status.PASS
    assert "os-mismatch" in finding.summary


def test_missing_image_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(MIXED_ARCH))
    finding = run("acr1.azurecr.io/app:v9", emulator)
    assert finding.status is Status.UNKNOWN
    assert "has no such manifest" in finding.summary


def test_no_image_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(MIXED_ARCH))
    finding = run(None, emulator)
    assert finding.status is Status.UNKNOWN
    assert "no image reference to check" in finding.summary
    assert emulator.journal("acr") == []


def test_public_access_disabled_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(
        emulator.state, estate_spec(MIXED_ARCH, registry={"publicNetworkAccess": "Disabled"})
    )
    finding = run("acr1.azurecr.io/app:v1", emulator)
    assert finding.status is Status.UNKNOWN
    assert "is not allowed access" in finding.summary
