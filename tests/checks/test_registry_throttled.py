"""registry-throttled through the real SDKs, azure-core and lightkube against the emulator.

The emulator serves the registry's Azure Monitor pull metrics, answers its data plane with 429
toomanyrequests, and gives the pods pulling from it the kubelet's events, as a throttled ACR does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator import scenario
from emulator.server import Emulator
from shared.azure.metrics import _pull_metrics
from shared.checks.base import Finding, Status, Target
from shared.checks.registry_throttled import RegistryThrottled
from shared.classify import classify
from shared.ports.registries import READ_OPS_PER_MINUTE
from tests.support.estate import fresh_estate

CLUSTER = "aks-shop-weu"
REGISTRY = "acrshopweu"
ETL = "acrshopweu.azurecr.io/batch/etl:latest"
EXAMPLE = Path(__file__).parents[1] / "contract/examples/monitor/GetMetric.excerpt.json"


@pytest.fixture
def shop(emulator: Emulator) -> dict[str, Any]:
    return scenario.load(emulator.state, "kubernetes-pulls")


def registry_id(emulator: Emulator) -> str:
    return str(scenario.find_registry(emulator.state, REGISTRY)["id"])


def run(emulator: Emulator) -> Finding:
    reader = fresh_estate()
    cluster = reader.get_cluster(scenario.find_cluster(emulator.state, CLUSTER)["id"])
    return RegistryThrottled().run(Target(cluster, registry_id(emulator)), reader)


def throttle(emulator: Emulator, **extra: Any) -> None:
    scenario.apply_break(
        emulator.state,
        {"cause": "registry-throttled", "registry": REGISTRY, "cluster": CLUSTER, **extra},
    )


def test_quiet_registry_passes_with_its_sku_limit_and_metrics(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    finding = run(emulator)

    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["sku"] == "Premium"
    assert finding.evidence["readOpsPerMinuteLimit"] == 10_000
    assert finding.evidence["totalPulls"] == 0 and finding.evidence["throttledPods"] == []
    asked = [e for e in emulator.journal("arm") if e.path.endswith("/Microsoft.Insights/metrics")]
    # One request; the emulator refuses (400) other metric names, intervals and aggregations.
    assert [(e.method, e.api_version, e.status) for e in asked] == [("GET", "2023-10-01", 200)]


def test_throttled_pulls_fail_with_sku_metrics_burst_and_the_options(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    throttle(emulator, workload="etl", pullsPerMinute=1500, minutes=5, throttledShare=0.3)

    finding = run(emulator)

    assert finding.status is Status.FAIL, finding.summary
    evidence = finding.evidence
    assert len(evidence["throttledPods"]) == 3
    assert all(p.startswith("batch/etl-") for p in evidence["throttledPods"])
    assert evidence["images"] == [ETL]
    assert evidence["throttledPulls"] >= 3 and evidence["podsWaitingOnPulls"] == 3
    assert evidence["peakPullsPerMinute"] == 1500
    assert evidence["totalPulls"] == 5 * 1500
    assert evidence["failedPulls"] == 5 * 1500 - 5 * 1050
    assert "429 toomanyrequests" in finding.summary and "not an authentication" in finding.summary
    assert finding.action_id is None  # a ticket with the options, never an automatic fix
    commands = finding.commands
    assert commands[0].startswith("kubectl get events -A")
    assert commands[1].startswith(f"az monitor metrics list --resource {registry_id(emulator)} ")
    assert not any("--sku" in c for c in commands)  # already Premium
    assert (
        "kubectl patch deployment etl -n batch -p "
        '\'{"spec":{"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}\''
    ) in commands
    assert (
        "az acr artifact-streaming update --name acrshopweu --repository batch/etl "
        "--enable-streaming true"
    ) in commands
    # Artifact streaming on the pool whose nodes were throttled, by name (Linux pools only).
    assert commands[-1] == (
        "az aks nodepool update --cluster-name aks-shop-weu --resource-group rg-aks-shop "
        "--name system --enable-artifact-streaming"
    )
    assert not any("<" in c for c in commands)


def test_lower_sku_adds_the_upgrade_and_its_limit(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = yaml.safe_load((scenario.SCENARIOS / "kubernetes-pulls.yaml").read_text("utf-8"))
    for group in spec["subscriptions"][0]["resourceGroups"]:
        for registry in group.get("registries", []):
            registry["sku"] = "Standard"
    scenario.load(emulator.state, spec)
    throttle(emulator)

    finding = run(emulator)

    assert finding.status is Status.FAIL
    assert finding.evidence["readOpsPerMinuteLimit"] == READ_OPS_PER_MINUTE["standard"]
    assert "az acr update --name acrshopweu --sku Premium" in finding.commands


def test_unreadable_metrics_still_fail_on_the_events(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    throttle(emulator)
    emulator.deny(f"{registry_id(emulator)}/providers/Microsoft.Insights/metrics")

    finding = run(emulator)

    assert finding.status is Status.FAIL
    assert str(finding.evidence["pullMetrics"]).startswith("unreadable: ")
    assert "totalPulls" not in finding.evidence


def test_the_kubelet_message_of_a_throttled_pull_is_family_6(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    throttle(emulator, workload="etl")
    reader = fresh_estate()
    cluster = reader.get_cluster(scenario.find_cluster(emulator.state, CLUSTER)["id"])
    failures = [f for f in reader.list_pull_failures(cluster) if f.image == ETL]
    assert failures
    result = classify(failures[0].message)
    assert (result.cause, result.runtime) == ("6", "containerd"), result.reason
    assert 429 in result.anatomy.http_statuses if result.anatomy else False


def test_data_plane_answers_429_toomanyrequests_and_a_retry_gets_through(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    from azure.core.rest import HttpRequest

    from shared.azure.factory import ClientFactory
    from shared.config import Settings

    throttle(emulator)
    client = ClientFactory(Settings.from_env(app_env)).registry_data()
    host = emulator.state.get(registry_id(emulator))["properties"]["loginServer"]
    url = f"{emulator.base_url}/acr/{host}/v2/batch/etl/manifests/latest"
    response = client.send_request(HttpRequest("GET", url))
    # azure-core's retry policy retries the 429; the registry's next answer is its usual one.
    assert response.status_code == 401
    statuses = [e.status for e in emulator.journal() if e.path.endswith("/manifests/latest")]
    assert statuses == [429, 401]
    first = next(e for e in emulator.journal() if e.path.endswith("/manifests/latest"))
    assert first.service == "acr"


def test_metrics_shape_matches_the_rest_specification_example(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))["responses"]["200"]["body"]
    throttle(emulator, minutes=3)
    reader = fresh_estate()
    metrics = reader.get_registry_pull_metrics(registry_id(emulator), minutes=10)
    assert len(metrics.minutes) == 10 and metrics.total == 3 * 1500
    body = _get_metrics(emulator, app_env, "TotalPullCount,SuccessfulPullCount").json()
    assert set(body) == set(example)
    assert set(body["value"][0]) == set(example["value"][0])
    assert set(body["value"][0]["timeseries"][0]) == set(example["value"][0]["timeseries"][0])
    assert set(body["value"][0]["name"]) == set(example["value"][0]["name"])
    # The parser reads the specification's own shape (average aggregation there: no totals).
    example["value"][0]["name"]["value"] = "TotalPullCount"
    parsed = _pull_metrics(example, 300)
    assert parsed.total == 0
    assert [m.at for m in parsed.minutes] == ["2021-04-20T09:00:00Z", "2021-04-20T10:00:00Z"]


def test_unknown_metric_names_are_refused_as_azure_does(
    emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]
) -> None:
    response = _get_metrics(emulator, app_env, "StorageUsed")
    assert response.status_code == 400
    assert "Valid metrics: TotalPullCount, SuccessfulPullCount" in response.text()


def _get_metrics(emulator: Emulator, env: dict[str, str], names: str) -> Any:
    from azure.core.rest import HttpRequest

    from shared.azure.factory import ClientFactory
    from shared.config import Settings

    client = ClientFactory(Settings.from_env(env)).monitor()
    return client.send_request(
        HttpRequest(
            "GET",
            client.format_url(f"{registry_id(emulator)}/providers/Microsoft.Insights/metrics"),
            params={"api-version": "2023-10-01", "metricnames": names, "aggregation": "Total"},
        )
    )


def test_artifact_streaming_is_offered_on_linux_pools_only() -> None:
    from shared.checks.registry_throttled import _streaming_pools
    from shared.models import Cluster, NodePool
    from shared.ports.kubernetes import KubeEvent

    pools = tuple(
        NodePool(name, "Standard_D4s_v5", os, "User", 1)
        for name, os in (("system", "Linux"), ("win", "Windows"), ("gpu", "Linux"))
    )
    cluster = Cluster("/subscriptions/s/resourceGroups/rg", "c", "w", "mc", pools, None, None, "")

    def on(node: str) -> KubeEvent:
        return KubeEvent("ns", "e", "Pod", "p", "Failed", "429", "Warning", 1, None, node)

    # No node told: every Linux pool; a Windows node's pool is never offered.
    assert _streaming_pools(cluster, []) == ["system", "gpu"]
    assert _streaming_pools(cluster, [on("akswin000001")]) == ["system", "gpu"]
    assert _streaming_pools(cluster, [on("aks-gpu-12345678-vmss000003")]) == ["gpu"]
