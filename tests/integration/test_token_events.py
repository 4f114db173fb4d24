"""A token password generated again (``az acr token credential generate``), from its event.

A ResourceActionSuccess through the indexed arm_events function: pull-secret-token-invalid runs
for the clusters that use the registry and (policy auto) refresh-pull-secret gives the secret a
new password. tests/integration/test_arm_operations.py covers the tokens/write and
scopeMaps/write events (a ticket each).
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator import scenario
from emulator.server import Emulator
from tests.checks.test_pull_secret_token_invalid import CLUSTER, REGISTRY, estate_spec
from tests.integration.test_kubelet_identity_loop import deliver
from tests.support.events import arm_event

GENERATE = "Microsoft.ContainerRegistry/registries/generateCredentials/action"


def test_a_password_generated_again_is_refreshed_from_its_event(
    emulator: Emulator,
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.load(
        emulator.state,
        estate_spec(breaks=[{"cause": "pull-secret-token-invalid", "cluster": CLUSTER}]),
    )
    registry = scenario.find_registry(emulator.state, REGISTRY)["id"]
    event = arm_event(registry, GENERATE, event_type="Microsoft.Resources.ResourceActionSuccess")
    outcome = deliver(functions, event, caplog)
    assert outcome["verdict"] == "remediated", outcome["reason"]
    assert [f["cause"] for f in outcome["findings"]] == ["pull-secret-token-invalid"]
    assert outcome["cluster"].endswith(f"/{CLUSTER}")
