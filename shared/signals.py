"""Typed signals parsed from wire payloads (Event Grid schema or CloudEvents 1.0).

Event Grid delivers at least once and unordered, and real payloads mix ``resourcegroups`` and
``resourceGroups``: parsing keeps ids as sent and every comparison is case-insensitive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import RemediatorError

MAX_FIELD_LENGTH = 2048


class BadSignal(RemediatorError):
    """A payload that cannot be acted on; the trigger logs it and drops it."""


@dataclass(frozen=True)
class ResourceEvent:
    """An Azure Resource Manager operation event from a subscription system topic."""

    id: str
    event_type: str
    operation_name: str
    resource_id: str
    subscription_id: str
    tenant_id: str
    status: str
    subject: str

    def is_operation(self, name: str) -> bool:
        return self.operation_name.lower() == name.lower()


def parse_resource_event(payload: Mapping[str, Any]) -> ResourceEvent:
    """Parse one event in either schema; raise :class:`BadSignal` saying what is wrong."""
    if not isinstance(payload, Mapping):
        raise BadSignal("the event is not a JSON object")
    cloud_event = "specversion" in payload
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise BadSignal("the event has no data object")
    fields = {
        "id": payload.get("id"),
        "event_type": payload.get("type" if cloud_event else "eventType"),
        "subject": payload.get("subject"),
        "operation_name": data.get("operationName"),
        "resource_id": data.get("resourceUri"),
        "subscription_id": data.get("subscriptionId"),
        "tenant_id": data.get("tenantId", ""),
        "status": data.get("status", ""),
    }
    for name, value in fields.items():
        if not isinstance(value, str):
            raise BadSignal(f"the event field {name} is missing or not a string")
        if len(value) > MAX_FIELD_LENGTH:
            raise BadSignal(f"the event field {name} is longer than {MAX_FIELD_LENGTH} characters")
    return ResourceEvent(**{k: str(v) for k, v in fields.items()})
