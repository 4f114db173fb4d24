from __future__ import annotations

import pytest

from shared.config import Settings
from shared.errors import ConfigurationError


def test_defaults_are_safe() -> None:
    settings = Settings.from_env({})
    assert settings.cloud.name == "AzureCloud"
    assert settings.cloud.arm_scope == "https://management.azure.com/.default"
    assert settings.mode == "dry-run"
    assert settings.subscriptions == frozenset()
    assert not settings.in_scope("9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c")


@pytest.mark.parametrize(
    ("cloud", "arm", "graph"),
    [
        (
            "AzureChinaCloud",
            "https://management.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
        ),
        ("AzureUSGovernment", "https://management.usgovcloudapi.net", "https://graph.microsoft.us"),
    ],
)
def test_sovereign_clouds(cloud: str, arm: str, graph: str) -> None:
    settings = Settings.from_env({"AZURE_CLOUD": cloud})
    assert (settings.cloud.resource_manager, settings.cloud.microsoft_graph) == (arm, graph)


def test_custom_cloud_needs_its_endpoints() -> None:
    with pytest.raises(ConfigurationError, match="ARM_ENDPOINT and GRAPH_ENDPOINT"):
        Settings.from_env({"AZURE_CLOUD": "Custom"})
    settings = Settings.from_env(
        {
            "AZURE_CLOUD": "Custom",
            "ARM_ENDPOINT": "https://127.0.0.1:8443/",
            "GRAPH_ENDPOINT": "https://127.0.0.1:8443/graph",
        }
    )
    assert settings.cloud.resource_manager == "https://127.0.0.1:8443"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"AZURE_CLOUD": "Mars"},
            "AZURE_CLOUD='Mars' is not one of: AzureCloud, AzureChinaCloud, AzureUSGovernment, Custom",
        ),
        ({"REMEDIATION_MODE": "yolo"}, "REMEDIATION_MODE='yolo' is not one of: dry-run, enforce"),
        ({"ARM_RETRY_TOTAL": "many"}, "ARM_RETRY_TOTAL='many' is not a int"),
        ({"OPERATION_TIMEOUT_SECONDS": "-1"}, "must not be negative"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as failure:
        Settings.from_env(env)
    assert message in str(failure.value)


def test_scope_is_case_insensitive() -> None:
    settings = Settings.from_env(
        {"SCOPE_SUBSCRIPTION_IDS": " 9A3C1B2E-5D4F-4E6A-8B7C-1D2E3F4A5B6C , other "}
    )
    assert settings.in_scope("9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c")
    assert settings.in_scope("OTHER")
