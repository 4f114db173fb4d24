"""User-assigned identities (azure-mgmt-msi) and the kubelet identity of a cluster."""

from __future__ import annotations

from typing import Any

from shared.azure.cache import RunCache
from shared.azure.errors import translated
from shared.azure.factory import ClientFactory
from shared.azure.operations import wait_for_operation
from shared.errors import WriteRejected
from shared.models import OperationResult
from shared.ports.identities import UserIdentity
from shared.resource_id import ResourceId


class IdentityReader:
    factory: ClientFactory
    cache: RunCache

    def get_user_assigned_identity(self, identity_id: str) -> UserIdentity:
        rid = ResourceId.parse(identity_id)
        client = self.factory.msi(rid.subscription_id)
        with translated(identity_id, doing="read user-assigned identity"):
            return _identity(client.user_assigned_identities.get(rid.resource_group, rid.name))

    def create_user_assigned_identity(
        self, identity_id: str, *, location: str, tags: dict[str, str]
    ) -> UserIdentity:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.mgmt.msi.models import Identity

        rid = ResourceId.parse(identity_id)
        client = self.factory.msi(rid.subscription_id)
        with translated(identity_id, doing="create user-assigned identity"):
            try:
                return _identity(client.user_assigned_identities.get(rid.resource_group, rid.name))
            except ResourceNotFoundError:
                pass
            created = client.user_assigned_identities.create_or_update(
                rid.resource_group, rid.name, Identity(location=location, tags=tags)
            )
        self.cache.clear()
        return _identity(created)

    def assign_kubelet_identity(
        self, cluster_id: str, identity: UserIdentity, *, timeout: float
    ) -> OperationResult:
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.containerservice.models import UserAssignedIdentity

        rid = ResourceId.parse(cluster_id)
        client = self.factory.container_service(rid.subscription_id)
        rejected: WriteRejected | None = None
        try:
            with translated(cluster_id, doing="assign a kubelet identity to"):
                current = client.managed_clusters.get(rid.resource_group, rid.name)
                profile = dict(current.identity_profile or {})
                profile["kubeletidentity"] = UserAssignedIdentity(resource_id=identity.id)
                current.identity_profile = profile
                etag = getattr(current, "e_tag", None)
                try:
                    poller = client.managed_clusters.begin_create_or_update(
                        rid.resource_group,
                        rid.name,
                        current,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified if etag else None,
                    )
                except HttpResponseError as exc:
                    if exc.status_code != 400:
                        raise
                    code = getattr(exc.error, "code", None) or exc.reason or ""
                    rejected = WriteRejected(
                        f"AKS refused the kubelet identity {identity.id} for {cluster_id} "
                        f"({exc.status_code} {code})",
                        resource_id=cluster_id,
                        code=code,
                    )
                else:
                    return wait_for_operation(poller, timeout)
        finally:
            self.cache.clear()
        assert rejected is not None
        raise rejected


def _identity(model: Any) -> UserIdentity:
    return UserIdentity(
        id=str(ResourceId.parse(model.id)),
        principal_id=str(model.principal_id),
        client_id=str(model.client_id),
    )
