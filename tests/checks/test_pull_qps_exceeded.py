"""pull-qps-exceeded through the real SDKs and lightkube against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.server import Emulator
from shared.azure.estate import ArmEstate
from shared.checks.base import Finding, Status, Target
from shared.checks.pull_qps_exceeded import PullQpsExceeded
from tests.support.estate import fresh_estate

CLUSTER = "aks-shop-weu"
ETL = "acrshopweu.azurecr.io/batch/etl:latest"


@pytest.fixture
def shop(emulator: Emulator) -> dict[str, Any]:
    return scenario.load(emulator.state, "kubernetes-pulls")


def estate() -> ArmEstate:
    return fresh_estate()


def run(emulator: Emulator) -> Finding:
    reader = estate()
    cluster = reader.get_cluster(scenario.find_cluster(emulator.state, CLUSTER)["id"])
    return PullQpsExceeded().run(Target(cluster), reader)


def etl_pods(emulator: Emulator) -> list[dict[str, Any]]:
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    pods = k8s.objects(emulator.state, cluster["id"], "pods")
    return [p for p in pods if p["metadata"]["namespace"] == "batch"]


def test_no_qps_events_passes(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence == {"pods": [], "images": []}
    # Only Failed events were asked for, with a field selector the API server applies.
    events = [e for e in emulator.journal("kubernetes") if e.path.endswith("/api/v1/events")]
    assert len(events) == 1


def test_qps_exceeded_fails_with_pods_images_and_always_workloads(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    scenario.apply_break(
        emulator.state, {"cause": "pull-qps-exceeded", "cluster": CLUSTER, "workload": "etl"}
    )
    pods = sorted(f"batch/{p['metadata']['name']}" for p in etl_pods(emulator))
    assert len(pods) == 3

    finding = run(emulator)

    assert finding.status is Status.FAIL, finding.summary
    assert finding.evidence["pods"] == pods
    assert finding.evidence["images"] == [ETL]
    assert finding.evidence["workloadsPullingAlways"] == [
        {"kind": "Deployment", "namespace": "batch", "name": "etl", "containers": ["etl"]}
    ]
    assert finding.evidence["rejectedPulls"] >= 3
    assert len(finding.evidence["nodes"]) >= 1
    assert "pull QPS exceeded" in finding.summary and "Deployment/batch/etl" in finding.summary
    assert finding.action_id == "set-pull-policy-if-not-present"
    assert finding.commands[0].startswith("kubectl get events -A --field-selector reason=Failed")
    assert f"kubectl describe pod {pods[0].split('/')[1]} -n batch" in finding.commands
    assert finding.commands[-1] == (
        "kubectl patch deployment etl -n batch -p "
        '\'{"spec":{"template":{"spec":{"containers":[{"name":"etl","imagePullPolicy":"IfNotPresent"}]}}}}\''
    )


def test_pull_policy_fix_rolls_out_and_passes(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    """What set-pull-policy-if-not-present will do, through the Kubernetes API."""
    from lightkube.resources.apps_v1 import Deployment

    scenario.apply_break(
        emulator.state, {"cause": "pull-qps-exceeded", "cluster": CLUSTER, "workload": "etl"}
    )
    before = {p["metadata"]["name"] for p in etl_pods(emulator)}
    client = estate()._kube_client(scenario.find_cluster(emulator.state, CLUSTER)["id"])
    patch = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "etl", "imagePullPolicy": "IfNotPresent"}]}
            }
        }
    }
    patched = client.patch(Deployment, "etl", patch, namespace="batch")
    assert patched.metadata.generation == 2
    assert patched.metadata.annotations["deployment.kubernetes.io/revision"] == "2"

    after = etl_pods(emulator)
    assert {p["metadata"]["name"] for p in after}.isdisjoint(before)
    assert {p["status"]["phase"] for p in after} == {"Running"}
    assert run(emulator).status is Status.PASS  # events of the replaced pods no longer count


def test_qps_events_without_always_workloads_fail_but_are_not_fixable(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = yaml.safe_load((scenario.SCENARIOS / "kubernetes-pulls.yaml").read_text())
    cluster = spec["subscriptions"][0]["resourceGroups"][0]["clusters"][0]
    cluster["workloads"].append(
        {
            "namespace": "batch",
            "name": "report",
            "image": "acrshopweu.azurecr.io/batch/report:v3",
            "imagePullPolicy": "IfNotPresent",
            "status": "ErrImagePull",
            "message": 'Failed to pull image "acrshopweu.azurecr.io/batch/report:v3": pull QPS exceeded.',
        }
    )
    scenario.load(emulator.state, spec)
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["images"] == ["acrshopweu.azurecr.io/batch/report:v3"]
    assert finding.evidence["workloadsPullingAlways"] == []
    assert finding.action_id is None


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


def test_denied_user_credential_is_unknown(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    cluster_id = scenario.find_cluster(emulator.state, CLUSTER)["id"]
    emulator.deny(f"{cluster_id}/listClusterUserCredential")
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == {"unreadable": cluster_id}


def test_api_server_unavailable_mid_run_is_unknown(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    """The kubeconfig was fetched, then the API server stopped serving (503)."""
    reader = estate()
    cluster_id = scenario.find_cluster(emulator.state, CLUSTER)["id"]
    cluster = reader.get_cluster(cluster_id)
    reader._kube_client(cluster_id)
    k8s.set_reachable(emulator.state, cluster_id, False)
    finding = PullQpsExceeded().run(Target(cluster), reader)
    assert finding.status is Status.UNKNOWN
    assert "503" in finding.summary
    assert [e.status for e in emulator.journal("kubernetes")] == [503]


def test_events_forbidden_is_unknown(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    k8s.forbid(emulator.state, scenario.find_cluster(emulator.state, CLUSTER)["id"], "events")
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert "403" in finding.summary
