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
from shared.config import Settings
from shared.engine import Engine
from shared.outcome import Outcome, Verdict
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
