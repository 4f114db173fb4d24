"""pull-secret-admin-stale through the real SDKs and lightkube against the emulator."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import pytest

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.server import Emulator
from shared.azure.factory import ClientFactory
from shared.checks.base import Finding, Status, Target
from shared.checks.pull_secret_admin_stale import PullSecretAdminStale
from shared.config import Settings
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

CLUSTER = "aks-shop-weu"
REGISTRY = "acrshopweu"


@pytest.fixture
def shop(emulator: Emulator) -> dict[str, Any]:
    return scenario.load(emulator.state, "kubernetes-pulls")


def run(emulator: Emulator, registry: str | None = REGISTRY) -> Finding:
    """One diagnosis run: a fresh estate (and run cache), as the engine makes per invocation."""
    estate = fresh_estate()
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, CLUSTER)["id"])
    registry_id = scenario.find_registry(emulator.state, registry)["id"] if registry else None
    return PullSecretAdminStale().run(Target(cluster, registry_id), estate)


def admin_passwords(emulator: Emulator) -> list[str]:
    registry = scenario.find_registry(emulator.state, REGISTRY)
    return [p["value"] for p in emulator.state.registry_passwords[registry["id"].lower()]]


def shop_pods(emulator: Emulator, app: str) -> list[dict[str, Any]]:
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    pods = k8s.objects(emulator.state, cluster["id"], "pods")
    return [p for p in pods if p["metadata"]["labels"].get("app") == app]


def test_current_admin_password_passes(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["secrets"] == [
        {
            "namespace": "shop",
            "name": "acr-admin",
            "registry": "acrshopweu.azurecr.io",
            "username": "acrshopweu",
            "passwordMatchesCurrent": True,
            "passwordSlot": "password",
            "slotUsed": "password",
            "slotEvidence": "holds its current value",
            "usedBy": ["Deployment/shop/api"],
        }
    ]
    assert finding.action_id is None
    # The check read the cluster through the user kubeconfig and the registry's admin credentials.
    arm = [e.path for e in emulator.journal("arm") if e.method == "POST"]
    assert any(p.endswith(f"/managedClusters/{CLUSTER}/listClusterUserCredential") for p in arm)
    assert any(p.endswith(f"/registries/{REGISTRY}/listCredentials") for p in arm)
    assert any(e.path.endswith("/api/v1/secrets") for e in emulator.journal("kubernetes"))


def test_regenerated_admin_password_fails_without_leaking_it(
    emulator: Emulator,
    shop: dict[str, Any],
    app_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = admin_passwords(emulator)[0]
    scenario.apply_break(emulator.state, {"cause": "pull-secret-admin-stale", "cluster": CLUSTER})
    assert old not in admin_passwords(emulator)
    # The kubelet now fails to pull for the pods that use the secret, and only for those.
    assert {p["status"]["phase"] for p in shop_pods(emulator, "api")} == {"Pending"}
    assert {p["status"]["phase"] for p in shop_pods(emulator, "web")} == {"Running"}

    with caplog.at_level(logging.DEBUG):
        finding = run(emulator)

    assert finding.status is Status.FAIL, finding.summary
    assert "shop/acr-admin" in finding.summary and "no longer current" in finding.summary
    row = finding.evidence["secrets"][0]
    assert (row["namespace"], row["name"], row["passwordMatchesCurrent"]) == (
        "shop",
        "acr-admin",
        False,
    )
    assert finding.action_id == "refresh-pull-secret"
    assert "kubectl get secret acr-admin -n shop" in finding.commands[1]
    assert "az acr credential show -n acrshopweu" in finding.commands
    published = json.dumps(finding.to_dict()) + repr(finding) + caplog.text
    for secret in [old, *admin_passwords(emulator)]:
        assert secret not in published


def test_regenerate_through_arm_is_seen(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    """The real trigger: someone ran `az acr credential renew --password-name password`."""
    client = ClientFactory(Settings.from_env(os.environ)).container_registry(PROD_SUB)
    client.registries.regenerate_credential("rg-acr", REGISTRY, {"name": "password"})
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["adminUserEnabled"] is True


def test_secret_written_with_second_password_still_passes(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    client = ClientFactory(Settings.from_env(os.environ)).container_registry(PROD_SUB)
    client.registries.regenerate_credential("rg-acr", REGISTRY, {"name": "password2"})
    assert run(emulator).status is Status.PASS


def test_disabled_admin_user_fails_and_is_not_fixable_by_refresh(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    registry = scenario.find_registry(emulator.state, REGISTRY)
    registry["properties"]["adminUserEnabled"] = False
    emulator.state.put(registry)
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert "disabled" in finding.summary
    assert finding.evidence["adminUserEnabled"] is False
    assert finding.action_id is None


def test_registry_without_admin_secrets_is_not_applicable(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    finding = run(emulator, registry="acrtoolsweu")
    assert finding.status is Status.PASS
    assert finding.summary.startswith("Not applicable")
    assert finding.evidence["secrets"] == []


def test_unreachable_cluster_api_is_unknown(
    emulator: Emulator,
    shop: dict[str, Any],
    app_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBERNETES_TRANSPORT", "direct")  # no Run Command to fall back to
    k8s.set_reachable(emulator.state, scenario.find_cluster(emulator.state, CLUSTER)["id"], False)
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert "could not reach the Kubernetes API of aks-shop-weu" in finding.summary
    assert emulator.journal("kubernetes") == []  # the connection was refused before any request


def test_denied_user_credential_is_unknown(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    cluster_id = scenario.find_cluster(emulator.state, CLUSTER)["id"]
    emulator.deny(f"{cluster_id}/listClusterUserCredential")
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == {"unreadable": cluster_id}
    statuses = [
        e.status for e in emulator.journal("arm") if e.path.endswith("/listClusterUserCredential")
    ]
    assert statuses == [403]


def test_denied_registry_credentials_are_unknown(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    registry_id = scenario.find_registry(emulator.state, REGISTRY)["id"]
    emulator.deny(f"{registry_id}/listCredentials")
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == {"unreadable": registry_id}


def test_secrets_forbidden_in_cluster_is_unknown(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    k8s.forbid(emulator.state, scenario.find_cluster(emulator.state, CLUSTER)["id"], "secrets")
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert "refused" in finding.summary and "403" in finding.summary
