"""Microsoft.Resources routes people's tools call (az login, az group list, find by name)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from emulator.server import Emulator
from tests.conftest import PROD_SUB

API = {"api-version": "2022-12-01"}
REGISTRIES = "Microsoft.ContainerRegistry/registries"


@pytest.fixture
def http(emulator: Emulator, sample: dict[str, Any]) -> requests.Session:
    session = requests.Session()
    session.verify = emulator.ca_path
    session.trust_env = False
    token = emulator.state.issue_token(emulator.base_url + "/")
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def get(http: requests.Session, emulator: Emulator, path: str, **params: str) -> Any:
    response = http.get(emulator.base_url + path, params={**API, **params}, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def test_subscriptions_list_every_subscription_of_the_estate(
    http: requests.Session, emulator: Emulator, sample: dict[str, Any]
) -> None:
    listed = get(http, emulator, "/subscriptions")["value"]
    expected = {s["id"]: s["name"] for s in sample["subscriptions"]}
    assert {s["subscriptionId"]: s["displayName"] for s in listed} == expected
    for sub in listed:
        assert sub["id"] == f"/subscriptions/{sub['subscriptionId']}"
        assert sub["tenantId"] == emulator.state.tenant_id
        assert sub["state"] == "Enabled"
    one = get(http, emulator, f"/subscriptions/{PROD_SUB}")
    assert one == next(s for s in listed if s["subscriptionId"] == PROD_SUB)
    missing = http.get(
        f"{emulator.base_url}/subscriptions/00000000-0000-0000-0000-000000000001",
        params=API,
        timeout=5,
    )
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "SubscriptionNotFound")


def test_tenants_list_the_estates_tenant(http: requests.Session, emulator: Emulator) -> None:
    (tenant,) = get(http, emulator, "/tenants")["value"]
    assert tenant["tenantId"] == emulator.state.tenant_id
    assert tenant["id"] == f"/tenants/{emulator.state.tenant_id}"


def test_resource_groups_list_pages(http: requests.Session, emulator: Emulator) -> None:
    emulator.state.page_size = 2
    path = f"/subscriptions/{PROD_SUB}/resourcegroups"
    page = get(http, emulator, path)
    names = [g["name"] for g in page["value"]]
    while "nextLink" in page:
        page = http.get(page["nextLink"], timeout=5).json()
        names += [g["name"] for g in page["value"]]
    assert {"rg-aks-prod", "rg-acr"} <= set(names)
    assert any(n.startswith("MC_rg-aks-prod_aks-prod-weu") for n in names)
    assert len(names) == len(set(names))


def test_resources_are_found_by_type_and_name(http: requests.Session, emulator: Emulator) -> None:
    path = f"/subscriptions/{PROD_SUB}/resources"
    by_type = get(http, emulator, path, **{"$filter": f"resourceType eq '{REGISTRIES}'"})["value"]
    assert [r["name"] for r in by_type] == ["acrprodweu"]
    (registry,) = by_type
    assert registry["type"] == REGISTRIES and registry["location"] == "westeurope"
    assert registry["sku"]["name"] == "Premium"
    assert "properties" not in registry  # GenericResourceExpanded: no properties unless $expand
    both = f"resourceType eq '{REGISTRIES}' and name eq 'ACRPRODWEU'"
    assert get(http, emulator, path, **{"$filter": both})["value"] == by_type
    assert get(http, emulator, path, **{"$filter": "name eq 'nosuch'"})["value"] == []
    everything = get(http, emulator, path)["value"]
    types = {r["type"] for r in everything}
    assert "Microsoft.ContainerService/managedClusters" in types
    assert not any(t.startswith("Microsoft.Authorization/") for t in types)
    in_group = get(http, emulator, f"/subscriptions/{PROD_SUB}/resourceGroups/rg-acr/resources")
    assert {r["id"].split("/")[4] for r in in_group["value"]} == {"rg-acr"}
    bad = http.get(
        emulator.base_url + path, params={**API, "$filter": "location eq 'x'"}, timeout=5
    )
    assert bad.status_code == 400


def test_cloud_metadata_names_only_the_emulator(emulator: Emulator) -> None:
    """``az cloud register --endpoint-resource-manager <url>`` reads /metadata/endpoints."""
    response = requests.get(
        f"{emulator.base_url}/metadata/endpoints",
        params={"api-version": "2022-09-01"},
        verify=emulator.ca_path,
        timeout=5,
    )
    assert response.status_code == 200
    cloud = response.json()
    base = emulator.base_url
    assert cloud["resourceManager"] == f"{base}/"
    assert cloud["authentication"]["audiences"] == [f"{base}/"]
    assert cloud["microsoftGraphResourceId"] == f"{base}/graph/"
    assert cloud["suffixes"]["acrLoginServer"] == "azurecr.io"
    endpoints = [cloud["resourceManager"], cloud["authentication"]["loginEndpoint"], cloud["graph"]]
    assert all(e.startswith(base) for e in endpoints)  # nothing outside loopback
