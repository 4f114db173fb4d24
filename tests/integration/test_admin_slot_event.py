"""A regenerateCredential event for either admin password slot, end to end.

``az acr credential renew --password-name password2`` is a ResourceActionSuccess event whose
data does not say which slot was regenerated (Azure sends no request body): the check tells the
slot from the secrets, and refresh-pull-secret writes that slot's new value, through the indexed
Event Grid function, the real SDK clients and the emulator.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator import scenario
from emulator.server import Emulator
from tests.conftest import PROD_SUB
from tests.integration.test_kubelet_identity_loop import deliver
from tests.remediations.test_refresh_pull_secret import (
    CLUSTER,
    HOST,
    REGISTRY,
    auths,
    regenerate,
    slot_value,
)
from tests.support.events import arm_event

REGISTRY_CREDENTIALS = "Microsoft.ContainerRegistry/registries/regenerateCredential/action"


@pytest.fixture
def two_slots(emulator: Emulator, app_env: dict[str, str]) -> dict[str, Any]:
    """Mid-rotation: acr-one holds password, acr-two and acr-three password2; a workload pulls
    with each (that is how the event finds the cluster: it uses the registry)."""
    secrets = {"acr-one": "admin", "acr-two": "admin:password2", "acr-three": "admin:password2"}
    cluster = {
        "name": CLUSTER,
        "namespaces": ["shop"],
        "pullSecrets": [
            {"namespace": "shop", "name": name, "registry": REGISTRY, "from": source}
            for name, source in secrets.items()
        ],
        "workloads": [
            {
                "namespace": "shop",
                "name": f"app-{name}",
                "image": f"{HOST}/app:v1",
                "imagePullSecrets": [name],
            }
            for name in secrets
        ],
    }
    registry = {
        "name": REGISTRY,
        "adminUserEnabled": True,
        "repositories": {"app": {"v1": ["linux/amd64"]}},
    }
    return scenario.load(
        emulator.state,
        {
            "subscriptions": [
                {
                    "id": PROD_SUB,
                    "resourceGroups": [
                        {"name": "rg-acr", "registries": [registry]},
                        {"name": "rg-aks-shop", "clusters": [cluster]},
                    ],
                }
            ]
        },
    )


@pytest.mark.parametrize(
    ("slot", "stale", "current"),
    [
        ("password2", ["acr-two", "acr-three"], ["acr-one"]),
        ("password", ["acr-one"], ["acr-two", "acr-three"]),
    ],
)
def test_each_slot_regenerated_is_refreshed_with_its_own_new_value(
    emulator: Emulator,
    two_slots: dict[str, Any],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    slot: str,
    stale: list[str],
    current: list[str],
) -> None:
    untouched = {name: auths(emulator, name)[HOST]["password"] for name in current}
    regenerate(emulator, slot)
    registry = scenario.find_registry(emulator.state, REGISTRY)["id"]
    event = arm_event(
        registry, REGISTRY_CREDENTIALS, event_type="Microsoft.Resources.ResourceActionSuccess"
    )
    outcomes = [deliver(functions, event, caplog)]
    [outcome] = [o for o in outcomes if o.get("actions")]
    assert outcome["verdict"] == "remediated", outcome["reason"]
    [finding] = outcome["findings"]
    assert f"({slot} regenerated)" in finding["summary"]
    for name in stale:
        assert auths(emulator, name)[HOST]["password"] == slot_value(emulator, slot)
        assert f"shop/{name} ({slot})" in outcome["actions"][0]["detail"]
    for name, password in untouched.items():
        assert auths(emulator, name)[HOST]["password"] == password
