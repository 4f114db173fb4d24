"""A pod on a mistyped login server (``acrprodweu.azureacr.io``) is paired with the registry it
looks like in every automatic path: the pull-failure scan and the alert webhook, through the
indexed functions, the real clients and the emulator (whose kubelet reports ``no such host``).
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.builders.kubernetes import add_workload
from emulator.server import Emulator
from emulator.tickets import github_issues
from shared.checks import CHECKS
from shared.registry_hosts import look_alike
from tests.integration.test_alert_webhook import log_alert_with_results, post
from tests.support.triggers import run_timer, ticket_policy

__all__ = ["ticket_policy"]  # the fixture, used by name

CLUSTER = "aks-prod-weu"
TYPO = "acrprodweu.azureacr.io/app:v1"


@pytest.fixture
def typo(emulator: Emulator, sample: dict[str, Any]) -> dict[str, Any]:
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    api = k8s.api_for(emulator.state, cluster["id"])
    with emulator.state.lock:
        add_workload(
            emulator.state,
            api,
            {"namespace": "payments", "name": "typo", "image": TYPO, "status": "ErrImagePull"},
        )
    return cluster


def assert_typo_named(outcome: dict[str, Any], emulator: Emulator) -> None:
    (finding,) = outcome["findings"]
    assert finding["cause"] == "image-not-found" and finding["status"] == "FAIL"
    assert finding["evidence"]["imageHost"] == "acrprodweu.azureacr.io"
    assert finding["evidence"]["suggestion"] == "acrprodweu.azurecr.io/app:v1"
    assert "azureacr.io is a common typo of azurecr.io" in finding["summary"]
    assert [i["title"] for i in github_issues(emulator.state)] == [
        f"[acr-pull] image-not-found on {CLUSTER}"
    ]


def test_the_pull_failure_scan_finds_the_typo(
    emulator: Emulator,
    typo: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes, handed_over = run_timer(functions, "pull_failure_scan", caplog)
    assert handed_over == []
    (outcome,) = outcomes
    assert_typo_named(outcome, emulator)


def test_the_alert_webhook_finds_the_typo(
    emulator: Emulator,
    typo: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    message = f'Failed to pull image "{TYPO}": ' + k8s.no_such_host_message(TYPO)
    rows = [[typo["id"], "payments", "typo-5f6d7c8b9-abcde", message]]
    status, body, handed_over, outcomes = post(functions, log_alert_with_results(rows), caplog)
    assert status == 202 and body["processed"] == 1 and handed_over == [], body
    (outcome,) = outcomes
    assert_typo_named(outcome, emulator)


def test_the_drift_sweep_finds_the_typo(
    emulator: Emulator,
    typo: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes, handed_over = run_timer(functions, "drift_sweep", caplog)
    assert handed_over == []
    prod = [o for o in outcomes if o["cluster"].endswith(f"/{CLUSTER}")]
    # The pair's own checks run with its correctly spelled image; the typo gets its own check.
    whole, typo_only = sorted(prod, key=lambda o: len(o["findings"]), reverse=True)
    assert len(whole["findings"]) == len(CHECKS)
    assert whole["verdict"] == "healthy", whole["reason"]
    assert_typo_named(typo_only, emulator)


SERVERS = ("acrprodweu.azurecr.io", "shopreg.azurecr.io", "shopreg2.azurecr.io")


@pytest.mark.parametrize(
    ("host", "meant"),
    [
        ("shopreg.azureacr.io", "shopreg.azurecr.io"),
        ("shopreg.azurcr.io", "shopreg.azurecr.io"),
        ("shopreg.azurecr.oi", "shopreg.azurecr.io"),
        ("acrprodwue.azurecr.io", "acrprodweu.azurecr.io"),  # two letters swapped
        ("acrprodweuu.azurecr.io", "acrprodweu.azurecr.io"),  # one letter extra
        ("acrprodwe.azurecr.io", "acrprodweu.azurecr.io"),  # one letter missing
        ("shopreg3.azurecr.io", None),  # as near to shopreg and shopreg2: names neither
        ("shopreg.azurecr.io", None),  # exact: no typo
        ("shopreg.azurecr.cn", None),  # another cloud's registry, not a typo
        ("contoso.azurecr.io", None),
        ("mcr.microsoft.com", None),
    ],
)
def test_look_alike_hosts(host: str, meant: str | None) -> None:
    assert look_alike(host, SERVERS) == meant
