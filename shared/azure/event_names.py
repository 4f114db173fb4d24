"""Event type names, taken from azure-eventgrid's ``SystemEventNames`` (imported on first use)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class EventTypes:
    write_success: str
    action_success: str
    delete_success: str
    failures: frozenset[str]
    image_pushed: str
    image_deleted: str


@cache
def event_types() -> EventTypes:
    from azure.eventgrid import SystemEventNames

    names = SystemEventNames
    return EventTypes(
        write_success=names.ResourceWriteSuccessEventName.value,
        action_success=names.ResourceActionSuccessEventName.value,
        delete_success=names.ResourceDeleteSuccessEventName.value,
        failures=frozenset(
            n.value
            for n in (
                names.ResourceWriteFailureEventName,
                names.ResourceWriteCancelEventName,
                names.ResourceActionFailureEventName,
                names.ResourceActionCancelEventName,
                names.ResourceDeleteFailureEventName,
                names.ResourceDeleteCancelEventName,
            )
        ),
        image_pushed=names.ContainerRegistryImagePushedEventName.value,
        image_deleted=names.ContainerRegistryImageDeletedEventName.value,
    )
