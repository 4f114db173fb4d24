from __future__ import annotations

from typing import Any

import pytest

from shared.signals import BadSignal, parse_resource_event
from tests.support.events import arm_event, as_cloud_event

VMSS = "/subscriptions/9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c/resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/v"


@pytest.mark.parametrize("schema", [lambda e: e, as_cloud_event])
def test_both_schemas_parse_to_the_same_signal(schema: Any) -> None:
    event = parse_resource_event(
        schema(arm_event(VMSS, "Microsoft.Compute/virtualMachineScaleSets/write", event_id="e1"))
    )
    assert event.id == "e1"
    assert event.event_type == "Microsoft.Resources.ResourceWriteSuccess"
    assert event.is_operation("microsoft.compute/VIRTUALMACHINESCALESETS/write")
    assert event.resource_id.lower() == VMSS.lower()
    assert event.subscription_id == "9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([], "not a JSON object"),
        ({"id": "1"}, "no data object"),
        ({"id": "1", "eventType": "x", "data": {"operationName": 5}}, "subject is missing"),
        ({**arm_event(VMSS, "op"), "subject": "x" * 5000}, "longer than"),
    ],
)
def test_bad_payloads_say_what_is_wrong(payload: Any, reason: str) -> None:
    with pytest.raises(BadSignal, match=reason):
        parse_resource_event(payload)
