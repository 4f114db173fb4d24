"""The fleet sweeps: planners write batches of clusters per subscription, ``sweep_batch`` checks
them; throttling hands work over and nothing is lost. Invoked as the worker does, against the
emulator and Azurite.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from emulator import scenario
from emulator.server import Emulator
from emulator.tickets import github_issues
from scripts.bench_fleet import fleet_spec, subscription_id
from shared.azure.kubeconfigs import KUBECONFIGS
from shared.checks import CHECKS
from tests.conftest import PROD_SUB, SANDBOX_SUB, UNKNOWN_SUB
from tests.support.triggers import (
    Captured,
    drain_batches,
    logged_outcomes,
    queue_message,
    run_timer,
    ticket_policy,
    timer,
)

__all__ = ["ticket_policy"]  # the fixture, used by name

CREDENTIALS = "/listclusterusercredential"


def plan(functions: dict[str, Any], name: str = "drift_sweep") -> list[dict[str, Any]]:
    batches = Captured()
    functions[name].get_user_function()(timer(), batches)
    return [json.loads(m) for m in batches.messages()]


def test_the_planner_writes_one_message_per_batch_of_one_subscription_and_checks_nothing(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", f"{PROD_SUB},{SANDBOX_SUB}")
    monkeypatch.setenv("FLEET_BATCH_SIZE", "1")
    emulator.clear_journal()
    messages = plan(functions)
    by_subscription = {m["subscription"]: [c["name"] for c in m["clusters"]] for m in messages}
    assert len(messages) == 3  # aks-prod-weu, aks-batch-weu (prod), aks-dev-neu (sandbox)
    assert all(len(m["clusters"]) == 1 for m in messages)
    assert sorted(c for m in messages for c in (x["name"] for x in m["clusters"])) == [
        "aks-batch-weu",
        "aks-dev-neu",
        "aks-prod-weu",
    ]
    assert set(by_subscription) == {PROD_SUB, SANDBOX_SUB}
    # The planner took the inventory only: no Kubernetes API, no credentials, no checks.
    assert {e.service for e in emulator.journal()} <= {"identity", "arm"}
    assert not [e for e in emulator.journal() if e.path.lower().endswith(CREDENTIALS)]


def test_the_planner_takes_the_subscriptions_in_turn_so_workers_draw_on_every_ones_limits(
    emulator: Emulator,
    ticket_policy: Any,
    functions: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario.load(emulator.state, fleet_spec(5, 2))  # three clusters in one, two in the other
    first, second = subscription_id(0), subscription_id(1)
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", f"{second},{first}")
    monkeypatch.setenv("FLEET_BATCH_SIZE", "1")
    order = [m["subscription"] for m in plan(functions)]
    # ARM's limits are per subscription: one subscription's batches after another's would
    # have every worker on the first one's write budget while the second's sits idle.
    assert order == [first, second, first, second, first]


@pytest.mark.parametrize("inventory", ["resource-graph", "arm"])
def test_the_plan_says_which_subscriptions_were_planned_handed_over_or_not_readable(
    inventory: str,
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESOURCE_GRAPH_INVENTORY", "on" if inventory == "resource-graph" else "off")
    monkeypatch.setenv("ARM_RETRY_TOTAL", "1")
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", f"{PROD_SUB},{SANDBOX_SUB},{UNKNOWN_SUB}")
    emulator.inject(  # ARM's list of sandbox's clusters; Resource Graph answers it without
        rf"/subscriptions/{SANDBOX_SUB}/providers/Microsoft.ContainerService/managedClusters$",
        method="GET",
        status=429,
    )
    with caplog.at_level("INFO", logger="shared"):
        messages = plan(functions)
    [record] = [r for r in caplog.records if r.getMessage().startswith("plan {")]
    summary = json.loads(record.getMessage().removeprefix("plan "))
    assert record.levelname == "WARNING"
    [(unreadable, reason)] = summary["subscriptions"]["unreadable"].items()
    assert unreadable == UNKNOWN_SUB and "not found" in reason
    if inventory == "resource-graph":
        assert summary["clusters"] == 3 and summary["batches"] == len(messages) == 2
        assert summary["subscriptions"]["planned"] == 2
        assert summary["subscriptions"]["handedOver"] == []
        assert all("inventory" in m for m in messages)
    else:
        assert summary["clusters"] == 2 and summary["batches"] == len(messages) == 2
        assert summary["subscriptions"]["planned"] == 1
        assert summary["subscriptions"]["handedOver"] == [SANDBOX_SUB]
    assert {m["subscription"] for m in messages} == {PROD_SUB, SANDBOX_SUB}


def test_the_planner_lists_the_subscriptions_at_once(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESOURCE_GRAPH_INVENTORY", "off")  # ARM's lists, one per subscription
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", f"{PROD_SUB},{SANDBOX_SUB}")
    lists = emulator.inject(
        r"/subscriptions/[^/]+/providers/Microsoft.ContainerService/managedClusters$",
        method="GET",
        latency=0.5,
    )
    messages = plan(functions)
    assert {m["subscription"] for m in messages} == {PROD_SUB, SANDBOX_SUB}
    assert lists.hits == 2 and lists.most_waiting == 2  # the second did not wait for the first


def test_a_batch_checks_every_pair_of_its_clusters_and_tickets_what_fails(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"}
    )
    [message] = plan(functions)
    assert sorted(c["name"] for c in message["clusters"]) == ["aks-batch-weu", "aks-prod-weu"]
    caplog.clear()
    with caplog.at_level("INFO", logger="shared"):
        assert drain_batches(functions, [json.dumps(message)]) == []
    outcomes = logged_outcomes(caplog)
    assert sorted(o["cluster"].rsplit("/", 1)[-1] for o in outcomes) == [
        "aks-batch-weu",
        "aks-prod-weu",
    ]
    assert all(len(o["findings"]) == len(CHECKS) for o in outcomes)
    titles = [i["title"] for i in github_issues(emulator.state)]
    assert titles == ["[acr-pull] kubelet-identity-detached on aks-prod-weu"]


def test_a_throttled_inventory_is_handed_over_and_planned_by_a_worker(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARM_RETRY_TOTAL", "1")
    monkeypatch.setenv("RESOURCE_GRAPH_INVENTORY", "off")  # ARM's list is the inventory here
    listing = emulator.inject(
        rf"/subscriptions/{PROD_SUB}/providers/Microsoft.ContainerService/managedClusters$",
        method="GET",
        status=429,
        times=2,  # the planner's attempt and its one retry
    )
    [message] = plan(functions)
    assert listing.hits == 2
    assert message == {
        "v": 1,
        "sweep": "drift",
        "signal": message["signal"],
        "subscription": PROD_SUB,
        "plan": True,
    }
    outcomes, handed_over = run_timer_from(functions, [json.dumps(message)], caplog)
    assert handed_over == []
    assert sorted(o["cluster"].rsplit("/", 1)[-1] for o in outcomes) == [
        "aks-batch-weu",
        "aks-prod-weu",
    ]


def run_timer_from(
    functions: dict[str, Any], messages: list[str], caplog: pytest.LogCaptureFixture
) -> tuple[list[dict[str, Any]], list[str]]:
    caplog.clear()
    with caplog.at_level("INFO", logger="shared"):
        handed_over = drain_batches(functions, messages)
    return logged_outcomes(caplog), handed_over


def test_a_pair_throttled_past_its_retries_is_handed_over_not_reported(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARM_RETRY_TOTAL", "0")
    monkeypatch.setenv("RESOURCE_GRAPH_INVENTORY", "off")  # the scale sets are read from ARM
    cluster = scenario.find_cluster(emulator.state, "aks-batch-weu")
    emulator.inject(
        rf"/resourceGroups/{cluster['properties']['nodeResourceGroup']}/providers/"
        r"Microsoft.Compute/virtualMachineScaleSets$",
        method="GET",
        status=429,
        times=1,
    )
    outcomes, handed_over = run_timer(functions, "drift_sweep", caplog)
    assert [o["cluster"].rsplit("/", 1)[-1] for o in outcomes] == ["aks-prod-weu"]
    [task] = [json.loads(m) for m in handed_over]
    assert task["cluster"] == cluster["id"] and len(task["causes"]) == len(CHECKS)
    # The queue delivers it: the pair is checked in full, and nothing failed was cached.
    caplog.clear()
    with caplog.at_level("INFO", logger="shared"):
        functions["sweep_handover"].get_user_function()(queue_message(handed_over[0]))
    [outcome] = logged_outcomes(caplog)
    assert outcome["verdict"] == "healthy" and len(outcome["findings"]) == len(CHECKS)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"v": 1, "sweep": "drift", "signal": "s", "subscription": "nope", "plan": True}),
        json.dumps(
            {"v": 1, "sweep": "drift", "signal": "s", "subscription": SANDBOX_SUB, "plan": True}
        ),  # outside the scope
        json.dumps({"v": 1, "sweep": "pull-failures", "signal": "s", "subscription": PROD_SUB}),
        json.dumps(
            {
                "v": 1,
                "sweep": "drift",
                "signal": "s",
                "subscription": PROD_SUB,
                "clusters": [
                    {
                        "id": f"/subscriptions/{SANDBOX_SUB}/resourceGroups/x/providers/Microsoft.ContainerService/managedClusters/y"
                    }
                ],
            }
        ),
    ],
)
def test_a_bad_batch_message_is_dropped_and_changes_nothing(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    body: str,
) -> None:
    emulator.clear_journal()
    again, rest = Captured(), Captured()
    functions["sweep_batch"].get_user_function()(queue_message(body), again, rest)
    assert again.messages() == [] and rest.messages() == []
    assert [e for e in emulator.journal() if e.service != "identity"] == []


def test_kubeconfigs_are_kept_across_warm_invocations_and_refreshed_when_refused(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def credential_posts() -> int:
        return sum(1 for e in emulator.journal() if e.path.lower().endswith(CREDENTIALS))

    run_timer(functions, "drift_sweep", caplog)
    assert credential_posts() == 2  # one per cluster
    emulator.clear_journal()
    outcomes, _ = run_timer(functions, "drift_sweep", caplog)  # the same warm instance
    assert credential_posts() == 0
    assert all(o["verdict"] == "healthy" for o in outcomes)

    # A kept kubeconfig the cluster no longer accepts (rotated credentials): fetched again.
    cluster_id = scenario.find_cluster(emulator.state, "aks-prod-weu")["id"]
    config = KUBECONFIGS.get(cluster_id)
    assert config is not None
    for user in config["users"]:
        user["user"] = {"token": "rotated-away"}
    KUBECONFIGS.put(cluster_id, config)
    emulator.clear_journal()
    outcomes, _ = run_timer(functions, "drift_sweep", caplog)
    assert credential_posts() == 1
    assert all(o["verdict"] == "healthy" for o in outcomes)
    assert os.environ.get("KUBECONFIG_CACHE_SECONDS") is None  # the default (900 s) applied


def test_with_resource_graph_a_batch_brings_its_inventory_and_reads_only_what_it_lacks(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.clear_journal()
    [message] = plan(functions)
    assert "inventory" in message  # the planner's slice of Resource Graph's inventory
    planned = [e for e in emulator.journal() if e.service == "arm"]
    assert {e.path.lower() for e in planned} == {"/providers/microsoft.resourcegraph/resources"}
    emulator.clear_journal()
    outcomes, handed_over = run_timer_from(functions, [json.dumps(message)], caplog)
    assert handed_over == []
    assert [o["verdict"] for o in outcomes] == ["healthy", "healthy"]
    reads = [e.path.lower() for e in emulator.journal() if e.service == "arm" and e.method == "GET"]
    # What the slice answered is not read again: clusters, their scale sets and VMs, the
    # kubelet identities' role assignments, the registries.
    assert not [p for p in reads if p.endswith(("/virtualmachinescalesets", "/virtualmachines"))]
    assert not [p for p in reads if "/managedclusters/" in p]
    assert not [p for p in reads if p.endswith("/registries")]
    assert not [p for p in emulator.journal() if "resourcegraph" in p.path.lower()]


def test_a_batch_whose_inventory_is_not_of_its_clusters_is_dropped(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEET_BATCH_SIZE", "1")
    first, second = plan(functions)
    forged = {**first, "inventory": second["inventory"]}
    emulator.clear_journal()
    again, rest = Captured(), Captured()
    functions["sweep_batch"].get_user_function()(queue_message(json.dumps(forged)), again, rest)
    assert again.messages() == [] and rest.messages() == []
    assert [e for e in emulator.journal() if e.service != "identity"] == []
