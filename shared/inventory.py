"""Where the fleet's clusters come from, and how a batch carries them to its worker.

:class:`Inventory` is what the planners need: the managed clusters of one subscription. Today's
discovery is :class:`ArmInventory` (ARM's paged list of managed clusters, 50 a page: a few
reads per subscription); a Resource Graph inventory can replace it behind the same method.

A batch message carries each cluster as the inventory saw it (:func:`cluster_to_json`), so a
worker starts checking without a read per cluster. The queue is trusted no more than any
input: :func:`cluster_from_json` accepts only well-formed, bounded values, and what a check
acts on is read again (the responder re-reads the cluster before a fix and after it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from shared.models import Cluster, KubeletIdentity, NodePool
from shared.ports import Estate
from shared.resource_id import ResourceId
from shared.signals import MAX_FIELD_LENGTH, BadSignal

MAX_POOLS = 100
MAX_TAGS = 50
CLUSTER_TYPE = "microsoft.containerservice/managedclusters"


class Inventory(Protocol):
    def clusters(self, subscription_id: str) -> list[Cluster]:
        """Every managed cluster of the subscription; ReadError/TransientError as the estate."""
        ...


class ArmInventory:
    """The clusters from ARM's list of managed clusters (one paged list per subscription)."""

    def __init__(self, estate: Estate) -> None:
        self.estate = estate

    def clusters(self, subscription_id: str) -> list[Cluster]:
        return sorted(self.estate.list_clusters(subscription_id), key=lambda c: c.id.lower())


def cluster_to_json(cluster: Cluster) -> dict[str, Any]:
    kubelet = cluster.kubelet_identity
    return {
        "id": cluster.id,
        "name": cluster.name,
        "location": cluster.location,
        "nodeResourceGroup": cluster.node_resource_group,
        "pools": [[p.name, p.vm_size, p.os_type, p.mode, p.count] for p in cluster.node_pools],
        "kubelet": [kubelet.resource_id, kubelet.client_id, kubelet.object_id] if kubelet else None,
        "spClientId": cluster.service_principal_client_id,
        "state": cluster.provisioning_state,
        "tags": dict(cluster.tags),
        "controlPlane": [cluster.control_plane_identity_type, cluster.control_plane_identity_id],
    }


def cluster_from_json(value: Any, *, subscription_id: str) -> Cluster:
    """A cluster of a batch message; BadSignal unless every field is what :func:`cluster_to_json`
    writes and the cluster belongs to the batch's subscription."""
    if not isinstance(value, Mapping):
        raise BadSignal("a batch cluster is not an object")
    cluster_id = _text(value.get("id"), "id")
    try:
        resource = ResourceId.parse(cluster_id)
    except ValueError:
        raise BadSignal("a batch cluster's id is not a resource id") from None
    if resource.full_type.lower() != CLUSTER_TYPE or resource.child:
        raise BadSignal("a batch cluster's id is not a managed cluster id")
    if resource.subscription_id.lower() != subscription_id.lower():
        raise BadSignal("a batch cluster is not in the batch's subscription")
    pools = value.get("pools")
    if not isinstance(pools, list) or len(pools) > MAX_POOLS:
        raise BadSignal("a batch cluster's pools are not a short list")
    node_pools = []
    for pool in pools:
        if not isinstance(pool, list) or len(pool) != 5 or not isinstance(pool[4], int):
            raise BadSignal("a batch cluster's pool is malformed")
        name, size, os_type, mode = (_text(p, "pool", empty=True) for p in pool[:4])
        node_pools.append(NodePool(name, size, os_type, mode, pool[4]))
    kubelet = value.get("kubelet")
    identity = None
    if kubelet is not None:
        if not isinstance(kubelet, list) or len(kubelet) != 3:
            raise BadSignal("a batch cluster's kubelet identity is malformed")
        identity = KubeletIdentity(*(_text(k, "kubelet identity", empty=True) for k in kubelet))
    tags = value.get("tags")
    if not isinstance(tags, Mapping) or len(tags) > MAX_TAGS:
        raise BadSignal("a batch cluster's tags are not a small object")
    control = value.get("controlPlane")
    if not isinstance(control, list) or len(control) != 2:
        raise BadSignal("a batch cluster's control plane identity is malformed")
    return Cluster(
        id=cluster_id,
        name=_text(value.get("name"), "name"),
        location=_text(value.get("location"), "location", empty=True),
        node_resource_group=_text(value.get("nodeResourceGroup"), "nodeResourceGroup", empty=True),
        node_pools=tuple(node_pools),
        kubelet_identity=identity,
        service_principal_client_id=_optional(value.get("spClientId"), "spClientId"),
        provisioning_state=_text(value.get("state"), "state", empty=True),
        tags={_text(k, "tag"): _text(v, "tag", empty=True) for k, v in tags.items()},
        control_plane_identity_type=_text(control[0], "controlPlane", empty=True),
        control_plane_identity_id=_optional(control[1], "controlPlane"),
    )


def _text(value: Any, name: str, *, empty: bool = False) -> str:
    if (
        not isinstance(value, str)
        or (not value and not empty)
        or len(value) > MAX_FIELD_LENGTH
        or not value.isprintable()
    ):
        raise BadSignal(f"a batch cluster's {name} is not a short plain string")
    return value


def _optional(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name, empty=True)
