"""Event Grid trigger for registry system topics: images pushed to or deleted from a registry."""

from __future__ import annotations

import azure.functions as func

from functions.arm_events import wire_event

bp = func.Blueprint()


@bp.function_name(name="registry_events")
@bp.event_grid_trigger(arg_name="event")
def registry_events(event: func.EventGridEvent) -> None:
    from shared.runtime import handle_registry_event

    handle_registry_event(wire_event(event))
