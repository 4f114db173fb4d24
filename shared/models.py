"""Plain, typed views of the estate that adapters return to the rest of ``shared/``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.resource_id import ResourceId, same_id


@dataclass(frozen=True)
class NodePool:
    name: str
    vm_size: str
    os_type: str
    mode: str
    count: int


@dataclass(frozen=True)
class KubeletIdentity:
    resource_id: str
    client_id: str
    object_id: str


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    location: str
    node_resource_group: str
    node_pools: tuple[NodePool, ...]
    kubelet_identity: KubeletIdentity | None
    service_principal_client_id: str | None
    provisioning_state: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # The control plane's identity: "SystemAssigned", "UserAssigned" (with its resource id) or ""
    # for a service principal cluster; replacing a kubelet identity needs a user-assigned one.
    control_plane_identity_type: str = ""
    control_plane_identity_id: str | None = None
    # How the API server is exposed (apiServerAccessProfile) and authenticated (aadProfile):
    # what decides the Kubernetes transport (shared/azure/kube_transport.py).
    private_cluster: bool = False  # enablePrivateCluster without a public FQDN
    authorized_ip_ranges: tuple[str, ...] = ()
    run_command_disabled: bool = False
    entra_id: bool = False  # aadProfile.managed: kubectl needs an AKS AAD server app token

    @property
    def resource(self) -> ResourceId:
        return ResourceId.parse(self.id)

    @property
    def node_resource_group_id(self) -> str:
        return f"/subscriptions/{self.resource.subscription_id}/resourceGroups/{self.node_resource_group}"

    def owns_node_resource_group(self, resource_group: str) -> bool:
        return self.node_resource_group.lower() == resource_group.lower()


@dataclass(frozen=True)
class NodeHost:
    """What carries a node pool's identities: a scale set, or a node VM."""

    id: str
    name: str
    pool_name: str | None
    user_assigned_identities: tuple[str, ...]

    def has_identity(self, identity_id: str) -> bool:
        return any(same_id(identity_id, assigned) for assigned in self.user_assigned_identities)


@dataclass(frozen=True)
class ScaleSet(NodeHost):
    """A node pool scale set (pools of type VirtualMachineScaleSets)."""


@dataclass(frozen=True)
class NodeVm(NodeHost):
    """A node VM that holds its own identities: pools of type VirtualMachines and nodes from
    node auto-provisioning have no scale set."""


@dataclass(frozen=True)
class OperationResult:
    """How a long-running ARM operation ended (or that it is still running)."""

    status: str
    detail: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"
