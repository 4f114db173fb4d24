"""Workload writes on a private cluster, in enforce mode: the remediation's patch goes through
AKS Run Command (the transport its reads chose), never at the private API server, and its
verification reads the workload back the same way."""

from __future__ import annotations

from typing import Any

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.server import Emulator
from shared.checks.base import Status, Target
from shared.engine import ALL
from shared.outcome import Outcome
from tests.integration.test_run_command_transport import CLUSTER, REGISTRY, make_private
from tests.remediations.test_set_os_node_selector import IMAGE, MIXED, REGISTRY_ID, WORKLOADS
from tests.remediations.test_set_os_node_selector import load as load_os_mismatch


def respond(emulator: Emulator, cluster: str, registry_id: str, image: str | None) -> Outcome:
    from shared.runtime import engine

    responder = engine(respond=True, source="test")
    found = responder.estate.get_cluster(scenario.find_cluster(emulator.state, cluster)["id"])
    return responder.diagnose_and_respond(
        "run-command-write", Target(found, registry_id, image), ALL
    )


def record_of(outcome: Outcome, action: str) -> Any:
    [record] = [a for a in outcome.actions if a.action_id == action]
    return record


def run_commands(emulator: Emulator) -> list[str]:
    return [
        str(e.body["command"]) for e in emulator.journal("arm") if e.path.endswith("/runCommand")
    ]


def template(emulator: Emulator, cluster: str, namespace: str, name: str) -> dict[str, Any]:
    cluster_id = scenario.find_cluster(emulator.state, cluster)["id"]
    [deployment] = [
        d
        for d in k8s.objects(emulator.state, cluster_id, "deployments")
        if (d["metadata"]["namespace"], d["metadata"]["name"]) == (namespace, name)
    ]
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def test_pull_policy_is_set_through_run_command_and_verified(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "kubernetes-pulls")
    scenario.apply_break(
        emulator.state, {"cause": "pull-qps-exceeded", "cluster": CLUSTER, "workload": "etl"}
    )
    make_private(emulator)
    emulator.clear_journal()
    registry_id = scenario.find_registry(emulator.state, REGISTRY)["id"]
    outcome = respond(emulator, CLUSTER, registry_id, None)
    record = record_of(outcome, "set-pull-policy-if-not-present")
    assert record.status == "applied", record.detail
    assert "set IfNotPresent on Deployment/" in record.detail
    commands = run_commands(emulator)
    assert any(
        c.startswith("kubectl patch deployment etl -n batch ")
        and "--type=strategic --patch-file patch.json" in c
        for c in commands
    ), commands
    assert not emulator.journal("kubernetes")  # nothing tried the private endpoint
    etl = template(emulator, CLUSTER, "batch", "etl")
    assert {c.get("imagePullPolicy") for c in etl["containers"]} == {"IfNotPresent"}
    verified = {f.cause_id: f for f in outcome.verification}
    assert verified["pull-qps-exceeded"].status is Status.PASS, verified["pull-qps-exceeded"]


def test_os_node_selector_is_set_through_run_command_and_verified(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    load_os_mismatch(emulator, MIXED, WORKLOADS)
    make_private(emulator, "aks1")
    emulator.clear_journal()
    outcome = respond(emulator, "aks1", REGISTRY_ID, IMAGE)
    record = record_of(outcome, "set-os-node-selector")
    assert record.status == "applied", record.detail
    assert record.detail == "set kubernetes.io/os=linux on Deployment/shop/api"
    commands = run_commands(emulator)
    assert any(
        c.startswith("kubectl patch deployment api -n shop --type=strategic") for c in commands
    ), commands
    assert not emulator.journal("kubernetes")
    assert template(emulator, "aks1", "shop", "api")["nodeSelector"] == {
        "kubernetes.io/os": "linux"
    }
    assert template(emulator, "aks1", "shop", "cart").get("nodeSelector") in (None, {})
    verified = {f.cause_id: f for f in outcome.verification}
    assert verified["os-mismatch"].status is Status.PASS, verified["os-mismatch"]
