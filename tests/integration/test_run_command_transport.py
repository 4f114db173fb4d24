"""The Kubernetes transport: a private cluster read through AKS Run Command gives every check the
verdict the direct API gives on the same estate, with one Run Command per cluster diagnosis."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest

from emulator import kubernetes as k8s
from emulator import run_command, scenario
from emulator.server import Emulator
from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.checks.base import Finding, Status, Target
from shared.config import Settings
from shared.engine import Engine

CLUSTER = "aks-shop-weu"
REGISTRY = "acrshopweu"
# Each break makes a Kubernetes-reading check FAIL, so the comparison is not of PASSes only.
BREAKS: list[dict[str, Any]] = [
    {"cause": "pull-secret-admin-stale", "cluster": CLUSTER},
    {"cause": "pull-secret-sp-invalid", "cluster": CLUSTER},
    {"cause": "pull-qps-exceeded", "cluster": CLUSTER, "workload": "etl"},
]


@pytest.fixture
def shop(emulator: Emulator) -> dict[str, Any]:
    return scenario.load(emulator.state, "kubernetes-pulls")


def make_private(emulator: Emulator, name: str = CLUSTER, **access: Any) -> str:
    """Turn the cluster private, as AKS shows one: privateFQDN only, API unreachable from here."""
    cluster = scenario.find_cluster(emulator.state, name)
    properties = cluster["properties"]
    subdomain = properties.pop("fqdn").split(".", 1)[0]
    properties["privateFQDN"] = f"{subdomain}.privatelink.{cluster['location']}.azmk8s.io"
    properties["apiServerAccessProfile"] = {
        "enablePrivateCluster": True,
        "privateDNSZone": "system",
        **access,
    }
    emulator.state.put(cluster)
    k8s.set_reachable(emulator.state, cluster["id"], False)
    return str(cluster["id"])


def diagnose(emulator: Emulator, **env: str) -> tuple[list[Finding], ArmEstate]:
    settings = Settings.from_env({**os.environ, **env})
    estate = ArmEstate(ClientFactory(settings))
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, CLUSTER)["id"])
    target = Target(cluster, scenario.find_registry(emulator.state, REGISTRY)["id"])
    return Engine(settings, estate).diagnose(target), estate


def kube_reading(findings: list[Finding]) -> set[str]:
    """The causes whose check reads the cluster's Kubernetes API (by the reads it declares)."""
    from shared.checks import get_check
    from shared.ports.kubernetes import USER_CREDENTIAL

    return {f.cause_id for f in findings if USER_CREDENTIAL in get_check(f.cause_id).meta.reads}


@pytest.mark.parametrize("broken", [None, *BREAKS], ids=lambda b: b["cause"] if b else "healthy")
def test_every_check_gives_the_same_verdict_through_run_command_as_direct(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str], broken: dict[str, Any] | None
) -> None:
    if broken:
        scenario.apply_break(emulator.state, broken)
    direct, _ = diagnose(emulator)
    emulator.clear_journal()
    make_private(emulator)
    private, _ = diagnose(emulator)
    assert [f.cause_id for f in private] == [f.cause_id for f in direct]
    assert len(kube_reading(direct)) >= 4  # every check is compared below
    for through_api, through_run_command in zip(direct, private, strict=True):
        assert through_run_command.to_dict() == through_api.to_dict(), through_api.cause_id
    runs = [e for e in emulator.journal("arm") if e.path.endswith("/runCommand")]
    assert len(runs) == 1  # every Kubernetes read of the diagnosis in one command
    assert not emulator.journal("kubernetes")  # and none tried the private endpoint
    if broken:
        assert broken["cause"] in {f.cause_id for f in private if f.status is Status.FAIL}


def test_a_failed_direct_connection_falls_back_and_is_remembered(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    cluster_id = scenario.find_cluster(emulator.state, CLUSTER)["id"]
    k8s.set_reachable(emulator.state, cluster_id, False)  # public FQDN, yet unreachable
    settings = Settings.from_env(os.environ)
    factory = ClientFactory(settings)
    estate = ArmEstate(factory)
    cluster = estate.get_cluster(cluster_id)
    registry_id = scenario.find_registry(emulator.state, REGISTRY)["id"]
    first = Engine(settings, estate).diagnose(Target(cluster, registry_id))
    assert all(f.status is not Status.UNKNOWN for f in first if f.cause_id.startswith("pull-"))
    emulator.clear_journal()
    again = ArmEstate(factory)  # the next run, same process: the failure is remembered
    Engine(settings, again).diagnose(Target(again.get_cluster(cluster_id), registry_id))
    assert not [e for e in emulator.journal() if e.service == "kubernetes"]
    assert len([e for e in emulator.journal("arm") if e.path.endswith("/runCommand")]) == 1


def test_direct_only_leaves_a_private_cluster_unknown(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    make_private(emulator)
    findings, _ = diagnose(emulator, KUBERNETES_TRANSPORT="direct")
    secret = next(f for f in findings if f.cause_id == "pull-secret-admin-stale")
    assert secret.status is Status.UNKNOWN
    assert not [e for e in emulator.journal("arm") if e.path.endswith("/runCommand")]


def test_disabled_run_command_makes_kubernetes_checks_unknown_with_that_reason(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    make_private(emulator, disableRunCommand=True)
    findings, _ = diagnose(emulator)
    secret = next(f for f in findings if f.cause_id == "pull-secret-admin-stale")
    assert secret.status is Status.UNKNOWN
    assert "disableRunCommand" in secret.summary
    assert not [e for e in emulator.journal("arm") if e.path.endswith("/runCommand")]


def test_a_command_pod_that_cannot_start_is_unknown_with_its_reason(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    cluster_id = make_private(emulator)
    run_command.fail_commands(emulator.state, cluster_id, "ImagePullBackoff")
    findings, _ = diagnose(emulator)
    secret = next(f for f in findings if f.cause_id == "pull-secret-admin-stale")
    assert secret.status is Status.UNKNOWN
    assert "ImagePullBackoff" in secret.summary


def test_entra_id_clusters_pass_a_cluster_token(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    cluster_id = make_private(emulator)
    cluster = emulator.state.get(cluster_id)
    assert cluster is not None
    cluster["properties"]["aadProfile"] = {"managed": True, "enableAzureRBAC": True}
    emulator.state.put(cluster)
    findings, _ = diagnose(emulator)
    assert (
        next(f for f in findings if f.cause_id == "pull-secret-admin-stale").status is Status.PASS
    )
    [post] = [e for e in emulator.journal("arm") if e.path.endswith("/runCommand")]
    audience = emulator.state.token_audience(post.body["clusterToken"]) or ""
    assert audience.startswith(k8s.AAD_SERVER_APP)


def test_rbac_that_hides_one_kind_leaves_only_its_checks_unknown(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    cluster_id = scenario.find_cluster(emulator.state, CLUSTER)["id"]
    k8s.forbid(emulator.state, cluster_id, "secrets")
    direct, _ = diagnose(emulator)
    make_private(emulator)
    private, _ = diagnose(emulator)
    assert [f.status for f in private] == [f.status for f in direct]
    assert (
        next(f for f in private if f.cause_id == "pull-secret-admin-stale").status is Status.UNKNOWN
    )
    assert (
        next(f for f in private if f.cause_id == "pull-qps-exceeded").status is not Status.UNKNOWN
    )


def test_a_stale_pull_secret_is_refreshed_through_run_command_and_verified(
    emulator: Emulator,
    shop: dict[str, Any],
    app_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from shared.remediations.refresh_pull_secret import RefreshPullSecret

    caplog.set_level(logging.DEBUG)
    scenario.apply_break(emulator.state, {"cause": "pull-secret-admin-stale", "cluster": CLUSTER})
    make_private(emulator)
    findings, estate = diagnose(emulator)
    finding = next(f for f in findings if f.cause_id == "pull-secret-admin-stale")
    assert finding.status is Status.FAIL
    emulator.clear_journal()
    registry_id = scenario.find_registry(emulator.state, REGISTRY)["id"]
    target = Target(estate.get_cluster(finding.resource_id), registry_id)
    record = RefreshPullSecret().apply(finding, target, estate, timeout=30)
    assert record.status == "applied", record.detail
    runs = [e for e in emulator.journal("arm") if e.path.endswith("/runCommand")]
    commands = [e.body["command"] for e in runs]
    assert any(c.startswith("kubectl patch secret acr-admin -n shop") for c in commands)
    assert not emulator.journal("kubernetes")
    after, _ = diagnose(emulator)
    assert next(f for f in after if f.cause_id == "pull-secret-admin-stale").status is Status.PASS
    registry = scenario.find_registry(emulator.state, REGISTRY)
    for password in emulator.state.registry_passwords[registry["id"].lower()]:
        assert password["value"] not in caplog.text
        assert all(password["value"] not in c for c in commands)  # the patch is in context


def test_dry_run_runs_no_command_unless_credential_reads_is_on(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    make_private(emulator)
    emulator.clear_journal()
    refused, _ = diagnose(emulator, REMEDIATION_MODE="dry-run")
    assert not [e for e in emulator.journal("arm") if e.path.endswith("/runCommand")]
    reading = [f for f in refused if f.cause_id in kube_reading(refused)]
    assert reading and all(f.status is Status.UNKNOWN for f in reading)
    assert all("runs no command in clusters" in f.summary for f in reading)

    # An operator's own run (the CLI, on the operator's rights) reads as enforce mode does.
    emulator.clear_journal()
    allowed, _ = diagnose(emulator, REMEDIATION_MODE="dry-run", CREDENTIAL_READS="on")
    assert len([e for e in emulator.journal("arm") if e.path.endswith("/runCommand")]) == 1
    assert all(
        f.status is not Status.UNKNOWN for f in allowed if f.cause_id in kube_reading(allowed)
    )
