"""The trigger paths the fault suite walks: each an estate, a break, a delivery and a fix to see.

Each ``fixed`` reads the emulator's own state (what Azure would show), never the product.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import yaml

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.providers import authorization as authz
from emulator.server import Emulator
from shared.ports.rbac import ACR_PULL_ROLE_ID
from tests.chaos.harness import ChaosPath, Delivery
from tests.support.events import arm_event
from tests.support.triggers import TICKET_POLICY, Captured, drain_batches, timer

CLUSTER, REGISTRY = "aks-prod-weu", "acrprodweu"
ROLE_ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"
VMSS_WRITE = "Microsoft.Compute/virtualMachineScaleSets/write"


def policy(*auto: str) -> str:
    """Every fix ticketed (GitHub, in the emulator) except ``auto``: those are applied."""
    text = TICKET_POLICY
    for action in auto:
        text = text.replace(f"{action}: ticket", f"{action}: auto")
    return text


# -- attach-acr: the AcrPull assignment was deleted ------------------------------------------------


def _acrpull_deleted(emulator: Emulator, functions: dict[str, Any]) -> Delivery:
    scenario.load(emulator.state, "sample")
    scenario.apply_break(emulator.state, {"cause": "acrpull-missing", "cluster": CLUSTER})
    registry = scenario.find_registry(emulator.state, REGISTRY)["id"]
    event_id = "chaos-acrpull-deleted"
    event = arm_event(
        f"{registry}/providers/Microsoft.Authorization/roleAssignments/{event_id}",
        ROLE_ASSIGNMENT_DELETE,
        event_type="Microsoft.Resources.ResourceDeleteSuccess",
        event_id=event_id,
    )
    return Delivery("arm_events", event, event_id)


def _kubelet_can_pull(emulator: Emulator) -> bool:
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    principal = cluster["properties"]["identityProfile"]["kubeletidentity"]["objectId"].lower()
    registry = scenario.find_registry(emulator.state, REGISTRY)["id"].lower()
    return any(
        a["properties"]["principalId"].lower() == principal
        and a["properties"]["roleDefinitionId"].lower().endswith(ACR_PULL_ROLE_ID)
        and registry.startswith(a["properties"]["scope"].lower())
        for a in authz.assignments(emulator.state)
    )


ATTACH_ACR = ChaosPath(
    name="attach-acr (roleAssignments/delete event)",
    prepare=_acrpull_deleted,
    fixed=_kubelet_can_pull,
    policy=policy("attach-acr"),
    ticket_title=f"[acr-pull] acrpull-missing on {CLUSTER}",
)


# -- reconcile-cluster: the kubelet identity was removed from the node pool's scale set ------------


def _identity_removed(emulator: Emulator, functions: dict[str, Any]) -> Delivery:
    scenario.load(emulator.state, "sample")
    scenario.apply_break(emulator.state, {"cause": "kubelet-identity-detached", "cluster": CLUSTER})
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    vmss = scenario.node_pool_vmss(emulator.state, cluster)[0]
    event_id = "chaos-vmss-write"
    return Delivery("arm_events", arm_event(vmss["id"], VMSS_WRITE, event_id=event_id), event_id)


def _kubelet_attached(emulator: Emulator) -> bool:
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    kubelet = cluster["properties"]["identityProfile"]["kubeletidentity"]["resourceId"].lower()
    scale_sets: list[dict[str, Any]] = scenario.node_pool_vmss(emulator.state, cluster)
    return all(
        kubelet in {k.lower() for k in v.get("identity", {}).get("userAssignedIdentities", {})}
        for v in scale_sets
    )


RECONCILE = ChaosPath(
    name="reconcile-cluster (VMSS write event)",
    prepare=_identity_removed,
    fixed=_kubelet_attached,
    policy=policy("reconcile-cluster"),
    ticket_title=f"[acr-pull] kubelet-identity-detached on {CLUSTER}",
)


# -- refresh-pull-secret: the registry's admin password was regenerated ---------------------------

SHOP, SHOP_REGISTRY = "aks-shop-weu", "acrshopweu"
REGISTRY_CREDENTIALS = "Microsoft.ContainerRegistry/registries/regenerateCredential/action"


def _admin_password_regenerated(emulator: Emulator, functions: dict[str, Any]) -> Delivery:
    scenario.load(emulator.state, "kubernetes-pulls")
    scenario.apply_break(emulator.state, {"cause": "pull-secret-admin-stale", "cluster": SHOP})
    registry = scenario.find_registry(emulator.state, SHOP_REGISTRY)["id"]
    event_id = "chaos-admin-regenerated"
    event = arm_event(
        registry,
        REGISTRY_CREDENTIALS,
        event_type="Microsoft.Resources.ResourceActionSuccess",
        event_id=event_id,
    )
    return Delivery("arm_events", event, event_id)


def _pull_secret_current(emulator: Emulator) -> bool:
    registry = scenario.find_registry(emulator.state, SHOP_REGISTRY)
    host = registry["properties"]["loginServer"].lower()
    with emulator.state.lock:
        current = {p["value"] for p in emulator.state.registry_passwords[registry["id"].lower()]}
    cluster = scenario.find_cluster(emulator.state, SHOP)["id"]
    for secret in k8s.objects(emulator.state, cluster, "secrets"):
        if secret.get("type") != "kubernetes.io/dockerconfigjson":
            continue
        config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
        entry = {k.lower(): v for k, v in config.get("auths", {}).items()}.get(host)
        admin = entry is not None and entry.get("username", "").lower() == SHOP_REGISTRY
        if admin and entry.get("password") not in current:
            return False
    return True


REFRESH_PULL_SECRET = ChaosPath(
    name="refresh-pull-secret (regenerateCredential event)",
    prepare=_admin_password_regenerated,
    fixed=_pull_secret_current,
    policy=policy("refresh-pull-secret"),
    ticket_title=f"[acr-pull] pull-secret-admin-stale on {SHOP}",
)


# -- link-private-dns-zone: the zone's link to the cluster VNet was deleted ------------------------

SPOKE = "aks-spoke-weu"
DNS_LINK_DELETE = "Microsoft.Network/privateDnsZones/virtualNetworkLinks/delete"
LINK = "Microsoft.Network/privateDnsZones/virtualNetworkLinks"


def _links(emulator: Emulator) -> list[dict[str, Any]]:
    return [r for r in emulator.state.iter_resources() if r.get("type") == LINK]


def _dns_link_deleted(emulator: Emulator, functions: dict[str, Any]) -> Delivery:
    spec = yaml.safe_load((scenario.SCENARIOS / "network-private.yaml").read_text(encoding="utf-8"))
    for group in spec["subscriptions"][0]["resourceGroups"]:
        for cluster in group.get("clusters", []):
            if cluster["name"] == SPOKE:  # it pulls from the hub registry (its AcrPull says so)
                cluster["attachedRegistries"] = ["acrhubweu"]
    scenario.load(emulator.state, spec)
    before = {link["id"] for link in _links(emulator)}
    scenario.apply_break(emulator.state, {"cause": "private-dns-link-missing", "cluster": SPOKE})
    [deleted] = before - {link["id"] for link in _links(emulator)}
    event_id = "chaos-dns-link-deleted"
    event = arm_event(
        deleted,
        DNS_LINK_DELETE,
        event_type="Microsoft.Resources.ResourceDeleteSuccess",
        event_id=event_id,
    )
    return Delivery("arm_events", event, event_id)


def _spoke_linked(emulator: Emulator) -> bool:
    from emulator.builders.network import cluster_vnet_ids

    cluster = scenario.find_cluster(emulator.state, SPOKE)
    vnets = {v.lower() for v in cluster_vnet_ids(emulator.state, cluster)}
    linked = {
        link["properties"]["virtualNetwork"]["id"].lower()
        for link in _links(emulator)
        if link["id"].lower().split("/virtualnetworklinks/")[0].endswith("/privatelink.azurecr.io")
        and link["properties"].get("provisioningState", "Succeeded") == "Succeeded"
    }
    return vnets <= linked


LINK_PRIVATE_DNS_ZONE = ChaosPath(
    name="link-private-dns-zone (virtualNetworkLinks/delete event)",
    prepare=_dns_link_deleted,
    fixed=_spoke_linked,
    policy=policy("link-private-dns-zone"),
    ticket_title=f"[acr-pull] private-dns-link-missing on {SPOKE}",
)


# -- the drift sweep's hand-over: a pair the sweep had no time for, ticketed from the queue -------


def _handed_over(emulator: Emulator, functions: dict[str, Any]) -> Delivery:
    scenario.load(emulator.state, "sample")
    scenario.apply_break(emulator.state, {"cause": "acrpull-missing", "cluster": CLUSTER})
    batches = Captured()
    functions["drift_sweep"].get_user_function()(timer(), batches)
    handed_over = drain_batches(functions, batches.messages())  # SWEEP_BUDGET_SECONDS=0
    [message] = [m for m in handed_over if json.loads(m)["cluster"].endswith(f"/{CLUSTER}")]
    return Delivery("sweep_handover", message, None)


HANDOVER = ChaosPath(
    name="ticket from the drift sweep's hand-over (queue message)",
    prepare=_handed_over,
    fixed=_kubelet_can_pull,
    policy=policy(),
    ticket_title=f"[acr-pull] acrpull-missing on {CLUSTER}",
    settings={"SWEEP_BUDGET_SECONDS": "0"},
)


# -- rotate-sp-secret: a shared service principal's secret expired (the expiry sweep's task) ------

SP_APP = "0a1b2c3d-0000-4000-8000-0000000000c5"
SP_CLUSTERS = ("aks-sp-blue", "aks-sp-green")


def _sp_secret_expired(emulator: Emulator, functions: dict[str, Any]) -> Delivery:
    """Two clusters share a service principal whose only secret expired. The expiry sweep
    (budget 0) hands the rotation over to the queue."""
    clusters = [{"name": name, "servicePrincipal": SP_APP} for name in SP_CLUSTERS]
    scenario.load(
        emulator.state,
        {
            "subscriptions": [
                {
                    "id": "9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c",
                    "resourceGroups": [
                        {
                            "name": "rg-aks",
                            "servicePrincipals": [
                                {
                                    "appId": SP_APP,
                                    "displayName": "aks-shared",
                                    "secrets": [{"displayName": "rbac", "expiresInDays": -1}],
                                }
                            ],
                            "clusters": clusters,
                        }
                    ],
                }
            ]
        },
    )
    batches = Captured()
    functions["expiry_sweep"].get_user_function()(timer(), batches)
    [message] = drain_batches(functions, batches.messages())  # SWEEP_BUDGET_SECONDS=0
    return Delivery("sweep_handover", message, None)


def _sp_secrets_current(emulator: Emulator) -> bool:
    """Every cluster using the service principal holds a secret Entra ID accepts now."""
    from datetime import UTC, datetime

    from emulator.providers.containerservice import cluster_sp_secret
    from emulator.providers.graph import graph_secret_valid

    now = datetime.now(UTC)
    for name in SP_CLUSTERS:
        cluster = scenario.find_cluster(emulator.state, name)
        secret = cluster_sp_secret(emulator.state, cluster["id"])
        if secret is None or not graph_secret_valid(emulator.state, SP_APP, secret, now):
            return False
    return True


ROTATE_SP_SECRET = ChaosPath(
    name="rotate-sp-secret (expiry sweep hand-over)",
    prepare=_sp_secret_expired,
    fixed=_sp_secrets_current,
    policy=policy("rotate-sp-secret"),
    ticket_title=f"[acr-pull] sp-secret-expired on applications(appId='{SP_APP}')",
    settings={"SWEEP_BUDGET_SECONDS": "0"},
)


PATHS = {
    p.name: p
    for p in (
        ATTACH_ACR,
        RECONCILE,
        REFRESH_PULL_SECRET,
        LINK_PRIVATE_DNS_ZONE,
        HANDOVER,
        ROTATE_SP_SECRET,
    )
}
