"""Wires settings, SDK clients and the engine for one invocation; triggers call only this."""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.azure.tables import TableStateStore
from shared.checks import Target
from shared.config import Settings
from shared.engine import Engine
from shared.errors import ConfigurationError, ReadError
from shared.outcome import Outcome, Verdict
from shared.outcome_events import outcome_publisher
from shared.policy import load_policy
from shared.resource_id import ResourceId
from shared.responder import Responder
from shared.signals import BadSignal, parse_resource_event
from shared.ticket_routes import TicketRouter

log = logging.getLogger(__name__)

_factories: dict[Settings, ClientFactory] = {}
_stores: dict[Settings, TableStateStore] = {}
_lock = threading.Lock()


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
    if not respond:
        return Engine(settings, estate)
    store = _store(settings, factory)
    policy = load_policy(settings.policy_path)
    publisher = outcome_publisher(factory, source=source)
    router = TicketRouter(settings, store, env, _utcnow)

    def responder(signal_id: str) -> Responder:
        return Responder(
            settings=settings,
            estate=estate,
            policy=policy,
            store=store,
            tickets=router,
            publisher=publisher,
            correlation_id=str(uuid.uuid4()),
            clock=_utcnow,
        )

    return Engine(settings, estate, store=store, responder=responder)


def handle_resource_event(
    payload: Mapping[str, Any], *, source: str = "arm_events"
) -> list[Outcome]:
    """Handle one ARM event; bad input is logged and ignored, transient failures raise."""
    try:
        event = parse_resource_event(payload)
    except BadSignal as exc:
        log.warning("ignored a malformed event: %s", exc)
        return [Outcome(str(payload.get("id", ""))[:64], Verdict.IGNORED, str(exc))]
    outcomes = engine(respond=True, source=source).handle_resource_event(event)
    for outcome in outcomes:
        log_outcome(outcome)
    return outcomes


def log_outcome(outcome: Outcome) -> None:
    log.info("outcome %s", json.dumps(outcome.to_dict(), sort_keys=True))


def reset_clients() -> None:
    """Close cached SDK clients (tests and settings changes)."""
    with _lock:
        factories = list(_factories.values())
        _factories.clear()
        _stores.clear()
    for factory in factories:
        factory.close()


MAX_BODY = 64 * 1024


class HttpProblem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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
