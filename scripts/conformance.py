"""``make conformance``: clients no one here wrote (the Azure CLI, kubectl) run the guide's commands
against the emulator, and what they print is compared with the estate the emulator holds.

The emulator is the product's only picture of Azure; these clients cannot share its mistakes.
Everything stays on loopback: the CLI signs in with the emulator's managed identity
(``IDENTITY_ENDPOINT``), talks to a custom cloud registered from the emulator's own
``/metadata/endpoints``, reaches ``<name>.azurecr.io`` through the emulator's registry proxy
(``HTTPS_PROXY``, which refuses every other host), and trusts the emulator's CA through
``REQUESTS_CA_BUNDLE``. Commands the emulator does not serve are listed in :data:`NOT_SERVED`.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.providers import authorization as authz
from emulator.providers.containerservice import cluster_sp_secret
from emulator.server import Emulator
from emulator.state import State

ROOT = Path(__file__).resolve().parent.parent
AZ = ROOT / ".tools" / "azure-cli" / "bin" / "az"
KUBECTL = ROOT / ".tools" / "kubectl" / "bin" / "kubectl"

PROD, SANDBOX = "platform-prod", "sandbox"
CLUSTER, GROUP, REGISTRY = "aks-prod-weu", "rg-aks-prod", "acrprodweu"
# A repository-scoped token of acrprodweu (scenarios/sample.yaml); a name, not a secret.
ACR_TOKEN = "payments-puller"  # noqa: S105
SP_CLUSTER, SP_GROUP = "aks-dev-neu", "rg-aks-dev"
HUB_REGISTRY, ZONE = "acrhubweu", "privatelink.azurecr.io"
PULL_APP = "6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"  # payments-acr-pull (the pull secret's SP)
NOBODY = "3d6f0a2b-9c1e-4b7d-8a5f-2e4c6b8d0f1a"  # an object id the directory does not hold

# The guide's commands the emulator deliberately does not serve, and why. Nothing else is skipped.
NOT_SERVED: dict[str, str] = {
    "az acr check-health": "runs `docker` and resolves the registry through DNS; the emulator "
    "has no Docker daemon and owns no names in the machine's resolver",
    "az aks check-acr": "deploys a canary pod that pulls from the registry; emulated clusters "
    "schedule pods but run no containers",
    "az acr login": "stores the registry token in a Docker daemon, which the machine lacks",
    "az ad sp credential reset": "Graph `addPassword` on a service principal object is not "
    "emulated; the same rotation is run as `az ad app credential reset --append` (the product "
    "rotates application passwords)",
    "kubectl logs / kubectl exec": "emulated pods run no containers: there is nothing to stream",
}

# Where the clients show the emulator differs from what they expect, but the difference is a
# modelling decision under review rather than a defect to hide: printed by every run.
KNOWN_DIFFERENCES: dict[str, str] = {}

Check = Callable[[str], str | None]


@dataclass(frozen=True)
class Command:
    """One command as a person types it (``shown``), the argv run, and what must be true after."""

    shown: str
    argv: tuple[str, ...]
    check: Check
    fails_with: str | None = None  # expected to fail, as Azure fails it (an error code it prints)


def _json(text: str) -> Any:
    return json.loads(text) if text.strip() else None


def equals(expected: Any, transform: Callable[[Any], Any] = lambda v: v) -> Check:
    def check(out: str) -> str | None:
        got = transform(_json(out))
        return None if got == expected else f"printed {got!r}, the estate holds {expected!r}"

    return check


def holds(condition: Callable[[Any], bool], what: str) -> Check:
    def check(out: str) -> str | None:
        try:
            ok = condition(_json(out))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            return f"{what}: could not read the output ({exc!r})"
        return None if ok else f"{what}: not so in what it printed"

    return check


def text_has(*needles: str) -> Check:
    def check(out: str) -> str | None:
        missing = [n for n in needles if n not in out]
        return f"output lacks {missing}" if missing else None

    return check


def state_holds(condition: Callable[[], bool], what: str) -> Check:
    return lambda out: None if condition() else f"the emulator does not hold it: {what}"


def both(*checks: Check) -> Check:
    def check(out: str) -> str | None:
        return next((problem for c in checks if (problem := c(out)) is not None), None)

    return check


class Conformance:
    def __init__(self, emulator: Emulator, workdir: Path) -> None:
        self.emu = emulator
        self.state: State = emulator.state
        self.workdir = workdir
        self.results: list[tuple[Command, str | None, float]] = []
        self.env = self._environment()

    def _environment(self) -> dict[str, str]:
        proxy = self.emu.registry_proxy()
        # A clean environment: nothing of the caller's Azure or Kubernetes settings leaks in.
        return {
            "PATH": f"{AZ.parent}:{KUBECTL.parent}:/usr/bin:/bin",
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "AZURE_CONFIG_DIR": str(self.workdir / "azure"),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
            "REQUESTS_CA_BUNDLE": self.emu.ca_path,
            "IDENTITY_ENDPOINT": f"{self.emu.base_url}/msi/token",
            "IDENTITY_HEADER": self.state.identity_header,
            # Registry names reach the emulator through its proxy; the proxy refuses any other
            # host, so a client that strays from loopback fails instead of going out.
            "HTTPS_PROXY": proxy,
            "HTTP_PROXY": proxy,
            "NO_PROXY": "127.0.0.1,localhost",
            "KUBECONFIG": str(self.workdir / "kubeconfig"),
        }

    # -- running ------------------------------------------------------------------------------

    def run(self, command: Command) -> str:
        started = time.monotonic()
        completed = subprocess.run(  # noqa: S603 (argv built here, our own tools)
            command.argv,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        elapsed = time.monotonic() - started
        problem: str | None
        if command.fails_with is not None:
            if completed.returncode == 0:
                problem = f"succeeded; Azure refuses it with {command.fails_with}"
            elif command.fails_with not in completed.stderr:
                problem = f"failed without {command.fails_with}: {_last_line(completed.stderr)}"
            else:
                problem = None
        elif completed.returncode != 0:
            problem = f"exit {completed.returncode}: {_last_line(completed.stderr)}"
        else:
            try:
                problem = command.check(completed.stdout)
            except Exception as exc:  # a check's bug is a failed command, reported, not a crash
                problem = f"check raised {exc!r}"
        self.results.append((command, problem, elapsed))
        mark = "ok  " if problem is None else "FAIL"
        print(
            f"{mark} {elapsed:5.1f}s  {command.shown}" + (f"\n      {problem}" if problem else "")
        )
        sys.stdout.flush()
        return completed.stdout

    def az(self, shown: str, *args: str, check: Check, fails_with: str | None = None) -> str:
        argv = (str(AZ), *args, *(() if "-o" in args else ("-o", "json")))
        return self.run(Command(shown, argv, check, fails_with))

    def kubectl(self, shown: str, *args: str, check: Check) -> str:
        return self.run(Command(shown, (str(KUBECTL), *args), check))

    # -- estate facts -------------------------------------------------------------------------

    def cluster(self, name: str = CLUSTER) -> dict[str, Any]:
        return scenario.find_cluster(self.state, name)

    def registry(self, name: str = REGISTRY) -> dict[str, Any]:
        return scenario.find_registry(self.state, name)

    def kubelet(self) -> dict[str, Any]:
        return dict(self.cluster()["properties"]["identityProfile"]["kubeletidentity"])

    def assigned(self, scope: str, principal: str, role_guid: str) -> bool:
        return any(
            a["properties"]["scope"].lower() == scope.lower()
            and a["properties"]["principalId"].lower() == principal.lower()
            and a["properties"]["roleDefinitionId"].lower().endswith(role_guid)
            for a in authz.assignments(self.state)
        )

    def token_password(self, slot: str) -> str:
        token_id = f"{self.registry()['id']}/tokens/{ACR_TOKEN}".lower()
        with self.state.lock:
            return str(self.state.token_passwords[token_id][slot]["value"])

    def passwords(self, name: str = REGISTRY) -> list[str]:
        with self.state.lock:
            stored = self.state.registry_passwords.get(self.registry(name)["id"].lower(), [])
            return [p["value"] for p in stored]

    def k8s(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        found = k8s.objects(self.state, self.cluster()["id"], plural)
        return [o for o in found if o["metadata"].get("namespace") == namespace]

    # -- the guide ----------------------------------------------------------------------------

    def sign_in(self) -> None:
        base = self.emu.base_url
        self.az(
            f"az cloud register -n Emulator --endpoint-resource-manager {base}",
            *("cloud", "register", "-n", "Emulator", "--endpoint-resource-manager", base),
            *("-o", "none"),
            check=lambda out: None,
        )
        self.az(
            "az cloud set -n Emulator",
            *("cloud", "set", "-n", "Emulator", "-o", "none"),
            check=lambda out: None,
        )
        with self.state.lock:
            subscriptions = {s["displayName"] for s in self.state.subscriptions.values()}
        self.az(
            "az login --identity",
            "login",
            "--identity",
            check=both(
                equals(subscriptions, lambda v: {s["name"] for s in v}),
                holds(lambda v: all(s["tenantId"] == self.state.tenant_id for s in v), "tenant"),
            ),
        )
        self.az(
            f"az account set -s {PROD}",
            *("account", "set", "-s", PROD, "-o", "none"),
            check=lambda out: None,
        )

    def reads(self) -> None:
        cluster, registry, kubelet = self.cluster(), self.registry(), self.kubelet()
        node_rg = cluster["properties"]["nodeResourceGroup"]
        pools = [p["name"] for p in cluster["properties"]["agentPoolProfiles"]]
        vmss = scenario.node_pool_vmss(self.state, cluster, "system")[0]
        clusters = sorted(
            c["name"]
            for c in self.state.of_type(
                "Microsoft.ContainerService/managedClusters", cluster["id"].split("/")[2]
            )
        )
        self.az(
            "az aks list",
            *("aks", "list", "--query", "[].name"),
            check=equals(clusters, sorted),
        )
        self.az(
            f"az aks show -g {GROUP} -n {CLUSTER} --query identityProfile.kubeletidentity",
            *("aks", "show", "-g", GROUP, "-n", CLUSTER),
            *("--query", "identityProfile.kubeletidentity"),
            check=equals(kubelet),
        )
        self.az(
            f"az aks nodepool list -g {GROUP} --cluster-name {CLUSTER}",
            *("aks", "nodepool", "list", "-g", GROUP, "--cluster-name", CLUSTER),
            check=equals(pools, lambda v: [p["name"] for p in v]),
        )
        arm_pool = next(p for p in cluster["properties"]["agentPoolProfiles"] if p["name"] == "arm")
        self.az(
            f"az aks nodepool show -g {GROUP} --cluster-name {CLUSTER} -n arm",
            *("aks", "nodepool", "show", "-g", GROUP, "--cluster-name", CLUSTER, "-n", "arm"),
            check=equals(
                (arm_pool["vmSize"], "Succeeded", arm_pool["currentOrchestratorVersion"]),
                lambda v: (v["vmSize"], v["provisioningState"], v["currentOrchestratorVersion"]),
            ),
        )
        kubeconfig = Path(self.env["KUBECONFIG"])
        self.az(
            f"az aks get-credentials -g {GROUP} -n {CLUSTER}",
            *("aks", "get-credentials", "-g", GROUP, "-n", CLUSTER, "--overwrite-existing"),
            check=state_holds(
                lambda: f"name: {CLUSTER}\n" in kubeconfig.read_text(), "a context named after it"
            ),
        )
        self.az(
            f"az aks get-credentials -g {GROUP} -n {CLUSTER} --admin",
            *("aks", "get-credentials", "-g", GROUP, "-n", CLUSTER, "--admin"),
            "--overwrite-existing",
            check=state_holds(
                lambda: f"name: {CLUSTER}-admin\n" in kubeconfig.read_text(),
                f"a context {CLUSTER}-admin (the CLI's suffix on the cluster's name)",
            ),
        )
        registries = sorted(
            r["name"]
            for r in self.state.of_type(
                "Microsoft.ContainerRegistry/registries", cluster["id"].split("/")[2]
            )
        )
        self.az("az acr list", "acr", "list", check=equals(registries, _names))
        self.az(
            f"az acr show -n {REGISTRY}",
            *("acr", "show", "-n", REGISTRY),
            check=equals(
                (registry["id"], registry["properties"]["loginServer"]),
                lambda v: (v["id"], v["loginServer"]),
            ),
        )
        self.az(
            f"az acr credential show -n {REGISTRY}",
            *("acr", "credential", "show", "-n", REGISTRY),
            check=holds(
                lambda v: (
                    v["username"] == REGISTRY
                    and [p["value"] for p in v["passwords"]] == self.passwords()
                ),
                "the admin user and the passwords the registry holds",
            ),
        )
        self.az(
            f"az acr scope-map list -r {REGISTRY}",
            *("acr", "scope-map", "list", "-r", REGISTRY),
            check=holds(
                lambda v: {"payments-pull", "_repositories_pull"} <= {m["name"] for m in v},
                "the user-defined and the system scope maps",
            ),
        )
        self.az(
            f"az acr token list -r {REGISTRY}",
            *("acr", "token", "list", "-r", REGISTRY),
            check=equals(
                [(ACR_TOKEN, "enabled", "payments-pull")],
                lambda v: [(t["name"], t["status"], t["scopeMapId"].rsplit("/", 1)[-1]) for t in v],
            ),
        )
        self.az(
            f"az acr token credential generate -n {ACR_TOKEN} -r {REGISTRY} --password2 "
            "--expiration-in-days 30",
            *("acr", "token", "credential", "generate", "-n", ACR_TOKEN, "-r", REGISTRY),
            *("--password2", "--expiration-in-days", "30"),
            check=holds(
                lambda v: (
                    v["username"] == ACR_TOKEN
                    and [p["name"] for p in v["passwords"]] == ["password2"]
                    and v["passwords"][0]["value"] == self.token_password("password2")
                ),
                "a new password2, the one the registry now holds",
            ),
        )
        with self.state.lock:
            repositories = dict(self.state.registry_repositories[registry["id"].lower()])
        self.az(
            f"az acr repository list -n {REGISTRY}",
            *("acr", "repository", "list", "-n", REGISTRY),
            check=equals(sorted(repositories)),
        )
        self.az(
            f"az acr repository show-tags -n {REGISTRY} --repository app",
            *("acr", "repository", "show-tags", "-n", REGISTRY, "--repository", "app"),
            check=equals(sorted(repositories["app"]["tags"])),
        )
        self.az(
            f"az role assignment list --scope <{REGISTRY} id> --include-inherited",
            *("role", "assignment", "list", "--scope", registry["id"], "--include-inherited"),
            check=holds(
                # roleDefinitionName: the CLI joins each assignment to the role definitions
                # listed at the scope by exact id, as against Azure.
                lambda v: any(
                    a["principalId"] == kubelet["objectId"]
                    and a["roleDefinitionId"].lower().endswith(authz.ACR_PULL)
                    and a["roleDefinitionName"] == "AcrPull"
                    for a in v
                ),
                "AcrPull (by name) for the kubelet identity",
            ),
        )
        self.az(
            "az role definition list --name AcrPull",
            *("role", "definition", "list", "--name", "AcrPull"),
            check=holds(
                lambda v: (
                    v[0]["permissions"][0]["actions"]
                    == ["Microsoft.ContainerRegistry/registries/pull/read"]
                ),
                "AcrPull grants registries/pull/read",
            ),
        )
        self.az(
            f"az vmss identity show -g {node_rg} -n {vmss['name']}",
            *("vmss", "identity", "show", "-g", node_rg, "-n", vmss["name"]),
            check=holds(
                lambda v: (
                    kubelet["resourceId"].lower()
                    in {k.lower() for k in v["userAssignedIdentities"]}
                ),
                "the kubelet identity on the scale set",
            ),
        )
        self.network_reads(node_rg)
        app = self.state.graph_applications[PULL_APP]
        self.az(
            f"az ad sp show --id {PULL_APP}",
            *("ad", "sp", "show", "--id", PULL_APP),
            check=equals(
                (app["_servicePrincipal"]["id"], app["displayName"]),
                lambda v: (v["id"], v["displayName"]),
            ),
        )
        self.az(
            f'az ad app credential list --id {PULL_APP} --query "[].endDateTime"',
            *("ad", "app", "credential", "list", "--id", PULL_APP, "--query", "[].endDateTime"),
            check=equals(
                sorted(c["endDateTime"] for c in app["passwordCredentials"]),
                sorted,
            ),
        )

    def network_reads(self, node_rg: str) -> None:
        ips = [
            r["properties"]["ipAddress"]
            for r in self.state.iter_resources()
            if r["type"] == "Microsoft.Network/publicIPAddresses"
            and r["id"]
            .lower()
            .startswith(f"/subscriptions/{self._sub()}/resourcegroups/{node_rg}/".lower())
        ]
        pip = next(
            r
            for r in self.state.iter_resources()
            if r["type"] == "Microsoft.Network/publicIPAddresses"
            and r["properties"].get("ipAddress") == ips[0]
        )
        self.az(
            f"az network public-ip show -g {node_rg} -n {pip['name']} --query ipAddress -o tsv",
            *("network", "public-ip", "show", "-g", node_rg, "-n", pip["name"]),
            *("--query", "ipAddress", "-o", "tsv"),
            check=lambda out: None if out.strip() == ips[0] else f"printed {out.strip()!r}",
        )
        self.az(
            "az network vnet peering list -g rg-net-hub --vnet-name vnet-hub",
            *("network", "vnet", "peering", "list", "-g", "rg-net-hub", "--vnet-name", "vnet-hub"),
            check=equals(
                [("hub-to-spoke", "Connected")],
                lambda v: [(p["name"], p["peeringState"]) for p in v],
            ),
        )
        self.az(
            "az network private-dns zone list",
            *("network", "private-dns", "zone", "list"),
            check=equals([ZONE], _names),
        )
        self.az(
            f"az network private-dns link vnet list -g rg-net-hub -z {ZONE}",
            *("network", "private-dns", "link", "vnet", "list", "-g", "rg-net-hub", "-z", ZONE),
            check=equals(["vnet-hub-link", "vnet-spoke-link"], _names),
        )
        self.az(
            "az network private-endpoint list",
            *("network", "private-endpoint", "list"),
            check=equals([f"pe-{HUB_REGISTRY}"], _names),
        )
        self.az(
            "az network route-table route list -g rg-net-spoke --route-table-name rt-apps",
            *("network", "route-table", "route", "list", "-g", "rg-net-spoke"),
            *("--route-table-name", "rt-apps"),
            check=equals(
                [("VirtualAppliance", "10.100.1.4")],
                lambda v: [(r["nextHopType"], r["nextHopIpAddress"]) for r in v],
            ),
        )

    def kubernetes_reads(self) -> None:
        self.kubectl(
            f"kubectl config use-context {CLUSTER}",
            *("config", "use-context", CLUSTER),
            check=lambda out: None,
        )
        pods = sorted(p["metadata"]["name"] for p in self.k8s("pods", "payments"))
        self.kubectl(
            "kubectl get pods -n payments",
            *("get", "pods", "-n", "payments", "-o", "name"),
            check=lambda out: (
                None
                if sorted(line.removeprefix("pod/") for line in out.split()) == pods
                else f"printed {out.split()}, the cluster holds {pods}"
            ),
        )
        self.kubectl(
            "kubectl get pods -n payments (table)",
            *("get", "pods", "-n", "payments"),
            check=text_has("NAME", "READY", "STATUS", "Running", *pods),
        )
        self.kubectl(
            f"kubectl describe pod {pods[0]} -n payments",
            *("describe", "pod", pods[0], "-n", "payments"),
            check=text_has("Name:", pods[0], f"{REGISTRY}.azurecr.io/app:v1"),
        )
        secrets = sorted(s["metadata"]["name"] for s in self.k8s("secrets", "payments"))
        self.kubectl(
            "kubectl get secrets -n payments",
            *("get", "secrets", "-n", "payments", "-o", "name"),
            check=lambda out: (
                None
                if sorted(line.removeprefix("secret/") for line in out.split()) == secrets
                else f"printed {out.split()}, the cluster holds {secrets}"
            ),
        )
        self.kubectl(
            "kubectl get secret acr-admin -n payments -o jsonpath={.data.\\.dockerconfigjson}",
            *("get", "secret", "acr-admin", "-n", "payments"),
            "-o=jsonpath={.data.\\.dockerconfigjson}",
            check=lambda out: (
                None
                if f"{REGISTRY}.azurecr.io" in json.loads(base64.b64decode(out))["auths"]
                else "the secret's auths do not name the registry"
            ),
        )

    def writes(self) -> None:
        kubelet, hub = self.kubelet(), self.registry(HUB_REGISTRY)
        self.az(
            f"az role assignment create --assignee-object-id <kubelet> --role AcrPull --scope <{HUB_REGISTRY} id>",
            *("role", "assignment", "create", "--assignee-object-id", kubelet["objectId"]),
            *("--assignee-principal-type", "ServicePrincipal", "--role", "AcrPull"),
            *("--scope", hub["id"]),
            check=both(
                equals(kubelet["objectId"], lambda v: v["principalId"]),
                state_holds(
                    lambda: self.assigned(hub["id"], kubelet["objectId"], authz.ACR_PULL),
                    "the new assignment",
                ),
            ),
        )
        self.az(
            "az role assignment create --assignee-object-id <an object id no one holds> ...",
            *("role", "assignment", "create", "--assignee-object-id", NOBODY),
            *("--assignee-principal-type", "ServicePrincipal", "--role", "AcrPull"),
            *("--scope", hub["id"]),
            check=lambda out: None,
            fails_with="PrincipalNotFound",
        )
        before = self.cluster()
        self.az(
            f"az aks update -g {GROUP} -n {CLUSTER} --yes (the reconcile)",
            *("aks", "update", "-g", GROUP, "-n", CLUSTER, "--yes"),
            check=both(
                equals(
                    (before["identity"]["principalId"], ["Succeeded"] * 3),
                    lambda v: (
                        v["identity"]["principalId"],
                        [p["provisioningState"] for p in v["agentPoolProfiles"]],
                    ),
                ),
                state_holds(
                    lambda: (
                        self.cluster()["identity"] == before["identity"]
                        and [p.get("currentOrchestratorVersion") for p in self._pools()]
                        == [
                            p["currentOrchestratorVersion"]
                            for p in before["properties"]["agentPoolProfiles"]
                        ]
                    ),
                    "the server-side fields after the PUT",
                ),
            ),
        )
        self.az(
            f"az aks update -g {GROUP} -n {CLUSTER} --attach-acr {HUB_REGISTRY}",
            *("aks", "update", "-g", GROUP, "-n", CLUSTER, "--attach-acr", HUB_REGISTRY),
            check=state_holds(
                lambda: self.assigned(hub["id"], kubelet["objectId"], authz.ACR_PULL),
                "AcrPull for the kubelet identity on the hub registry",
            ),
        )
        old = self.passwords()
        self.az(
            f"az acr credential renew -n {REGISTRY} --password-name password",
            *("acr", "credential", "renew", "-n", REGISTRY, "--password-name", "password"),
            check=holds(
                lambda v: (
                    [p["value"] for p in v["passwords"]] == self.passwords()
                    and self.passwords()[0] != old[0]
                    and self.passwords()[1] == old[1]
                ),
                "a new first password, the second unchanged",
            ),
        )
        self.az(
            f"az acr network-rule add -n {REGISTRY} --ip-address 20.61.10.4",
            *("acr", "network-rule", "add", "-n", REGISTRY, "--ip-address", "20.61.10.4"),
            check=state_holds(
                lambda: (
                    "20.61.10.4"
                    in {
                        r["value"]
                        for r in self.registry()["properties"]["networkRuleSet"].get("ipRules", [])
                    }
                ),
                "the IP rule",
            ),
        )
        apps_vnet = next(
            r
            for r in self.state.iter_resources()
            if r["type"] == "Microsoft.Network/virtualNetworks" and r["name"] == "vnet-apps"
        )
        self.az(
            f"az network private-dns link vnet create -g rg-net-hub -z {ZONE} -n apps-link -v <vnet-apps id> -e false",
            *("network", "private-dns", "link", "vnet", "create", "-g", "rg-net-hub"),
            *("-z", ZONE, "-n", "apps-link", "-v", apps_vnet["id"], "-e", "false"),
            check=equals(
                ("Succeeded", apps_vnet["id"].lower()),
                lambda v: (v["provisioningState"], v["virtualNetwork"]["id"].lower()),
            ),
        )
        sp_cluster = self.cluster(SP_CLUSTER)
        app_id = sp_cluster["properties"]["servicePrincipalProfile"]["clientId"]
        secret = self.az(
            f"az ad app credential reset --id {app_id} --append --query password -o tsv",
            *("ad", "app", "credential", "reset", "--id", app_id, "--append"),
            *("--display-name", "conformance", "--query", "password", "-o", "tsv"),
            check=lambda out: None if len(out.strip()) >= 32 else "no secret printed",
        ).strip()
        self.az(
            f"az aks update-credentials -g {SP_GROUP} -n {SP_CLUSTER} --reset-service-principal "
            f"--service-principal {app_id} --client-secret <the new secret>",
            *("aks", "update-credentials", "-g", SP_GROUP, "-n", SP_CLUSTER, "--subscription"),
            *(SANDBOX, "--reset-service-principal", "--service-principal", app_id),
            *("--client-secret", secret),
            check=state_holds(
                lambda: cluster_sp_secret(self.state, sp_cluster["id"]) == secret,
                "the cluster holds the new secret",
            ),
        )
        password = self.passwords()[1]
        self.kubectl(
            f"kubectl create secret docker-registry regcred -n payments --docker-server={REGISTRY}.azurecr.io ...",
            *("create", "secret", "docker-registry", "regcred", "-n", "payments"),
            f"--docker-server={REGISTRY}.azurecr.io",
            f"--docker-username={REGISTRY}",
            f"--docker-password={password}",
            check=state_holds(
                lambda: any(
                    s["metadata"]["name"] == "regcred" for s in self.k8s("secrets", "payments")
                ),
                "the secret in the cluster",
            ),
        )
        self.kubectl(
            "kubectl get secret regcred -n payments -o jsonpath={.metadata.creationTimestamp}",
            *("get", "secret", "regcred", "-n", "payments"),
            "-o=jsonpath={.metadata.creationTimestamp}",
            check=lambda out: None if out.strip().endswith("Z") else f"printed {out!r}",
        )
        self.kubectl(
            "kubectl get events -n payments",
            *("get", "events", "-n", "payments", "-o", "name"),
            check=lambda out: (
                None
                if len(out.split()) == len(self.k8s("events", "payments"))
                else f"printed {len(out.split())} events, the cluster holds {len(self.k8s('events', 'payments'))}"
            ),
        )

    def _pools(self) -> list[dict[str, Any]]:
        return list(self.cluster()["properties"]["agentPoolProfiles"])

    def _sub(self) -> str:
        return str(self.cluster()["id"].split("/")[2])

    # -- report -------------------------------------------------------------------------------

    def report(self, seconds: float) -> int:
        ok = sum(1 for _, problem, _ in self.results if problem is None)
        total = len(self.results)
        print()
        print("Not served by the emulator (deliberately), with the reason:")
        for command, reason in NOT_SERVED.items():
            print(f"  - {command}: {reason}")
        print()
        if KNOWN_DIFFERENCES:
            print("Known differences the clients show (checked another way), with the reason:")
            for what, reason in KNOWN_DIFFERENCES.items():
                print(f"  - {what}: {reason}")
            print()
        print(f"conformance: {ok}/{total} commands ok in {seconds:.0f}s")
        return 0 if ok == total else 1


def _names(value: Any) -> list[str]:
    return sorted(item["name"] for item in value)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no error output)"


def main() -> int:
    for tool in (AZ, KUBECTL):
        if not tool.exists():
            print(f"{tool} is missing: run `make conformance`, which installs it", file=sys.stderr)
            return 2
    started = time.monotonic()
    with Emulator() as emulator, tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        scenario.load(emulator.state, "sample")
        scenario.load(emulator.state, "network-private")
        emulator.state.retry_after = 1  # the CLI treats Retry-After: 0 as "wait 30 s"
        run = Conformance(emulator, Path(tmp))
        run.sign_in()
        run.reads()
        run.kubernetes_reads()
        run.writes()
        return run.report(time.monotonic() - started)


if __name__ == "__main__":
    os.environ.pop("AZURE_CONFIG_DIR", None)
    sys.exit(main())
