"""The emulator's Resource Graph evaluates KQL: filters, joins, mv-expand, summaries and paging
over the estate, each answer checked against what the state holds (computed here in Python)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator import scenario
from emulator.server import Emulator
from tests.conftest import PROD_SUB, SANDBOX_SUB
from tests.contract.test_resource_graph_routes import client, query

CLUSTER = "microsoft.containerservice/managedclusters"
VMSS = "microsoft.compute/virtualmachinescalesets"


@pytest.fixture
def rg(emulator: Emulator, sample: dict[str, Any]) -> Any:
    return client(emulator)


def stored(emulator: Emulator, rtype: str, sub: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in emulator.state.resources.values()
        if r["type"].lower() == rtype and (sub is None or r["id"].split("/")[2] == sub)
    ]


def rows(rg: Any, text: str, subs: list[str] | None = None) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = query(rg, text, subs or [PROD_SUB, SANDBOX_SUB])[1]["data"]
    return data


def test_where_with_case_insensitive_equality_and_project(emulator: Emulator, rg: Any) -> None:
    found = rows(
        rg,
        "Resources | where type =~ 'Microsoft.ContainerService/managedClusters' "
        "| project id, name, nodeGroup = tolower(tostring(properties.nodeResourceGroup))",
    )
    wanted = stored(emulator, CLUSTER)
    assert sorted(r["name"] for r in found) == sorted(c["name"] for c in wanted)
    by_name = {c["name"]: c for c in wanted}
    for row in found:
        assert set(row) == {"id", "name", "nodeGroup"}
        assert row["nodeGroup"] == by_name[row["name"]]["properties"]["nodeResourceGroup"].lower()


def test_subscriptions_limit_the_rows(emulator: Emulator, rg: Any) -> None:
    found = rows(rg, f"resources | where type == '{CLUSTER}' | project id", [SANDBOX_SUB])
    assert [r["id"] for r in found] == [c["id"] for c in stored(emulator, CLUSTER, SANDBOX_SUB)]


def test_mv_expand_gives_one_row_per_agent_pool(emulator: Emulator, rg: Any) -> None:
    found = rows(
        rg,
        f"resources | where type == '{CLUSTER}' | mv-expand pool = properties.agentPoolProfiles "
        "| project id, pool = tostring(pool.name), os = tostring(pool.osType)",
    )
    wanted = sorted(
        (c["id"], p["name"], p["osType"])
        for c in stored(emulator, CLUSTER)
        for p in c["properties"]["agentPoolProfiles"]
    )
    assert sorted((r["id"], r["pool"], r["os"]) for r in found) == wanted
    assert ("win", "Windows") in {(r["pool"], r["os"]) for r in found}


def test_inner_join_puts_each_scale_set_with_its_cluster(emulator: Emulator, rg: Any) -> None:
    found = rows(
        rg,
        f"resources | where type == '{CLUSTER}' "
        "| project cluster = name, subscriptionId, nodeGroup = tolower(tostring(properties.nodeResourceGroup)) "
        f"| join kind=inner (resources | where type == '{VMSS}' "
        "| extend nodeGroup = tolower(resourceGroup) | project vmss = name, subscriptionId, nodeGroup) "
        "on subscriptionId, nodeGroup | project cluster, vmss",
    )
    wanted = sorted(
        (c["name"], v["name"])
        for c in stored(emulator, CLUSTER)
        for v in stored(emulator, VMSS)
        if v["id"].lower().split("/")[4] == c["properties"]["nodeResourceGroup"].lower()
    )
    assert sorted((r["cluster"], r["vmss"]) for r in found) == wanted
    assert "web-vmss" not in {r["vmss"] for r in found}  # a plain scale set has no cluster


def test_left_outer_join_keeps_clusters_without_a_match(emulator: Emulator, rg: Any) -> None:
    scenario.apply_break(emulator.state, {"cause": "acrpull-missing", "cluster": "aks-batch-weu"})
    found = rows(
        rg,
        f"resources | where type == '{CLUSTER}' "
        "| extend principal = tostring(properties.identityProfile.kubeletidentity.objectId) "
        "| where isnotempty(principal) | project name, principal "
        "| join kind=leftouter (authorizationresources "
        "| where type =~ 'microsoft.authorization/roleassignments' "
        "| where properties.roleDefinitionId endswith '7f951dda-4ed3-4680-a7ca-43fe172d538d' "
        "| project principal = tostring(properties.principalId), scope = tostring(properties.scope)) "
        "on principal | project name, scope",
    )
    scopes = {r["name"]: r["scope"] for r in found}
    assert scopes["aks-prod-weu"].endswith("/registries/acrprodweu")
    assert scopes["aks-batch-weu"] in (None, "")  # its AcrPull assignment was deleted
    assert "aks-dev-neu" not in scopes  # a service principal cluster has no kubelet identity


def test_summarize_count_and_make_list_by_a_column(emulator: Emulator, rg: Any) -> None:
    found = rows(
        rg,
        f"resources | where type in~ ('{CLUSTER}', 'Microsoft.ContainerRegistry/registries') "
        "| summarize n = count(), names = make_list(name) by type",
    )
    for row in found:
        wanted = stored(emulator, row["type"])
        assert row["n"] == len(wanted)
        assert sorted(row["names"]) == sorted(r["name"] for r in wanted)
    assert len(found) == 2


def test_string_operators_order_and_take(emulator: Emulator, rg: Any) -> None:
    names = sorted(c["name"] for c in stored(emulator, CLUSTER))
    assert [
        r["name"]
        for r in rows(
            rg,
            f"resources | where type == '{CLUSTER}' and name startswith 'AKS-PROD' | project id, name",
        )
    ] == [n for n in names if n.startswith("aks-prod")]
    assert [
        r["name"]
        for r in rows(
            rg, f"resources | where type == '{CLUSTER}' and name has 'dev' | project id, name"
        )
    ] == [n for n in names if "-dev-" in n]
    assert [
        r["name"]
        for r in rows(
            rg,
            f"resources | where type == '{CLUSTER}' | order by name desc | take 2 | project id, name",
        )
    ] == sorted(names, reverse=True)[:2]
    (row,) = rows(
        rg,
        "resources | where name contains 'acrprod' | extend p = parse_json('{\"tier\": \"gold\"}') "
        "| project id, login = tostring(properties.loginServer), tier = tostring(p.tier)",
    )
    assert row["login"] == "acrprodweu.azurecr.io" and row["tier"] == "gold"


def test_authorization_resources_hold_assignments_at_every_scope(emulator: Emulator) -> None:
    scenario.load(emulator.state, "demo")
    rg = client(emulator)
    subs = sorted(emulator.state.subscriptions)
    found = rows(
        rg,
        "authorizationresources | where type =~ 'microsoft.authorization/roleassignments' "
        "| project id, scope = tostring(properties.scope), subscriptionId",
        subs,
    )
    wanted = [
        r
        for r in emulator.state.resources.values()
        if r["type"].lower().endswith("/roleassignments")
    ]
    assert sorted(r["id"] for r in found) == sorted(r["id"] for r in wanted)
    above = [r for r in found if not r["scope"].lower().startswith("/subscriptions/")]
    assert above and all(r["subscriptionId"] == "" for r in above)  # management group scope
    roles = rows(
        rg,
        "authorizationresources | where type =~ 'microsoft.authorization/roledefinitions' "
        "| where properties.roleName == 'AcrPull' | project id",
        subs,
    )
    assert [r["id"] for r in roles] == [
        "/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d"
    ]


def test_paging_returns_every_row_once(emulator: Emulator, rg: Any) -> None:
    emulator.state.graph_page_size = 4
    text = "resources | project id"
    _, first, _ = query(rg, text, [PROD_SUB, SANDBOX_SUB])
    ids = [r["id"] for r in first["data"]]
    token = first.get("$skipToken")
    while token:
        _, page, _ = query(rg, text, [PROD_SUB, SANDBOX_SUB], skip_token=token)
        ids += [r["id"] for r in page["data"]]
        token = page.get("$skipToken")
    assert len(ids) == first["totalRecords"] > 4
    assert ids == sorted(set(ids), key=str.lower)
