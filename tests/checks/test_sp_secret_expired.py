"""sp-secret-expired through Graph (azure-core pipeline, bearer token) against the emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator import scenario
from emulator.server import Emulator
from shared.checks.base import Finding, Status, Target
from shared.checks.sp_secret_expired import SpSecretExpired
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

APP = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def estate_spec(
    *, secrets: list[dict[str, Any]] | None = None, managed: bool = False
) -> dict[str, Any]:
    cluster: dict[str, Any] = (
        {"name": "aks1"} if managed else {"name": "aks1", "servicePrincipal": APP}
    )
    group: dict[str, Any] = {"name": "rg-aks", "clusters": [cluster]}
    if secrets is not None:
        group["servicePrincipals"] = [{"appId": APP, "displayName": "aks1-sp", "secrets": secrets}]
    return {"subscriptions": [{"id": PROD_SUB, "resourceGroups": [group]}]}


def run(emulator: Emulator, check: SpSecretExpired | None = None) -> Finding:
    estate = fresh_estate()
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, "aks1")["id"])
    return (check or SpSecretExpired()).run(Target(cluster), estate)


def test_valid_secret_passes(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec())
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert 364 <= finding.evidence["daysLeft"] <= 365
    assert [e.path for e in emulator.journal("graph")] == [
        f"/graph/v1.0/applications(appId='{APP}')"
    ]


def test_expired_secret_fails(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(
        emulator.state,
        {**estate_spec(), "breaks": [{"cause": "sp-secret-expired", "cluster": "aks1"}]},
    )
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.action_id == "rotate-sp-secret"
    assert finding.evidence["severity"] == "error"
    [credential] = finding.evidence["credentials"]
    stored = emulator.state.graph_applications[APP]["passwordCredentials"][0]
    assert credential["keyId"] == stored["keyId"]
    assert -1.1 < credential["daysLeft"] < -0.9
    assert (
        f'az ad app credential list --id "{APP}" --query "[].endDateTime" --output tsv'
        in finding.commands
    )


def test_secret_inside_warning_window_fails_as_warning(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state,
        {
            **estate_spec(),
            "breaks": [{"cause": "sp-secret-expired", "cluster": "aks1", "days": 10}],
        },
    )
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["severity"] == "warning"
    assert finding.evidence["window"] == 30
    assert 9.9 < finding.evidence["daysLeft"] <= 10
    assert run(emulator, SpSecretExpired(warning_days=5)).status is Status.PASS


def test_newest_secret_decides(emulator: Emulator, app_env: dict[str, str]) -> None:
    secrets = [
        {"displayName": "old", "expiresInDays": -30},
        {"displayName": "new", "expiresInDays": 200},
    ]
    scenario.load(emulator.state, estate_spec(secrets=secrets))
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert [c["displayName"] for c in finding.evidence["credentials"]] == ["old", "new"]


def test_application_without_secrets_fails(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(secrets=[]))
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["credentials"] == []


def test_managed_identity_cluster_is_not_applicable(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(managed=True))
    finding = run(emulator)
    assert finding.status is Status.PASS
    assert finding.summary.startswith("Not applicable")
    assert emulator.journal("graph") == []


def test_findings_never_carry_secret_text(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(
        emulator.state,
        {**estate_spec(), "breaks": [{"cause": "sp-secret-expired", "cluster": "aks1"}]},
    )
    text = json.dumps(run(emulator).to_dict())
    secrets = list(emulator.state.graph_applications[APP]["_secrets"].values())
    assert secrets and not any(s in text for s in secrets)


@pytest.mark.parametrize("status", [403, 401])
def test_graph_refusal_is_unknown(emulator: Emulator, app_env: dict[str, str], status: int) -> None:
    scenario.load(emulator.state, estate_spec())
    emulator.inject(r"^/graph/v1\.0/applications", status=status)
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert finding.action_id is None


def test_application_missing_from_graph_is_unknown(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec())
    del emulator.state.graph_applications[APP]
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert [e.status for e in emulator.journal("graph")] == [404]
