"""The estates `make demo` shows: the sample is healthy, and the demo breaks one cluster per cause.

Every pair is diagnosed the way the CLI and the HTTP function do it (``Engine.diagnose`` over the
real SDK adapters) against the emulator, so a check, a builder or a scenario that drifts apart
shows up here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator import scenario
from emulator.server import Emulator
from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.checks import CHECKS, Finding, Status, Target
from shared.config import Settings
from shared.engine import Engine
from shared.errors import Forbidden
from shared.root_cause import path_order
from tests.conftest import PROD_SUB, SANDBOX_SUB

DEMO_FILE = Path(scenario.SCENARIOS) / "demo.yaml"
DEMO = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))
PAIRS = {pair["cause"]: pair for pair in DEMO["pairs"]}
SAMPLE_PAIR = {
    "cluster": "aks-prod-weu",
    "registry": "acrprodweu",
    "image": "acrprodweu.azurecr.io/app:v1",
}


def diagnose(emulator: Emulator, pair: dict[str, Any]) -> dict[str, Finding]:
    settings = Settings.from_env(os.environ)
    factory = ClientFactory(settings)
    try:
        estate = ArmEstate(factory)
        cluster = estate.get_cluster(scenario.find_cluster(emulator.state, pair["cluster"])["id"])
        registry_id = scenario.find_registry(emulator.state, pair["registry"])["id"]
        findings = Engine(settings, estate).diagnose(Target(cluster, registry_id, pair["image"]))
    finally:
        factory.close()
    return {f.cause_id: f for f in findings}


def statuses(findings: dict[str, Finding], status: Status) -> dict[str, str]:
    return {cause: f.summary for cause, f in findings.items() if f.status is status}


def test_the_demo_names_every_cause_once_in_the_guides_order() -> None:
    assert list(PAIRS) == list(CHECKS)
    assert len(DEMO["pairs"]) == len(CHECKS) == 16
    broken = [b["cause"] for b in DEMO["breaks"]]
    assert sorted(broken) == sorted(CHECKS)
    clusters = [pair["cluster"] for pair in DEMO["pairs"]] + [DEMO["healthy"]["cluster"]]
    assert len(set(clusters)) == len(clusters), "each cause has a cluster of its own"
    for pair in DEMO["pairs"]:
        assert set(pair.get("alsoFails", [])) <= set(CHECKS) - {pair["cause"]}


def test_the_sample_estate_is_healthy(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", f"{PROD_SUB},{SANDBOX_SUB}")
    findings = diagnose(emulator, SAMPLE_PAIR)
    # Every check, in the order of the pull's path (shared/root_cause.py).
    assert list(findings) == [f.cause_id for f in path_order(findings.values())]
    assert sorted(findings) == sorted(CHECKS)
    not_passing = {
        c: (f.status.value, f.summary) for c, f in findings.items() if f.status is not Status.PASS
    }
    assert not_passing == {}
    # Passing because it was looked at, not because nothing was there to look at.
    assert findings["acrpull-missing"].evidence["granting"][0]["role"] == "AcrPull"
    assert sorted(findings["image-not-found"].evidence["platforms"]) == [
        "linux/amd64",
        "linux/arm64",
        "windows/amd64",
    ]
    assert findings["arch-mismatch"].evidence["platformsNeeded"] == [
        "linux/amd64",
        "linux/arm64",
        "windows/amd64",
    ]
    assert findings["os-mismatch"].evidence["poolOs"] == {
        "system": "linux",
        "arm": "linux",
        "win": "windows",
    }
    assert len(findings["kubelet-identity-detached"].evidence["scaleSets"]) == 3
    assert [s["name"] for s in findings["pull-secret-admin-stale"].evidence["secrets"]] == [
        "acr-admin"
    ]
    assert [s["tokenAccepted"] for s in findings["pull-secret-sp-invalid"].evidence["secrets"]] == [
        True
    ]
    assert findings["firewall-ip-not-allowed"].evidence["defaultAction"] == "Allow"


@pytest.fixture
def demo(emulator: Emulator, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", ",".join(s["id"] for s in DEMO["subscriptions"]))
    scenario.load(emulator.state, DEMO_FILE)
    return emulator


def test_the_demos_healthy_pair_fails_nothing(demo: Emulator) -> None:
    findings = diagnose(demo, DEMO["healthy"])
    assert statuses(findings, Status.FAIL) == {}
    assert statuses(findings, Status.UNKNOWN) == {}


@pytest.mark.parametrize("cause", list(PAIRS))
def test_the_demo_pair_fails_for_its_cause(demo: Emulator, cause: str) -> None:
    pair = PAIRS[cause]
    findings = diagnose(demo, pair)
    finding = findings[cause]
    assert finding.status is Status.FAIL, finding.summary
    assert set(statuses(findings, Status.FAIL)) == {cause, *pair.get("alsoFails", [])}
    assert finding.evidence, "a FAIL carries its evidence"
    assert finding.resource_id == scenario.find_cluster(demo.state, pair["cluster"])["id"]
    summary = finding.summary
    assert summary.endswith(".") and 40 < len(summary) < 400
    assert "{" not in summary and "None" not in summary


def test_the_demos_healthy_cluster_holds_a_management_group_grant(demo: Emulator) -> None:
    acrpull = diagnose(demo, DEMO["healthy"])["acrpull-missing"]
    scopes = {g["scope"] for g in acrpull.evidence["granting"]}
    assert "/providers/Microsoft.Management/managementGroups/mg-platform" in scopes


# One pair per kind of client the checks use: ARM and the ACR token exchange (healthy), Microsoft
# Graph (a service principal's secret), Azure Monitor metrics (registry-throttled), a service
# principal pull secret (Entra ID token for the registry).
AUDIENCE_PAIRS = ("sp-secret-expired", "registry-throttled", "pull-secret-sp-invalid")


def test_every_token_the_product_asks_for_has_its_clouds_audience(demo: Emulator) -> None:
    """ARM, Graph and the registries refuse a token minted for another audience (401), so a
    wrong scope in the product would show as UNKNOWN findings; here: the product asks the managed
    identity only for the configured cloud's ARM and Graph audiences, and nothing is refused."""
    issued_before = set(demo.state.tokens)
    demo.clear_journal()
    for pair in (DEMO["healthy"], *(PAIRS[c] for c in AUDIENCE_PAIRS)):
        findings = diagnose(demo, pair)
        assert statuses(findings, Status.UNKNOWN) == {}, pair
    with demo.state.lock:
        asked = {aud for token, aud in demo.state.tokens.items() if token not in issued_before}
    cloud = Settings.from_env(os.environ).cloud
    # azure-identity turns the scope ``<audience>/.default`` into the resource it asks for.
    assert (
        asked
        == {cloud.resource_manager, cloud.microsoft_graph}
        == {
            demo.base_url,
            f"{demo.base_url}/graph",
        }
    ), asked
    assert {"arm", "graph", "acr"} <= {e.service for e in demo.journal()}
    # The ACR exchange also checks the ARM token's audience; an SP pull secret's 401 is the
    # registry's answer to that secret, so only ARM and Graph must have refused nothing.
    refused = [(e.service, e.path) for e in demo.journal() if e.status == 401]
    assert [r for r in refused if r[0] in ("arm", "graph")] == [], refused


class GraphTokensOnly:
    """azure-identity's credential asked for Microsoft Graph whatever the scope: what a wrong
    cloud setting (a sovereign or custom cloud's ARM audience mistaken) does to every request."""

    def __init__(self, graph_scope: str) -> None:
        from azure.identity import ManagedIdentityCredential

        self.inner = ManagedIdentityCredential()
        self.graph_scope = graph_scope

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return self.inner.get_token(self.graph_scope, **kwargs)

    def close(self) -> None:
        self.inner.close()


def test_a_token_for_the_wrong_audience_is_named_as_such(demo: Emulator) -> None:
    """ARM answers 401 InvalidAuthenticationTokenAudience; the product's error (which checks
    report as UNKNOWN with its text) names the code and the settings to check, not a role."""
    settings = Settings.from_env(os.environ)
    credential = GraphTokensOnly(settings.cloud.graph_scope)
    factory = ClientFactory(settings, credential=credential)  # a TokenCredential by protocol
    cluster_id = scenario.find_cluster(demo.state, DEMO["healthy"]["cluster"])["id"]
    try:
        with pytest.raises(Forbidden) as refused:
            ArmEstate(factory).get_cluster(cluster_id)
    finally:
        factory.close()
        credential.close()
    message = str(refused.value)
    assert "InvalidAuthenticationTokenAudience" in message and "AZURE_CLOUD" in message
    assert "not authorized" not in message
    assert [(e.service, e.status) for e in demo.journal("arm")][-1] == ("arm", 401)
