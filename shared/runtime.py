"""Wires settings, SDK clients and the engine for one invocation; triggers call only this."""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared import telemetry
from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.azure.tables import TableStateStore
from shared.checks import Target
from shared.config import Settings
from shared.engine import Engine, RetryLater
from shared.errors import ConfigurationError, ReadError
from shared.models import Cluster
from shared.open_tickets import OpenTickets
from shared.outcome import Outcome, Verdict
from shared.outcome_events import outcome_publisher
from shared.pairs import PairMemory
from shared.policy import load_policy
from shared.resource_id import ResourceId
from shared.responder import Responder
from shared.signals import BadSignal, parse_resource_event
from shared.ticket_routes import TicketRouter

if TYPE_CHECKING:
    from shared.cluster_source import ClusterSource
    from shared.sweeps import SweepReport, Sweeps

log = logging.getLogger(__name__)

_factories: dict[Settings, ClientFactory] = {}
_stores: dict[Settings, TableStateStore] = {}
_lock = threading.Lock()

# Functions that revisit every open problem on each run: they keep tickets quiet.
QUIET_SOURCES = frozenset({"drift_sweep", "pull_failure_scan", "sweep_handover"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _factory(settings: Settings) -> ClientFactory:
    with _lock:
        factory = _factories.get(settings)
        if factory is None:
            factory = _factories[settings] = ClientFactory(settings)
        return factory


def _store(settings: Settings, factory: ClientFactory) -> TableStateStore:
    with _lock:
        store = _stores.get(settings)
        if store is None:
            store = _stores[settings] = TableStateStore.from_factory(factory)
        return store


def engine(
    env: Mapping[str, str] | None = None, *, respond: bool = False, source: str = "cli"
) -> Engine:
    """An engine for the current app settings, reusing SDK clients across warm invocations.

    With ``respond`` the engine also decides under the policy, remediates, tickets, audits and
    publishes outcome events; without it, it only diagnoses.
    """
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    factory = _factory(settings)
    estate = ArmEstate(factory)
    policy = load_policy(settings.policy_path)

    def probe(cluster: Cluster) -> bool:
        return policy.scope_for(cluster).probe == "auto"

    if not respond:
        return Engine(settings, estate, probe=probe)
    store = _store(settings, factory)
    publisher = outcome_publisher(factory, source=source)
    router = TicketRouter(settings, store, env, _utcnow)
    open_tickets = OpenTickets(store)  # listed once per invocation (a sweep's batch)
    owner = f"engine-{uuid.uuid4().hex[:12]}"

    def responder(signal_id: str) -> Responder:
        return Responder(
            settings=settings,
            estate=estate,
            policy=policy,
            store=store,
            tickets=router,
            publisher=publisher,
            # The invocation's: its trace, outcome events and audit rows share it.
            correlation_id=telemetry.correlation_id(),
            clock=_utcnow,
            recurrence_comments=source not in QUIET_SOURCES,
            open_tickets=open_tickets,
            owner=owner,
        )

    memory = PairMemory(store, policy.known_pairs, policy.pair_retention, _utcnow)
    return Engine(
        settings,
        estate,
        store=store,
        responder=responder,
        owner=owner,
        memory=memory,
        probe=probe,
    )


@telemetry.invoked("arm_events", event=True)
def handle_resource_event(
    payload: Mapping[str, Any], *, source: str = "arm_events"
) -> list[Outcome]:
    """Handle one ARM event; bad input is logged and ignored, transient failures raise."""
    try:
        event = parse_resource_event(payload)
    except BadSignal as exc:
        log.warning("ignored a malformed event: %s", exc)
        return [Outcome(str(payload.get("id", ""))[:64], Verdict.IGNORED, str(exc))]
    with _retry_logged():
        outcomes = engine(respond=True, source=source).handle_resource_event(event)
    for outcome in outcomes:
        log_outcome(outcome)
    return outcomes


@contextmanager
def _retry_logged() -> Iterator[None]:
    """A deferral fails the trigger (so the signal is delivered again); log what it found first."""
    try:
        yield
    except RetryLater as exc:
        for outcome in exc.outcomes:
            log_outcome(outcome)
        log.warning("delivery to be retried: %s", exc)
        raise


def log_outcome(outcome: Outcome) -> None:
    log.info("outcome %s", json.dumps(outcome.to_dict(), sort_keys=True))
    telemetry.outcome(outcome)


def reset_clients() -> None:
    """Close cached SDK clients and forget kept kubeconfigs and pacing (as a new instance)."""
    from shared.azure.kubeconfigs import KUBECONFIGS
    from shared.azure.pacing import reset_pacers

    with _lock:
        factories = list(_factories.values())
        _factories.clear()
        _stores.clear()
    for factory in factories:
        factory.close()
    KUBECONFIGS.clear()
    reset_pacers()


MAX_BODY = 64 * 1024


class HttpProblem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@telemetry.invoked("diagnose")
def diagnose_request(params: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    """Run every check for the pair named in the query string or a JSON body: (status, report)."""
    try:
        cluster_id, registry, image = _pair(params, body)
        current = engine()
        if not current.settings.in_scope(cluster_id.subscription_id):
            raise HttpProblem(
                403, f"subscription {cluster_id.subscription_id} is outside the configured scope"
            )
        try:
            cluster = current.estate.get_cluster(str(cluster_id))
            scope = tuple(sorted(current.settings.subscriptions))
            registry_id = current.estate.find_registry(registry, subscription_ids=scope).id
        except ReadError as exc:
            raise HttpProblem(404, exc.reason) from exc
    except HttpProblem as problem:
        return problem.status, {"error": str(problem)}
    except ConfigurationError as exc:
        return 500, {"error": str(exc)}
    findings = current.diagnose(Target(cluster, registry_id, image))
    report = {"cluster": cluster.id, "registry": registry_id, "image": image}
    return 200, {**report, "findings": [f.to_dict() for f in findings]}


def _pair(params: Mapping[str, str], body: bytes) -> tuple[ResourceId, str, str | None]:
    if len(body) > MAX_BODY:
        raise HttpProblem(413, f"the request body is larger than {MAX_BODY} bytes")
    fields = dict(params)
    if body.strip():
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            raise HttpProblem(400, "the request body is not JSON") from None
        if not isinstance(parsed, dict):
            raise HttpProblem(400, "the request body must be a JSON object")
        fields.update({k: v for k, v in parsed.items() if isinstance(v, str)})
    cluster_id, registry = fields.get("cluster"), fields.get("registry")
    if not cluster_id or not registry:
        raise HttpProblem(
            400, "cluster (a resource id) and registry (a name or resource id) are required"
        )
    try:
        return ResourceId.parse(cluster_id), registry, fields.get("image")
    except ValueError as exc:
        raise HttpProblem(400, str(exc)) from exc


# -- registry events, sweeps, hand-over and alerts (issue 5) ---------------------------------------

SWEEP_BUDGET_SETTING = "SWEEP_BUDGET_SECONDS"
# Well under host.json's functionTimeout (10 min): one more task (an LRO waits up to
# OPERATION_TIMEOUT_SECONDS) must still fit after the budget is spent.
DEFAULT_SWEEP_BUDGET = 300.0
# An HTTP response must come back within 230 s (Azure's front end); the webhook hands the rest over.
HTTP_BUDGET = 60.0


@telemetry.invoked("registry_events", event=True)
def handle_registry_event(
    payload: Mapping[str, Any], *, source: str = "registry_events"
) -> list[Outcome]:
    """Handle one registry image event; bad input is logged and ignored, transient failures raise."""
    from shared.azure.event_names import event_types
    from shared.signals import parse_registry_event

    names = event_types()
    try:
        event = parse_registry_event(
            payload, handled_types=frozenset({names.image_pushed, names.image_deleted})
        )
    except BadSignal as exc:
        event_id = payload.get("id") if isinstance(payload, Mapping) else None
        shown = event_id[:64] if isinstance(event_id, str) and event_id.isprintable() else ""
        log.warning("ignored a registry event: %s", exc)
        outcome = Outcome(shown, Verdict.IGNORED, str(exc))
        log_outcome(outcome)
        return [outcome]
    with _retry_logged():
        outcomes = engine(respond=True, source=source).handle_registry_event(event)
    for outcome in outcomes:
        log_outcome(outcome)
    return outcomes


def sweep_budget(env: Mapping[str, str] | None = None) -> float:
    """SWEEP_BUDGET_SECONDS: how long a sweep starts new work before handing the rest over."""
    env = os.environ if env is None else env
    raw = env.get(SWEEP_BUDGET_SETTING, "").strip()
    if not raw:
        return DEFAULT_SWEEP_BUDGET
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{SWEEP_BUDGET_SETTING}={raw!r} is not a number") from None
    if not 0 <= value <= 3600:
        raise ConfigurationError(f"{SWEEP_BUDGET_SETTING}={raw!r} must be 0 to 3600 seconds")
    return value


def _sweeps(source: str, *, budget: float | None = None) -> Sweeps:
    from shared.sweeps import Budget, Sweeps

    current = engine(respond=True, source=source)
    seconds = sweep_budget() if budget is None else budget
    return Sweeps(current, load_policy(current.settings.policy_path), budget=Budget(seconds))


@telemetry.invoked("sweep")
def run_sweep(kind: str, *, source: str) -> list[str]:
    """Run one timer sweep (``drift``, ``pull-failures`` or ``expiry``); the hand-over messages."""
    sweeps = _sweeps(source)
    signal_id = f"{kind}:{_utcnow():%Y%m%dT%H%M%SZ}:{uuid.uuid4().hex[:8]}"
    run = {"drift": sweeps.drift, "pull-failures": sweeps.pull_failures, "expiry": sweeps.expiry}
    report = run[kind](signal_id)
    for outcome in report.outcomes:
        log_outcome(outcome)
    log.info("sweep %s", json.dumps(report.summary(), sort_keys=True))
    _sweep_metrics(report)
    return list(report.handed_over)


def host_queue_sender(name: str) -> Callable[[str], None] | None:
    """Send to the Functions host's queue ``name`` at once (a planner's batches, each as soon
    as it is planned, so workers start while planning goes on), or None where the host's
    storage is not configured for the app (the caller's output binding writes at return)."""
    queue = _factory(Settings.from_env(os.environ)).host_queue(name)
    if queue is None:
        return None

    def send(body: str) -> None:
        queue.send_message(body)

    return send


@telemetry.invoked("sweep")
def plan_sweep(kind: str, *, source: str, emit: Callable[[str], None]) -> None:
    """A planner timer (``drift`` or ``expiry``): emit one batch message per batch of clusters."""
    from shared.sweep_batches import Fleet, FleetSettings

    sweeps = _sweeps(source)
    signal_id = f"{kind}:{_utcnow():%Y%m%dT%H%M%SZ}:{uuid.uuid4().hex[:8]}"
    fleet = Fleet(sweeps, _cluster_source(sweeps, sweeps.subscriptions), FleetSettings.from_env())
    report = fleet.plan(kind, signal_id, emit)
    for outcome in report.outcomes:
        log_outcome(outcome)
    for state, subscriptions in report.states().items():
        for subscription in subscriptions:
            telemetry.swept_subscription(kind, state=state, subscription=subscription)
    # A subscription the app cannot read is swept by nobody: the operator must hear of it.
    level = logging.WARNING if report.unreadable else logging.INFO
    log.log(level, "plan %s", json.dumps(report.summary()))


@telemetry.invoked("sweep_batch")
def handle_batch(body: str | bytes) -> tuple[list[str], list[str]]:
    """One batch message: check its clusters; (follow-up batches, hand-over messages).

    A bad message is logged and dropped; an inventory that is still throttled raises, so the
    queue delivers the message again."""
    from shared.sweep_batches import Fleet, FleetSettings, parse_batch

    current = Settings.from_env(os.environ)
    try:
        batch = parse_batch(body, in_scope=current.in_scope)
    except BadSignal as exc:
        log.warning("dropped a batch message: %s", exc)
        log_outcome(Outcome("", Verdict.IGNORED, str(exc)))
        return [], []
    # The batch is its sweep's work: its tickets and events behave as the sweep's own.
    sweeps = _sweeps(f"{batch.sweep}_sweep")
    # Only a handed-over inventory is taken here; a batch brings its clusters with it.
    wanted = (batch.subscription,) if batch.clusters is None else ()
    fleet = Fleet(sweeps, _cluster_source(sweeps, wanted), FleetSettings.from_env())
    report = fleet.work(batch)
    for outcome in report.outcomes:
        log_outcome(outcome)
    if batch.clusters is None:  # the inventory a planner handed over: counted as its plan is
        state = "unreadable" if report.unreadable else "planned"
        telemetry.swept_subscription(batch.sweep, state=state, subscription=batch.subscription)
    level = logging.WARNING if report.unreadable else logging.INFO
    log.log(level, "batch %s", json.dumps(report.summary(), sort_keys=True))
    # What this invocation settled: checked here or handed over. Clusters sent on in follow-up
    # batches are counted by the invocation that settles them, so a sweep's batches add up to
    # its fleet once.
    checked, handed = len(report.outcomes), len(report.handed_over)
    telemetry.sweep(batch.sweep, known=checked + handed, checked=checked, handed_over=handed)
    return report.batches, report.handed_over


def _cluster_source(sweeps: Sweeps, subscriptions: tuple[str, ...]) -> ClusterSource:
    """The Resource Graph inventory of ``subscriptions`` (RESOURCE_GRAPH_INVENTORY on), else,
    or when Resource Graph fails (logged), ARM's list of managed clusters."""
    from shared.azure.inventory import load_inventory
    from shared.cluster_source import ArmClusters
    from shared.graph_clusters import GraphClusters

    if subscriptions and sweeps.engine.settings.inventory:
        try:
            inventory = load_inventory(_factory(sweeps.engine.settings), subscriptions)
        except ReadError as exc:
            log.warning("Resource Graph inventory unavailable, planning from ARM: %s", exc.reason)
        else:
            log.info("planning from Resource Graph: %d requests", inventory.requests)
            return GraphClusters(inventory, unseen=ArmClusters(sweeps.estate))
    return ArmClusters(sweeps.estate)


def _sweep_metrics(report: SweepReport) -> None:
    handed = len(report.handed_over)
    telemetry.sweep(
        report.sweep,
        known=report.planned,
        checked=max(0, report.planned - handed),
        handed_over=handed,
    )


@telemetry.invoked("sweep_handover")
def handle_handover(body: str | bytes, *, source: str = "sweep_handover") -> list[Outcome]:
    """One hand-over message from the queue; a bad one is logged and dropped, transient raises."""
    from shared.sweeps import parse_handover

    current = Settings.from_env(os.environ)
    try:
        message = parse_handover(body, in_scope=current.in_scope)
    except BadSignal as exc:
        log.warning("dropped a hand-over message: %s", exc)
        outcome = Outcome("", Verdict.IGNORED, str(exc))
        log_outcome(outcome)
        return [outcome]
    with _retry_logged():
        outcome = _sweeps(source).handover(message)
    log_outcome(outcome)
    return [outcome]


@telemetry.invoked("alert_webhook")
def alert_request(
    body: bytes, *, source: str = "alert_webhook"
) -> tuple[int, dict[str, Any], list[str]]:
    """An Azure Monitor common-schema alert: (status, JSON summary, hand-over messages).

    A bad body is 400 (413 when too large) and nothing is read or changed; a resolved alert or a
    repeated delivery of the same firing is 202 with nothing done.
    """
    from shared.alerts import BadAlert, parse_alert

    try:
        alert = parse_alert(body)
    except BadAlert as exc:
        log.warning("refused an alert: %s", exc)
        return exc.status, {"error": str(exc)}, []
    summary: dict[str, Any] = {
        "alert": alert.alert_id,
        "rule": alert.rule,
        "pods": len(alert.pods),
        "clusters": len(
            {p.cluster_id.lower() for p in alert.pods} | {c.lower() for c in alert.clusters}
        ),
    }
    if alert.resolved:
        return 202, {**summary, "status": "ignored", "reason": "the alert is resolved"}, []
    if not alert.pods and not alert.clusters:
        reason = "the alert names no pod and no managed cluster"
        return (
            202,
            {**summary, "status": "ignored", "reason": reason, "notes": list(alert.skipped)},
            [],
        )
    sweeps = _sweeps(source, budget=min(sweep_budget(), HTTP_BUDGET))
    reports: list[SweepReport] = []

    def run() -> list[Outcome]:
        reports.append(sweeps.alert(alert, alert.signal_id))
        return []  # deferred pairs are handed over to the queue, not retried by the sender

    try:
        sweeps.engine.once(alert.signal_id, run)
    except RetryLater as exc:
        # Another delivery of this firing is still running; the action group retries a 503.
        return 503, {**summary, "status": "busy", "reason": str(exc)}, []
    if not reports:
        reason = "this firing was already handled"
        return 202, {**summary, "status": "ignored", "reason": reason}, []
    report = reports[0]
    for outcome in report.outcomes:
        log_outcome(outcome)
    _sweep_metrics(report)
    result = report.summary()
    return (
        202,
        {
            **summary,
            "status": "accepted",
            **{k: result[k] for k in ("processed", "handedOver", "verdicts", "notes")},
        },
        list(report.handed_over),
    )


@telemetry.invoked("retention_sweep")
def run_retention() -> dict[str, Any]:
    """Prune old event claims, action records and audit rows within the sweep budget."""
    from shared.retention import Retention, prune
    from shared.sweeps import Budget

    settings = Settings.from_env(os.environ)
    retention = Retention.from_env(os.environ)
    store = _store(settings, _factory(settings))
    budget = Budget(sweep_budget())
    report = prune(store, retention, now=_utcnow(), spent=budget.spent).summary()
    log.info("retention %s", json.dumps(report, sort_keys=True))
    return report


def state_store(env: Mapping[str, str] | None = None) -> TableStateStore:
    """The state store of the current app settings (the report reads its audit log);
    ConfigurationError when none is configured."""
    settings = Settings.from_env(os.environ if env is None else env)
    return _store(settings, _factory(settings))
