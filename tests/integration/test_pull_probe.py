"""The node pull probe: where configuration and reality differ, the configuration checks pass
(or cannot tell), the probe finds the fault, and the ticket shows both sides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator import kubernetes as k8s
from emulator import run_command, scenario
from emulator.scenario_schema import ScenarioError
from emulator.server import Emulator
from emulator.tickets import github_issues
from shared.checks.base import Finding, Status, Target
from shared.engine import ALL
from shared.probe import pod
from shared.probe.check import PROBE_ID

CLUSTER, REGISTRY = "aks-spoke-weu", "acrhubweu"
LOGIN, DATA = "acrhubweu.azurecr.io", "acrhubweu.westeurope.data.azurecr.io"
POLICIES = Path(__file__).parents[1] / "policies"
SCENARIO = Path(__file__).parents[2] / "emulator" / "scenarios" / "network-private.yaml"

# Three estates whose ARM configuration is healthy but whose network is not.
REALITIES: dict[str, dict[str, Any]] = {
    # The zone is linked, but the VNet's custom DNS server does not forward privatelink.azurecr.io.
    "custom-dns-not-forwarding": {
        "vnet": "vnet-spoke",
        "dns": {LOGIN: "public", DATA: "public"},
    },
    # Peered and routed, but an NSG (or a firewall rule) drops 443 to the private endpoint.
    "dropped-path": {"vnet": "vnet-spoke", "drop": [LOGIN, DATA]},
    # The kubelet identity is on the scale sets, but IMDS is blocked on the nodes.
    "imds-blocked": {"vnet": "vnet-spoke", "imds": "blocked"},
}
ASPECT = {"custom-dns-not-forwarding": "dns", "dropped-path": "connect", "imds-blocked": "token"}
CONFIG_CAUSES = {
    "dns": {"private-dns-link-missing"},
    "connect": {"vnet-peering-missing", "firewall-egress-blocked"},
    "token": {"kubelet-identity-detached", "acrpull-missing"},
}


def load(emulator: Emulator, truth: dict[str, Any] | None) -> None:
    spec = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    for group in spec["subscriptions"][0]["resourceGroups"]:
        for cluster in group.get("clusters", []):
            if cluster["name"] == CLUSTER:  # healthy configuration: may pull (AcrPull)
                cluster["attachedRegistries"] = [REGISTRY]
    if truth is not None:
        spec["networkTruth"] = [truth]
    scenario.load(emulator.state, spec)


@pytest.fixture
def probing(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("POLICY_PATH", str(POLICIES / "probe-auto.yaml"))
    return app_env


def respond(emulator: Emulator) -> tuple[list[Finding], Any]:
    from shared.runtime import engine

    responder = engine(respond=True, source="test")
    cluster = responder.estate.get_cluster(scenario.find_cluster(emulator.state, CLUSTER)["id"])
    registry = scenario.find_registry(emulator.state, REGISTRY)["id"]
    outcome = responder.diagnose_and_respond("probe-test", Target(cluster, registry), ALL)
    return list(outcome.findings), outcome


def by_cause(findings: list[Finding]) -> dict[str, Finding]:
    return {f.cause_id: f for f in findings}


@pytest.mark.parametrize("reality", list(REALITIES))
def test_the_probe_finds_what_the_configuration_cannot(
    emulator: Emulator, probing: dict[str, str], reality: str
) -> None:
    load(emulator, REALITIES[reality])
    findings, _ = respond(emulator)
    found = by_cause(findings)
    aspect = ASPECT[reality]
    for cause in CONFIG_CAUSES[aspect]:
        assert found[cause].status in (Status.PASS, Status.UNKNOWN), found[cause].summary
        assert "nodeProbe" in found[cause].evidence  # the probe's observations join them
    probe = found[PROBE_ID]
    assert probe.status is Status.FAIL, probe.summary
    contradictions = probe.evidence["contradictions"]
    assert {c["aspect"] for c in contradictions} == {aspect}
    for contradiction in contradictions:
        assert {s["cause"] for s in contradiction["configuration"]} == CONFIG_CAUSES[aspect]
        assert contradiction["probe"]["pool"] in {"system", "user"}
    [issue] = [i for i in github_issues(emulator.state) if PROBE_ID in i["title"]]
    body = issue["body"]
    assert "contradictions" in body and "configuration" in body  # both sides in the ticket
    for cause in CONFIG_CAUSES[aspect]:
        assert cause in body
    # One Run Command for the probe (the cluster's API is public here: reads go direct).
    runs = [e for e in emulator.journal("arm") if e.path.endswith("/runCommand")]
    assert len(runs) == 1
    assert not [
        p
        for p in k8s.objects(emulator.state, cluster_id(emulator), "pods")
        if p["metadata"]["labels"].get(pod.LABEL) == pod.NAME
    ]


def cluster_id(emulator: Emulator) -> str:
    return str(scenario.find_cluster(emulator.state, CLUSTER)["id"])


def test_a_healthy_estate_probes_clean(emulator: Emulator, probing: dict[str, str]) -> None:
    load(emulator, None)
    findings, _ = respond(emulator)
    probe = by_cause(findings)[PROBE_ID]
    assert probe.status is Status.PASS, probe.summary
    [system, _user] = probe.evidence["pools"]
    assert system["loginServer"]["private"] is True
    assert system["loginServer"]["v2Status"] == 401
    assert system["kubeletToken"] == {"imds": "ok", "exchange": "ok", "status": 200}
    assert probe.evidence["contradictions"] == []


def test_a_fault_the_configuration_shows_is_no_contradiction(
    emulator: Emulator, probing: dict[str, str]
) -> None:
    load(emulator, None)
    scenario.apply_break(emulator.state, {"cause": "private-dns-link-missing", "cluster": CLUSTER})
    findings, _ = respond(emulator)
    found = by_cause(findings)
    assert found["private-dns-link-missing"].status is Status.FAIL
    assert (
        found["private-dns-link-missing"].evidence["nodeProbe"][0]["loginServer"]["private"]
        is False
    )
    assert found[PROBE_ID].status is Status.PASS


def test_probe_off_by_default_runs_nothing(emulator: Emulator, app_env: dict[str, str]) -> None:
    load(emulator, REALITIES["dropped-path"])
    findings, _ = respond(emulator)
    assert PROBE_ID not in by_cause(findings)
    assert not [e for e in emulator.journal("arm") if e.path.endswith("/runCommand")]


def test_the_pods_are_removed_even_when_the_command_pod_fails(
    emulator: Emulator, probing: dict[str, str]
) -> None:
    load(emulator, None)
    run_command.fail_commands(emulator.state, cluster_id(emulator), "ImagePullBackoff")
    findings, _ = respond(emulator)
    probe = by_cause(findings)[PROBE_ID]
    assert probe.status is Status.UNKNOWN
    assert "ImagePullBackoff" in probe.summary


def test_the_pod_spec_pins_tolerates_and_runs_on_the_nodes_network() -> None:
    from shared.models import NodePool

    spec = pod.manifest(
        NodePool("arm", "Standard_D4ps_v5", "Linux", "User", 2),
        name="acr-pull-probe-arm-abc123",
        login_server=LOGIN,
        data_endpoint=DATA,
        client_id="00000000-0000-0000-0000-000000000001",
    )["spec"]
    assert spec["nodeSelector"] == {
        "kubernetes.azure.com/agentpool": "arm",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "arm64",
    }
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "Default"
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == pod.DEADLINE
    assert spec["automountServiceAccountToken"] is False
    [container] = spec["containers"]
    assert container["image"] == pod.IMAGE
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_probe_pods_are_served_as_the_api_server_would(emulator: Emulator) -> None:
    """A probe pod through the emulated API: scheduled on its pool, Succeeded, with logs."""
    load(emulator, None)
    api = k8s.api_for(emulator.state, cluster_id(emulator))
    from emulator.kubectl import Shell

    command, files, names = pod_plan(emulator)
    shell = Shell(emulator.state, api, api.admin_token, files)
    assert shell.run(command) == 0
    text = "".join(shell.out)
    reports = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert len(reports) == len(names) == 2
    assert {r["node"].split("-")[1] for r in reports} == {"system", "user"}


def pod_plan(emulator: Emulator) -> tuple[str, dict[str, bytes], dict[str, str]]:
    from shared.models import Cluster, NodePool

    cluster = Cluster(
        id=cluster_id(emulator),
        name=CLUSTER,
        location="westeurope",
        node_resource_group="",
        node_pools=(
            NodePool("system", "Standard_D4s_v5", "Linux", "System", 3),
            NodePool("user", "Standard_D4s_v5", "Linux", "User", 2),
        ),
        kubelet_identity=None,
        service_principal_client_id=None,
        provisioning_state="Succeeded",
    )
    return pod.plan(cluster, login_server=LOGIN, data_endpoint=DATA, client_id="")


def test_network_truth_cannot_lie(emulator: Emulator) -> None:
    with pytest.raises(ScenarioError, match="dsn"):
        load(emulator, {"vnet": "vnet-spoke", "dsn": {LOGIN: "public"}})
    with pytest.raises(ScenarioError, match="not one of"):
        load(emulator, {"vnet": "vnet-spoke", "dns": {LOGIN: "sometimes"}})
