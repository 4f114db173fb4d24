"""Microsoft.ContainerService: managed clusters and their agent pools.

A PUT of a managed cluster is a long-running operation. When it completes, the emulator does
what an AKS reconcile does for our purposes: it re-attaches the kubelet identity to every node
pool scale set, unless the identity resource itself is gone (then nothing can bring it back).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from emulator.arm import ArmError, ArmRequest, ResourceKind
from emulator.providers.compute import VMSS
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

CLUSTER = "Microsoft.ContainerService/managedClusters"
AGENT_POOL = "Microsoft.ContainerService/managedClusters/agentPools"
IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"

# Fields AKS computes; a PUT may echo them back but cannot set them.
READ_ONLY = (
    "provisioningState",
    "powerState",
    "fqdn",
    "azurePortalFQDN",
    "currentKubernetesVersion",
    "maxAgentPools",
    "nodeResourceGroup",
)

CLUSTER_SCHEMA: Json = {
    "type": "object",
    "required": ["location", "properties"],
    "properties": {
        "location": {"type": "string", "minLength": 1},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "identity": {
            "type": "object",
            "properties": {
                "type": {"enum": ["SystemAssigned", "UserAssigned", "None"]},
            },
        },
        "properties": {
            "type": "object",
            "properties": {
                "dnsPrefix": {"type": "string"},
                "kubernetesVersion": {"type": "string"},
                "agentPoolProfiles": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "pattern": "^[a-z][a-z0-9]{0,11}$"},
                            "count": {"type": "integer", "minimum": 0, "maximum": 1000},
                            "vmSize": {"type": "string"},
                            "osType": {"enum": ["Linux", "Windows"]},
                            "mode": {"enum": ["System", "User", "Gateway"]},
                        },
                    },
                },
                "servicePrincipalProfile": {
                    "type": "object",
                    "required": ["clientId"],
                    "properties": {"clientId": {"type": "string"}, "secret": {"type": "string"}},
                },
                "identityProfile": {
                    "type": "object",
                    "properties": {
                        "kubeletidentity": {
                            "type": "object",
                            "properties": {"resourceId": {"type": "string"}},
                        }
                    },
                },
            },
        },
    },
}


def _merge_put(state: State, resource_id: str, body: Json, existing: Json | None) -> Json:
    merged = copy.deepcopy(existing) if existing else {}
    properties = merged.setdefault("properties", {})
    for key, value in body.get("properties", {}).items():
        if key in READ_ONLY:
            continue
        # The service principal secret is write-only: ARM never returns it.
        properties[key] = (
            {k: v for k, v in value.items() if k != "secret"}
            if key == "servicePrincipalProfile"
            else value
        )
    for key in ("location", "tags", "identity", "sku"):
        if key in body:
            merged[key] = body[key]
    if existing and body["location"].lower() != existing["location"].lower():
        raise ArmError(
            400,
            "LocationNotAllowed",
            "Changing property 'location' is not allowed.",
        )
    return merged


def reattach_kubelet_identity(state: State, cluster_id: str) -> None:
    cluster = state.get(cluster_id)
    if cluster is None:
        return
    properties = cluster["properties"]
    kubelet = properties.get("identityProfile", {}).get("kubeletidentity")
    if not kubelet:
        return
    identity = state.get(kubelet["resourceId"])
    if identity is None:
        return
    node_rg = f"/subscriptions/{cluster_id.split('/')[2]}/resourceGroups/{properties['nodeResourceGroup']}"
    pools = {p["name"] for p in properties.get("agentPoolProfiles", [])}
    for vmss in state.children(node_rg, VMSS):
        if vmss.get("tags", {}).get("aks-managed-poolName") not in pools:
            continue
        if vmss["id"].lower() in state.reconcile_skips:
            continue
        ident = vmss.setdefault("identity", {"type": "UserAssigned"})
        assigned = ident.setdefault("userAssignedIdentities", {})
        if kubelet["resourceId"].lower() not in {k.lower() for k in assigned}:
            assigned[kubelet["resourceId"]] = {
                "principalId": identity["properties"]["principalId"],
                "clientId": identity["properties"]["clientId"],
            }
        if ident.get("type") in (None, "None"):
            ident["type"] = "UserAssigned"
        elif ident.get("type") == "SystemAssigned":
            ident["type"] = "SystemAssigned, UserAssigned"
        state.put(vmss)


def _agent_pools(state: State, arm: ArmRequest) -> list[Json]:
    cluster_id = arm.resource_id
    cluster = state.get(cluster_id)
    if cluster is None:
        raise ArmError(
            404,
            "ResourceNotFound",
            f"The Resource '{CLUSTER}/{arm.names[0]}' under resource group "
            f"'{arm.resource_group}' was not found.",
        )
    return [agent_pool(cluster, profile) for profile in cluster["properties"]["agentPoolProfiles"]]


def agent_pool(cluster: Json, profile: Json) -> Json:
    properties = {k: v for k, v in profile.items() if k != "name"}
    return {
        "id": f"{cluster['id']}/agentPools/{profile['name']}",
        "name": profile["name"],
        "type": AGENT_POOL,
        "properties": properties,
    }


def register(emulator: Emulator) -> None:
    emulator.arm.register(
        ResourceKind(
            type=CLUSTER,
            schema=CLUSTER_SCHEMA,
            long_running=True,
            on_put=_merge_put,
            on_complete=reattach_kubelet_identity,
        )
    )
    emulator.arm.register(ResourceKind(type=AGENT_POOL, list_children=_agent_pools, read_only=True))
