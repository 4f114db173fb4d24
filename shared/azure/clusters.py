"""Managed clusters, node pool scale sets and kubelet identities through the management SDKs."""

from __future__ import annotations

from typing import Any

from shared.azure.cache import RunCache, cached
from shared.azure.errors import BUSY_CODES, translated
from shared.azure.factory import ClientFactory
from shared.azure.operations import wait_for_operation
from shared.models import Cluster, KubeletIdentity, NodePool, NodeVm, OperationResult, ScaleSet
from shared.resource_id import ResourceId

POOL_TAG = "aks-managed-poolName"


class ClusterReader:
    factory: ClientFactory
    cache: RunCache

    @cached
    def get_cluster(self, cluster_id: str) -> Cluster:
        rid = ResourceId.parse(cluster_id)
        client = self.factory.container_service(rid.subscription_id)
        with translated(cluster_id, doing="read managed cluster"):
            return _cluster(client.managed_clusters.get(rid.resource_group, rid.name))

    @cached
    def list_clusters(self, subscription_id: str) -> list[Cluster]:
        client = self.factory.container_service(subscription_id)
        with translated(f"/subscriptions/{subscription_id}", doing="list managed clusters"):
            return [_cluster(mc) for mc in client.managed_clusters.list()]

    def cluster_for_node_resource_group(
        self, subscription_id: str, resource_group: str
    ) -> Cluster | None:
        """The AKS cluster whose node resource group this is, if any."""
        for cluster in self.list_clusters(subscription_id):
            if cluster.owns_node_resource_group(resource_group):
                return cluster
        return None

    @cached
    def list_node_pool_scale_sets(self, cluster: Cluster) -> list[ScaleSet]:
        client = self.factory.compute(cluster.resource.subscription_id)
        with translated(cluster.node_resource_group_id, doing="list scale sets in"):
            scale_sets = [
                _scale_set(v)
                for v in client.virtual_machine_scale_sets.list(cluster.node_resource_group)
            ]
        return [s for s in scale_sets if s.pool_name is not None]

    @cached
    def list_node_vms(self, cluster: Cluster) -> list[NodeVm]:
        client = self.factory.compute(cluster.resource.subscription_id)
        with translated(cluster.node_resource_group_id, doing="list virtual machines in"):
            vms = [
                NodeVm(**_identities_of(v))
                for v in client.virtual_machines.list(cluster.node_resource_group)
            ]
        return [v for v in vms if v.pool_name is not None]

    @cached
    def identity_exists(self, identity_id: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        rid = ResourceId.parse(identity_id)
        client = self.factory.msi(rid.subscription_id)
        with translated(identity_id, doing="read user-assigned identity"):
            try:
                client.user_assigned_identities.get(rid.resource_group, rid.name)
            except ResourceNotFoundError:
                return False
        return True

    def reconcile_cluster(self, cluster_id: str, *, timeout: float) -> OperationResult:
        """PUT the current managed cluster, as ``az aks update`` with no arguments does.

        The PUT carries ``If-Match`` with the eTag just read, so a change made meanwhile (a scale,
        another team's update) is never overwritten: on 412 the cluster is read and PUT again,
        once. A cluster busy with another operation raises :class:`~shared.errors.Busy`.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        self.cache.clear()
        rid = ResourceId.parse(cluster_id)
        client = self.factory.container_service(rid.subscription_id)
        with translated(cluster_id, doing="reconcile managed cluster"):
            for attempt in (1, 2):
                current = client.managed_clusters.get(rid.resource_group, rid.name)
                etag = getattr(current, "e_tag", None)
                try:
                    poller = client.managed_clusters.begin_create_or_update(
                        rid.resource_group,
                        rid.name,
                        current,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified if etag else None,
                    )
                except ResourceModifiedError:
                    if attempt == 2:
                        raise
                    continue  # changed between our GET and PUT: read it again
                try:
                    return wait_for_operation(poller, timeout)
                finally:
                    self.cache.clear()
        raise AssertionError("unreachable")

    def reset_service_principal_profile(
        self, cluster_id: str, *, client_id: str, secret: str, timeout: float
    ) -> OperationResult:
        """POST ``resetServicePrincipalProfile`` (a long-running operation) and wait for it.

        Errors are raised outside the ``except`` blocks, so no exception this raises keeps the
        SDK's request (whose body holds the secret) as its cause or context.
        """
        from azure.core.exceptions import (
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )
        from azure.mgmt.containerservice.models import ManagedClusterServicePrincipalProfile

        from shared.errors import (
            Busy,
            Forbidden,
            NotFound,
            TransientError,
            Unreachable,
            WriteRejected,
        )

        self.cache.clear()
        rid = ResourceId.parse(cluster_id)
        client = self.factory.container_service(rid.subscription_id)
        profile = ManagedClusterServicePrincipalProfile(client_id=client_id, secret=secret)
        doing = f"reset the service principal profile of {cluster_id}"
        failure: Exception | None = None
        result = OperationResult("InProgress", f"still running after {timeout:.0f}s")
        try:
            poller = client.managed_clusters.begin_reset_service_principal_profile(
                rid.resource_group, rid.name, profile
            )
            try:
                poller.wait(timeout=timeout)
                if poller.done():
                    poller.result()
                    result = OperationResult("Succeeded")
            except HttpResponseError as exc:
                # The operation ran and ended Failed/Canceled: an outcome, not an error to retry.
                result = OperationResult("Failed", getattr(exc.error, "code", None) or "Failed")
        except HttpResponseError as exc:
            status = exc.status_code or 0
            code = getattr(exc.error, "code", None) or exc.reason or str(status)
            if status in (401, 403):
                failure = Forbidden(
                    f"the app's identity may not {doing} ({code})", resource_id=cluster_id
                )
            elif status == 404:
                failure = NotFound(f"{cluster_id} was not found ({code})", resource_id=cluster_id)
            elif status == 429 or status >= 500:
                failure = TransientError(f"{doing} failed with {status} {code}")
            elif status == 409 and code.lower() in BUSY_CODES:
                failure = Busy(
                    f"{cluster_id} is busy with another operation, so we could not {doing} "
                    f"({status} {code})",
                    resource_id=cluster_id,
                    code=code,
                )
            else:
                failure = WriteRejected(
                    f"AKS refused to {doing} ({status} {code})", resource_id=cluster_id, code=code
                )
        except ServiceRequestError:
            failure = Unreachable(f"could not reach Azure to {doing}", resource_id=cluster_id)
        except ServiceResponseError:
            # Sent, never answered: AKS may have started the reset, or not. Nobody can tell.
            failure = TransientError(f"no answer when asked to {doing}: it may or may not run")
        finally:
            self.cache.clear()
        if failure is not None:
            raise failure
        return result


def _control_plane(mc: Any) -> tuple[str, str | None]:
    identity = mc.identity
    if identity is None:
        return "", None
    users = list(identity.user_assigned_identities or ())
    return _text(identity.type), (users[0] if users else None)


def _cluster(mc: Any) -> Cluster:
    rid = ResourceId.parse(mc.id)
    control_plane_type, control_plane_id = _control_plane(mc)
    kubelet = (mc.identity_profile or {}).get("kubeletidentity")
    sp = mc.service_principal_profile
    return Cluster(
        id=str(rid),
        name=mc.name,
        location=mc.location,
        node_resource_group=mc.node_resource_group or "",
        node_pools=tuple(_pool(p) for p in mc.agent_pool_profiles or ()),
        kubelet_identity=KubeletIdentity(
            resource_id=kubelet.resource_id,
            client_id=kubelet.client_id or "",
            object_id=kubelet.object_id or "",
        )
        if kubelet and kubelet.resource_id
        else None,
        service_principal_client_id=sp.client_id
        if sp and sp.client_id and sp.client_id != "msi"
        else None,
        provisioning_state=_text(mc.provisioning_state),
        tags=dict(mc.tags or {}),
        control_plane_identity_type=control_plane_type,
        control_plane_identity_id=control_plane_id,
    )


def _pool(profile: Any) -> NodePool:
    return NodePool(
        name=profile.name,
        vm_size=profile.vm_size or "",
        os_type=_text(profile.os_type) or "Linux",
        mode=_text(profile.mode) or "User",
        count=int(profile.count or 0),
    )


def _identities_of(host: Any) -> dict[str, Any]:
    """The fields a scale set and a VM share: their pool tag and user-assigned identities."""
    identities: tuple[str, ...] = ()
    if host.identity is not None and host.identity.user_assigned_identities:
        identities = tuple(host.identity.user_assigned_identities.keys())
    return {
        "id": host.id,
        "name": host.name,
        "pool_name": (host.tags or {}).get(POOL_TAG),
        "user_assigned_identities": identities,
    }


def _scale_set(vmss: Any) -> ScaleSet:
    return ScaleSet(**_identities_of(vmss))


def _text(value: Any) -> str:
    """SDK enums are ``str`` subclasses whose ``str()`` is the member name, not the wire value."""
    return str(getattr(value, "value", value) or "")
