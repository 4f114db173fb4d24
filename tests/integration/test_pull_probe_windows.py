"""The node pull probe on Windows node pools: a HostProcess pod beside the Linux ones, in the same
single Run Command, answering from the same network truth, and refused where Kubernetes or a
Windows node would refuse it."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from typing import Any

import pytest
import yaml

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.kubectl import Shell
from emulator.server import Emulator
from emulator.tickets import github_issues
from shared.checks.base import Status
from shared.models import Cluster, NodePool
from shared.probe import pod, windows
from shared.probe.check import PROBE_ID
from tests.integration.test_pull_probe import (
    CLUSTER,
    DATA,
    LOGIN,
    REGISTRY,
    SCENARIO,
    by_cause,
    cluster_id,
    respond,
)

CLIENT_ID = "00000000-0000-0000-0000-000000000001"
WIN = NodePool("win", "Standard_D4s_v5", "Windows", "User", 2)


def load(emulator: Emulator, truth: list[dict[str, Any]] | None = None) -> None:
    """aks-spoke-weu with a Linux system pool and a Windows pool on its own subnet (aks-win),
    attached to the registry: a healthy configuration."""
    spec = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    for group in spec["subscriptions"][0]["resourceGroups"]:
        for vnet in group.get("virtualNetworks", []):
            if vnet["name"] == "vnet-spoke":
                vnet["subnets"].append({"name": "aks-win", "prefix": "10.1.4.0/24"})
        for cluster in group.get("clusters", []):
            if cluster["name"] == CLUSTER:
                cluster["attachedRegistries"] = [REGISTRY]
                cluster["nodePools"] = [
                    {"name": "system", "vmSize": "Standard_D4s_v5", "count": 2, "mode": "System"},
                    {
                        "name": "win",
                        "vmSize": "Standard_D4s_v5",
                        "count": 2,
                        "osType": "Windows",
                        "subnet": "aks-win",
                    },
                ]
    if truth:
        spec["networkTruth"] = truth
    scenario.load(emulator.state, spec)


@pytest.fixture
def probing(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from tests.integration.test_pull_probe import POLICIES

    monkeypatch.setenv("POLICY_PATH", str(POLICIES / "probe-auto.yaml"))
    return app_env


def applied_pods(emulator: Emulator) -> list[dict[str, Any]]:
    """The probe pods the single Run Command applied (from its context zip)."""
    [run] = [e for e in emulator.journal("arm") if e.path.endswith("/runCommand")]
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(run.body["context"]))) as archive:
        items: list[dict[str, Any]] = json.loads(archive.read("probe-pods.json"))["items"]
    return items


def test_a_mixed_cluster_is_probed_in_one_command_with_a_pod_per_pool(
    emulator: Emulator, probing: dict[str, str]
) -> None:
    load(emulator)
    findings, _ = respond(emulator)
    probe = by_cause(findings)[PROBE_ID]
    assert probe.status is Status.PASS, probe.summary
    pods = applied_pods(emulator)  # exactly one Run Command
    assert sorted(p["spec"]["nodeSelector"]["kubernetes.io/os"] for p in pods) == [
        "linux",
        "windows",
    ]
    pools = {p["pool"]: p for p in probe.evidence["pools"]}
    assert (pools["system"]["os"], pools["win"]["os"]) == ("linux", "windows")
    for name, seen in pools.items():
        assert "error" not in seen, (name, seen)
        assert seen["loginServer"]["private"] is True and seen["loginServer"]["v2Status"] == 401
        assert seen["dataEndpoint"]["tcp"] == "ok"
        assert seen["kubeletToken"] == {"imds": "ok", "exchange": "ok", "status": 200}
    assert pools["win"]["node"].startswith("akswin")
    leftover = [
        p
        for p in k8s.objects(emulator.state, cluster_id(emulator), "pods")
        if p["metadata"]["labels"].get(pod.LABEL) == pod.NAME
    ]
    assert not leftover


def test_a_path_dropped_on_the_windows_subnet_is_found_on_the_windows_pool(
    emulator: Emulator, probing: dict[str, str]
) -> None:
    # Peered, routed and linked, but an NSG on the Windows pool's subnet drops 443 to the
    # registry's private endpoint: the Linux pool pulls, the Windows one cannot.
    load(emulator, [{"vnet": "vnet-spoke", "subnet": "aks-win", "drop": [LOGIN, DATA]}])
    findings, _ = respond(emulator)
    found = by_cause(findings)
    for cause in ("vnet-peering-missing", "firewall-egress-blocked"):
        assert found[cause].status in (Status.PASS, Status.UNKNOWN), found[cause].summary
    probe = found[PROBE_ID]
    assert probe.status is Status.FAIL, probe.summary
    contradictions = probe.evidence["contradictions"]
    assert {c["aspect"] for c in contradictions} == {"connect"}
    assert {c["probe"]["pool"] for c in contradictions} == {"win"}
    assert {c["probe"]["tcp"] for c in contradictions} == {"timeout"}
    assert "win" in probe.summary
    [issue] = [i for i in github_issues(emulator.state) if PROBE_ID in i["title"]]
    assert "akswin000000" in issue["body"] and "vnet-peering-missing" in issue["body"]


def test_custom_dns_not_forwarding_is_found_on_both_oses(
    emulator: Emulator, probing: dict[str, str]
) -> None:
    load(emulator, [{"vnet": "vnet-spoke", "dns": {LOGIN: "public", DATA: "public"}}])
    findings, _ = respond(emulator)
    probe = by_cause(findings)[PROBE_ID]
    assert probe.status is Status.FAIL, probe.summary
    hit = {c["probe"]["pool"] for c in probe.evidence["contradictions"] if c["aspect"] == "dns"}
    assert hit == {"system", "win"}


def test_the_windows_pod_is_a_host_process_pod_pinned_to_its_pool() -> None:
    document = pod.manifest(
        WIN,
        name="acr-pull-probe-win-abc123",
        login_server=LOGIN,
        data_endpoint=DATA,
        client_id=CLIENT_ID,
    )
    spec = document["spec"]
    assert spec["securityContext"]["windowsOptions"] == {
        "hostProcess": True,
        "runAsUserName": "NT AUTHORITY\\Local service",
    }
    assert spec["hostNetwork"] is True  # required with HostProcess
    assert spec["nodeSelector"] == {
        "kubernetes.azure.com/agentpool": "win",
        "kubernetes.io/os": "windows",
        "kubernetes.io/arch": "amd64",
    }
    assert spec["tolerations"] == [{"operator": "Exists"}]  # os=windows:NoSchedule and the rest
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == pod.DEADLINE
    assert spec["automountServiceAccountToken"] is False
    [container] = spec["containers"]
    assert container["image"] == windows.IMAGE
    assert container["command"][0] == "powershell.exe"
    assert "runAsNonRoot" not in json.dumps(document)  # HostProcess forbids runAsNonRoot: true
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[windows.SCRIPT_ENV] == windows.SCRIPT
    assert (env["PROBE_LOGIN_SERVER"], env["PROBE_CLIENT_ID"]) == (LOGIN, CLIENT_ID)
    assert document["metadata"]["labels"][pod.LABEL] == pod.NAME


def test_the_powershell_script_prints_the_report_and_never_a_token() -> None:
    script = windows.SCRIPT
    assert script.startswith("# acr-pull-probe/1")
    assert f"probe = '{pod.MARKER}'" in script
    for field in ("host", "dns", "tcp", "tcpMs", "tls", "tlsMs", "v2"):
        assert re.search(rf"\b{field} = ", script), field
    for field in ("node", "login", "data", "imds", "exchange", "exchangeStatus"):
        assert re.search(rf"^\s+{field} = ", script, re.M), field
    assert "Metadata = 'true'" in script and "/oauth2/exchange" in script
    assert "ConnectAsync($Name, 443).Wait(5000)" in script  # the same 5 s connect limit
    sinks = r"\[Console\]::|Write-(Output|Host|Error|Warning|Verbose|Information)|Out-|\becho\b"
    writes = [line for line in script.splitlines() if re.search(sinks, line)]
    assert len(writes) == 2  # the report on stdout, an error's type on stderr
    for line in writes:
        assert not re.search(r"\$(token|form|answer|text|Matches)", line), line
    assert "$token = $null" in script and "$form = $null" in script


def test_windows_on_arm64_is_reported_as_not_probed() -> None:
    cluster = Cluster(
        id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c",
        name="c",
        location="westeurope",
        node_resource_group="",
        node_pools=(
            NodePool("system", "Standard_D4s_v5", "Linux", "System", 1),
            WIN,
            NodePool("winarm", "Standard_D4ps_v5", "Windows", "User", 1),
        ),
        kubelet_identity=None,
        service_principal_client_id=None,
        provisioning_state="Succeeded",
    )
    _, files, names = pod.plan(cluster, login_server=LOGIN, data_endpoint=DATA, client_id="")
    assert set(names) == {"system", "win"}
    assert len(json.loads(files["probe-pods.json"])["items"]) == 2
    [arm] = [p for p in pod.parse(cluster, "") if p.pool == "winarm"]
    assert arm.arch == "arm64" and not arm.ran
    assert "amd64 only" in arm.error


def shell(emulator: Emulator) -> tuple[Shell, k8s.ClusterApi]:
    api = k8s.api_for(emulator.state, cluster_id(emulator))
    return Shell(emulator.state, api, api.admin_token), api


def apply(emulator: Emulator, document: dict[str, Any]) -> tuple[int, str, k8s.ClusterApi]:
    run, api = shell(emulator)
    run.files["p.json"] = json.dumps(document).encode()
    status = run.run("kubectl apply -f p.json")
    return status, "".join(run.out), api


def windows_pod(**spec: Any) -> dict[str, Any]:
    document = pod.manifest(
        WIN, name="acr-pull-probe-win-t", login_server=LOGIN, data_endpoint=DATA, client_id=""
    )
    document["spec"].update(spec)
    return document


def test_the_api_server_refuses_host_process_without_host_network(emulator: Emulator) -> None:
    load(emulator)
    linux = pod.manifest(
        NodePool("system", "Standard_D4s_v5", "Linux", "System", 2),
        name="acr-pull-probe-system-t",
        login_server=LOGIN,
        data_endpoint=DATA,
        client_id="",
    )
    document = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [windows_pod(hostNetwork=False), linux],
    }
    status, out, api = apply(emulator, document)
    assert status == 1
    assert "Invalid" in out and "spec.hostNetwork" in out
    assert "hostNetwork must be true if pod contains any hostProcess containers" in out
    assert api.get("pods", pod.NAMESPACE, "acr-pull-probe-win-t") is None
    # kubectl goes on with the rest of the list: the Linux pool is still probed.
    assert "pod/acr-pull-probe-system-t created" in out
    assert api.get("pods", pod.NAMESPACE, "acr-pull-probe-system-t") is not None


def test_a_linux_image_on_a_windows_node_does_not_pull(emulator: Emulator) -> None:
    load(emulator)
    document = windows_pod()
    document["spec"]["containers"][0]["image"] = pod.IMAGE  # busybox: linux/amd64, linux/arm64
    status, _, api = apply(emulator, document)
    assert status == 0  # the API server takes it; the node cannot run it
    stored = api.get("pods", pod.NAMESPACE, "acr-pull-probe-win-t")
    assert stored is not None
    assert stored["status"]["phase"] == "Pending"
    [waiting] = [c["state"]["waiting"] for c in stored["status"]["containerStatuses"]]
    assert "no match for platform in manifest" in waiting["message"]
    assert not api.logs.get((pod.NAMESPACE, "acr-pull-probe-win-t"))


def test_the_windows_probe_without_host_process_does_not_run(emulator: Emulator) -> None:
    load(emulator)
    status, _, api = apply(emulator, windows_pod(securityContext={}))
    assert status == 0
    stored = api.get("pods", pod.NAMESPACE, "acr-pull-probe-win-t")
    assert stored is not None and stored["status"]["phase"] == "Failed"
    assert not api.logs.get((pod.NAMESPACE, "acr-pull-probe-win-t"))


def test_the_windows_probe_pod_reports_from_its_subnets_truth(emulator: Emulator) -> None:
    load(emulator, [{"vnet": "vnet-spoke", "subnet": "aks-win", "refuse": [LOGIN]}])
    status, _, api = apply(emulator, windows_pod())
    assert status == 0
    stored = api.get("pods", pod.NAMESPACE, "acr-pull-probe-win-t")
    assert stored is not None and stored["status"]["phase"] == "Succeeded"
    [report] = pod.parse(
        Cluster(
            id=cluster_id(emulator),
            name=CLUSTER,
            location="westeurope",
            node_resource_group="",
            node_pools=(WIN,),
            kubelet_identity=None,
            service_principal_client_id=None,
            provisioning_state="Succeeded",
        ),
        f"{pod.POOL_LINE}win\n" + api.logs[(pod.NAMESPACE, "acr-pull-probe-win-t")],
    )
    assert report.ran and report.os == "windows" and report.node.startswith("akswin")
    assert report.login is not None and report.login.tcp == "refused"
    assert report.data is not None and report.data.tcp == "ok"
