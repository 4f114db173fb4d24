"""What the engine, checks and remediations need from the outside world, one protocol per domain.

Each module defines the plain data it returns and the protocol that reads it; ``shared.azure``
implements them with the real SDKs. Nothing else in ``shared/`` imports an SDK.
"""

from __future__ import annotations

from typing import Protocol

from shared.ports.clusters import ClusterPort
from shared.ports.identities import IdentityPort
from shared.ports.inventory import InventoryPort
from shared.ports.kubernetes import KubernetesPort
from shared.ports.network import NetworkPort
from shared.ports.rbac import RbacPort
from shared.ports.registries import RegistryPort
from shared.ports.registry_data import RegistryDataPort
from shared.ports.registry_tokens import RegistryTokenPort


class Estate(
    ClusterPort,
    IdentityPort,
    RbacPort,
    NetworkPort,
    RegistryPort,
    RegistryTokenPort,
    RegistryDataPort,
    KubernetesPort,
    InventoryPort,
    Protocol,
):
    """Everything a diagnosis or remediation may read or change."""


__all__ = ["Estate"]
