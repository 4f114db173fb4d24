"""Fixtures: a fresh emulator per test, app settings pointing at it, the indexed Function App."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import scenario
from emulator.server import Emulator

PROD_SUB = "9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c"
SANDBOX_SUB = "4e5f6a7b-8c9d-4a0b-9c1d-2e3f4a5b6c7d"
# A subscription id in scope that Azure does not know (a typo): Resource Graph shows nothing of
# it and ARM answers 404.
UNKNOWN_SUB = "0badc0de-0000-4000-8000-000000000000"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def sample(emulator: Emulator) -> dict[str, Any]:
    return scenario.load(emulator.state, "sample")


POLICIES = Path(__file__).parent / "policies"


@pytest.fixture
def app_env(
    emulator: Emulator, azurite: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """App settings for the product, as the Function App would have them, aimed at the emulator."""
    for key in list(os.environ):
        if key.startswith(("AZURE_", "IDENTITY_", "MSI_")):
            monkeypatch.delenv(key)
    env = {
        **emulator.environment(),
        **azurite.environment(),
        "POLICY_PATH": str(POLICIES / "enforce-all.yaml"),
        "SCOPE_SUBSCRIPTION_IDS": PROD_SUB,
        "REMEDIATION_MODE": "enforce",
        "OPERATION_TIMEOUT_SECONDS": "30",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    from shared import runtime

    runtime.reset_clients()


@pytest.fixture(scope="session")
def functions() -> dict[str, Any]:
    """The app indexed as the worker does it: ``app.get_functions()``, once per process."""
    import function_app

    return {fn.get_function_name(): fn for fn in function_app.app.get_functions()}


pytest_plugins = ["tests.fixtures_azurite"]
