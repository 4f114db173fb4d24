"""What a node sees: the network truth behind the ARM configuration, and the pull probe's pods.

ARM configuration says what *should* happen on the network; a scenario's ``networkTruth``
(emulator/builders/network_truth.py) says what *does*, per VNet: what its DNS answers for a name
(``private``, ``public``, ``nxdomain`` or addresses), which names' port 443 drops or refuses,
whether IMDS answers. Whatever a scenario leaves out follows from the configuration:

- DNS: a name the registry's private endpoint has a record for resolves to that private address
  when ``privatelink.azurecr.io`` (with that record) is linked to the VNet, else to the
  registry's public address;
- connect: a private address is reached from the endpoint's own VNet or a VNet peered with it
  (Connected), else the connection times out; public addresses are reached;
- ``/v2/``: 401 (the anonymous challenge), or 403 when the registry's firewall does not admit the
  cluster's egress IPs (or public access is disabled) on the public path;
- IMDS: gives the kubelet identity's token when that identity is on the pool's scale set (or
  VMs); the registry exchanges it when ``/v2/`` was reachable.

A pod whose container runs the product's probe script (its ``acr-pull-probe/1`` marker) on the
probe image is "run" here: it ends at once with the JSON line that script prints, computed from
this truth. Any other pod is left to the API server's usual model.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json

from emulator import kubernetes as k8s
from emulator.state import Json, State

MARKER = "# acr-pull-probe/1"
IMAGES = ("mcr.microsoft.com/azurelinux/busybox:",)
LINK = "Microsoft.Network/privateDnsZones/virtualNetworkLinks"
ZONE = "privatelink.azurecr.io"


def truth_for(state: State, vnet_id: str) -> Json:
    """The scenario's declared truth for a VNet (matched by name or id), or {}."""
    from emulator.builders.network_truth import declared

    name = vnet_id.rstrip("/").rsplit("/", 1)[-1].lower()
    for entry in declared(state):
        ref = str(entry["vnet"]).lower()
        if ref in (name, vnet_id.lower()):
            return entry
    return {}


def _public_address(registry: Json, host: str) -> str:
    digest = hashlib.sha256(f"{registry['id'].lower()}/{host}".encode()).digest()
    return f"20.{60 + digest[0] % 100}.{digest[1]}.{1 + digest[2] % 250}"


def _registry_for(state: State, host: str) -> Json | None:
    login = host.lower()
    for registry in k8s.registries_by_host(state).values():
        name = registry["name"].lower()
        if login == registry["properties"].get("loginServer", "").lower():
            return registry
        if login.startswith(f"{name}.") and ".data." in login:
            return registry
    return None


def _private_records(state: State, registry: Json) -> list[tuple[str, str, str]]:
    """(fqdn, private address, endpoint VNet id) for each record of the registry's endpoints."""
    from emulator.builders.network import endpoint_vnet_id, registry_endpoints

    found = []
    for endpoint in registry_endpoints(state, registry):
        for config in endpoint["properties"].get("customDnsConfigs", []):
            for address in config["ipAddresses"]:
                found.append((config["fqdn"].lower(), address, endpoint_vnet_id(endpoint)))
    return found


def _zone_linked(state: State, vnet_id: str) -> bool:
    for link in (r for r in state.iter_resources() if r.get("type") == LINK):
        zone = link["id"].rsplit("/", 2)[0].rsplit("/", 1)[-1].lower()
        linked = link["properties"]["virtualNetwork"]["id"].lower()
        if zone == ZONE and linked == vnet_id.lower():
            return True
    return False


def _peered(state: State, left: str, right: str) -> bool:
    if left.lower() == right.lower():
        return True
    peering = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings"

    def connected(a: str, b: str) -> bool:
        return any(
            r.get("type") == peering
            and r["id"].lower().startswith(f"{a.lower()}/")
            and r["properties"].get("remoteVirtualNetwork", {}).get("id", "").lower() == b.lower()
            and r["properties"].get("peeringState") == "Connected"
            for r in state.iter_resources()
        )

    return connected(left, right) and connected(right, left)


def resolve(state: State, vnet_id: str, host: str) -> list[str]:
    declared = {k.lower(): v for k, v in (truth_for(state, vnet_id).get("dns") or {}).items()}
    registry = _registry_for(state, host)
    private = [
        a
        for fqdn, a, _ in (_private_records(state, registry) if registry else [])
        if fqdn == host.lower()
    ]
    public = [_public_address(registry, host)] if registry else []
    answer = declared.get(host.lower())
    if isinstance(answer, list):
        return [str(a) for a in answer]
    if answer == "nxdomain":
        return []
    if answer == "public":
        return public
    if answer == "private":
        return private or public
    return private if private and _zone_linked(state, vnet_id) else public


def _connect(state: State, vnet_id: str, host: str, address: str) -> str:
    truth = truth_for(state, vnet_id)
    if host.lower() in {str(h).lower() for h in truth.get("drop") or []}:
        return "timeout"
    if host.lower() in {str(h).lower() for h in truth.get("refuse") or []}:
        return "refused"
    registry = _registry_for(state, host)
    for _, private, endpoint_vnet in _private_records(state, registry) if registry else []:
        if private == address and not _peered(state, vnet_id, endpoint_vnet):
            return "timeout"
    return "ok"


def _v2_status(state: State, cluster: Json, registry: Json | None, private: bool) -> int:
    from emulator.builders.network import _covers, cluster_egress_addresses

    if registry is None or private:
        return 401
    properties = registry["properties"]
    if properties.get("publicNetworkAccess") == "Disabled":
        return 403
    rules = properties.get("networkRuleSet") or {}
    if rules.get("defaultAction") == "Deny":
        egress = cluster_egress_addresses(state, cluster)
        allowed = [r["value"] for r in rules.get("ipRules", [])]
        if not any(_covers(rule, ip) for rule in allowed for ip in egress):
            return 403
    return 401


def _reach(state: State, cluster: Json, vnet_id: str, host: str, *, login: bool) -> Json:
    answers = resolve(state, vnet_id, host)
    if not answers:
        return {"host": host, "dns": [], "tcp": "unresolved"}
    tcp = _connect(state, vnet_id, host, answers[0])
    out: Json = {"host": host, "dns": answers, "tcp": tcp, "tcpMs": 2 if tcp == "ok" else 5000}
    if tcp == "refused":
        out["tcpMs"] = 1
    if tcp != "ok":
        return {**out, "tls": "skipped", "tlsMs": 0, "v2": None}
    private = ipaddress.ip_address(answers[0]).is_private
    status = _v2_status(state, cluster, _registry_for(state, host), private) if login else 404
    return {**out, "tls": "ok", "tlsMs": 9, "v2": status}


def _pool_hosts(state: State, cluster: Json, pool: str) -> list[Json]:
    from emulator.providers.compute import VM, VMSS

    node_rg = (
        f"/subscriptions/{cluster['id'].split('/')[2]}/resourceGroups/"
        f"{cluster['properties']['nodeResourceGroup']}"
    )
    return [
        h
        for h in [*state.children(node_rg, VMSS), *state.children(node_rg, VM)]
        if h.get("tags", {}).get("aks-managed-poolName") == pool
    ]


def _imds(state: State, cluster: Json, vnet_id: str, pool: str, client_id: str) -> str:
    if str(truth_for(state, vnet_id).get("imds", "reachable")) == "blocked":
        return "blocked"
    for host in _pool_hosts(state, cluster, pool):
        assigned = (host.get("identity") or {}).get("userAssignedIdentities") or {}
        if any(str(v.get("clientId", "")).lower() == client_id.lower() for v in assigned.values()):
            return "ok"
    return "no-identity"


def report(state: State, cluster: Json, pod: Json) -> Json:
    """The JSON line the probe script prints on this pod's node."""
    from emulator.builders.network import cluster_vnet_ids

    env = {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env", [])}
    vnets = cluster_vnet_ids(state, cluster)
    vnet_id = vnets[0] if vnets else ""
    node = pod["spec"].get("nodeName", "")
    pool = pod["spec"].get("nodeSelector", {}).get("kubernetes.azure.com/agentpool", "")
    login = _reach(state, cluster, vnet_id, env.get("PROBE_LOGIN_SERVER", ""), login=True)
    data = _reach(state, cluster, vnet_id, env.get("PROBE_DATA_ENDPOINT", ""), login=False)
    imds, exchange, status = "skipped", "skipped", None
    client_id = env.get("PROBE_CLIENT_ID", "")
    if client_id:
        imds = _imds(state, cluster, vnet_id, pool, client_id)
        if imds == "ok":
            reached = login.get("v2") in (200, 401)
            exchange, status = ("ok", 200) if reached else ("failed", login.get("v2"))
    return {
        "probe": "acr-pull-probe/1",
        "node": node,
        "login": login,
        "data": data,
        "imds": imds,
        "exchange": exchange,
        "exchangeStatus": status,
    }


def run_probe_pod(state: State, api: k8s.ClusterApi, pod: Json) -> tuple[int, str] | None:
    containers = pod["spec"].get("containers") or []
    if len(containers) != 1:
        return None
    container = containers[0]
    command = " ".join(container.get("command") or [])
    if MARKER not in command or not str(container.get("image", "")).startswith(IMAGES):
        return None
    cluster = state.get(api.cluster_id)
    if cluster is None:
        return None
    return 0, json.dumps(report(state, cluster, pod), separators=(",", ":")) + "\n"


k8s.POD_RUNNERS.append(run_probe_pod)
