"""The timer functions (expiry sweep, drift sweep, pull-failure scan) and the hand-over queue,
invoked as the worker does, against the emulator and Azurite.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulator import scenario
from emulator.providers import graph
from emulator.server import Emulator
from emulator.tickets import github_comments, github_issues
from shared.azure.factory import ClientFactory
from shared.azure.tables import TableStateStore
from shared.checks import CHECKS
from shared.config import Settings
from shared.store import PendingOperation
from shared.sweeps import application_resource_id
from tests.conftest import PROD_SUB
from tests.support.triggers import (
    TICKET_POLICY,
    process_handover,
    run_timer,
    ticket_policy,
    writes,
)

__all__ = ["ticket_policy"]  # the fixture, used by name

# appId -> days its only secret has left when the estate is built.
APPS = {
    "0a1b2c3d-0000-4000-8000-000000000029": 29,
    "0a1b2c3d-0000-4000-8000-000000000013": 13,
    "0a1b2c3d-0000-4000-8000-000000000006": 6,
    "0a1b2c3d-0000-4000-8000-000000000000": 0,
    "0a1b2c3d-0000-4000-8000-0000000000f3": -3,
}
WINDOW = {29: "30-day", 13: "14-day", 6: "7-day", 0: "expired", -3: "expired"}
# Clusters tagged rotate=auto fall in the policy scope where rotate-sp-secret is `auto`.
AUTO = {"0a1b2c3d-0000-4000-8000-000000000013", "0a1b2c3d-0000-4000-8000-0000000000f3"}
# The 6-day app is not a cluster's identity: only an image pull secret uses it.
PULL_SECRET_APP = "0a1b2c3d-0000-4000-8000-000000000006"
# Dry-run reads no pull secrets (no credential-listing action, infra/PERMISSIONS.md): the app only
# a pull secret uses is not found there.
DRY_RUN_APPS = {app: days for app, days in APPS.items() if app != PULL_SECRET_APP}

EXPIRY_POLICY = """\
mode: enforce
actions:
  rotate-sp-secret: ticket
expiryWindows: [30, 14, 7, 1]
rateLimit: {perClusterPerHour: 100}
cooldown: {minutes: 0}
tickets:
  provider: github
  route: {repo: contoso/aks-platform}
  labels: [acr-pull]
scopes:
  - name: rotating
    match:
      tags: {rotate: auto}
    actions:
      rotate-sp-secret: auto
"""


def expiry_estate() -> dict[str, Any]:
    clusters: list[dict[str, Any]] = [
        {
            "name": f"aks-sp{days if days >= 0 else 'm3'}",
            "servicePrincipal": app,
            "tags": {"rotate": "auto"} if app in AUTO else {},
        }
        for app, days in APPS.items()
        if app != PULL_SECRET_APP
    ]
    clusters.append(
        {
            "name": "aks-mi",
            "attachedRegistries": ["acrexpiry"],
            "namespaces": ["shop"],
            "pullSecrets": [
                {
                    "namespace": "shop",
                    "name": "acr-sp",
                    "registry": "acrexpiry",
                    "from": f"sp:{PULL_SECRET_APP}",
                }
            ],
        }
    )
    return {
        "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {
                        "name": "rg-identity",
                        "location": "westeurope",
                        "servicePrincipals": [
                            {
                                "appId": app,
                                "displayName": f"sp-{days}",
                                "secrets": [{"displayName": "rbac", "expiresInDays": days}],
                            }
                            for app, days in APPS.items()
                        ],
                        "registries": [{"name": "acrexpiry", "sku": "Premium"}],
                    },
                    {"name": "rg-aks", "location": "westeurope", "clusters": clusters},
                ],
            }
        ],
    }


def issue_for(emulator: Emulator, app: str) -> dict[str, Any]:
    title = f"[acr-pull] sp-secret-expired on {application_resource_id(app)[1:]}"
    found = [i for i in github_issues(emulator.state) if i["title"] == title]
    assert len(found) == 1, (title, [i["title"] for i in github_issues(emulator.state)])
    return found[0]


def graph_writes(emulator: Emulator) -> list[str]:
    return [w for w in writes(emulator) if "/graph/" in w]


@pytest.fixture
def expiry_policy(app_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "expiry.yaml"
    path.write_text(EXPIRY_POLICY, encoding="utf-8")
    monkeypatch.setenv("POLICY_PATH", str(path))
    return path


@pytest.fixture
def expiring(emulator: Emulator) -> dict[str, Any]:
    return scenario.load(emulator.state, expiry_estate())


# -- expiry sweep -------------------------------------------------------------------------------


def test_expiry_sweep_tickets_each_app_once_at_its_window_and_plans_rotation(
    emulator: Emulator,
    expiring: dict[str, Any],
    expiry_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMEDIATION_MODE", "dry-run")
    outcomes, handed_over = run_timer(functions, "expiry_sweep", caplog)

    # Dry-run holds no credential-listing action (infra/PERMISSIONS.md): pull secrets are not
    # read, so the app only a pull secret uses is not found, and the sweep says why.
    seen = DRY_RUN_APPS
    assert handed_over == []
    assert len(github_issues(emulator.state)) == len(seen)  # one ticket per app
    assert "pull secrets not readable (REMEDIATION_MODE=dry-run grants no credential-listing" in (
        caplog.text
    )
    for app, days in seen.items():
        body = issue_for(emulator, app)["body"]
        assert f"{WINDOW[days]} window" in body, (app, body[:400])
        assert app in body
        if app in AUTO:  # the policy says auto; dry-run plans the rotation and tickets the plan
            assert f"az ad app credential reset --id {app} --append" in body
            assert "update-credentials" in body
    by_app = {o["findings"][0]["evidence"]["appId"]: o for o in outcomes}
    assert set(by_app) == set(seen)
    for app in seen:
        decision = by_app[app]["decisions"][0]["decision"]
        assert decision["kind"] == ("plan" if app in AUTO else "ticket"), (app, decision)
    assert graph_writes(emulator) == []  # dry-run: no secret was added


def test_expiry_sweep_rotates_where_the_policy_says_auto(
    emulator: Emulator,
    expiring: dict[str, Any],
    expiry_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = {
        app: len(emulator.state.graph_applications[app]["passwordCredentials"]) for app in APPS
    }
    outcomes, _ = run_timer(functions, "expiry_sweep", caplog)

    by_app = {o["findings"][0]["evidence"]["appId"]: o for o in outcomes}
    # Enforce holds the Kubernetes reader: the app only a pull secret uses is found too.
    assert by_app[PULL_SECRET_APP]["findings"][0]["evidence"]["pullSecrets"] == [
        "aks-mi/shop/acr-sp (acrexpiry.azurecr.io)"
    ]
    for app in AUTO:
        assert by_app[app]["verdict"] == "remediated", by_app[app]["reason"]
        assert by_app[app]["actions"][0]["action"] == "rotate-sp-secret"
        credentials = emulator.state.graph_applications[app]["passwordCredentials"]
        assert len(credentials) == before[app] + 1
        newest = max(credentials, key=lambda c: c["endDateTime"])
        assert newest["endDateTime"] > (datetime.now(UTC) + timedelta(days=300)).isoformat()
    resets = [w for w in writes(emulator) if w.endswith("/resetServicePrincipalProfile")]
    assert sorted(r.split("/managedClusters/")[1].split("/")[0] for r in resets) == [
        "aks-sp13",
        "aks-spm3",
    ]
    # Rotated apps need no ticket; every other app has one.
    titles = {i["title"] for i in github_issues(emulator.state)}
    for app in APPS:
        wanted = f"[acr-pull] sp-secret-expired on {application_resource_id(app)[1:]}"
        assert (wanted in titles) is (app not in AUTO), app


def test_expiry_sweep_comments_once_per_window_crossing(
    emulator: Emulator,
    expiring: dict[str, Any],
    expiry_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMEDIATION_MODE", "dry-run")
    run_timer(functions, "expiry_sweep", caplog)
    app = "0a1b2c3d-0000-4000-8000-000000000029"
    number = issue_for(emulator, app)["number"]

    # The next day: same windows, nothing new to say.
    outcomes, _ = run_timer(functions, "expiry_sweep", caplog)
    assert {o["verdict"] for o in outcomes} == {"ignored"}
    assert all("already notified" in o["reason"] for o in outcomes)
    assert github_comments(emulator.state, number) == []
    assert len(github_issues(emulator.state)) == len(DRY_RUN_APPS)

    # Two weeks later the 29-day secret has 12 days left: it crosses into the 14-day window.
    with emulator.state.lock:
        credential = emulator.state.graph_applications[app]["passwordCredentials"][0]
        credential["endDateTime"] = graph.iso(datetime.now(UTC) + timedelta(days=12))
    outcomes, _ = run_timer(functions, "expiry_sweep", caplog)
    notified = [o for o in outcomes if o["verdict"] != "ignored"]
    assert [o["findings"][0]["evidence"]["appId"] for o in notified] == [app]
    (comment,) = github_comments(emulator.state, number)
    assert "14-day window" in comment["body"]
    assert len(github_issues(emulator.state)) == len(DRY_RUN_APPS)  # still one ticket per app


def test_expiry_sweep_with_no_budget_hands_every_app_over(
    emulator: Emulator,
    expiring: dict[str, Any],
    expiry_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMEDIATION_MODE", "dry-run")
    monkeypatch.setenv("SWEEP_BUDGET_SECONDS", "0")
    outcomes, handed_over = run_timer(functions, "expiry_sweep", caplog)
    assert outcomes == []
    assert sorted(json.loads(m)["app"] for m in handed_over) == sorted(DRY_RUN_APPS)
    assert github_issues(emulator.state) == []

    processed = process_handover(functions, handed_over, caplog)
    assert len(processed) == len(DRY_RUN_APPS)
    for app, days in DRY_RUN_APPS.items():
        assert f"{WINDOW[days]} window" in issue_for(emulator, app)["body"]


# -- drift sweep --------------------------------------------------------------------------------


def test_drift_sweep_finds_what_no_event_reported(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"}
    )
    outcomes, handed_over = run_timer(functions, "drift_sweep", caplog)

    assert handed_over == []
    clusters = sorted(o["cluster"].rsplit("/", 1)[-1] for o in outcomes)
    assert clusters == ["aks-batch-weu", "aks-prod-weu"]  # the sandbox is outside the scope
    prod = next(o for o in outcomes if o["cluster"].endswith("/aks-prod-weu"))
    assert len(prod["findings"]) == len(CHECKS)  # every check for the pair
    failed = [f["cause"] for f in prod["findings"] if f["status"] == "FAIL"]
    assert failed == ["kubelet-identity-detached"]
    titles = [i["title"] for i in github_issues(emulator.state)]
    assert titles == ["[acr-pull] kubelet-identity-detached on aks-prod-weu"]


def test_drift_sweep_verifies_pending_operations_first(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = TableStateStore.from_factory(ClientFactory(Settings.from_env(os.environ)))
    cluster_id = scenario.find_cluster(emulator.state, "aks-prod-weu")["id"]
    store.put_pending_operation(
        PendingOperation(
            cluster_id=cluster_id,
            action_id="reconcile-cluster",
            started_at=datetime.now(UTC) - timedelta(minutes=20),
            detail={"cause": "kubelet-identity-detached", "registry": "", "image": ""},
        )
    )
    outcomes, _ = run_timer(functions, "drift_sweep", caplog)
    assert store.list_pending_operations() == []
    first = outcomes[0]
    assert first["cluster"] == cluster_id
    assert first["findings"][0]["cause"] == "kubelet-identity-detached"
    assert first["findings"][0]["status"] == "PASS"


def test_drift_sweep_with_no_budget_hands_over_everything_and_processes_nothing(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"}
    )
    monkeypatch.setenv("SWEEP_BUDGET_SECONDS", "0")
    outcomes, handed_over = run_timer(functions, "drift_sweep", caplog)
    assert outcomes == []
    assert github_issues(emulator.state) == []
    assert writes(emulator) == []
    messages = [json.loads(m) for m in handed_over]
    assert sorted(m["cluster"].rsplit("/", 1)[-1] for m in messages) == [
        "aks-batch-weu",
        "aks-prod-weu",
    ]
    assert all(m["sweep"] == "drift" and len(m["causes"]) == len(CHECKS) for m in messages)

    processed = process_handover(functions, handed_over, caplog)
    assert len(processed) == 2
    titles = [i["title"] for i in github_issues(emulator.state)]
    assert titles == ["[acr-pull] kubelet-identity-detached on aks-prod-weu"]


# -- pull-failure scan --------------------------------------------------------------------------


def test_pull_failure_scan_classifies_and_diagnoses_failing_pods(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.apply_break(
        emulator.state, {"cause": "pull-secret-admin-stale", "cluster": "aks-prod-weu"}
    )
    outcomes, handed_over = run_timer(functions, "pull_failure_scan", caplog)

    assert handed_over == []
    (outcome,) = outcomes  # the api pods share one image and one message: one diagnosis
    causes = {f["cause"] for f in outcome["findings"]}
    # 401 with credentials is family 1a: only its causes are checked.
    assert causes == {
        "acrpull-missing",
        "sp-secret-expired",
        "sp-mismatch",
        "kubelet-identity-detached",
        "pull-secret-sp-invalid",
        "pull-secret-admin-stale",
        "pull-secret-token-invalid",
    }
    failed = [f for f in outcome["findings"] if f["status"] == "FAIL"]
    assert [f["cause"] for f in failed] == ["pull-secret-admin-stale"]
    assert [i["title"] for i in github_issues(emulator.state)] == [
        "[acr-pull] pull-secret-admin-stale on aks-prod-weu"
    ]


def test_pull_failure_scan_of_a_healthy_estate_does_nothing(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes, handed_over = run_timer(functions, "pull_failure_scan", caplog)
    assert outcomes == [] and handed_over == []
    assert writes(emulator) == []


def test_pull_failure_scan_hands_over_when_out_of_budget(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario.apply_break(
        emulator.state, {"cause": "pull-secret-admin-stale", "cluster": "aks-prod-weu"}
    )
    monkeypatch.setenv("SWEEP_BUDGET_SECONDS", "0")
    outcomes, handed_over = run_timer(functions, "pull_failure_scan", caplog)
    assert outcomes == [] and len(handed_over) == 1
    assert json.loads(handed_over[0])["image"] == "acrprodweu.azurecr.io/app:v1"
    assert github_issues(emulator.state) == []
    (processed,) = process_handover(functions, handed_over, caplog)
    assert processed["verdict"] == "needs-attention"
    assert len(github_issues(emulator.state)) == 1


def test_transient_failure_of_one_task_hands_it_over_and_the_run_goes_on(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Path,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"}
    )
    monkeypatch.setenv("ARM_RETRY_TOTAL", "0")
    # The read that fails is one the Resource Graph inventory would answer: discover through ARM.
    monkeypatch.setenv("RESOURCE_GRAPH_INVENTORY", "off")
    batch = scenario.find_cluster(emulator.state, "aks-batch-weu")
    node_group = batch["properties"]["nodeResourceGroup"]
    # Reading aks-batch-weu's node pool scale sets fails with 503 (beyond the SDK's retries).
    emulator.inject(
        rf"/resourceGroups/{node_group}/providers/Microsoft.Compute/virtualMachineScaleSets$",
        method="GET",
        status=503,
        times=1,
    )
    outcomes, handed_over = run_timer(functions, "drift_sweep", caplog)
    assert [o["cluster"].rsplit("/", 1)[-1] for o in outcomes] == ["aks-prod-weu"]
    assert [json.loads(m)["cluster"] for m in handed_over] == [batch["id"]]
    assert [i["title"] for i in github_issues(emulator.state)] == [
        "[acr-pull] kubelet-identity-detached on aks-prod-weu"
    ]
    (processed,) = process_handover(functions, handed_over, caplog)
    assert processed["cluster"] == batch["id"]
    assert len(processed["findings"]) == len(CHECKS)
    assert not [f for f in processed["findings"] if f["status"] == "FAIL"]


def test_policy_file_for_tickets_is_valid() -> None:
    from shared.policy import parse_policy

    parse_policy(TICKET_POLICY, source="tests")
    parse_policy(EXPIRY_POLICY, source="tests")
