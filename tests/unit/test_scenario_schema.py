"""Scenario files cannot lie: a misspelt key, an unknown break or node pool, or a reference to
nothing is an error naming it, never a silently healthy estate."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from emulator import scenario
from emulator.scenario_schema import ScenarioError, validate
from emulator.state import State

PUBLIC = yaml.safe_load((scenario.SCENARIOS / "network-public.yaml").read_text(encoding="utf-8"))


def group(spec: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        g for g in spec["subscriptions"][0]["resourceGroups"] if g["name"] == name
    )
    return found


@pytest.mark.parametrize("name", sorted(p.stem for p in scenario.SCENARIOS.glob("*.yaml")))
def test_every_shipped_scenario_is_valid(name: str) -> None:
    spec = yaml.safe_load((scenario.SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))
    import emulator.builders  # noqa: F401  (registers the sections builders add)

    if "subscriptions" in spec:  # demo-policy.yaml is a policy, not an estate
        validate(spec, top_sections=scenario.TOP_SECTIONS, group_sections=scenario.GROUP_SECTIONS)


def misspelt(change: Any) -> dict[str, Any]:
    spec = copy.deepcopy(PUBLIC)
    change(spec)
    return spec


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            lambda s: group(s, "rg-aks")["clusters"][0].update(
                outbond=group(s, "rg-aks")["clusters"][0].pop("outbound")
            ),
            "clusters[0]: unknown key 'outbond' (did you mean 'outbound'?)",
        ),
        (
            lambda s: group(s, "rg-acr")["registries"][0].update(
                netwrkRuleSet=group(s, "rg-acr")["registries"][0].pop("networkRuleSet")
            ),
            "registries[0]: unknown key 'netwrkRuleSet' (did you mean 'networkRuleSet'?)",
        ),
        (
            lambda s: group(s, "rg-net-egress")["virtualNetworks"][0]["subnets"][0].update(
                natGatway="ng-aks"
            ),
            "virtualNetworks[0].subnets[0]: unknown key 'natGatway'",
        ),
        (
            lambda s: group(s, "rg-aks")["clusters"][0].update(
                workloads=[{"name": "w", "image": "acrpublicweu.azurecr.io/a:v1", "pool": "gpu"}]
            ),
            "workloads[0]: unknown node pool 'gpu'",
        ),
        (lambda s: s.update(tenantID="x"), "scenario: unknown key 'tenantID'"),
    ],
    ids=["cluster-key", "registry-key", "subnet-key", "pool", "top-level-key"],
)
def test_a_misspelt_scenario_fails_to_load_naming_it(change: Any, named: str) -> None:
    state = State()
    with pytest.raises(ScenarioError) as raised:
        scenario.load(state, misspelt(change))
    assert named in str(raised.value)
    assert list(state.iter_resources()) == []  # nothing was built


def test_an_unknown_break_is_an_error() -> None:
    spec = misspelt(lambda s: s.update(breaks=[{"cause": "firewall-ip-not-alowed"}]))
    with pytest.raises(ValueError, match="unknown break 'firewall-ip-not-alowed'"):
        scenario.load(State(), spec)


def test_a_misspelt_break_key_is_an_error() -> None:
    spec = misspelt(
        lambda s: s.update(breaks=[{"cause": "firewall-ip-not-allowed", "registy": "acrpublicweu"}])
    )
    with pytest.raises(ScenarioError, match="unknown key 'registy' \\(did you mean 'registry'"):
        scenario.load(State(), spec)


def test_a_reference_to_nothing_is_an_error() -> None:
    def nowhere(spec: dict[str, Any]) -> None:
        cluster = next(
            c for c in group(spec, "rg-aks")["clusters"] if c["name"] == "aks-natuser-weu"
        )
        cluster["vnet"]["name"] = "vnet-nowhere"

    spec = misspelt(nowhere)
    with pytest.raises(KeyError, match="vnet-nowhere"):
        scenario.load(State(), spec)
