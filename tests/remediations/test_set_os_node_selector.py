"""set-os-node-selector from an os-mismatch finding to workloads that select the image's OS."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.server import Emulator
from shared.azure.estate import ArmEstate
from shared.checks.base import Finding, Status, Target
from shared.checks.os_mismatch import OsMismatch
from shared.errors import WriteRejected
from shared.remediations.base import ActionRecord
from shared.remediations.set_os_node_selector import SetOsNodeSelector
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

IMAGE = "acr1.azurecr.io/both:v1"
REGISTRY_ID = (
    f"/subscriptions/{PROD_SUB}/resourceGroups/rg-acr/providers/"
    "Microsoft.ContainerRegistry/registries/acr1"
)
LINUX = [{"name": "system", "vmSize": "Standard_D4s_v5", "mode": "System", "count": 2}]
MIXED = [*LINUX, {"name": "win", "vmSize": "Standard_D4s_v5", "osType": "Windows", "count": 2}]
WORKLOADS = [
    {"namespace": "shop", "name": "api", "image": IMAGE, "replicas": 2},
    {"namespace": "shop", "name": "cart", "image": "acr1.azurecr.io/app:v1"},
]
SELECTOR = {"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}}}}


def load(
    emulator: Emulator,
    pools: list[dict[str, Any]],
    workloads: list[dict[str, Any]],
    push_os: str | None = None,
) -> None:
    """acr1/both:v1 is re-pushed for one OS only (Linux on a mixed cluster by default)."""
    spec: dict[str, Any] = {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {
                        "name": "rg-aks",
                        "clusters": [
                            {
                                "name": "aks1",
                                "nodePools": pools,
                                "namespaces": ["shop"],
                                "workloads": workloads,
                            }
                        ],
                    },
                    {
                        "name": "rg-acr",
                        "registries": [
                            {
                                "name": "acr1",
                                "repositories": {
                                    "app": {"v1": ["linux/amd64"]},
                                    "both": {"v1": ["linux/amd64", "windows/amd64"]},
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    scenario.load(emulator.state, spec)
    brk = {"cause": "os-mismatch", "registry": "acr1", "repository": "both", "tag": "v1"}
    scenario.apply_break(
        emulator.state, {**brk, "cluster": "aks1", **({"os": push_os} if push_os else {})}
    )


def cluster_id(emulator: Emulator) -> str:
    return str(scenario.find_cluster(emulator.state, "aks1")["id"])


def estate() -> ArmEstate:
    return fresh_estate()


def target(emulator: Emulator, reader: ArmEstate) -> Target:
    return Target(reader.get_cluster(cluster_id(emulator)), REGISTRY_ID, IMAGE)


def diagnose(emulator: Emulator) -> Finding:
    reader = estate()
    return OsMismatch().run(target(emulator, reader), reader)


def fix(emulator: Emulator, finding: Finding) -> ActionRecord:
    reader = estate()
    return SetOsNodeSelector().apply(finding, target(emulator, reader), reader, timeout=30)


def selector(emulator: Emulator, name: str) -> dict[str, str]:
    deployments = k8s.objects(emulator.state, cluster_id(emulator), "deployments")
    deployment = next(d for d in deployments if d["metadata"]["name"] == name)
    return dict(deployment["spec"]["template"]["spec"].get("nodeSelector") or {})


def pod_nodes_os(emulator: Emulator, app: str) -> set[str]:
    nodes = {
        n["metadata"]["name"]: n["metadata"]["labels"]["kubernetes.io/os"]
        for n in k8s.objects(emulator.state, cluster_id(emulator), "nodes")
    }
    pods = k8s.objects(emulator.state, cluster_id(emulator), "pods")
    return {nodes[p["spec"]["nodeName"]] for p in pods if p["metadata"]["labels"].get("app") == app}


def writes(emulator: Emulator) -> list[Any]:
    return [e for e in emulator.journal("kubernetes") if e.method != "GET"]


@pytest.fixture
def mixed(emulator: Emulator, app_env: dict[str, str]) -> Finding:
    load(emulator, MIXED, WORKLOADS)
    finding = diagnose(emulator)
    assert finding.status is Status.FAIL and finding.action_id == "set-os-node-selector"
    assert finding.evidence["suggestedNodeSelector"] == {"kubernetes.io/os": "linux"}
    emulator.clear_journal()
    return finding


def test_workloads_running_the_image_select_its_os(emulator: Emulator, mixed: Finding) -> None:
    record = fix(emulator, mixed)

    assert record.status == "applied", record.detail
    assert record.detail == "set kubernetes.io/os=linux on Deployment/shop/api"
    assert selector(emulator, "api") == {"kubernetes.io/os": "linux"}
    assert selector(emulator, "cart") == {}  # runs another image
    [patch] = writes(emulator)
    assert patch.method == "PATCH" and patch.path.endswith("/namespaces/shop/deployments/api")
    assert patch.body == SELECTOR
    # The new pods were scheduled by the selector, onto Linux nodes only.
    assert pod_nodes_os(emulator, "api") == {"linux"}
    pods = k8s.objects(emulator.state, cluster_id(emulator), "pods")
    api = [p for p in pods if p["metadata"]["labels"].get("app") == "api"]
    assert len(api) == 2
    assert all(p["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"} for p in api)


def test_second_run_changes_nothing(emulator: Emulator, mixed: Finding) -> None:
    assert fix(emulator, mixed).status == "applied"
    emulator.clear_journal()

    again = fix(emulator, mixed)

    assert (again.status, again.detail) == (
        "applied",
        "already selecting linux: Deployment/shop/api",
    )
    assert writes(emulator) == []


def test_os_is_re_derived_when_the_finding_lacks_it(emulator: Emulator, mixed: Finding) -> None:
    bare = replace(mixed, evidence={})
    record = fix(emulator, bare)
    assert record.status == "applied", record.detail
    assert selector(emulator, "api") == {"kubernetes.io/os": "linux"}
    manifests = [e for e in emulator.journal("acr") if "/manifests/" in e.path]
    assert manifests, "the image's platforms were read from the registry"


def test_plan_is_a_dry_run(emulator: Emulator, mixed: Finding) -> None:
    plan = SetOsNodeSelector().plan(mixed, target(emulator, estate()))

    assert (
        "kubectl patch deployment <name> -n <namespace> --type=strategic -p "
        '\'{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/os":"linux"}}}}}\''
    ) in plan.commands
    assert f"kubectl get deployments,statefulsets,daemonsets -A -o wide | grep -F '{IMAGE}'" in (
        plan.commands
    )
    assert "kubernetes.io/os: linux" in plan.summary
    assert any("rolls out new pods" in w for w in plan.warnings)
    assert writes(emulator) == []
    assert selector(emulator, "api") == {}


def test_image_without_an_os_of_the_cluster_is_refused(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    load(emulator, LINUX, WORKLOADS, push_os="windows")
    finding = diagnose(emulator)
    assert finding.status is Status.FAIL and finding.evidence["imageOs"] == ["windows"]
    plan = SetOsNodeSelector().plan(finding, target(emulator, estate()))
    emulator.clear_journal()

    record = fix(emulator, finding)

    assert record.status == "failed"
    assert "has only windows images" in record.detail and "cannot help" in record.detail
    assert any("refuses" in w for w in plan.warnings)
    assert writes(emulator) == []


def test_workload_pinned_to_a_pool_of_the_other_os_is_left_to_a_person(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    pinned = {**WORKLOADS[0], "nodeSelector": {"agentpool": "win"}}
    load(emulator, MIXED, [pinned])
    finding = diagnose(emulator)
    emulator.clear_journal()

    record = fix(emulator, finding)

    assert record.status == "failed"
    assert "Deployment/shop/api is pinned to node pool win" in record.detail
    assert writes(emulator) == []


def test_unreachable_cluster_api_fails_without_raising(
    emulator: Emulator, mixed: Finding, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_TRANSPORT", "direct")  # no Run Command to fall back to
    k8s.set_reachable(emulator.state, cluster_id(emulator), False)
    record = fix(emulator, mixed)
    assert record.status == "failed"
    assert record.detail.startswith("nothing changed: could not reach the Kubernetes API")


def test_forbidden_patch_fails(emulator: Emulator, mixed: Finding) -> None:
    k8s.forbid_verb(emulator.state, cluster_id(emulator), "deployments", "patch")
    record = fix(emulator, mixed)
    assert record.status == "failed"
    assert "could not patch Deployment/shop/api" in record.detail and "403" in record.detail
    assert selector(emulator, "api") == {}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"kubernetes.io/os": "linux os"}, 'Invalid value: "linux os": a valid label must be'),
        ({"bad key": "linux"}, 'Invalid value: "bad key": name part must consist of'),
    ],
)
def test_api_server_rejects_an_invalid_node_selector(
    emulator: Emulator, mixed: Finding, labels: dict[str, str], message: str
) -> None:
    reader = estate()
    cluster = reader.get_cluster(cluster_id(emulator))
    api = next(w for w in reader.list_workloads(cluster) if w.name == "api")

    with pytest.raises(WriteRejected) as caught:
        reader.set_node_selector(cluster, api, labels)

    assert "422 Invalid" in str(caught.value) and message in str(caught.value)
    assert selector(emulator, "api") == {}


def test_permissions_are_the_exact_rbac_actions() -> None:
    mc = "Microsoft.ContainerService/managedClusters"
    assert set(SetOsNodeSelector.permissions) == {
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
        "Microsoft.ContainerRegistry/registries/read",
        "Microsoft.ContainerRegistry/registries/pull/read",
    }
