"""Which registries each cluster pulls from: the (cluster, registry) pairs a signal affects.

Two sources, because either alone misses pairs: role assignments that grant the cluster's pull
identity a role on a registry (what ``--attach-acr`` made; gone once someone deletes it), and the
images its workloads run (what actually breaks; unknown while the cluster API is unreachable).

Neither sees a pair whose link is what broke: delete the AcrPull assignment of a cluster that
runs nothing from the registry yet (a new cluster, an app scaled to zero, a CronJob between runs)
and the pair is gone from both. So with a :class:`PairMemory` every pair found is remembered in
the state store, with how it was found, and later discoveries add what they remember and what
the policy names (``pairs.known``). A pair is forgotten only when its cluster or registry is
gone, or when it has not been found for the policy's ``pairs.retentionDays``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.errors import NotFound, ReadError
from shared.models import Cluster
from shared.policy import KnownPair
from shared.ports import Estate
from shared.ports.kubernetes import image_registry_host
from shared.ports.registries import Registry
from shared.registry_hosts import look_alike
from shared.resource_id import ResourceId, same_id
from shared.store import RememberedPair, StateStore

log = logging.getLogger(__name__)

REGISTRY_TYPE = "microsoft.containerregistry/registries"
ROLE_ASSIGNMENT, WORKLOAD_IMAGE, EVENT, POLICY = (
    "role-assignment",
    "workload-image",
    "event",
    "policy",
)
# A pair seen again is written back at most this often (retention counts from the last write).
REFRESH = timedelta(days=1)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PairMemory:
    """Where pairs are remembered, the pairs the policy names, and how long memory lasts."""

    store: StateStore
    known: tuple[KnownPair, ...] = ()
    retention: timedelta = timedelta(days=90)
    clock: Callable[[], datetime] = field(default=_utcnow)


@dataclass(frozen=True)
class Pair:
    cluster: Cluster
    registry: Registry
    images: tuple[str, ...] = ()

    @property
    def image(self) -> str | None:
        """The first image on the registry's own login server (not a mistyped one)."""
        login = self.registry.login_server.lower()
        return next((i for i in self.images if image_registry_host(i) == login), None)

    @property
    def mistyped(self) -> tuple[str, ...]:
        """Images on a look-alike of the registry's login server (``azureacr.io``)."""
        login = self.registry.login_server.lower()
        return tuple(i for i in self.images if image_registry_host(i) != login)


class PairFinder:
    def __init__(
        self, estate: Estate, subscriptions: Iterable[str], memory: PairMemory | None = None
    ) -> None:
        self.estate = estate
        self.subscriptions = tuple(sorted(subscriptions))
        self.memory = memory
        self._memory_cache: dict[str, dict[str, RememberedPair]] | None = None
        self._memory_scope: frozenset[str] | None = None  # None: every cluster's pairs

    def prime(self, clusters: Iterable[Cluster] | None = None) -> None:
        """Read the remembered pairs now (before threads share this finder): every pair, or
        only those of ``clusters`` (a batch needs its own, not the whole fleet's)."""
        if self.memory is None:
            return
        if clusters is not None:
            scope = frozenset(c.id.lower() for c in clusters)
            self._memory_cache = {cluster_id: {} for cluster_id in scope}
            self._memory_scope = scope
            for pair in self.memory.store.list_pairs(scope):
                self._memory_cache.setdefault(pair.cluster_id.lower(), {})[
                    pair.registry_id.lower()
                ] = pair
            return
        self._remembered()

    def registries_of(self, cluster: Cluster) -> list[Pair]:
        registries: dict[str, Registry] = {}
        images: dict[str, list[str]] = {}
        sources: dict[str, set[str]] = {}
        for registry, image in self._from_workloads(cluster):
            registries[registry.id.lower()] = registry
            images.setdefault(registry.id.lower(), []).append(image)
            sources.setdefault(registry.id.lower(), set()).add(WORKLOAD_IMAGE)
        for registry in self._from_role_assignments(cluster):
            registries.setdefault(registry.id.lower(), registry)
            sources.setdefault(registry.id.lower(), set()).add(ROLE_ASSIGNMENT)
        if self.memory is not None:
            self._remember(cluster, {k: r.id for k, r in registries.items()}, sources)
            self._recall(cluster, registries)
        return [
            Pair(cluster, registry, tuple(sorted(set(images.get(key, [])))))
            for key, registry in sorted(registries.items())
        ]

    def pairs(self) -> list[Pair]:
        found = []
        for subscription_id in self.subscriptions:
            clusters = self.estate.list_clusters(subscription_id)
            self._forget_clusters_gone(subscription_id, clusters)
            for cluster in clusters:
                found.extend(self.registries_of(cluster))
        return found

    def clusters_using(self, registry_id: str) -> list[Pair]:
        return [p for p in self.pairs() if same_id(p.registry.id, registry_id)]

    def remember(self, cluster: Cluster, registry_id: str, source: str = EVENT) -> None:
        """A pair found some other way (a failing pull names the registry): remember it too."""
        if self.memory is not None:
            self._remember(
                cluster, {registry_id.lower(): registry_id}, {registry_id.lower(): {source}}
            )

    # -- memory -------------------------------------------------------------------------------

    def _remembered(self) -> dict[str, dict[str, RememberedPair]]:
        """Cluster id (lower) -> registry id (lower) -> pair; one read of the store per finder."""
        if self._memory_cache is None:
            assert self.memory is not None
            self._memory_cache = {}
            for pair in self.memory.store.list_pairs():
                by_registry = self._memory_cache.setdefault(pair.cluster_id.lower(), {})
                by_registry[pair.registry_id.lower()] = pair
        return self._memory_cache

    def _remember(
        self,
        cluster: Cluster,
        registry_ids: dict[str, str],
        sources: dict[str, set[str]],
    ) -> None:
        assert self.memory is not None
        now = self.memory.clock()
        known = self._remembered().setdefault(cluster.id.lower(), {})
        fresh = []
        for key, registry_id in registry_ids.items():
            before = known.get(key)
            if (
                before is None
                or not sources[key] <= before.sources
                or now - before.last_seen >= REFRESH
            ):
                merged = frozenset(sources[key]) | (before.sources if before else frozenset())
                first = before.first_seen if before else now
                fresh.append(RememberedPair(cluster.id, registry_id, merged, first, now))
        if fresh:
            # Merged above with this finder's read of the cluster's partition, made this run
            # (a batch's finder read only its own clusters': the store merges the others).
            scope = self._memory_scope
            read_this_run = scope is None or cluster.id.lower() in scope
            self.memory.store.remember_pairs(fresh, merged=read_this_run)
            known.update({p.registry_id.lower(): p for p in fresh})

    def _recall(self, cluster: Cluster, registries: dict[str, Registry]) -> None:
        """Add the remembered and policy-named registries that discovery did not find now."""
        assert self.memory is not None
        now = self.memory.clock()
        remembered = self._remembered().get(cluster.id.lower(), {})
        named = {
            k.registry_id.lower(): k.registry_id
            for k in self.memory.known
            if same_id(k.cluster_id, cluster.id)
        }
        for key in sorted((set(remembered) | set(named)) - set(registries)):
            pair = remembered.get(key)
            if (
                key not in named
                and pair is not None
                and now - pair.last_seen > self.memory.retention
            ):
                log.info(
                    "forgetting %s -> %s: not seen since %s", cluster.name, key, pair.last_seen
                )
                self._forget(cluster.id, pair.registry_id)
                continue
            registry_id = named.get(key) or (pair.registry_id if pair else key)
            try:
                registries[key] = self.estate.get_registry(registry_id)
            except NotFound:
                if pair is not None:
                    self._forget(cluster.id, pair.registry_id)  # the registry is gone
            except ReadError as exc:
                log.info("cannot read remembered registry %s: %s", registry_id, exc.reason)

    def _forget_clusters_gone(self, subscription_id: str, clusters: list[Cluster]) -> None:
        if self.memory is None:
            return
        listed = {c.id.lower() for c in clusters}
        if self._memory_scope is not None:
            return  # a batch's finder holds only its own clusters' pairs: no fleet-wide verdict
        for cluster_id, by_registry in list(self._remembered().items()):
            in_subscription = cluster_id.split("/")[2:3] == [subscription_id.lower()]
            if in_subscription and cluster_id not in listed:
                for pair in list(by_registry.values()):
                    self._forget(pair.cluster_id, pair.registry_id)

    def _forget(self, cluster_id: str, registry_id: str) -> None:
        assert self.memory is not None
        self.memory.store.forget_pair(cluster_id, registry_id)
        self._remembered().get(cluster_id.lower(), {}).pop(registry_id.lower(), None)

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
        found = []
        for image in (i for workload in workloads for i in workload.images):
            host = image_registry_host(image)
            # A mistyped login server still names the registry it was meant for.
            registry = by_host.get(host) or by_host.get(look_alike(host, by_host) or "")
            if registry is not None:
                found.append((registry, image))
        return found

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
