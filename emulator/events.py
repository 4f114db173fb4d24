"""Event Grid wire payloads as Azure publishes them, built from the published samples.

The emulator uses them to play Azure's part (``make demo`` and the tests): the samples beside
this module are the public REST API specification examples, with this project's operations.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

SAMPLES_DIR = Path(__file__).resolve().parent / "eventgrid"
SAMPLES = {
    "Microsoft.Resources.ResourceWriteSuccess": "resource_write_success.event-grid-schema.json",
    "Microsoft.Resources.ResourceDeleteSuccess": "resource_delete_success.event-grid-schema.json",
    "Microsoft.Resources.ResourceActionSuccess": "resource_action_success.event-grid-schema.json",
}


def arm_event(
    resource_id: str,
    operation: str,
    *,
    event_type: str = "Microsoft.Resources.ResourceWriteSuccess",
    status: str = "Succeeded",
    subscription_id: str | None = None,
    tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
    event_id: str | None = None,
) -> dict[str, Any]:
    """An Event Grid schema payload shaped exactly like the published sample for its type."""
    sample_type = event_type.replace("Failure", "Success").replace("Cancel", "Success")
    sample = json.loads((SAMPLES_DIR / SAMPLES[sample_type]).read_text(encoding="utf-8"))
    event: dict[str, Any] = copy.deepcopy(sample)
    sub = subscription_id or resource_id.split("/")[2]
    # Real payloads spell it 'resourcegroups'; the code must not care.
    uri = resource_id.replace("/resourceGroups/", "/resourcegroups/")
    event.update(
        id=event_id or str(uuid.uuid4()),
        subject=uri,
        eventType=event_type,
        topic=f"/subscriptions/{sub}",
    )
    event["data"].update(
        resourceUri=uri,
        operationName=operation,
        status=status,
        subscriptionId=sub,
        tenantId=tenant_id,
        resourceProvider=operation.split("/", maxsplit=1)[0],
    )
    event["data"]["authorization"].update(scope=uri, action=operation)
    return event


def as_cloud_event(event: dict[str, Any]) -> dict[str, Any]:
    """The same event in the CloudEvents 1.0 schema, as Event Grid delivers it when asked to."""
    return {
        "specversion": "1.0",
        "id": event["id"],
        "source": event["topic"],
        "type": event["eventType"],
        "subject": event["subject"],
        "time": event["eventTime"],
        "data": event["data"],
    }


def with_string_data(event: dict[str, Any]) -> dict[str, Any]:
    """The same event with ``data`` serialized into a JSON string, as captured ACR deliveries
    have carried it (rest-examples/eventgrid/captures/acr_imagepushed_data_as_string.json)."""
    return {**event, "data": json.dumps(event["data"], separators=(",", ":"))}


# Registry system topic samples (specification/eventgrid/data-plane/Microsoft.ContainerRegistry).
IMAGE_SAMPLES = {
    "push": "image_pushed.event-grid-schema.json",
    "delete": "image_deleted.event-grid-schema.json",
}


def registry_image_event(
    registry_id: str,
    login_server: str,
    repository: str,
    *,
    action: str = "push",
    tag: str | None = None,
    digest: str,
    media_type: str = "application/vnd.oci.image.index.v1+json",
    event_id: str | None = None,
) -> dict[str, Any]:
    """An ImagePushed / ImageDeleted event (Event Grid schema) shaped like the published sample.

    ``az acr repository delete --image repo@digest`` sends no tag, and neither does the push of
    each platform manifest of a multi-platform build (by digest, before the tagged index).
    ``connectedRegistry`` is left out: only connected registries send it.
    """
    sample = json.loads((SAMPLES_DIR / IMAGE_SAMPLES[action]).read_text(encoding="utf-8"))
    event: dict[str, Any] = copy.deepcopy(sample)
    event_id = event_id or str(uuid.uuid4())
    event.update(
        id=event_id, topic=registry_id, subject=f"{repository}:{tag}" if tag else repository
    )
    data = event["data"]
    data.pop("connectedRegistry", None)
    data["id"] = event_id
    target: dict[str, Any] = {"mediaType": media_type, "digest": digest, "repository": repository}
    if action == "push":
        target.update(size=data["target"]["size"], length=data["target"]["length"])
    if tag:
        target["tag"] = tag
    data["target"] = target
    data["request"]["host"] = login_server
    return event
