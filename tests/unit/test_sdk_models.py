"""SDK model classes are set up before threads share them (Azure/azure-sdk-for-python#47426).

Each test runs in a fresh interpreter: a class set up by an earlier test of this process would
hide whether ``ready`` did it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_ready_sets_up_the_roots_and_every_model_their_fields_name() -> None:
    out = _run(
        """
        from azure.mgmt.containerregistry.models import (
            IPRule, NetworkRuleSet, Registry, RegistryProperties, Sku,
        )
        from shared.azure import sdk_models

        def key(cls):
            return f"{cls.__module__}.{cls.__qualname__}"

        classes = (Registry, RegistryProperties, NetworkRuleSet, IPRule, Sku)
        before = [key(c) in Registry._calculated for c in classes]
        sdk_models.ready("azure.mgmt.containerregistry")
        after = [key(c) in Registry._calculated for c in classes]
        print(before, after)
        """
    )
    assert out == "[False, False, False, False, False] [True, True, True, True, True]"


def test_ready_for_finds_the_package_of_a_client_class() -> None:
    out = _run(
        """
        from azure.mgmt.containerregistry import ContainerRegistryManagementClient
        from azure.mgmt.containerregistry.models import NetworkRuleSet, Registry
        from shared.azure import sdk_models

        sdk_models.ready_for(ContainerRegistryManagementClient)
        print(f"{NetworkRuleSet.__module__}.{NetworkRuleSet.__qualname__}" in Registry._calculated)
        """
    )
    assert out == "True"


def test_a_package_without_listed_roots_is_left_alone() -> None:
    out = _run(
        """
        from shared.azure import sdk_models

        sdk_models.ready("azure.mgmt.authorization")  # msrest models: nothing to set up
        print(sorted(sdk_models._ready))
        """
    )
    assert out == "[]"
