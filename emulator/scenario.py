"""Scenario files: a YAML estate loaded into the emulator, optionally broken on purpose.

Builders create resources the way Azure would have created them (an AKS cluster brings its node
resource group, kubelet identity and one scale set per node pool), so a scenario only names what
matters to a test.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from emulator.providers.compute import VM, VMSS
from emulator.providers.containerregistry import REGISTRY
from emulator.providers.containerservice import CLUSTER, IDENTITY
from emulator.state import Json, State

SCENARIOS = Path(__file__).parent / "scenarios"

Break = Callable[[State, dict[str, Any]], None]
BREAKS: dict[str, Break] = {}

# Extension points for the builders of each domain (emulator/builders/*):
# a resource-group section ("registries: [...]") builds its resources from its list of specs;
# hooks run after every group is built, for specs that refer across groups (role assignments,
# vnet links, workloads), with the built resource and the spec it came from.
GroupSection = Callable[[State, str, str, str, list[dict[str, Any]]], None]
GROUP_SECTIONS: dict[str, GroupSection] = {}
ResourceHook = Callable[[State, Json, dict[str, Any]], None]
CLUSTER_HOOKS: list[ResourceHook] = []
REGISTRY_HOOKS: list[ResourceHook] = []
# Top-level sections above subscriptions ("managementGroups: [...]"), built before them, and hooks
# that run once the whole estate is built (before the breaks).
TopSection = Callable[[State, list[dict[str, Any]]], None]
TOP_SECTIONS: dict[str, TopSection] = {}
LOADED_HOOKS: list[Callable[[State], None]] = []


def guid(*parts: str) -> str:
    """A stable GUID for a name, so scenarios and tests agree on ids across runs."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def breaks(cause: str) -> Callable[[Break], Break]:
    def decorate(fn: Break) -> Break:
        BREAKS[cause] = fn
        return fn

    return decorate


def load(state: State, source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Load a scenario (a file name under ``scenarios/``, a path, or a parsed dict)."""
    if isinstance(source, dict):
        spec = source
    else:
        path = Path(source)
        if not path.suffix:
            path = SCENARIOS / f"{source}.yaml"
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    import emulator.builders  # noqa: F401  (registers the domain sections and hooks)
    from emulator.scenario_schema import validate

    # Before anything is built: a typo must not build a healthy estate.
    validate(spec, top_sections=TOP_SECTIONS, group_sections=GROUP_SECTIONS)

    state.tenant_id = spec.get("tenantId", state.tenant_id)
    for section, build_top in TOP_SECTIONS.items():
        if spec.get(section):
            build_top(state, spec[section])
    built: list[tuple[list[ResourceHook], Json, dict[str, Any]]] = []
    for subscription in spec.get("subscriptions", []):
        sub_id = subscription["id"]
        with state.lock:
            state.subscriptions.setdefault(sub_id.lower(), {"subscriptionId": sub_id})[
                "displayName"
            ] = subscription.get("name", sub_id)
        for group in subscription.get("resourceGroups", []):
            location = group.get("location", "westeurope")
            state.add_resource_group(sub_id, group["name"], location)
            for cluster in group.get("clusters", []):
                built.append(
                    (
                        CLUSTER_HOOKS,
                        add_cluster(state, sub_id, group["name"], location, cluster),
                        cluster,
                    )
                )
            for scale_set in group.get("vmss", []):
                add_vmss(state, sub_id, group["name"], location, scale_set, identities={})
            for registry in group.get("registries", []):
                built.append(
                    (
                        REGISTRY_HOOKS,
                        add_registry(state, sub_id, group["name"], location, registry),
                        registry,
                    )
                )
            for section, build in GROUP_SECTIONS.items():
                if group.get(section):
                    build(state, sub_id, group["name"], location, group[section])
    # Registries first: pull secrets in clusters are built from their tokens and passwords.
    for hooks, resource, resource_spec in sorted(built, key=lambda b: b[0] is not REGISTRY_HOOKS):
        for hook in hooks:
            hook(state, resource, resource_spec)
    for loaded in LOADED_HOOKS:
        loaded(state)
    for broken in spec.get("breaks", []):
        apply_break(state, broken)
    return spec


def apply_break(state: State, broken: dict[str, Any]) -> None:
    from emulator.scenario_schema import validate_break

    validate_break(broken)
    cause = broken["cause"]
    if cause not in BREAKS:
        raise ValueError(f"unknown break {cause!r}; known: {', '.join(sorted(BREAKS))}")
    BREAKS[cause](state, broken)


def resource_id(sub_id: str, group: str, rtype: str, name: str) -> str:
    return f"/subscriptions/{sub_id}/resourceGroups/{group}/providers/{rtype}/{name}"


def add_identity(state: State, sub_id: str, group: str, location: str, name: str) -> Json:
    rid = resource_id(sub_id, group, IDENTITY, name)
    state.principal_new(guid(rid, "principal"))
    return state.put(
        {
            "id": rid,
            "name": name,
            "type": IDENTITY,
            "location": location,
            "tags": {},
            "properties": {
                "tenantId": state.tenant_id,
                "principalId": guid(rid, "principal"),
                "clientId": guid(rid, "client"),
            },
        }
    )


def add_vmss(
    state: State,
    sub_id: str,
    group: str,
    location: str,
    spec: dict[str, Any],
    *,
    identities: dict[str, Json],
    tags: dict[str, str] | None = None,
) -> Json:
    rid = resource_id(sub_id, group, VMSS, spec["name"])
    body: Json = {
        "id": rid,
        "name": spec["name"],
        "type": VMSS,
        "location": location,
        "tags": tags or {},
        "sku": {
            "name": spec.get("vmSize", "Standard_D4s_v5"),
            "tier": "Standard",
            "capacity": spec.get("count", 1),
        },
        "properties": {
            "provisioningState": "Succeeded",
            "orchestrationMode": "Uniform",
            "singlePlacementGroup": False,
            "overprovision": False,
            "upgradePolicy": {"mode": "Manual"},
            "uniqueId": guid(rid, "unique"),
            "virtualMachineProfile": {
                "osProfile": {"computerNamePrefix": spec["name"].removesuffix("-vmss") + "-"},
                "storageProfile": {
                    "osDisk": {"createOption": "FromImage", "osType": spec.get("osType", "Linux")}
                },
            },
        },
    }
    if identities:
        body["identity"] = {
            "type": "UserAssigned",
            "userAssignedIdentities": {
                identity["id"]: {
                    "principalId": identity["properties"]["principalId"],
                    "clientId": identity["properties"]["clientId"],
                }
                for identity in identities.values()
            },
        }
    return state.put(body)


def add_cluster(state: State, sub_id: str, group: str, location: str, spec: dict[str, Any]) -> Json:
    name = spec["name"]
    rid = resource_id(sub_id, group, CLUSTER, name)
    node_rg = spec.get("nodeResourceGroup", f"MC_{group}_{name}_{location}")
    state.add_resource_group(sub_id, node_rg, location)
    pools = [
        {
            "name": pool["name"],
            "count": pool.get("count", 3),
            "vmSize": pool.get("vmSize", "Standard_D4s_v5"),
            "osDiskSizeGB": 128,
            "osDiskType": "Managed",
            "kubeletDiskType": "OS",
            "maxPods": 110,
            "type": "VirtualMachineScaleSets",
            "enableAutoScaling": False,
            # AKS's default for pools created on Kubernetes 1.28 and later (a GET shows it).
            "upgradeSettings": {"maxSurge": "10%"},
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "orchestratorVersion": spec.get("kubernetesVersion", "1.30.5"),
            "currentOrchestratorVersion": spec.get("kubernetesVersion", "1.30.5"),
            "mode": pool.get("mode", "User"),
            "osType": pool.get("osType", "Linux"),
            "osSKU": pool.get(
                "osSKU", "Ubuntu" if pool.get("osType", "Linux") == "Linux" else "Windows2022"
            ),
            "nodeImageVersion": "AKSUbuntu-2204gen2containerd-202410.15.0",
            "enableNodePublicIP": False,
            "enableFIPS": False,
        }
        for pool in spec.get("nodePools", [{"name": "nodepool1", "mode": "System"}])
    ]
    for pool, pool_spec in zip(
        pools, spec.get("nodePools", [{"name": "nodepool1", "mode": "System"}]), strict=True
    ):
        if pool_spec.get("type", "VirtualMachineScaleSets") == "VirtualMachines":
            _virtual_machines_pool(pool)
        elif pool_spec.get("type", "VirtualMachineScaleSets") != "VirtualMachineScaleSets":
            raise ValueError(
                f"node pool {pool['name']!r}: type must be VirtualMachineScaleSets or "
                f"VirtualMachines, not {pool_spec['type']!r}"
            )
    properties: Json = {
        # A scenario may start a cluster in the middle of an operation (Upgrading, Scaling).
        "provisioningState": spec.get("provisioningState", "Succeeded"),
        "powerState": {"code": "Running"},
        "kubernetesVersion": spec.get("kubernetesVersion", "1.30.5"),
        "currentKubernetesVersion": spec.get("kubernetesVersion", "1.30.5"),
        "dnsPrefix": f"{name}-dns",
        "fqdn": f"{name}-dns-{hashlib.sha256(rid.encode()).hexdigest()[:8]}.hcp.{location}.azmk8s.io",
        "agentPoolProfiles": pools,
        "nodeResourceGroup": node_rg,
        "enableRBAC": True,
        "networkProfile": {
            "networkPlugin": "azure",
            "networkPluginMode": "overlay",
            "loadBalancerSku": "standard",
            "outboundType": "loadBalancer",
            "podCidr": "10.244.0.0/16",
            "serviceCidr": "10.0.0.0/16",
            "dnsServiceIP": "10.0.0.10",
        },
        "maxAgentPools": 100,
    }
    _access_profiles(properties, spec, state.tenant_id, location)
    identities: dict[str, Json] = {}
    body: Json = {
        "id": rid,
        "name": name,
        "type": CLUSTER,
        "location": location,
        "tags": spec.get("tags", {}),
        "sku": {"name": "Base", "tier": "Free"},
        "eTag": guid(rid, "etag")[:8],
        "properties": properties,
    }
    sp_client = spec.get("servicePrincipal")
    if sp_client:
        properties["servicePrincipalProfile"] = {"clientId": sp_client}
    else:
        properties["servicePrincipalProfile"] = {"clientId": "msi"}
        kubelet = add_identity(state, sub_id, node_rg, location, f"{name}-agentpool")
        identities["kubelet"] = kubelet
        properties["identityProfile"] = {
            "kubeletidentity": {
                "resourceId": kubelet["id"],
                "clientId": kubelet["properties"]["clientId"],
                "objectId": kubelet["properties"]["principalId"],
            }
        }
        control_plane = str(spec.get("controlPlaneIdentity", "SystemAssigned"))
        if control_plane == "UserAssigned":
            # az aks create --assign-identity <id>: a user-assigned control plane identity.
            own = add_identity(state, sub_id, group, location, f"{name}-identity")
            body["identity"] = {
                "type": "UserAssigned",
                "userAssignedIdentities": {
                    own["id"]: {
                        "principalId": own["properties"]["principalId"],
                        "clientId": own["properties"]["clientId"],
                    }
                },
            }
        elif control_plane == "SystemAssigned":
            body["identity"] = {
                "type": "SystemAssigned",
                "principalId": guid(rid, "principal"),
                "tenantId": state.tenant_id,
            }
        else:
            raise ValueError(
                f"cluster {name!r}: controlPlaneIdentity must be SystemAssigned or UserAssigned"
            )
    state.put(body)
    for pool in pools:
        suffix = str(int(hashlib.sha256(f"{rid}/{pool['name']}".encode()).hexdigest(), 16))[:8]
        tags = {
            "aks-managed-poolName": pool["name"],
            "aks-managed-orchestrator": f"Kubernetes:{properties['kubernetesVersion']}",
            "aks-managed-createOperationID": guid(rid, pool["name"], "create"),
            "aks-managed-kubeletIdentityClientID": identities["kubelet"]["properties"]["clientId"]
            if identities
            else "",
        }
        if pool["type"] == "VirtualMachines":
            for index, size in enumerate(_pool_vm_sizes(pool)):
                add_vm(
                    state,
                    sub_id,
                    node_rg,
                    location,
                    name=f"aks-{pool['name']}-{suffix}-vm{index}",
                    vm_size=size,
                    os_type=pool["osType"],
                    identities=identities,
                    tags=tags,
                )
            continue
        add_vmss(
            state,
            sub_id,
            node_rg,
            location,
            {
                "name": f"aks-{pool['name']}-{suffix}-vmss",
                "vmSize": pool["vmSize"],
                "count": pool["count"],
                "osType": pool["osType"],
            },
            identities=identities,
            tags=tags,
        )
    return body


def _access_profiles(properties: Json, spec: dict[str, Any], tenant_id: str, location: str) -> None:
    """``apiServerAccessProfile`` and ``aadProfile`` as AKS returns them.

    A private cluster has a ``privateFQDN`` in ``privatelink.<location>.azmk8s.io`` and, unless
    ``enablePrivateClusterPublicFQDN``, no public ``fqdn``
    (ManagedClustersCreate_PrivateClusterFQDNSubdomain.json).
    """
    access = dict(spec.get("apiServerAccessProfile") or {})
    if access:
        if access.get("enablePrivateCluster"):
            subdomain = str(properties["fqdn"]).split(".", 1)[0]
            properties["privateFQDN"] = f"{subdomain}.privatelink.{location}.azmk8s.io"
            access.setdefault("privateDNSZone", "system")
            if not access.get("enablePrivateClusterPublicFQDN"):
                properties.pop("fqdn")
        properties["apiServerAccessProfile"] = access
    aad = spec.get("aadProfile")
    if aad:
        properties["aadProfile"] = {
            "managed": bool(aad.get("managed", True)),
            "enableAzureRBAC": bool(aad.get("enableAzureRBAC", True)),
            "adminGroupObjectIDs": list(aad.get("adminGroupObjectIDs") or []),
            "tenantID": tenant_id,
        }
    if spec.get("disableLocalAccounts"):
        properties["disableLocalAccounts"] = True


def api_server_reachable(properties: Json) -> bool:
    """Whether the app (outside the cluster's VNet, with changing outbound IPs) reaches the API
    server, as the configuration implies: not a private cluster's, not one behind IP ranges."""
    access = properties.get("apiServerAccessProfile") or {}
    if access.get("enablePrivateCluster") and not access.get("enablePrivateClusterPublicFQDN"):
        return False
    return not access.get("authorizedIPRanges")


def _virtual_machines_pool(pool: Json) -> None:
    """A ``VirtualMachines`` pool as the AgentPoolsCreate_TypeVirtualMachines examples show it:
    no ``count``/``vmSize``/``enableAutoScaling``; sizes and counts under
    ``virtualMachinesProfile.scale.manual`` and ``virtualMachineNodesStatus``."""
    size, count = pool.pop("vmSize"), pool.pop("count")
    pool.pop("enableAutoScaling", None)
    pool["type"] = "VirtualMachines"
    pool["virtualMachinesProfile"] = {"scale": {"manual": [{"size": size, "count": count}]}}
    pool["virtualMachineNodesStatus"] = [{"size": size, "count": count}]


def _pool_vm_sizes(pool: Json) -> list[str]:
    return [
        entry["size"]
        for entry in pool["virtualMachinesProfile"]["scale"]["manual"]
        for _ in range(int(entry["count"]))
    ]


def add_vm(
    state: State,
    sub_id: str,
    group: str,
    location: str,
    *,
    name: str,
    vm_size: str,
    os_type: str,
    identities: dict[str, Json],
    tags: dict[str, str],
) -> Json:
    """A node VM of a VirtualMachines pool (or node auto-provisioning), with the kubelet identity."""
    rid = resource_id(sub_id, group, VM, name)
    body: Json = {
        "id": rid,
        "name": name,
        "type": VM,
        "location": location,
        "tags": tags,
        "properties": {
            "vmId": guid(rid, "vmId"),
            "hardwareProfile": {"vmSize": vm_size},
            "storageProfile": {"osDisk": {"osType": os_type, "createOption": "FromImage"}},
            "osProfile": {"computerName": name, "adminUsername": "azureuser"},
            "provisioningState": "Succeeded",
        },
    }
    if identities:
        body["identity"] = {
            "type": "UserAssigned",
            "userAssignedIdentities": {
                identity["id"]: {
                    "principalId": identity["properties"]["principalId"],
                    "clientId": identity["properties"]["clientId"],
                }
                for identity in identities.values()
            },
        }
    return state.put(body)


def add_registry(
    state: State, sub_id: str, group: str, location: str, spec: dict[str, Any]
) -> Json:
    name = spec["name"]
    rid = resource_id(sub_id, group, REGISTRY, name)
    sku = spec.get("sku", "Premium")
    rules = spec.get("networkRuleSet", {"defaultAction": "Allow", "ipRules": []})
    return state.put(
        {
            "id": rid,
            "name": name,
            "type": REGISTRY,
            "location": location,
            "tags": spec.get("tags", {}),
            "sku": {"name": sku, "tier": sku},
            "properties": {
                "loginServer": f"{name}.azurecr.io",
                "creationDate": "2024-05-02T09:14:51.0000000Z",
                "provisioningState": "Succeeded",
                "adminUserEnabled": spec.get("adminUserEnabled", False),
                "networkRuleSet": {
                    "defaultAction": rules.get("defaultAction", "Allow"),
                    "ipRules": [
                        {"action": "Allow", "value": r["value"] if isinstance(r, dict) else r}
                        for r in rules.get("ipRules", [])
                    ],
                }
                if sku == "Premium"
                else None,
                "policies": {
                    "quarantinePolicy": {"status": "disabled"},
                    "trustPolicy": {"type": "Notary", "status": "disabled"},
                    "retentionPolicy": {"days": 7, "status": "disabled"},
                    "exportPolicy": {"status": "enabled"},
                },
                "encryption": {"status": "disabled"},
                "dataEndpointEnabled": False,
                "dataEndpointHostNames": [],
                "privateEndpointConnections": [],
                "publicNetworkAccess": spec.get("publicNetworkAccess", "Enabled"),
                "networkRuleBypassOptions": "AzureServices",
                "zoneRedundancy": "Disabled",
                "anonymousPullEnabled": spec.get("anonymousPullEnabled", False),
                "roleAssignmentMode": spec.get("roleAssignmentMode", "LegacyRegistryPermissions"),
            },
        }
    )


def find_registry(state: State, name: str) -> Json:
    for resource in state.typed(REGISTRY, copy=False):
        if resource["type"] == REGISTRY and resource["name"].lower() == name.lower():
            return copy.deepcopy(resource)
    raise KeyError(f"no registry named {name!r} in the scenario")


def find_cluster(state: State, name: str) -> Json:
    for resource in state.typed(CLUSTER, copy=False):
        if resource["type"] == CLUSTER and resource["name"].lower() == name.lower():
            return copy.deepcopy(resource)
    raise KeyError(f"no cluster named {name!r} in the scenario")


def node_pool_vmss(
    state: State, cluster: Json, pool: str | None = None, *, kinds: tuple[str, ...] = (VMSS, VM)
) -> list[Json]:
    """The scale sets and node VMs of a cluster's pools (VirtualMachines pools have VMs)."""
    sub_id = cluster["id"].split("/")[2]
    node_rg = f"/subscriptions/{sub_id}/resourceGroups/{cluster['properties']['nodeResourceGroup']}"
    return [
        host
        for kind in kinds
        for host in state.children(node_rg, kind)
        if host.get("tags", {}).get("aks-managed-poolName")
        and (pool is None or host.get("tags", {}).get("aks-managed-poolName") == pool)
    ]


@breaks("kubelet-identity-detached")
def detach_kubelet_identity(state: State, spec: dict[str, Any]) -> None:
    """Someone removed the kubelet identity from node pool scale sets (``az vmss identity remove``)."""
    cluster = find_cluster(state, spec["cluster"])
    kubelet_id = cluster["properties"]["identityProfile"]["kubeletidentity"]["resourceId"].lower()
    for vmss in node_pool_vmss(state, cluster, spec.get("pool")):
        assigned = vmss.get("identity", {}).get("userAssignedIdentities", {})
        remaining = {k: v for k, v in assigned.items() if k.lower() != kubelet_id}
        if remaining:
            vmss["identity"]["userAssignedIdentities"] = remaining
        else:
            vmss["identity"] = {"type": "None"}
        state.put(vmss)


@breaks("kubelet-identity-deleted")
def delete_kubelet_identity(state: State, spec: dict[str, Any]) -> None:
    """The kubelet identity resource was deleted, not just detached: reconcile cannot help."""
    detach_kubelet_identity(state, spec)
    cluster = find_cluster(state, spec["cluster"])
    state.delete(cluster["properties"]["identityProfile"]["kubeletidentity"]["resourceId"])
