"""Signal -> affected (cluster, registry) pairs -> checks -> response -> outcome.

The engine is orchestration only: it reads and writes Azure through the :class:`Estate` port and
hands findings to a :class:`~shared.responder.Responder` (policy, remediation, tickets, audit).
Tests drive it against the emulator through the real SDK adapters.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from shared import telemetry
from shared.azure.event_names import event_types
from shared.checks import CHECKS, Finding, Status, Target, get_check
from shared.config import Settings
from shared.errors import Forbidden, NotFound, ReadError, TransientError
from shared.images import ImageRef, InvalidImageReference, parse_image
from shared.outcome import Outcome, Verdict, verdict_of
from shared.pairs import Pair, PairFinder, PairMemory
from shared.ports import Estate
from shared.pushed_images import pushed_image
from shared.resource_id import ResourceId
from shared.responder import Responder
from shared.root_cause import explain
from shared.signals import RegistryImageEvent, ResourceEvent
from shared.store import ClaimState, StateStore

log = logging.getLogger(__name__)

ALL = tuple(CHECKS)
VMSS_WRITE = "Microsoft.Compute/virtualMachineScaleSets/write"
REGISTRY_CREDENTIALS = "Microsoft.ContainerRegistry/registries/regenerateCredential/action"
ROLE_ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"
REGISTRY_WRITE = "Microsoft.ContainerRegistry/registries/write"
# Token pull secrets break when a password is generated again, a token is disabled or its scope
# map loses a repository (az acr token credential generate / token update / scope-map update).
# Operation names, not secrets (S105).
TOKEN_CREDENTIALS = "Microsoft.ContainerRegistry/registries/generateCredentials/action"  # noqa: S105
TOKEN_WRITE = "Microsoft.ContainerRegistry/registries/tokens/write"  # noqa: S105 (an operation)
SCOPE_MAP_WRITE = "Microsoft.ContainerRegistry/registries/scopeMaps/write"
CLUSTER_WRITE = "Microsoft.ContainerService/managedClusters/write"
POOL_WRITE = "Microsoft.ContainerService/managedClusters/agentPools/write"
DNS_LINK_DELETE = "Microsoft.Network/privateDnsZones/virtualNetworkLinks/delete"
PEERING_DELETE = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/delete"

# ARM operation -> the causes it can bring about (DESIGN.md section 5).
OPERATION_CAUSES: dict[str, tuple[str, ...]] = {
    VMSS_WRITE: ("kubelet-identity-detached",),
    REGISTRY_CREDENTIALS: ("pull-secret-admin-stale",),
    ROLE_ASSIGNMENT_DELETE: ("acrpull-missing", "sp-mismatch"),
    REGISTRY_WRITE: ("firewall-ip-not-allowed", "private-dns-link-missing"),
    TOKEN_CREDENTIALS: ("pull-secret-token-invalid",),
    TOKEN_WRITE: ("pull-secret-token-invalid",),
    SCOPE_MAP_WRITE: ("pull-secret-token-invalid",),
    CLUSTER_WRITE: ALL,
    # A new or changed node pool (arm64, Windows) is where arch and OS mismatches are born.
    POOL_WRITE: ("arch-mismatch", "os-mismatch"),
    DNS_LINK_DELETE: ("private-dns-link-missing",),
    PEERING_DELETE: ("vnet-peering-missing",),
}

# ARM operation names the engine acts on; infra/ filters the Event Grid subscription to these.
HANDLED_OPERATIONS = tuple(OPERATION_CAUSES)


class RetryLater(TransientError):
    """The signal's work was put off (a cluster lease held elsewhere, a busy cluster, another
    delivery still running it): the trigger fails so Event Grid or the queue delivers it again.
    ``outcomes`` are what this delivery found (logged before the trigger fails)."""

    def __init__(self, reason: str, outcomes: list[Outcome] | None = None) -> None:
        super().__init__(reason)
        self.outcomes = outcomes or []


@dataclass(frozen=True)
class Work:
    """One diagnosis to run: a target and the causes worth checking for it."""

    target: Target
    causes: tuple[str, ...]


class Engine:
    def __init__(
        self,
        settings: Settings,
        estate: Estate,
        *,
        store: StateStore | None = None,
        responder: Callable[[str], Responder] | None = None,
        owner: str | None = None,
        memory: PairMemory | None = None,
    ) -> None:
        self.settings = settings
        self.estate = estate
        self.store = store
        self.memory = memory
        self._responder = responder
        self.owner = owner or f"engine-{uuid.uuid4().hex[:12]}"

    # -- diagnosis -----------------------------------------------------------------------------

    def diagnose(self, target: Target, cause_ids: tuple[str, ...] | None = None) -> list[Finding]:
        """Run checks concurrently (bounded); the estate's run cache makes shared reads happen once."""
        causes = cause_ids or ALL
        workers = max(1, min(self.settings.max_concurrency, len(causes)))
        # Each check's span is a child of the invocation's: threads do not inherit the context.
        run = telemetry.in_context(lambda cause: get_check(cause).run(target, self.estate))
        with ThreadPoolExecutor(workers, thread_name_prefix="check") as pool:
            found = list(pool.map(run, causes))
        if any(f.status is Status.FAIL for f in found) and self.estate.forget_inventory(
            target.cluster.id
        ):
            # Resource Graph's copy lags ARM: a failure seen in it is confirmed from ARM, the
            # cluster included, before anyone acts on it.
            try:
                target = replace(target, cluster=self.estate.get_cluster(target.cluster.id))
            except ReadError as exc:  # the checks say what they can without it
                log.info("cannot re-read %s from ARM: %s", target.cluster.name, exc.reason)
            return self.diagnose(target, cause_ids)
        return list(explain(found))

    def pairs(self) -> PairFinder:
        return PairFinder(self.estate, self.settings.subscriptions, self.memory)

    # -- events --------------------------------------------------------------------------------

    def handle_resource_event(self, event: ResourceEvent) -> list[Outcome]:
        return self._handle_once(event.id, self._ignore_reason(event), lambda: self._route(event))

    def _handle_once(
        self, event_id: str, ignore: str | None, route: Callable[[], list[Work] | str]
    ) -> list[Outcome]:
        """At least once, end to end: a claim is a lease while the work runs and done only after
        an outcome that needs no retry; errors and deferrals give the claim up and raise."""
        if ignore:
            return [Outcome(event_id, Verdict.IGNORED, ignore)]
        return self.once(event_id, lambda: self._route_and_run(event_id, route))

    def once(self, signal_id: str, work: Callable[[], list[Outcome]]) -> list[Outcome]:
        """Run ``work`` for a delivered signal unless a delivery already finished it.

        A duplicate is IGNORED. A signal another delivery is running raises :class:`RetryLater`
        (if that invocation dies, its claim expires and a later delivery runs it). An outcome
        that was deferred gives the claim up and raises :class:`RetryLater` too.
        """
        if self.store is None:
            return _raise_if_deferred(signal_id, work())
        claim = self.store.start_event(signal_id, self.settings.event_lease_seconds)
        if claim.state is ClaimState.DONE:
            return [Outcome(signal_id, Verdict.IGNORED, f"event {signal_id} was already handled")]
        if claim.state is ClaimState.BUSY:
            until = f" until {claim.expires_at:%H:%M:%S}Z" if claim.expires_at else ""
            raise RetryLater(f"event {signal_id} is being handled by another delivery{until}")
        try:
            outcomes = _raise_if_deferred(signal_id, work())
        except BaseException:
            self.store.abandon_event(claim)  # so Event Grid's retry runs it, not deduplicates it
            raise
        self.store.finish_event(claim)
        return outcomes

    def _route_and_run(self, event_id: str, route: Callable[[], list[Work] | str]) -> list[Outcome]:
        work = route()
        if isinstance(work, str):
            return [Outcome(event_id, Verdict.IGNORED, work)]
        return self.run(event_id, work)

    def run(self, signal_id: str, work: list[Work]) -> list[Outcome]:
        return [self.diagnose_and_respond(signal_id, w.target, w.causes) for w in work]

    def _ignore_reason(self, event: ResourceEvent) -> str | None:
        names = event_types()
        if event.event_type in names.failures or event.status.lower() not in ("succeeded", ""):
            return f"the operation did not succeed ({event.event_type}, status {event.status or 'none'})"
        if event.event_type not in (
            names.write_success,
            names.delete_success,
            names.action_success,
        ):
            return f"event type {event.event_type} is not handled"
        if not self.settings.in_scope(event.subscription_id):
            return f"subscription {event.subscription_id} is outside the configured scope"
        if self.settings.tenant_id and event.tenant_id.lower() != self.settings.tenant_id:
            return f"tenant {event.tenant_id} is not the configured tenant"
        if not any(event.is_operation(op) for op in HANDLED_OPERATIONS):
            return f"operation {event.operation_name} is not handled"
        return None

    def _route(self, event: ResourceEvent) -> list[Work] | str:
        """The work an event calls for, or why there is none. The event carries no diff: read."""
        if event.is_operation(ROLE_ASSIGNMENT_DELETE):
            return self._role_assignment_deleted(event)
        try:
            resource = ResourceId.parse(event.resource_id)
        except ValueError:
            return "the event's resourceUri is not a resource id"
        if resource.subscription_id.lower() != event.subscription_id.lower():
            return "resourceUri and subscriptionId disagree"
        operation = next(op for op in OPERATION_CAUSES if event.is_operation(op))
        routes: dict[str, Callable[[ResourceId, tuple[str, ...]], list[Work] | str]] = {
            VMSS_WRITE: self._scale_set_written,
            CLUSTER_WRITE: self._cluster_written,
            POOL_WRITE: self._pool_written,
            REGISTRY_CREDENTIALS: self._registry_changed,
            REGISTRY_WRITE: self._registry_changed,
            TOKEN_CREDENTIALS: self._registry_changed,
            TOKEN_WRITE: self._registry_changed,
            SCOPE_MAP_WRITE: self._registry_changed,
            DNS_LINK_DELETE: self._private_path_changed,
            PEERING_DELETE: self._private_path_changed,
        }
        return routes[operation](resource, OPERATION_CAUSES[operation])

    def _scale_set_written(self, vmss: ResourceId, causes: tuple[str, ...]) -> list[Work] | str:
        cluster = self.estate.cluster_for_node_resource_group(
            vmss.subscription_id, vmss.resource_group
        )
        if cluster is None:
            return f"scale set {vmss.name} is not in the node resource group of an AKS cluster"
        return [Work(Target(cluster), causes)]

    def _cluster_written(self, resource: ResourceId, causes: tuple[str, ...]) -> list[Work] | str:
        cluster = self.estate.get_cluster(str(resource))
        pairs = self.pairs().registries_of(cluster)
        return [_work(p, causes) for p in pairs] or [Work(Target(cluster), causes)]

    def _pool_written(self, pool: ResourceId, causes: tuple[str, ...]) -> list[Work] | str:
        """Check every image the cluster runs against its pools, the new one included, before
        pods are scheduled there. The event names the pool; the cluster is its parent."""
        segments = pool.child.strip("/").split("/")
        if (
            pool.full_type.lower() != "microsoft.containerservice/managedclusters"
            or len(segments) != 2  # agentPools/<name>
            or segments[0].lower() != "agentpools"
        ):
            return "the event's resourceUri is not an agent pool"
        cluster_id = str(replace(pool, child=""))
        cluster = self.estate.get_cluster(cluster_id)
        work = [
            Work(Target(p.cluster, p.registry.id, str(ref)), causes)
            for p in self.pairs().registries_of(cluster)
            for ref in _refs(p.images)
            if ref.registry == p.registry.login_server.lower()
        ]
        return work or f"{cluster.name} runs no image from a registry in scope"

    def _registry_changed(self, registry: ResourceId, causes: tuple[str, ...]) -> list[Work] | str:
        # A token or scope map event names the child (.../tokens/<name>): its registry matters.
        registry = replace(registry, child="")
        pairs = self.pairs().clusters_using(str(registry))
        return [_work(p, causes) for p in pairs] or f"no cluster in scope uses {registry.name}"

    def _private_path_changed(self, _: ResourceId, causes: tuple[str, ...]) -> list[Work] | str:
        # A deleted DNS link or peering names no registry: every private-endpoint pair may care.
        pairs = [p for p in self.pairs().pairs() if p.registry.private_endpoint_ids]
        return [
            _work(p, causes) for p in pairs
        ] or "no cluster in scope pulls through a private endpoint"

    def _role_assignment_deleted(self, event: ResourceEvent) -> list[Work] | str:
        # The event does not say whose assignment it was, nor which role: check every pair
        # whose registry sits at or under the assignment's scope.
        scope = event.resource_id.lower().split("/providers/microsoft.authorization/")[0]
        pairs = [p for p in self.pairs().pairs() if p.registry.id.lower().startswith(scope)]
        causes = OPERATION_CAUSES[ROLE_ASSIGNMENT_DELETE]
        return [_work(p, causes) for p in pairs] or "no registry in scope sits under that scope"

    # -- respond -------------------------------------------------------------------------------

    def diagnose_and_respond(
        self, signal_id: str, target: Target, cause_ids: tuple[str, ...]
    ) -> Outcome:
        return self.respond(signal_id, target, tuple(self.diagnose(target, cause_ids)))

    def verify_pending(self) -> list[Outcome]:
        """Operations that outlived an earlier function: verify them now (drift sweep)."""
        if self.store is None or self._responder is None:
            return []
        outcomes = []
        for operation in self.store.list_pending_operations():
            responder = self._responder(f"pending:{operation.action_id}")
            handled = responder.verify_pending(operation)
            if handled is not None:
                findings = (handled.finding,)
                outcomes.append(
                    Outcome.of(responder.correlation_id, operation.cluster_id, findings, [handled])
                )
        return outcomes

    # -- registry image events (the registry system topic) ---------------------------------------

    def handle_registry_event(self, event: RegistryImageEvent) -> list[Outcome]:
        """ImagePushed: arch/os of the new image vs the pools of clusters running its repository;
        ImageDeleted: image-not-found for the images of that repository clusters still run."""
        ignore = self._registry_ignore_reason(event)
        return self._handle_once(event.id, ignore, lambda: self._image_work(event))

    def _registry_ignore_reason(self, event: RegistryImageEvent) -> str | None:
        names = event_types()
        if event.event_type not in (names.image_pushed, names.image_deleted):
            return f"event type {event.event_type} is not handled"
        if not self.settings.in_scope(event.subscription_id):
            return f"subscription {event.subscription_id} is outside the configured scope"
        return None

    def _image_work(self, event: RegistryImageEvent) -> list[Work] | str:
        """Re-read the registry and the clusters: the event says only which image changed."""
        name = ResourceId.parse(event.registry_id).name
        try:
            registry = self.estate.get_registry(event.registry_id)
        except (NotFound, Forbidden) as exc:
            return f"registry {name} cannot be read: {exc.reason}"
        login = registry.login_server.lower()
        running: list[tuple[Pair, list[ImageRef]]] = []
        for pair in self.pairs().clusters_using(registry.id):
            images = [ref for ref in _refs(pair.images) if ref.registry == login]
            mine = [ref for ref in images if ref.repository == event.repository]
            if mine:
                running.append((pair, mine))
        if not running:
            return f"no cluster in scope runs {login}/{event.repository}"
        if event.event_type == event_types().image_pushed:
            image = pushed_image(self.estate, login, event)
            if image is None:
                return (
                    f"{login}/{event.reference} is a platform manifest that no tagged index "
                    "references: nothing to check until its index is pushed"
                )
            return [Work(Target(p.cluster, registry.id, image), IMAGE_PUSHED) for p, _ in running]
        work = [
            Work(Target(pair.cluster, registry.id, str(ref)), IMAGE_DELETED)
            for pair, refs in running
            for ref in refs
            if _deleted(ref, event)
        ]
        return work or f"no cluster in scope runs {login}/{event.reference}"

    # -- findings made elsewhere (the expiry sweep) ----------------------------------------------

    def respond(self, signal_id: str, target: Target, findings: tuple[Finding, ...]) -> Outcome:
        """Respond to findings; when one failed, under the cluster's lease (one actor at a time)."""
        cluster_id = target.cluster.id
        findings = explain(findings)  # root cause first, consequences marked
        failed = any(f.status is Status.FAIL for f in findings)
        if self._responder is None:
            return Outcome(
                signal_id, verdict_of(findings), _summary(findings), cluster_id, findings
            )
        lease = None
        if failed and self.store is not None:
            lease = self.store.acquire_lease(cluster_id, self.owner, self.settings.cluster_lease)
            if lease is None:
                reason = f"another instance is acting on {target.cluster.name}; it owns the lease"
                return Outcome(signal_id, Verdict.DEFERRED, reason, cluster_id, findings)
        try:
            # Also when nothing failed: the tickets of causes that recovered get closed.
            handled = self._responder(signal_id).respond(signal_id, target, findings)
        finally:
            if lease is not None and self.store is not None:
                self.store.release(lease)
        if not failed:
            return Outcome(
                signal_id, verdict_of(findings), _summary(findings), cluster_id, findings
            )
        return Outcome.of(signal_id, cluster_id, findings, handled)


def _raise_if_deferred(signal_id: str, outcomes: list[Outcome]) -> list[Outcome]:
    deferred = [o for o in outcomes if o.verdict is Verdict.DEFERRED]
    if deferred:
        raise RetryLater(f"signal {signal_id}: {deferred[0].reason}", outcomes)
    return outcomes


def _work(pair: Pair, causes: tuple[str, ...]) -> Work:
    return Work(Target(pair.cluster, pair.registry.id, pair.image), causes)


def _summary(findings: tuple[Finding, ...]) -> str:
    unknown = [f for f in findings if f.status is Status.UNKNOWN]
    if unknown:
        return unknown[0].summary
    return findings[0].summary if len(findings) == 1 else f"all {len(findings)} checks pass"


# What a registry image event can bring about (DESIGN.md section 5).
IMAGE_PUSHED = ("arch-mismatch", "os-mismatch")
IMAGE_DELETED = ("image-not-found",)


def _refs(images: tuple[str, ...]) -> list[ImageRef]:
    refs = []
    for image in images:
        try:
            refs.append(parse_image(image))
        except InvalidImageReference:
            continue
    return refs


def _deleted(ref: ImageRef, event: RegistryImageEvent) -> bool:
    """Could this running image be the one deleted? A digest-only delete names no tag, so every
    tag of the repository may have pointed at it: those are all re-checked."""
    if event.digest and ref.digest == event.digest:
        return True
    if event.tag:
        return ref.tag == event.tag and ref.digest is None
    return ref.digest is None
