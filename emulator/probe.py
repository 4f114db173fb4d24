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

Truth is per VNet; an entry that names a ``subnet`` holds only for the node pools on that subnet
(an NSG on a Windows pool's own subnet). A pool's VNet and subnet are its ``vnetSubnetID``.

A pod whose container runs the product's probe script (its ``acr-pull-probe/1`` marker) on a
probe image is "run" here: it ends at once with the JSON line that script prints, computed from
this truth, for the Linux script (busybox ``sh -c``) and the Windows one (``powershell.exe`` in a
HostProcess container, the script in ``PROBE_SCRIPT``) alike. As on a node, a probe image on a
node of another OS or architecture does not pull (``no match for platform in manifest``), and the
Windows base image without HostProcess has no ``powershell.exe`` to start (the container fails);
the API server itself refuses HostProcess without ``hostNetwork`` (emulator/kubernetes.py). Any
other pod is left to the API server's usual model.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json

from emulator import kubernetes as k8s
from emulator.state import Json, State

MARKER = "# acr-pull-probe/1"
LINUX_IMAGE = "mcr.microsoft.com/azurelinux/busybox:"
WINDOWS_IMAGE = "mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image:"
# The platforms of each probe image's manifest (list), as a node's containerd matches them.
PLATFORMS = {
    LINUX_IMAGE: (("linux", "amd64"), ("linux", "arm64")),
    WINDOWS_IMAGE: (("windows", "amd64"),),
}
SCRIPT_ENV = "PROBE_SCRIPT"
LINK = "Microsoft.Network/privateDnsZones/virtualNetworkLinks"
ZONE = "privatelink.azurecr.io"


def truth_for(state: State, vnet_id: str, subnet_id: str = "") -> Json:
    """The scenario's declared truth for a VNet (matched by name or id), or {}: every entry for
    the VNet that names no subnet or names ``subnet_id``, merged in order."""
    from emulator.builders.network_truth import declared

    def matches(ref: object, resource_id: str) -> bool:
        name = resource_id.rstrip("/").rsplit("/", 1)[-1].lower()
        return bool(resource_id) and str(ref).lower() in (name, resource_id.lower())

    merged: Json = {}
    for entry in declared(state):
        if not matches(entry["vnet"], vnet_id):
            continue
        if "subnet" in entry and not matches(entry["subnet"], subnet_id):
            continue
        merged["dns"] = {**merged.get("dns", {}), **(entry.get("dns") or {})}
        for key in ("drop", "refuse"):
            merged[key] = [*merged.get(key, []), *(entry.get(key) or [])]
        if "imds" in entry:
            merged["imds"] = entry["imds"]
    return merged


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


def resolve(state: State, vnet_id: str, host: str, truth: Json) -> list[str]:
    declared = {k.lower(): v for k, v in (truth.get("dns") or {}).items()}
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


def _connect(state: State, vnet_id: str, host: str, address: str, truth: Json) -> str:
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


def _reach(
    state: State, cluster: Json, vnet_id: str, host: str, truth: Json, *, login: bool
) -> Json:
    answers = resolve(state, vnet_id, host, truth)
    if not answers:
        return {"host": host, "dns": [], "tcp": "unresolved"}
    tcp = _connect(state, vnet_id, host, answers[0], truth)
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


def _imds(state: State, cluster: Json, truth: Json, pool: str, client_id: str) -> str:
    if str(truth.get("imds", "reachable")) == "blocked":
        return "blocked"
    for host in _pool_hosts(state, cluster, pool):
        assigned = (host.get("identity") or {}).get("userAssignedIdentities") or {}
        if any(str(v.get("clientId", "")).lower() == client_id.lower() for v in assigned.values()):
            return "ok"
    return "no-identity"


def _pool_network(state: State, cluster: Json, pool: str) -> tuple[str, str]:
    """(VNet id, subnet id) of a node pool: its ``vnetSubnetID``, else the cluster's VNet."""
    from emulator.builders.network import cluster_vnet_ids
    from emulator.providers.network import parent_of

    for profile in cluster["properties"].get("agentPoolProfiles", []):
        if profile.get("name") == pool and profile.get("vnetSubnetID"):
            return parent_of(profile["vnetSubnetID"]), str(profile["vnetSubnetID"])
    vnets = cluster_vnet_ids(state, cluster)
    return (vnets[0] if vnets else ""), ""


def report(state: State, cluster: Json, pod: Json) -> Json:
    """The JSON line the probe script prints on this pod's node."""
    env = {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env", [])}
    node = pod["spec"].get("nodeName", "")
    pool = pod["spec"].get("nodeSelector", {}).get("kubernetes.azure.com/agentpool", "")
    vnet_id, subnet_id = _pool_network(state, cluster, pool)
    truth = truth_for(state, vnet_id, subnet_id)
    login = _reach(state, cluster, vnet_id, env.get("PROBE_LOGIN_SERVER", ""), truth, login=True)
    data = _reach(state, cluster, vnet_id, env.get("PROBE_DATA_ENDPOINT", ""), truth, login=False)
    imds, exchange, status = "skipped", "skipped", None
    client_id = env.get("PROBE_CLIENT_ID", "")
    if client_id:
        imds = _imds(state, cluster, truth, pool, client_id)
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


def _image_platforms(image: str) -> tuple[tuple[str, str], ...] | None:
    for prefix, platforms in PLATFORMS.items():
        if image.startswith(prefix):
            return platforms
    return None


def _runs_probe_script(container: Json) -> bool:
    """The Linux script on ``sh -c``, or the Windows one in ``PROBE_SCRIPT`` on powershell.exe."""
    command = [str(a) for a in container.get("command") or []]
    if command[:2] == ["sh", "-c"]:
        return MARKER in " ".join(command)
    if command and command[0].lower() in ("powershell.exe", "powershell"):
        env = {e.get("name"): str(e.get("value", "")) for e in container.get("env") or []}
        return MARKER in env.get(SCRIPT_ENV, "") and f"$env:{SCRIPT_ENV}" in " ".join(command)
    return False


def _host_process(pod: Json, container: Json) -> bool:
    def flag(context: Json | None) -> bool | None:
        value = ((context or {}).get("windowsOptions") or {}).get("hostProcess")
        return value if isinstance(value, bool) else None

    own = flag(container.get("securityContext"))
    return bool(flag(pod["spec"].get("securityContext")) if own is None else own)


def run_probe_pod(state: State, api: k8s.ClusterApi, pod: Json) -> tuple[int, str] | None:
    containers = pod["spec"].get("containers") or []
    if len(containers) != 1:
        return None
    container = containers[0]
    image = str(container.get("image", ""))
    platforms = _image_platforms(image)
    if platforms is None or not _runs_probe_script(container):
        return None
    cluster = state.get(api.cluster_id)
    if cluster is None:
        return None
    node = next(
        (n for n in k8s.nodes(state, api) if n["metadata"]["name"] == pod["spec"].get("nodeName")),
        None,
    )
    labels = node["metadata"]["labels"] if node else {}
    platform = (labels.get("kubernetes.io/os", ""), labels.get("kubernetes.io/arch", ""))
    if platform not in platforms:
        cause = {
            "kind": "platform",
            "image": image,
            "message": f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": '
            "no match for platform in manifest: not found",
        }
        k8s.fail_pull(api, pod, str(container["name"]), cause)
        return None  # Pending, ImagePullBackOff: the kubelet keeps trying, the probe waits
    if platform[0] == "windows" and not _host_process(pod, container):
        return 128, ""  # a process-isolated container of the base image has no powershell.exe
    return 0, json.dumps(report(state, cluster, pod), separators=(",", ":")) + "\n"


k8s.POD_RUNNERS.append(run_probe_pod)
