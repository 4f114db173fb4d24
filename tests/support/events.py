"""Trigger objects for tests, decoded from wire JSON by the Functions worker's own converter."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from emulator.events import arm_event, as_cloud_event

__all__ = ["arm_event", "as_cloud_event", "trigger_object"]


def trigger_object(payload: dict[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    """What the Python worker hands the function, decoded from the wire JSON by its converter."""
    return EventGridEventInConverter.decode(
        meta.Datum(json.dumps(payload), "json"), trigger_metadata={}
    )
