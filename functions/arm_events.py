"""Event Grid trigger for the subscription system topic (ARM resource operation events)."""

from __future__ import annotations

from typing import Any

import azure.functions as func

bp = func.Blueprint()


@bp.function_name(name="arm_events")
@bp.event_grid_trigger(arg_name="event")
def arm_events(event: func.EventGridEvent) -> None:
    from shared.runtime import handle_resource_event

    handle_resource_event(wire_event(event))


def wire_event(event: func.EventGridEvent | func.CloudEvent) -> dict[str, Any]:
    """The wire payload behind the worker's event object, in whichever schema it arrived."""
    if isinstance(event, func.CloudEvent):
        return {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": event.time.isoformat() if event.time else None,
            "data": event.get_json(),
        }
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }
