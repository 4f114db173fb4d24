"""Which registries each cluster pulls from: the (cluster, registry) pairs a signal affects.

Two sources, because either alone misses pairs: role assignments that grant the cluster's pull
identity a role on a registry (what ``--attach-acr`` made; gone once someone deletes it), and the
images its workloads run (what actually breaks; unknown while the cluster API is unreachable).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from shared.errors import ReadError
from shared.models import Cluster
from shared.ports import Estate
from shared.ports.kubernetes import image_registry_host
from shared.ports.registries import Registry
from shared.resource_id import ResourceId, same_id

log = logging.getLogger(__name__)

REGISTRY_TYPE = "microsoft.containerregistry/registries"


@dataclass(frozen=True)
class Pair:
    cluster: Cluster
    registry: Registry
    images: tuple[str, ...] = ()

    @property
    def image(self) -> str | None:
        return self.images[0] if self.images else None


class PairFinder:
    def __init__(self, estate: Estate, subscriptions: Iterable[str]) -> None:
        self.estate = estate
        self.subscriptions = tuple(sorted(subscriptions))

    def registries_of(self, cluster: Cluster) -> list[Pair]:
        registries: dict[str, Registry] = {}
        images: dict[str, list[str]] = {}
        for registry, image in self._from_workloads(cluster):
            registries[registry.id.lower()] = registry
            images.setdefault(registry.id.lower(), []).append(image)
        for registry in self._from_role_assignments(cluster):
            registries.setdefault(registry.id.lower(), registry)
        return [
            Pair(cluster, registry, tuple(sorted(set(images.get(key, [])))))
            for key, registry in sorted(registries.items())
        ]

    def pairs(self) -> list[Pair]:
        found = []
        for subscription_id in self.subscriptions:
            for cluster in self.estate.list_clusters(subscription_id):
                found.extend(self.registries_of(cluster))
        return found

    def clusters_using(self, registry_id: str) -> list[Pair]:
        return [p for p in self.pairs() if same_id(p.registry.id, registry_id)]

    def _registries(self) -> list[Registry]:
        found: list[Registry] = []
        for subscription_id in self.subscriptions:
            try:
                found.extend(self.estate.list_registries(subscription_id))
            except ReadError as exc:
                log.info("cannot list registries in %s: %s", subscription_id, exc.reason)
        return found

    def _from_workloads(self, cluster: Cluster) -> list[tuple[Registry, str]]:
        try:
            workloads = self.estate.list_workloads(cluster)
        except ReadError as exc:
            log.info("cannot read the workloads of %s: %s", cluster.name, exc.reason)
            return []
        by_host = {r.login_server.lower(): r for r in self._registries()}
        return [
            (by_host[image_registry_host(image)], image)
            for workload in workloads
            for image in workload.images
            if image_registry_host(image) in by_host
        ]

    def _from_role_assignments(self, cluster: Cluster) -> list[Registry]:
        principal = self._pull_principal(cluster)
        if principal is None:
            return []
        subscription_id = cluster.resource.subscription_id
        try:
            assignments = self.estate.list_role_assignments_for_principal(
                subscription_id, principal
            )
        except ReadError as exc:
            log.info("cannot read role assignments of %s: %s", cluster.name, exc.reason)
            return []
        registries = []
        for assignment in assignments:
            try:
                scope = ResourceId.parse(assignment.scope)
            except ValueError:
                continue  # a subscription or resource group scope names no registry
            if scope.full_type.lower() == REGISTRY_TYPE and not scope.child:
                try:
                    registries.append(self.estate.get_registry(str(scope)))
                except ReadError as exc:
                    log.info("cannot read registry %s: %s", scope, exc.reason)
        return registries

    def _pull_principal(self, cluster: Cluster) -> str | None:
        if cluster.kubelet_identity is not None:
            return cluster.kubelet_identity.object_id or None
        if cluster.service_principal_client_id is None:
            return None
        try:
            return self.estate.get_service_principal(cluster.service_principal_client_id).id
        except ReadError:
            return None
