"""Contract tests: each ARM route the loop uses, fetched with the real SDK and round-tripped."""

from __future__ import annotations

import os
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from emulator import scenario
from emulator.server import Emulator
from shared.azure.factory import ClientFactory
from shared.config import Settings
from tests.conftest import PROD_SUB
from tests.support.contract import assert_round_trips, shape_gaps, wire_get


@pytest.fixture
def factory(emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str]) -> ClientFactory:
    return ClientFactory(Settings.from_env(os.environ))


@pytest.fixture
def cluster(emulator: Emulator, sample: dict[str, Any]) -> dict[str, Any]:
    return scenario.find_cluster(emulator.state, "aks-prod-weu")


def test_managed_cluster_get(factory: ClientFactory, cluster: dict[str, Any]) -> None:
    from azure.mgmt.containerservice.models import ManagedCluster

    mc = factory.container_service(PROD_SUB).managed_clusters.get("rg-aks-prod", "aks-prod-weu")
    assert mc.id == cluster["id"]
    assert (
        mc.identity_profile["kubeletidentity"].resource_id
        == cluster["properties"]["identityProfile"]["kubeletidentity"]["resourceId"]
    )
    assert [p.name for p in mc.agent_pool_profiles] == ["system", "arm", "win"]
    assert_round_trips(ManagedCluster, cluster)
    assert_round_trips(ManagedCluster, mc.as_dict())


def test_managed_cluster_list_and_list_by_resource_group(
    factory: ClientFactory, emulator: Emulator
) -> None:
    client = factory.container_service(PROD_SUB)
    emulator.state.page_size = 1  # force nextLink paging
    everything = [mc.name for mc in client.managed_clusters.list()]
    in_group = [mc.name for mc in client.managed_clusters.list_by_resource_group("rg-aks-prod")]
    assert sorted(everything) == ["aks-batch-weu", "aks-prod-weu"]
    assert sorted(in_group) == ["aks-batch-weu", "aks-prod-weu"]
    pages = [e for e in emulator.journal("arm") if e.path.endswith("/managedClusters")]
    assert len(pages) == 4  # two pages for each list


def test_managed_cluster_create_or_update_is_a_long_running_operation(
    factory: ClientFactory, emulator: Emulator, cluster: dict[str, Any]
) -> None:
    client = factory.container_service(PROD_SUB)
    current = client.managed_clusters.get("rg-aks-prod", "aks-prod-weu")
    poller = client.managed_clusters.begin_create_or_update("rg-aks-prod", "aks-prod-weu", current)
    result = poller.result()
    assert result.provisioning_state == "Succeeded"
    journal = emulator.journal("arm")
    put = next(e for e in journal if e.method == "PUT")
    assert put.status == 200
    polls = [e for e in journal if "/operations/" in e.path]
    assert polls and all(e.status == 200 for e in polls)


def test_a_put_of_what_get_returned_keeps_the_server_side_fields(
    factory: ClientFactory, emulator: Emulator, cluster: dict[str, Any]
) -> None:
    """The SDK drops read-only fields from a PUT; AKS keeps its own values for them."""
    client = factory.container_service(PROD_SUB)
    current = client.managed_clusters.get("rg-aks-prod", "aks-prod-weu")
    client.managed_clusters.begin_create_or_update("rg-aks-prod", "aks-prod-weu", current).result()
    put_bodies = [e.body for e in emulator.journal("arm") if e.method == "PUT"]
    assert "principalId" not in put_bodies[0]["identity"]  # the SDK did not send them
    assert "provisioningState" not in put_bodies[0]["properties"]["agentPoolProfiles"][0]
    after = emulator.state.get(cluster["id"])
    assert after is not None
    assert after["identity"] == cluster["identity"]
    assert after["identity"]["principalId"] and after["identity"]["tenantId"]
    for pool, before in zip(
        after["properties"]["agentPoolProfiles"],
        cluster["properties"]["agentPoolProfiles"],
        strict=True,
    ):
        assert pool["provisioningState"] == "Succeeded"
        assert pool["currentOrchestratorVersion"] == before["currentOrchestratorVersion"]
        assert pool["nodeImageVersion"] == before["nodeImageVersion"]
    kubelet = after["properties"]["identityProfile"]["kubeletidentity"]
    assert kubelet == cluster["properties"]["identityProfile"]["kubeletidentity"]


def test_a_put_cannot_set_server_side_fields(
    factory: ClientFactory, emulator: Emulator, cluster: dict[str, Any]
) -> None:
    body = {
        "location": cluster["location"],
        "identity": {"type": "SystemAssigned", "principalId": "forged", "tenantId": "forged"},
        "properties": {
            "agentPoolProfiles": [
                {**p, "provisioningState": "Failed", "currentOrchestratorVersion": "0.0.1"}
                for p in cluster["properties"]["agentPoolProfiles"]
            ]
        },
    }
    client = factory.container_service(PROD_SUB)
    client.managed_clusters.begin_create_or_update("rg-aks-prod", "aks-prod-weu", body).result()
    after = emulator.state.get(cluster["id"])
    assert after is not None
    assert after["identity"]["principalId"] == cluster["identity"]["principalId"]
    assert after["identity"]["tenantId"] == emulator.state.tenant_id
    assert {p["provisioningState"] for p in after["properties"]["agentPoolProfiles"]} == {
        "Succeeded"
    }
    assert {p["currentOrchestratorVersion"] for p in after["properties"]["agentPoolProfiles"]} == {
        "1.30.5"
    }


def test_managed_cluster_put_is_validated(factory: ClientFactory, emulator: Emulator) -> None:
    client = factory.container_service(PROD_SUB)
    with pytest.raises(HttpResponseError) as failure:
        client.managed_clusters.begin_create_or_update(
            "rg-aks-prod",
            "bad",
            {"location": "westeurope", "properties": {"agentPoolProfiles": [{"name": "Bad_Name"}]}},
        )
    assert failure.value.status_code == 400
    assert failure.value.error.code == "InvalidRequestContent"
    assert "agentPoolProfiles/0/name" in failure.value.error.message
    assert (
        emulator.state.get(
            f"/subscriptions/{PROD_SUB}/resourceGroups/rg-aks-prod/providers/Microsoft.ContainerService/managedClusters/bad"
        )
        is None
    )


def test_agent_pools_list(factory: ClientFactory, cluster: dict[str, Any]) -> None:
    from azure.mgmt.containerservice.models import AgentPool

    pools = list(
        factory.container_service(PROD_SUB).agent_pools.list("rg-aks-prod", "aks-prod-weu")
    )
    assert [(p.name, p.os_type, p.vm_size) for p in pools] == [
        ("system", "Linux", "Standard_D4s_v5"),
        ("arm", "Linux", "Standard_D4ps_v5"),
        ("win", "Windows", "Standard_D4s_v5"),
    ]
    for pool in pools:
        assert pool.id.lower().startswith(cluster["id"].lower() + "/agentpools/")
        assert_round_trips(AgentPool, pool.as_dict())


def test_agent_pool_get_is_the_pool_the_list_returns(factory: ClientFactory) -> None:
    from azure.mgmt.containerservice.models import AgentPool

    pools = factory.container_service(PROD_SUB).agent_pools
    listed = {p.name: p.as_dict() for p in pools.list("rg-aks-prod", "aks-prod-weu")}
    for name in ("system", "arm", "win"):
        pool = pools.get("rg-aks-prod", "aks-prod-weu", name)
        assert pool.as_dict() == listed[name]
        assert_round_trips(AgentPool, pool.as_dict())
    with pytest.raises(ResourceNotFoundError):
        pools.get("rg-aks-prod", "aks-prod-weu", "nosuch")


def test_agent_pool_get_has_the_shape_of_the_rest_example(
    factory: ClientFactory, emulator: Emulator, cluster: dict[str, Any]
) -> None:
    """The pool an agentPools/write event names, as the wire carries it, has every key of
    AgentPoolsGet.json with the same kind of value (eTag aside: the emulator keeps no pool etag)."""
    import json
    from pathlib import Path

    spec = json.loads(
        (
            Path(__file__).parent / "examples/containerservice/2026-08-01/AgentPoolsGet.json"
        ).read_text(encoding="utf-8")
    )
    expected = spec["responses"]["200"]["body"]
    expected["properties"].pop("eTag")
    for name in ("system", "arm", "win"):
        served = wire_get(
            emulator, f"{cluster['id']}/agentPools/{name}", spec["parameters"]["api-version"]
        )
        assert shape_gaps(expected, served) == [], name


def test_scale_sets_list_and_get(
    factory: ClientFactory, emulator: Emulator, cluster: dict[str, Any]
) -> None:
    from azure.mgmt.compute.models import VirtualMachineScaleSet

    node_rg = cluster["properties"]["nodeResourceGroup"]
    client = factory.compute(PROD_SUB)
    listed = list(client.virtual_machine_scale_sets.list(node_rg))
    assert len(listed) == 3
    one = client.virtual_machine_scale_sets.get(node_rg, listed[0].name)
    kubelet = cluster["properties"]["identityProfile"]["kubeletidentity"]["resourceId"]
    assert list(one.identity.user_assigned_identities) == [kubelet]
    assert one.tags["aks-managed-poolName"] in {"system", "arm", "win"}
    for vmss in scenario.node_pool_vmss(emulator.state, cluster):
        assert_round_trips(VirtualMachineScaleSet, vmss)


def test_user_assigned_identity_get(
    factory: ClientFactory, emulator: Emulator, cluster: dict[str, Any]
) -> None:
    from azure.mgmt.msi.models import Identity

    kubelet = cluster["properties"]["identityProfile"]["kubeletidentity"]
    rg, name = kubelet["resourceId"].split("/")[4], kubelet["resourceId"].split("/")[-1]
    identity = factory.msi(PROD_SUB).user_assigned_identities.get(rg, name)
    assert identity.client_id == kubelet["clientId"]
    assert identity.principal_id == kubelet["objectId"]
    assert_round_trips(Identity, emulator.state.get(kubelet["resourceId"]))
    with pytest.raises(ResourceNotFoundError):
        factory.msi(PROD_SUB).user_assigned_identities.get(rg, "missing")


# -- busy clusters and optimistic concurrency (AKS returns an eTag; PUT honours If-Match) ---------


def test_a_cluster_busy_with_another_operation_rejects_writes_with_409(
    factory: ClientFactory, emulator: Emulator, cluster: dict[str, Any]
) -> None:
    from azure.core.exceptions import ResourceExistsError

    from emulator.providers.containerservice import start_operation

    client = factory.container_service(PROD_SUB)
    current = client.managed_clusters.get("rg-aks-prod", "aks-prod-weu")
    start_operation(emulator.state, cluster["id"], "Upgrading")
    with pytest.raises(ResourceExistsError) as caught:
        client.managed_clusters.begin_create_or_update("rg-aks-prod", "aks-prod-weu", current)
    assert caught.value.status_code == 409
    assert caught.value.error is not None and caught.value.error.code == "OperationNotAllowed"
    assert "in progress upgrading" in caught.value.error.message
    # Reads still work while it upgrades.
    assert client.managed_clusters.get("rg-aks-prod", "aks-prod-weu").provisioning_state == (
        "Upgrading"
    )


def test_a_put_with_a_stale_if_match_is_412_and_changes_nothing(
    factory: ClientFactory, emulator: Emulator, cluster: dict[str, Any]
) -> None:
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError

    client = factory.container_service(PROD_SUB)
    read = client.managed_clusters.get("rg-aks-prod", "aks-prod-weu")
    assert read.e_tag and read.e_tag == cluster["eTag"]
    # Someone else writes the cluster after our read: its eTag changes.
    client.managed_clusters.begin_create_or_update("rg-aks-prod", "aks-prod-weu", read).result()
    changed = scenario.find_cluster(emulator.state, "aks-prod-weu")["eTag"]
    assert changed != read.e_tag
    read.tags = {"mine": "lost"}
    with pytest.raises(ResourceModifiedError) as caught:
        client.managed_clusters.begin_create_or_update(
            "rg-aks-prod",
            "aks-prod-weu",
            read,
            etag=read.e_tag,
            match_condition=MatchConditions.IfNotModified,
        )
    assert caught.value.status_code == 412
    assert "mine" not in scenario.find_cluster(emulator.state, "aks-prod-weu")["tags"]
    fresh = client.managed_clusters.get("rg-aks-prod", "aks-prod-weu")
    poller = client.managed_clusters.begin_create_or_update(
        "rg-aks-prod",
        "aks-prod-weu",
        fresh,
        etag=fresh.e_tag,
        match_condition=MatchConditions.IfNotModified,
    )
    assert poller.result().provisioning_state == "Succeeded"
