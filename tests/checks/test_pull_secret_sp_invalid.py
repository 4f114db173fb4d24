"""pull-secret-sp-invalid through the real SDKs, lightkube, Graph and the ACR token service."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import yaml

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.server import Emulator
from shared.checks.base import Finding, Status, Target
from shared.checks.pull_secret_sp_invalid import PullSecretSpInvalid
from tests.support.estate import fresh_estate

CLUSTER = "aks-shop-weu"
REGISTRY = "acrshopweu"
APP_ID = "0d3f9a52-7e1b-4c2a-9f4e-3b6c8d1e2a70"


@pytest.fixture
def shop(emulator: Emulator) -> dict[str, Any]:
    return scenario.load(emulator.state, "kubernetes-pulls")


def run(emulator: Emulator, registry: str | None = REGISTRY) -> Finding:
    estate = fresh_estate()
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, CLUSTER)["id"])
    registry_id = scenario.find_registry(emulator.state, registry)["id"] if registry else None
    return PullSecretSpInvalid().run(Target(cluster, registry_id), estate)


def sp_secrets(emulator: Emulator) -> list[str]:
    return list(emulator.state.graph_applications[APP_ID]["_secrets"].values())


def token_requests(emulator: Emulator) -> list[int]:
    return [e.status for e in emulator.journal("acr") if e.path.endswith("/oauth2/token")]


def web_phases(emulator: Emulator) -> set[str]:
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    pods = k8s.objects(emulator.state, cluster["id"], "pods")
    return {p["status"]["phase"] for p in pods if p["metadata"]["labels"].get("app") == "web"}


def test_working_service_principal_secret_passes(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    [row] = finding.evidence["secrets"]
    assert row["namespace"] == "shop" and row["name"] == "acr-sp" and row["appId"] == APP_ID
    assert row["tokenAccepted"] is True
    # The service account adds the secret to every pod of `web`.
    assert row["usedBy"] == ["Deployment/shop/web"]
    assert row["applicationFound"] is True
    assert [c["expired"] for c in row["credentials"]] == [False]
    assert token_requests(emulator) == [200]
    # The token was asked for the repository the workload pulls, as the kubelet would.
    token_path = next(e for e in emulator.journal("acr") if e.path.endswith("/oauth2/token"))
    assert token_path.path.startswith("/acr/acrshopweu.azurecr.io/")


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("expired", "its secret expired on"),
        ("reset", "is not one of application"),
        ("wrong", "is not one of application"),
    ],
)
def test_invalid_service_principal_secret_fails(
    emulator: Emulator,
    shop: dict[str, Any],
    app_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    mode: str,
    why: str,
) -> None:
    scenario.apply_break(
        emulator.state, {"cause": "pull-secret-sp-invalid", "cluster": CLUSTER, "mode": mode}
    )
    assert web_phases(emulator) == {"Pending"}

    with caplog.at_level(logging.DEBUG):
        finding = run(emulator)

    assert finding.status is Status.FAIL, finding.summary
    assert "shop/acr-sp" in finding.summary and why in finding.summary
    [row] = finding.evidence["secrets"]
    assert row["tokenAccepted"] is False
    assert finding.action_id == "refresh-pull-secret"
    assert token_requests(emulator) == [401]
    assert f'az ad sp credential list --id "{APP_ID}"' in " ".join(finding.commands)
    assert "kubectl create secret docker-registry acr-sp -n shop" in finding.commands[-1]
    published = json.dumps(finding.to_dict()) + repr(finding) + caplog.text
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    held = [
        creds[1]
        for _, _, creds in k8s.iter_pull_secrets(k8s.api_for(emulator.state, cluster["id"]))
    ]
    for secret in [*sp_secrets(emulator), *held]:
        assert secret not in published


def test_deleted_application_fails(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    del emulator.state.graph_applications[APP_ID]
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["secrets"][0]["applicationFound"] is False
    assert "no longer exists" in finding.summary


def test_refreshed_pull_secret_heals_the_pods_and_passes(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    """What refresh-pull-secret will do: write a current secret; the kubelet's retry then pulls."""
    import base64

    from lightkube.resources.core_v1 import Secret
    from lightkube.types import PatchType

    scenario.apply_break(
        emulator.state, {"cause": "pull-secret-sp-invalid", "cluster": CLUSTER, "mode": "reset"}
    )
    assert run(emulator).status is Status.FAIL
    [current] = sp_secrets(emulator)
    config = {"auths": {"acrshopweu.azurecr.io": {"username": APP_ID, "password": current}}}
    encoded = base64.b64encode(json.dumps(config).encode()).decode()
    estate = fresh_estate()
    client = estate._kube_client(scenario.find_cluster(emulator.state, CLUSTER)["id"])
    client.patch(
        Secret,
        "acr-sp",
        {"data": {".dockerconfigjson": encoded}},
        namespace="shop",
        patch_type=PatchType.MERGE,
    )

    assert run(emulator).status is Status.PASS
    assert web_phases(emulator) == {"Running"}


def test_other_registry_is_not_applicable(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    finding = run(emulator, registry="acrtoolsweu")
    assert finding.status is Status.PASS
    assert finding.summary.startswith("Not applicable")
    assert token_requests(emulator) == []


def test_without_registry_every_service_principal_secret_is_checked(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    scenario.apply_break(emulator.state, {"cause": "pull-secret-sp-invalid", "cluster": CLUSTER})
    finding = run(emulator, registry=None)
    assert finding.status is Status.FAIL
    assert finding.evidence["registry"] is None


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
    assert "could not reach the Kubernetes API" in finding.summary
    assert token_requests(emulator) == []


def test_denied_user_credential_is_unknown(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    cluster_id = scenario.find_cluster(emulator.state, CLUSTER)["id"]
    emulator.deny(f"{cluster_id}/listClusterUserCredential")
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == {"unreadable": cluster_id}


def test_unreadable_graph_still_decides_from_the_token_service(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    emulator.inject(rf"/graph/.*{APP_ID}", status=403)
    scenario.apply_break(emulator.state, {"cause": "pull-secret-sp-invalid", "cluster": CLUSTER})
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["secrets"][0]["applicationFound"] is None
    assert "the registry refused the token request" in finding.summary


def test_unused_secret_is_probed_and_only_the_broken_one_fails(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = yaml.safe_load((scenario.SCENARIOS / "kubernetes-pulls.yaml").read_text())
    cluster = spec["subscriptions"][0]["resourceGroups"][0]["clusters"][0]
    other = "6a1e2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    cluster["pullSecrets"].append(
        {"namespace": "batch", "name": "acr-spare", "registry": REGISTRY, "from": f"sp:{other}"}
    )
    scenario.load(emulator.state, spec)
    scenario.apply_break(
        emulator.state,
        {
            "cause": "pull-secret-sp-invalid",
            "cluster": CLUSTER,
            "secret": "acr-spare",
            "mode": "reset",
        },
    )
    finding = run(emulator)
    assert finding.status is Status.FAIL
    rows = {r["name"]: r for r in finding.evidence["secrets"]}
    assert (rows["acr-sp"]["tokenAccepted"], rows["acr-spare"]["tokenAccepted"]) == (True, False)
    assert rows["acr-spare"]["usedBy"] == []
    assert "batch/acr-spare" in finding.summary and "shop/acr-sp " not in finding.summary
    assert web_phases(emulator) == {"Running"}
