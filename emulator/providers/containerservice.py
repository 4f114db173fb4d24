"""Microsoft.ContainerService: managed clusters and their agent pools.

A PUT of a managed cluster is a long-running operation. When it completes, the emulator does
what an AKS reconcile does for our purposes: it re-attaches the kubelet identity to every node
pool scale set, unless the identity resource itself is gone (then nothing can bring it back).
"""

from __future__ import annotations

import copy
import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from werkzeug.wrappers import Response

from emulator.arm import ArmError, ArmRequest, ResourceKind
from emulator.providers.compute import VM, VMSS
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

CLUSTER = "Microsoft.ContainerService/managedClusters"
AGENT_POOL = "Microsoft.ContainerService/managedClusters/agentPools"
IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"

# A cluster in one of these states rejects writes with 409 OperationNotAllowed.
BUSY_STATES = ("Creating", "Updating", "Deleting", "Upgrading", "Scaling", "Starting", "Stopping")

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


# Fields of each agent pool profile AKS computes; the SDK leaves them out of a PUT (read-only in
# its models), so a PUT of what a GET returned must not lose them.
POOL_READ_ONLY = (
    "provisioningState",
    "powerState",
    "currentOrchestratorVersion",
    "nodeImageVersion",
)


def busy_error(cluster: Json) -> ArmError:
    """AKS's answer to a write while another operation runs on the cluster."""
    return ArmError(
        409,
        "OperationNotAllowed",
        "Operation is not allowed because there's an in progress "
        f"{cluster['properties']['provisioningState'].lower()} managed cluster operation on the "
        "managed cluster. Please wait for it to finish before starting a new operation. "
        "Refer to https://aka.ms/aks-pending-operation for more details.",
    )


def start_operation(state: State, cluster_id: str, provisioning_state: str = "Upgrading") -> None:
    """Someone else's operation (an upgrade, a scale) is running on the cluster."""
    if provisioning_state not in BUSY_STATES:
        raise ValueError(f"{provisioning_state!r} is not one of {BUSY_STATES}")
    cluster = state.get(cluster_id)
    if cluster is None:
        raise KeyError(cluster_id)
    cluster["properties"]["provisioningState"] = provisioning_state
    cluster["eTag"] = _etag()
    state.put(cluster)


def finish_operation(state: State, cluster_id: str) -> None:
    cluster = state.get(cluster_id)
    if cluster is None:
        raise KeyError(cluster_id)
    cluster["properties"]["provisioningState"] = "Succeeded"
    state.put(cluster)


def _etag() -> str:
    return uuid.uuid4().hex[:8]


def _merge_put(state: State, resource_id: str, body: Json, existing: Json | None) -> Json:
    if existing and existing.get("properties", {}).get("provisioningState") in BUSY_STATES:
        raise busy_error(existing)
    merged = copy.deepcopy(existing) if existing else {}
    merged["eTag"] = _etag()  # every write gets a new one (If-Match is checked by the router)
    properties = merged.setdefault("properties", {})
    for key, value in body.get("properties", {}).items():
        if key in READ_ONLY:
            continue
        # The service principal secret is write-only: ARM never returns it.
        if key == "servicePrincipalProfile":
            properties[key] = {k: v for k, v in value.items() if k != "secret"}
        elif key == "agentPoolProfiles":
            properties[key] = _merge_pools(existing, value)
        elif key == "identityProfile":
            properties[key] = _merge_identity_profile(state, value)
        else:
            properties[key] = value
    for key in ("location", "tags", "sku"):
        if key in body:
            merged[key] = body[key]
    if "identity" in body:
        merged["identity"] = _merge_identity(state, resource_id, body["identity"], existing)
    if existing and body["location"].lower() != existing["location"].lower():
        raise ArmError(
            400,
            "LocationNotAllowed",
            "Changing property 'location' is not allowed.",
        )
    _check_kubelet_identity_change(state, existing, merged)
    return merged


def _kubelet_id(cluster: Json | None) -> str:
    profile = ((cluster or {}).get("properties") or {}).get("identityProfile") or {}
    return str((profile.get("kubeletidentity") or {}).get("resourceId") or "").lower()


def _check_kubelet_identity_change(state: State, existing: Json | None, merged: Json) -> None:
    """``az aks update --assign-kubelet-identity``: AKS takes a new kubelet identity only from a
    cluster whose control plane identity is user-assigned and may assign it (Managed Identity
    Operator, or Contributor/Owner, on the kubelet identity or above); the error codes and the
    permission message are AKS's (CustomKubeletIdentity*)."""
    wanted = _kubelet_id(merged)
    if existing is None or not wanted or wanted == _kubelet_id(existing):
        return
    identity = merged.get("identity") or {}
    users = list((identity.get("userAssignedIdentities") or {}).values())
    if str(identity.get("type", "")).lower() != "userassigned" or not users:
        raise ArmError(
            400,
            "CustomKubeletIdentityOnlySupportedOnUserAssignedMSICluster",
            "Custom kubelet identity is only supported on clusters using a user-assigned "
            "managed identity for the control plane.",
        )
    kubelet = merged["properties"]["identityProfile"]["kubeletidentity"]["resourceId"]
    if state.get(kubelet) is None:
        raise ArmError(
            400,
            "CustomKubeletIdentityPropertyError",
            f"The kubelet identity '{kubelet}' was not found.",
        )
    from emulator.providers import authorization as authz

    allowed = {authz.MANAGED_IDENTITY_OPERATOR, authz.CONTRIBUTOR, authz.OWNER}
    control_plane = str(users[0].get("principalId", "")).lower()
    for assignment in authz.assignments(state):
        props = assignment["properties"]
        role = props["roleDefinitionId"].rsplit("/", 1)[-1].lower()
        if (
            props["principalId"].lower() == control_plane
            and role in allowed
            and authz.within(state, kubelet, props["scope"])
        ):
            return
    raise ArmError(
        400,
        "CustomKubeletIdentityMissingPermissionError",
        "The cluster using user-assigned managed identity must be granted 'Managed Identity "
        "Operator' role to assign kubelet identity. You can run 'az role assignment create "
        "--assignee <control-plane-identity-principal-id> --role 'Managed Identity Operator' "
        "--scope <kubelet-identity-resource-id>' to grant the permission. See "
        "https://learn.microsoft.com/azure/aks/use-managed-identity#add-role-assignment",
    )


def _merge_pools(existing: Json | None, pools: list[Json]) -> list[Json]:
    before = {
        p["name"].lower(): p
        for p in (existing or {}).get("properties", {}).get("agentPoolProfiles", [])
    }
    version = (existing or {}).get("properties", {}).get("currentKubernetesVersion", "1.30.5")
    merged = []
    for given in pools:
        old = before.get(given["name"].lower(), {})
        pool = {k: v for k, v in given.items() if k not in POOL_READ_ONLY}
        for key in POOL_READ_ONLY:
            if key in old:
                pool[key] = copy.deepcopy(old[key])
        pool.setdefault("provisioningState", "Succeeded")
        pool.setdefault("powerState", {"code": "Running"})
        pool.setdefault("currentOrchestratorVersion", pool.get("orchestratorVersion") or version)
        merged.append(pool)
    return merged


def _merge_identity(state: State, resource_id: str, identity: Json, existing: Json | None) -> Json:
    """principalId and tenantId of a system-assigned identity are AKS's, never the caller's."""
    merged = {k: v for k, v in identity.items() if k not in ("principalId", "tenantId")}
    kind = str(identity.get("type", "")).lower()
    if "systemassigned" in kind:
        old = (existing or {}).get("identity") or {}
        if old.get("principalId"):
            merged["principalId"] = old["principalId"]
        else:  # a new identity: Entra ID replicates it before ARM can assign it roles
            merged["principalId"] = str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{resource_id.lower()}/identity")
            )
            state.principal_new(merged["principalId"])
        merged["tenantId"] = old.get("tenantId") or state.tenant_id
    users = identity.get("userAssignedIdentities")
    if isinstance(users, dict):
        merged["userAssignedIdentities"] = {rid: _identity_ids(state, rid) for rid in users}
    return merged


def _identity_ids(state: State, identity_id: str) -> Json:
    found = state.get(identity_id)
    if found is None:
        raise ArmError(
            400,
            "InvalidParameter",
            f"The user-assigned identity '{identity_id}' was not found.",
        )
    return {
        "principalId": found["properties"]["principalId"],
        "clientId": found["properties"]["clientId"],
    }


def _merge_identity_profile(state: State, profile: Json) -> Json:
    """The kubelet identity's clientId and objectId come from the identity resource."""
    merged = copy.deepcopy(profile)
    for entry in merged.values():
        if isinstance(entry, dict) and entry.get("resourceId"):
            found = state.get(entry["resourceId"])
            if found is not None:
                entry["clientId"] = found["properties"]["clientId"]
                entry["objectId"] = found["properties"]["principalId"]
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
    # Scale sets, and the node VMs of VirtualMachines pools: a reconcile puts the identity on both.
    hosts = [*state.children(node_rg, VMSS), *state.children(node_rg, VM)]
    for vmss in hosts:
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


def _agent_pool(state: State, arm: ArmRequest) -> Json:
    """``GET .../agentPools/{name}``: the pool of the cluster's profiles (AKS serves both views)."""
    cluster = state.get(arm.resource_id.rsplit("/", 2)[0])
    if cluster is not None:
        for profile in cluster["properties"].get("agentPoolProfiles", []):
            if profile["name"].lower() == arm.names[-1].lower():
                return agent_pool(cluster, profile)
    raise ArmError(
        404,
        "NotFound",
        f"Could not find agent pool '{arm.names[-1]}' in managed cluster '{arm.names[0]}'.",
    )


def agent_pool(cluster: Json, profile: Json) -> Json:
    properties = {k: v for k, v in profile.items() if k != "name"}
    return {
        "id": f"{cluster['id']}/agentPools/{profile['name']}",
        "name": profile["name"],
        "type": AGENT_POOL,
        "properties": properties,
    }


def register(emulator: Emulator) -> None:
    from emulator import kubernetes  # listClusterUserCredential hands out its API server

    emulator.arm.register(
        ResourceKind(
            type=CLUSTER,
            schema=CLUSTER_SCHEMA,
            long_running=True,
            on_put=_merge_put,
            on_complete=reattach_kubelet_identity,
            actions=dict(kubernetes.ARM_ACTIONS),
        )
    )
    emulator.arm.register(
        ResourceKind(type=AGENT_POOL, list_children=_agent_pools, get=_agent_pool, read_only=True)
    )
    # resetServicePrincipalProfile: an action that runs as a long-running operation (see below).
    cluster_kind = emulator.arm.kinds[CLUSTER.lower()]
    cluster_kind.actions["resetserviceprincipalprofile"] = reset_service_principal_profile
    cluster_kind.on_complete = _completing_sp_resets(cluster_kind.on_complete)


# -- resetServicePrincipalProfile ------------------------------------------------------------------
#
# ``POST .../managedClusters/{name}/resetServicePrincipalProfile`` with ``{clientId, secret}``, as
# ``az aks update-credentials --reset-service-principal`` sends it. AKS checks the credentials with
# Entra ID first (400 ServicePrincipalValidationClientError), answers 202 with Location and
# Azure-AsyncOperation, and applies them when the operation succeeds (reimaging the nodes, which
# the emulator does not model). The secret is write-only: it is never returned; tests read what a
# cluster holds with :func:`cluster_sp_secret`.

# The secret each cluster was last given, by lower-case cluster id.
_SP_SECRETS: weakref.WeakKeyDictionary[State, dict[str, str]] = weakref.WeakKeyDictionary()
# Resets whose operation has not completed: cluster id (lower) -> (operation id, clientId, secret).
_SP_RESETS: weakref.WeakKeyDictionary[State, dict[str, tuple[str, str, str]]] = (
    weakref.WeakKeyDictionary()
)


def cluster_sp_secret(state: State, cluster_id: str) -> str | None:
    """The service principal secret a reset last gave this cluster (None if never reset)."""
    with state.lock:
        return _SP_SECRETS.get(state, {}).get(cluster_id.lower())


def _invalid_parameter(name: str) -> ArmError:
    return ArmError(
        400,
        "InvalidParameter",
        f"Required parameter servicePrincipalProfile.{name} is missing (null).",
    )


def reset_service_principal_profile(state: State, arm: ArmRequest) -> Response:
    from datetime import UTC, datetime

    from emulator.providers.graph import graph_secret_valid
    from emulator.state import Operation

    cluster = state.get(arm.resource_id)
    assert cluster is not None  # the ARM router answered 404 otherwise
    body = arm.body()
    client_id, secret = body.get("clientId"), body.get("secret")
    if not isinstance(client_id, str) or not client_id:
        raise _invalid_parameter("clientId")
    if not isinstance(secret, str) or not secret:
        raise _invalid_parameter("secret")
    properties = cluster["properties"]
    if (properties.get("servicePrincipalProfile") or {}).get("clientId", "msi") == "msi":
        raise ArmError(
            400,
            "BadRequest",
            "This action cannot be performed on a cluster that is not using a service principal.",
        )
    if properties.get("provisioningState") in BUSY_STATES:
        raise busy_error(cluster)
    with state.lock:
        app_id = next(
            (known for known in state.graph_applications if known.lower() == client_id.lower()),
            None,
        )
    if app_id is None:
        raise ArmError(
            400,
            "ServicePrincipalValidationClientError",
            f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
            f"directory '{state.tenant_id}'.",
        )
    if not graph_secret_valid(state, app_id, secret, datetime.now(UTC)):
        # Entra ID's answer for a wrong or expired secret; the secret itself is never echoed.
        raise ArmError(
            400,
            "ServicePrincipalValidationClientError",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the "
            f"request is the client secret value, not the client secret ID, for a secret added to "
            f"app '{client_id}'.",
        )
    fault = state.take_fault("LRO", arm.request.path)
    operation = Operation(
        id=str(uuid.uuid4()),
        resource_id=cluster["id"],
        polls_left=state.lro_polls,
        fails=bool(fault and fault.lro_fails),
    )
    with state.lock:
        state.operations[operation.id] = operation
        _SP_RESETS.setdefault(state, {})[cluster["id"].lower()] = (operation.id, app_id, secret)
    properties["provisioningState"] = "Updating"
    state.put(cluster)
    base = f"{arm.request.host_url.rstrip('/')}/subscriptions/{arm.subscription_id}/providers/"
    where = f"{arm.namespace}/locations/{cluster['location']}"
    query = f"api-version={arm.request.args['api-version']}"
    response = Response(status=202)
    response.headers["Azure-AsyncOperation"] = f"{base}{where}/operations/{operation.id}?{query}"
    response.headers["Location"] = f"{base}{where}/operationresults/{operation.id}?{query}"
    response.headers["Retry-After"] = str(state.retry_after)
    response.headers["x-ms-request-id"] = str(uuid.uuid4())
    return response


def _apply_sp_reset(state: State, cluster_id: str) -> None:
    with state.lock:
        pending = _SP_RESETS.get(state, {}).get(cluster_id.lower())
        if pending is None:
            return
        operation_id, client_id, secret = pending
        operation = state.operations.get(operation_id)
        if operation is not None and operation.status == "InProgress":
            return  # another operation on the cluster completed; this reset has not
        del _SP_RESETS[state][cluster_id.lower()]
        if operation is None or operation.status != "Succeeded":
            return
        cluster = state.get(cluster_id)
        if cluster is None:
            return
        cluster["properties"]["servicePrincipalProfile"] = {"clientId": client_id}
        state.put(cluster)
        _SP_SECRETS.setdefault(state, {})[cluster_id.lower()] = secret


def _completing_sp_resets(
    previous: Callable[[State, str], None] | None,
) -> Callable[[State, str], None]:
    def complete(state: State, cluster_id: str) -> None:
        _apply_sp_reset(state, cluster_id)
        if previous is not None:
            previous(state, cluster_id)

    return complete
