"""The fleet sweeps: the timer plans, the queue works, Azure Functions scales out.

The drift and expiry timers are **planners**: they take the inventory of each subscription in
scope, then write one message per batch of clusters to the ``sweep-batches`` queue, taking
the subscriptions in turn, then return. ``sweep_batch`` (a queue trigger) is
the **worker**: it checks the clusters of one batch, several at once. Scale-out is the platform's:
on Flex Consumption the queue's length adds instances, and ``host.json``'s ``queues.batchSize``
and ``newBatchThreshold`` set how many batches one instance runs at a time. Nothing here
schedules work across instances.

A batch is a unit of work that is never lost:

- a subscription whose inventory cannot be taken (throttled, 5xx) becomes a *plan* message for
  that subscription alone, which a worker plans later;
- a cluster whose pairs cannot be found becomes a batch of its own; a pair whose checks are
  throttled, deferred or out of budget is handed over to ``sweep-handover`` as before;
- a worker that dies leaves its message on the queue, visible again after its visibility
  timeout (each pair's claim is idempotent: tickets are keyed by fingerprint, fixes by lease).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shared.azure.inventory import Inventory
from shared.cluster_source import ClusterSource
from shared.errors import ConfigurationError, ReadError, TransientError
from shared.models import Cluster
from shared.outcome import Outcome
from shared.resource_id import ResourceId
from shared.signals import BadSignal
from shared.sweeps import GUID, SweepReport, Sweeps, Task
from shared.wire import dump, load, pack, unpack

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

BATCH_VERSION = 1
PLANNED = ("drift", "expiry")
BATCH_SIZE_SETTING = "FLEET_BATCH_SIZE"
CONCURRENCY_SETTING = "FLEET_CLUSTER_CONCURRENCY"
# 20 clusters' records are about 12 KB: well under the queue's 64 KB, and a batch of healthy
# pairs is checked in well under a minute at ARM's pace.
DEFAULT_BATCH_SIZE = 20
MAX_BATCH_SIZE = 50
DEFAULT_CONCURRENCY = 4
# The packed inventory slice a batch may carry; with the rest and base64 on the queue, < 64 KB.
MAX_SLICE = 36 * 1024
CLUSTER_TYPE = "microsoft.containerservice/managedclusters"


@dataclass(frozen=True)
class Batch:
    """Clusters of one subscription to sweep; ``clusters`` None: its inventory is still to take."""

    sweep: str
    signal: str
    subscription: str
    clusters: tuple[Cluster, ...] | None
    # What the inventory knows of these clusters (shared.graph_clusters), seeded by the worker.
    inventory: Inventory | None = None

    def message(self) -> str:
        body: dict[str, Any] = {
            "v": BATCH_VERSION,
            "sweep": self.sweep,
            "signal": self.signal,
            "subscription": self.subscription,
        }
        if self.clusters is None:
            body["plan"] = True
        else:
            body["clusters"] = [dump(c) for c in self.clusters]
        if self.inventory is not None:
            packed = pack(self.inventory)
            # A slice is an optimisation: one that would not fit leaves the worker to ARM.
            if len(packed) <= MAX_SLICE:
                body["inventory"] = packed
        return json.dumps(body, separators=(",", ":"))


@dataclass
class BatchReport:
    batch: Batch
    outcomes: list[Outcome] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)  # follow-up batch messages
    handed_over: list[str] = field(default_factory=list)  # sweep-handover messages
    notes: list[str] = field(default_factory=list)
    unreadable: bool = False  # a handed-over inventory whose subscription cannot be read

    def summary(self) -> dict[str, Any]:
        return {
            "sweep": self.batch.sweep,
            "signal": self.batch.signal,
            "subscription": self.batch.subscription,
            "clusters": len(self.batch.clusters or ()),
            "processed": len(self.outcomes),
            "batches": len(self.batches),
            "handedOver": len(self.handed_over),
            "notes": self.notes[:20],
        }


@dataclass
class PlanReport:
    """What a planner did, per subscription in scope: what an operator reads to see that a
    sweep covers the fleet (a subscription the app cannot read is checked by nobody)."""

    sweep: str
    signal: str
    outcomes: list[Outcome] = field(default_factory=list)  # pending operations verified
    clusters: dict[str, int] = field(default_factory=dict)
    batches: dict[str, int] = field(default_factory=dict)
    handed_over: list[str] = field(default_factory=list)  # inventories a worker will take
    unreadable: dict[str, str] = field(default_factory=dict)  # subscription: why

    def states(self) -> dict[str, list[str]]:
        """Each subscription in scope by what the planner did with it."""
        return {
            "planned": list(self.batches),
            "handed-over": list(self.handed_over),
            "unreadable": list(self.unreadable),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "sweep": self.sweep,
            "signal": self.signal,
            "batches": sum(self.batches.values()) + len(self.handed_over),
            "clusters": sum(self.clusters.values()),
            "subscriptions": {
                "planned": len(self.batches),
                "handedOver": self.handed_over,
                "unreadable": self.unreadable,
            },
            "pendingVerified": len(self.outcomes),
        }


@dataclass(frozen=True)
class FleetSettings:
    batch_size: int = DEFAULT_BATCH_SIZE
    concurrency: int = DEFAULT_CONCURRENCY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FleetSettings:
        env = os.environ if env is None else env
        return cls(
            batch_size=_whole(env, BATCH_SIZE_SETTING, DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE),
            concurrency=_whole(env, CONCURRENCY_SETTING, DEFAULT_CONCURRENCY, 32),
        )


class Fleet:
    def __init__(
        self, sweeps: Sweeps, inventory: ClusterSource, settings: FleetSettings | None = None
    ) -> None:
        self.sweeps = sweeps
        self.inventory = inventory
        self.settings = settings or FleetSettings()

    # -- the planner (a timer) -----------------------------------------------------------------

    def plan(self, sweep: str, signal_id: str, emit: Callable[[str], None]) -> PlanReport:
        """Emit the batch messages of every subscription in scope, the subscriptions in turn.

        ARM's limits are per principal per subscription, and the queue is worked roughly in
        order: batches written one subscription after another would have every worker spend
        one subscription's write budget while the others' sit idle. Taken in turn, the
        workers draw on every subscription's at once.

        The drift planner first verifies operations left pending by earlier runs (they are few,
        and their verification must not wait for a batch).
        """
        if sweep not in PLANNED:
            raise ValueError(f"{sweep} is not a planned sweep")
        report = PlanReport(sweep, signal_id)
        if sweep == "drift":
            report.outcomes += self.sweeps.engine.verify_pending()

        def planned(subscription: str) -> list[str]:
            return self._plan_subscription(sweep, signal_id, subscription, report)

        # ARM's lists (no Resource Graph) are a few paged reads per subscription, each under
        # its own limits: taken at once, the first batch does not wait for the last list.
        for message in in_turn(self._each(self.sweeps.subscriptions, planned)):
            emit(message)
        return report

    def _plan_subscription(
        self, sweep: str, signal_id: str, subscription: str, report: PlanReport
    ) -> list[str]:
        try:
            clusters = self.inventory.clusters(subscription)
        except TransientError as exc:
            log.warning("%s plan: inventory of %s handed over: %s", sweep, subscription, exc)
            report.handed_over.append(subscription)
            return [Batch(sweep, signal_id, subscription, None).message()]
        except ReadError as exc:
            log.warning("%s plan: subscription %s not readable: %s", sweep, subscription, exc)
            report.unreadable[subscription] = exc.reason
            return []
        messages = self._batches(sweep, signal_id, subscription, clusters)
        report.clusters[subscription] = len(clusters)
        report.batches[subscription] = len(messages)
        return messages

    def _batches(
        self, sweep: str, signal_id: str, subscription: str, clusters: list[Cluster]
    ) -> list[str]:
        size = self.settings.batch_size
        messages = []
        for start in range(0, len(clusters), size):
            chunk = clusters[start : start + size]
            piece = self.inventory.slice_for(chunk)
            messages.append(Batch(sweep, signal_id, subscription, tuple(chunk), piece).message())
        return messages

    # -- the worker (a queue trigger) ----------------------------------------------------------

    def work(self, batch: Batch) -> BatchReport:
        report = BatchReport(batch)
        if batch.clusters is None:
            # An inventory handed over: plan it now. Still throttled: fail the message, the
            # queue delivers it again after its visibility timeout.
            try:
                clusters = self.inventory.clusters(batch.subscription)
            except ReadError as exc:
                report.notes.append(f"subscription {batch.subscription}: {exc.reason}")
                report.unreadable = True
                return report
            report.batches += self._batches(batch.sweep, batch.signal, batch.subscription, clusters)
            return report
        if batch.inventory is not None:
            self.sweeps.estate.seed_inventory(batch.inventory)
        if batch.sweep == "expiry":
            self._expiry(batch, batch.clusters, report)
        else:
            self._drift(batch, batch.clusters, report)
        return report

    def _drift(self, batch: Batch, clusters: Iterable[Cluster], report: BatchReport) -> None:
        sweeps = self.sweeps
        clusters = list(clusters)
        # The batch's remembered pairs: one query of its partitions, before the threads.
        sweeps.finder.prime(clusters)

        def one(cluster: Cluster) -> SweepReport:
            part = SweepReport(batch.sweep, batch.signal)
            try:
                tasks: list[Task] = sweeps.drift_tasks(cluster)
            except TransientError as exc:
                # Its pairs could not be found (throttled): the cluster becomes a batch of its own.
                log.warning("%s batch: %s handed over: %s", batch.sweep, cluster.name, exc)
                part.notes.append(f"rebatch:{cluster.id}")
                return part
            try:
                sweeps.run(tasks, part)
            finally:
                sweeps.estate.release_cluster(cluster)
            return part

        for part in self._each(clusters, one):
            self._merge(batch, part, report)

    def _expiry(self, batch: Batch, clusters: tuple[Cluster, ...], report: BatchReport) -> None:
        sweeps = self.sweeps

        def secrets(cluster: Cluster) -> SweepReport:
            part = SweepReport(batch.sweep, batch.signal)
            try:
                sweeps.estate.list_pull_secrets(cluster)  # read once, concurrently; cached
            except ReadError:
                pass  # app_uses notes it
            except TransientError as exc:
                log.warning("%s batch: %s handed over: %s", batch.sweep, cluster.name, exc)
                part.notes.append(f"rebatch:{cluster.id}")
            return part

        parts = list(self._each(clusters, secrets))
        again = {n.split(":", 1)[1] for p in parts for n in p.notes}
        for part in parts:
            self._merge(batch, part, report)
        part = SweepReport(batch.sweep, batch.signal)
        sweeps.run(sweeps.expiry_tasks(part, [c for c in clusters if c.id not in again]), part)
        self._merge(batch, part, report)

    def _each(self, items: Iterable[T], work: Callable[[T], R]) -> list[R]:
        """``work`` on each item, ``concurrency`` at a time, results in the items' order."""
        items = list(items)
        workers = max(1, min(self.settings.concurrency, len(items)))
        with ThreadPoolExecutor(workers, thread_name_prefix="fleet") as pool:
            return list(pool.map(work, items))

    def _merge(self, batch: Batch, part: SweepReport, report: BatchReport) -> None:
        report.outcomes += part.outcomes
        report.handed_over += part.handed_over
        for note in part.notes:
            if note.startswith("rebatch:"):
                cluster_id = note.split(":", 1)[1]
                cluster = next(c for c in batch.clusters or () if c.id == cluster_id)
                report.batches.append(
                    Batch(batch.sweep, batch.signal, batch.subscription, (cluster,)).message()
                )
            else:
                report.notes.append(note)


def in_turn(queues: Sequence[Sequence[str]]) -> Iterator[str]:
    """The first of each, then the second of each, ...: ``[[a1, a2], [b1]]`` gives a1, b1, a2."""
    for rank in range(max((len(q) for q in queues), default=0)):
        for queue in queues:
            if rank < len(queue):
                yield queue[rank]


# -- batch messages ----------------------------------------------------------------------------


def parse_batch(body: str | bytes, *, in_scope: Callable[[str], bool]) -> Batch:
    """Validate one batch message (it came from a queue: trust nothing); BadSignal if bad."""
    if len(body) > 64 * 1024:
        raise BadSignal("the batch message is larger than 64 KB")
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadSignal("the batch message is not JSON") from None
    if not isinstance(message, dict):
        raise BadSignal("the batch message is not a JSON object")
    if message.get("v") != BATCH_VERSION or message.get("sweep") not in PLANNED:
        raise BadSignal("the batch message has an unknown version or sweep")
    signal = message.get("signal")
    if not isinstance(signal, str) or not signal or len(signal) > 256 or not signal.isprintable():
        raise BadSignal("the batch message's signal is missing or not a short plain string")
    subscription = message.get("subscription")
    if not isinstance(subscription, str) or not GUID.match(subscription):
        raise BadSignal("the batch message's subscription is not a subscription id")
    if not in_scope(subscription):
        raise BadSignal(f"subscription {subscription} is outside the configured scope")
    if message.get("plan") is True:
        return Batch(message["sweep"], signal, subscription, None)
    clusters = message.get("clusters")
    if not isinstance(clusters, list) or not 0 < len(clusters) <= MAX_BATCH_SIZE:
        raise BadSignal(f"the batch message needs 1 to {MAX_BATCH_SIZE} clusters")
    parsed = tuple(_cluster(c, subscription) for c in clusters)
    piece = None
    if "inventory" in message:
        piece = unpack(Inventory, message["inventory"])
        if {c.id.lower() for c in piece.clusters} != {c.id.lower() for c in parsed}:
            raise BadSignal("the batch's inventory is not of its clusters")
    return Batch(message["sweep"], signal, subscription, parsed, piece)


def _cluster(value: Any, subscription: str) -> Cluster:
    """A cluster of a batch: as the planner wrote it, and a managed cluster of the batch's
    subscription (a message naming another one changes nothing)."""
    cluster = load(Cluster, value)
    try:
        resource = ResourceId.parse(cluster.id)
    except ValueError:
        raise BadSignal("a batch cluster's id is not a resource id") from None
    if resource.full_type.lower() != CLUSTER_TYPE or resource.child:
        raise BadSignal("a batch cluster's id is not a managed cluster id")
    if resource.subscription_id.lower() != subscription.lower():
        raise BadSignal("a batch cluster is not in the batch's subscription")
    return cluster


def _whole(env: Mapping[str, str], name: str, default: int, top: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number") from None
    if not 1 <= value <= top:
        raise ConfigurationError(f"{name}={raw!r} must be 1 to {top}")
    return value
