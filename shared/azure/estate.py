"""The whole estate as one object: each domain's reader, sharing a factory and a per-run cache."""

from __future__ import annotations

from shared.azure.cache import RunCache
from shared.azure.clusters import ClusterReader
from shared.azure.factory import ClientFactory
from shared.azure.identities import IdentityReader
from shared.azure.inventory import InventoryReader
from shared.azure.kubernetes import KubernetesReader
from shared.azure.metrics import MetricsReader
from shared.azure.network import NetworkReader
from shared.azure.rbac import RbacReader
from shared.azure.registries import RegistryReader
from shared.azure.registry_data import RegistryDataReader
from shared.azure.registry_tokens import RegistryTokenReader


class ArmEstate(
    ClusterReader,
    IdentityReader,
    RbacReader,
    NetworkReader,
    RegistryReader,
    RegistryTokenReader,
    MetricsReader,
    RegistryDataReader,
    KubernetesReader,
    InventoryReader,
):
    """Implements :class:`shared.ports.Estate` with the real SDKs; make one per run."""

    def __init__(self, factory: ClientFactory) -> None:
        self.factory = factory
        self.cache = RunCache()
