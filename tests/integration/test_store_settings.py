"""How the state store finds its storage account, and the key/column rules it writes by."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.azure.factory import ClientFactory
from shared.azure.tables import TableStateStore
from shared.config import AZURITE_DEV_CONNECTION_STRING, Settings
from shared.errors import ConfigurationError
from shared.store.keys import MAX_JSON_CHARS, inverted_key, redact, resource_key, to_json
from tests.fixtures_azurite import AzuriteTables

ACCOUNT_KEY_FRAGMENT = "Eby8vdM02xNOcqFl"


def test_nothing_configured_means_no_store_and_a_clear_error() -> None:
    settings = Settings.from_env({})
    assert (settings.state_connection_string, settings.state_table_service_uri) == (None, None)
    assert settings.policy_path == ""
    assert settings.state_table_prefix == "remediator"
    with pytest.raises(ConfigurationError, match="STATE_STORAGE_CONNECTION_STRING"):
        ClientFactory(settings).table_service()


def test_use_development_storage_means_azurite_on_its_default_port() -> None:
    settings = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert settings.state_connection_string == AZURITE_DEV_CONNECTION_STRING
    assert "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1" in AZURITE_DEV_CONNECTION_STRING


def test_identity_based_host_storage_is_reached_with_the_apps_identity() -> None:
    env = {
        "AzureWebJobsStorage__accountName": "stremediatorprod",
        "AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=ignored;AccountKey=eA==",
    }
    settings = Settings.from_env(env)
    assert settings.state_table_service_uri == "https://stremediatorprod.table.core.windows.net"
    assert settings.state_connection_string is None
    china = Settings.from_env({**env, "AZURE_CLOUD": "AzureChinaCloud"})
    assert china.state_table_service_uri == "https://stremediatorprod.table.core.chinacloudapi.cn"
    explicit = Settings.from_env(
        {"AzureWebJobsStorage__tableServiceUri": "https://st1.table.core.windows.net/"}
    )
    assert explicit.state_table_service_uri == "https://st1.table.core.windows.net"
    client = ClientFactory(explicit).table_service()  # builds without I/O
    assert client.account_name == "st1"


def test_an_explicit_connection_string_wins(azurite: AzuriteTables) -> None:
    env = {
        **azurite.environment(),
        "AzureWebJobsStorage__accountName": "stremediatorprod",
    }
    settings = Settings.from_env(env)
    assert settings.state_connection_string == azurite.connection_string
    assert ACCOUNT_KEY_FRAGMENT not in repr(settings)  # settings may be logged; keys may not
    claim = TableStateStore.from_factory(ClientFactory(settings)).start_event("via-settings", 60)
    assert claim.state.value == "claimed"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STATE_TABLE_PREFIX": "9lives"}, "STATE_TABLE_PREFIX='9lives'"),
        ({"STATE_TABLE_PREFIX": "bad-prefix"}, "letters and digits"),
        ({"STATE_TABLE_SERVICE_URI": "http://st1.table.core.windows.net"}, "https URL"),
        (
            {
                "AZURE_CLOUD": "Custom",
                "ARM_ENDPOINT": "https://127.0.0.1:1",
                "GRAPH_ENDPOINT": "https://127.0.0.1:1",
                "AzureWebJobsStorage__accountName": "st1",
            },
            "STORAGE_ENDPOINT_SUFFIX",
        ),
    ],
)
def test_bad_store_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


def test_resource_keys_ignore_case_and_trailing_slashes() -> None:
    cluster = "/subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerService/managedClusters/AKS"
    key = resource_key(cluster)
    assert key == resource_key(cluster.lower() + "/")
    assert len(key) == 64
    assert not set(key) & set("/\\#?")


def test_inverted_keys_sort_newest_first_across_years() -> None:
    times = [datetime(2025, 11, 27, 9, 0, tzinfo=UTC) + timedelta(microseconds=n) for n in (0, 1)]
    times += [datetime(2024, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)]
    keys = [inverted_key(t) for t in times]
    assert [times[keys.index(k)] for k in sorted(keys)] == sorted(times, reverse=True)


def test_json_columns_are_bounded_valid_json_and_redacted() -> None:
    assert json.loads(to_json({"password": "p@ss", "passwordCredentials": [{"keyId": "k"}]})) == {
        "password": "[redacted]",
        "passwordCredentials": [{"keyId": "k"}],
    }
    assert redact({"token": None, "nested": [{"clientSecret": "x"}]}) == {
        "token": None,
        "nested": [{"clientSecret": "[redacted]"}],
    }
    wide = {"text": "\U0001f600" * 40_000}  # characters outside the BMP count twice in UTF-16
    encoded = to_json(wide)
    assert len(encoded.encode("utf-16-le")) // 2 <= MAX_JSON_CHARS
    assert json.loads(encoded)["_truncated"] is True
