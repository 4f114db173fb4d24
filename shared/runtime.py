"""Wires settings, SDK clients and the engine for one invocation; triggers call only this."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.checks import Target
from shared.config import Settings
from shared.engine import Engine
from shared.errors import ConfigurationError, ReadError
from shared.outcome import Outcome, Verdict
from shared.resource_id import ResourceId
from shared.signals import BadSignal, parse_resource_event

log = logging.getLogger(__name__)

_factories: dict[Settings, ClientFactory] = {}
_lock = threading.Lock()


def engine(env: Mapping[str, str] | None = None) -> Engine:
    """An engine for the current app settings, reusing SDK clients across warm invocations."""
    settings = Settings.from_env(os.environ if env is None else env)
    with _lock:
        factory = _factories.get(settings)
        if factory is None:
            factory = _factories[settings] = ClientFactory(settings)
    return Engine(settings, ArmEstate(factory))


def handle_resource_event(payload: Mapping[str, Any]) -> Outcome:
    """Handle one ARM event; bad input is logged and ignored, transient failures raise."""
    try:
        event = parse_resource_event(payload)
    except BadSignal as exc:
        log.warning("ignored a malformed event: %s", exc)
        return Outcome(str(payload.get("id", ""))[:64], Verdict.IGNORED, str(exc))
    outcome = engine().handle_resource_event(event)
    log.info("outcome %s", json.dumps(outcome.to_dict(), sort_keys=True))
    return outcome


def reset_clients() -> None:
    """Close cached SDK clients (tests and settings changes)."""
    with _lock:
        factories = list(_factories.values())
        _factories.clear()
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
