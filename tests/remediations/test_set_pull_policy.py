"""set-pull-policy-if-not-present from pull QPS failures to a verified fix, through lightkube."""

from __future__ import annotations

import os
from typing import Any

import pytest

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.builders.kubernetes import add_workload
from emulator.server import Emulator
from shared.azure.estate import ArmEstate
from shared.checks.base import Finding, Status, Target
from shared.checks.pull_qps_exceeded import PullQpsExceeded
from shared.errors import WriteRejected
from shared.remediations.base import ActionRecord
from shared.remediations.set_pull_policy_if_not_present import SetPullPolicyIfNotPresent
from tests.support.estate import fresh_estate

CLUSTER = "aks-shop-weu"
ETL = "acrshopweu.azurecr.io/batch/etl:latest"
SHIPPER = "acrshopweu.azurecr.io/batch/log-shipper:latest"
PATCH = {
    "spec": {
        "template": {"spec": {"containers": [{"name": "etl", "imagePullPolicy": "IfNotPresent"}]}}
    }
}


@pytest.fixture
def broken(emulator: Emulator, app_env: dict[str, str]) -> Finding:
    """etl hits registryPullQPS; `report` pulls the same image Always, and a sidecar that must
    keep its policy (its image is not one the kubelets rejected)."""
    scenario.load(emulator.state, "kubernetes-pulls")
    api = k8s.api_for(emulator.state, cluster_id(emulator))
    with emulator.state.lock:
        add_workload(
            emulator.state,
            api,
            {
                "namespace": "batch",
                "name": "report",
                "containers": [
                    {"name": "report", "image": ETL, "imagePullPolicy": "Always"},
                    {"name": "shipper", "image": SHIPPER, "imagePullPolicy": "Always"},
                ],
            },
        )
    scenario.apply_break(
        emulator.state, {"cause": "pull-qps-exceeded", "cluster": CLUSTER, "workload": "etl"}
    )
    finding = diagnose()
    assert finding.status is Status.FAIL and finding.action_id == "set-pull-policy-if-not-present"
    emulator.clear_journal()
    return finding


def cluster_id(emulator: Emulator) -> str:
    return str(scenario.find_cluster(emulator.state, CLUSTER)["id"])


def estate() -> ArmEstate:
    return fresh_estate()


def target(reader: ArmEstate) -> Target:
    clusters = reader.list_clusters(os.environ["SCOPE_SUBSCRIPTION_IDS"])
    return Target(next(c for c in clusters if c.name == CLUSTER))


def diagnose() -> Finding:
    reader = estate()
    return PullQpsExceeded().run(target(reader), reader)


def fix(finding: Finding) -> ActionRecord:
    reader = estate()
    return SetPullPolicyIfNotPresent().apply(finding, target(reader), reader, timeout=30)


def policies(emulator: Emulator, name: str) -> dict[str, str]:
    deployments = k8s.objects(emulator.state, cluster_id(emulator), "deployments")
    deployment = next(d for d in deployments if d["metadata"]["name"] == name)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return {c["name"]: c["imagePullPolicy"] for c in containers}


def writes(emulator: Emulator) -> list[Any]:
    return [e for e in emulator.journal("kubernetes") if e.method != "GET"]


def test_always_becomes_if_not_present_and_the_check_passes(
    emulator: Emulator, broken: Finding
) -> None:
    assert {p["status"]["phase"] for p in pods(emulator, "etl")} == {"Pending"}

    record = fix(broken)

    assert record.status == "applied", record.detail
    assert "set IfNotPresent on Deployment/batch/etl (etl)" in record.detail
    assert "Deployment/batch/report (report)" in record.detail
    assert policies(emulator, "etl") == {"etl": "IfNotPresent"}
    # Only the container pulling the rejected image changed.
    assert policies(emulator, "report") == {"report": "IfNotPresent", "shipper": "Always"}
    patches = writes(emulator)
    assert [(e.method, e.path.rsplit("/k8s/", 1)[-1].split("/", 1)[1]) for e in patches] == [
        ("PATCH", "apis/apps/v1/namespaces/batch/deployments/etl"),
        ("PATCH", "apis/apps/v1/namespaces/batch/deployments/report"),
    ]
    assert patches[0].body == PATCH
    # The change rolled out new pods, which pull once and run; the check passes.
    assert {p["status"]["phase"] for p in pods(emulator, "etl")} == {"Running"}
    after = diagnose()
    assert after.status is Status.PASS, after.summary


def test_second_run_changes_nothing(emulator: Emulator, broken: Finding) -> None:
    assert fix(broken).status == "applied"
    emulator.clear_journal()

    again = fix(broken)

    assert again.status == "applied"
    assert again.detail == (
        "already not pulling Always: Deployment/batch/etl, Deployment/batch/report"
    )
    assert writes(emulator) == []


def test_plan_is_a_dry_run(emulator: Emulator, broken: Finding) -> None:
    plan = SetPullPolicyIfNotPresent().plan(broken, target(estate()))

    assert plan.commands[:2] == (
        "kubectl patch deployment etl -n batch --type=strategic -p "
        '\'{"spec":{"template":{"spec":{"containers":[{"name":"etl","imagePullPolicy":"IfNotPresent"}]}}}}\'',
        "kubectl rollout status deployment/etl -n batch",
    )
    assert "Deployment/batch/etl" in plan.summary and ETL in plan.summary
    assert any("rolls out new pods" in w for w in plan.warnings)
    assert any(ETL in w and "mutable tag" in w for w in plan.warnings)
    assert writes(emulator) == []
    assert policies(emulator, "etl") == {"etl": "Always"}


def test_unreachable_cluster_api_fails_without_raising(
    emulator: Emulator, broken: Finding, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_TRANSPORT", "direct")  # no Run Command to fall back to
    k8s.set_reachable(emulator.state, cluster_id(emulator), False)
    record = fix(broken)
    assert record.status == "failed"
    assert record.detail.startswith("nothing changed: could not reach the Kubernetes API")


def test_forbidden_patch_fails(emulator: Emulator, broken: Finding) -> None:
    k8s.forbid_verb(emulator.state, cluster_id(emulator), "deployments", "patch")

    record = fix(broken)

    assert record.status == "failed"
    assert "could not patch Deployment/batch/etl" in record.detail and "403" in record.detail
    assert policies(emulator, "etl") == {"etl": "Always"}
    assert {e.status for e in writes(emulator)} == {403}


def test_finding_without_workloads_is_refused(emulator: Emulator, broken: Finding) -> None:
    empty = Finding(broken.cause_id, broken.status, broken.summary, broken.resource_id, None)
    record = fix(empty)
    assert record.status == "failed" and "names no workload" in record.detail
    assert writes(emulator) == []


def test_api_server_rejects_an_unsupported_policy(emulator: Emulator, broken: Finding) -> None:
    """The emulator validates the patched object as the API server does: 422 Invalid."""
    reader = estate()
    cluster = target(reader).cluster
    etl = next(w for w in reader.list_workloads(cluster) if w.name == "etl")

    with pytest.raises(WriteRejected) as caught:
        reader.set_image_pull_policy(cluster, etl, ("etl",), policy="Sometimes")

    assert "422 Invalid" in str(caught.value)
    assert 'Unsupported value: "Sometimes"' in str(caught.value)
    assert policies(emulator, "etl") == {"etl": "Always"}


def test_permissions_are_the_exact_rbac_actions() -> None:
    mc = "Microsoft.ContainerService/managedClusters"
    assert set(SetPullPolicyIfNotPresent.permissions) == {
        f"{mc}/listClusterUserCredential/action",
        f"{mc}/serviceaccounts/read",
        f"{mc}/apps/deployments/read",
        f"{mc}/apps/statefulsets/read",
        f"{mc}/apps/daemonsets/read",
        f"{mc}/batch/jobs/read",
        f"{mc}/batch/cronjobs/read",
        f"{mc}/apps/deployments/write",
        f"{mc}/apps/statefulsets/write",
        f"{mc}/apps/daemonsets/write",
    }


def pods(emulator: Emulator, app: str) -> list[dict[str, Any]]:
    all_pods = k8s.objects(emulator.state, cluster_id(emulator), "pods")
    return [p for p in all_pods if p["metadata"]["labels"].get("app") == app]
