"""User-assigned managed identities, and giving a cluster a new kubelet identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.models import OperationResult


@dataclass(frozen=True)
class UserIdentity:
    id: str
    principal_id: str
    client_id: str


class IdentityPort(Protocol):
    def get_user_assigned_identity(self, identity_id: str) -> UserIdentity: ...

    def create_user_assigned_identity(
        self, identity_id: str, *, location: str, tags: dict[str, str]
    ) -> UserIdentity:
        """PUT the identity (``az identity create``); an existing one is returned as it is."""
        ...

    def assign_kubelet_identity(
        self, cluster_id: str, identity: UserIdentity, *, timeout: float
    ) -> OperationResult:
        """PUT the cluster with ``identityProfile.kubeletidentity`` set to ``identity``, as
        ``az aks update --assign-kubelet-identity`` does; ``If-Match`` the eTag read. AKS refusing
        it (no user-assigned control plane, no Managed Identity Operator) raises
        :class:`~shared.errors.WriteRejected` with AKS's error code; a busy cluster
        :class:`~shared.errors.Busy`."""
        ...
