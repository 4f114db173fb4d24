"""allow-egress-ip against the emulator through the real registry, AKS and network clients: from a
broken firewall (emulator/scenarios/network-public.yaml + the firewall-ip-not-allowed break) to
IP rules the check passes, plus dry run, idempotency, refusals and the registry PATCH route."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest
import yaml
from azure.core.exceptions import HttpResponseError

from emulator import scenario
from emulator.server import Emulator
from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.checks.base import Finding, Status, Target
from shared.checks.firewall_ip_not_allowed import FirewallIpNotAllowed
from shared.config import Settings
from shared.remediations.allow_egress_ip import AllowEgressIp
from tests.conftest import PROD_SUB
from tests.support.contract import assert_round_trips
from tests.support.estate import fresh_estate

ACR = "acrpublicweu"
ORIGINAL_RULES = [
    "20.61.10.0/29",
    "20.61.20.7",
    "20.61.30.9",
    "20.61.31.0/30",
    "20.61.40.4",
    "20.61.41.0/28",
]
WRITES = ("PUT", "PATCH", "POST", "DELETE")


def public_estate(*rules: str, **registry: Any) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(
        (scenario.SCENARIOS / "network-public.yaml").read_text(encoding="utf-8")
    )
    acr = next(
        r
        for g in spec["subscriptions"][0]["resourceGroups"]
        for r in g.get("registries", [])
        if r["name"] == ACR
    )
    if rules:
        acr["networkRuleSet"]["ipRules"] = list(rules)
    acr.update(registry)
    return spec


def broken(cluster: str, **registry: Any) -> dict[str, Any]:
    spec = public_estate(**registry)
    spec["breaks"] = [{"cause": "firewall-ip-not-allowed", "registry": ACR, "cluster": cluster}]
    return spec


def new_estate() -> ArmEstate:
    return fresh_estate()


def target(emulator: Emulator, estate: ArmEstate, cluster: str) -> Target:
    return Target(
        estate.get_cluster(scenario.find_cluster(emulator.state, cluster)["id"]),
        scenario.find_registry(emulator.state, ACR)["id"],
    )


def check(emulator: Emulator, cluster: str, estate: ArmEstate | None = None) -> Finding:
    estate = estate or new_estate()
    return FirewallIpNotAllowed().run(target(emulator, estate, cluster), estate)


def rules(emulator: Emulator) -> list[str]:
    network = scenario.find_registry(emulator.state, ACR)["properties"]["networkRuleSet"]
    return [r["value"] for r in (network or {}).get("ipRules", [])]


def writes(emulator: Emulator) -> list[tuple[str, str, int]]:
    return [(e.method, e.path, e.status) for e in emulator.journal() if e.method in WRITES]


def fix(emulator: Emulator, cluster: str) -> tuple[Finding, Any]:
    """Check, then apply with the same estate (as the engine does), returning both."""
    estate = new_estate()
    finding = check(emulator, cluster, estate)
    action = AllowEgressIp().apply(finding, target(emulator, estate, cluster), estate, timeout=30)
    return finding, action


@pytest.mark.parametrize(
    ("cluster", "egress"),
    [
        ("aks-lb-weu", ["20.61.10.4", "20.61.10.5"]),
        ("aks-natmanaged-weu", ["20.61.20.7"]),
        ("aks-natuser-weu", ["20.61.30.9", "20.61.31.0/30"]),
        # Your own IP and IP prefix on the load balancer: the prefix's CIDR is what is allowed.
        ("aks-lbown-weu", ["20.61.40.4", "20.61.41.0/30"]),
    ],
)
def test_broken_firewall_is_fixed_and_the_check_passes(
    emulator: Emulator, app_env: dict[str, str], cluster: str, egress: list[str]
) -> None:
    scenario.load(emulator.state, broken(cluster))
    before = rules(emulator)
    assert not set(egress) & set(before)

    finding, action = fix(emulator, cluster)

    assert finding.status is Status.FAIL and sorted(finding.evidence["missingIps"]) == egress
    assert (action.action_id, action.status) == ("allow-egress-ip", "applied"), action.detail
    assert all(ip in action.detail for ip in egress)
    # Existing rules are kept, in order; the egress addresses are appended once each.
    assert rules(emulator) == before + egress
    network = scenario.find_registry(emulator.state, ACR)["properties"]["networkRuleSet"]
    assert network["defaultAction"] == "Deny"
    assert all(r["action"] == "Allow" for r in network["ipRules"])
    patches = [e for e in emulator.journal("arm") if e.method == "PATCH"]
    assert [(e.path.rsplit("/", 1)[-1], e.status) for e in patches] == [(ACR, 200)]
    assert patches[0].body == {
        "properties": {
            "networkRuleSet": {
                "defaultAction": "Deny",
                "ipRules": [{"action": "Allow", "value": v} for v in before + egress],
            }
        }
    }
    assert not [w for w in writes(emulator) if w[0] != "PATCH"]
    verified = check(emulator, cluster)
    assert verified.status is Status.PASS, verified.summary
    assert verified.evidence["missingIps"] == []


def test_plan_only_names_the_commands_and_changes_nothing(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, broken("aks-lb-weu"))
    estate = new_estate()
    finding = check(emulator, "aks-lb-weu", estate)
    plan = AllowEgressIp().plan(finding, target(emulator, estate, "aks-lb-weu"))
    assert plan.action_id == "allow-egress-ip"
    assert plan.commands == (
        f"az acr network-rule add --name {ACR} --ip-address 20.61.10.4",
        f"az acr network-rule add --name {ACR} --ip-address 20.61.10.5",
    )
    assert "20.61.10.4, 20.61.10.5" in plan.summary and "aks-lb-weu" in plan.summary
    assert any("widened" in w for w in plan.warnings)
    assert writes(emulator) == []
    assert "20.61.10.4" not in rules(emulator)


def test_second_apply_changes_nothing_and_reports_applied(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, broken("aks-lb-weu"))
    _, first = fix(emulator, "aks-lb-weu")
    after_first = rules(emulator)
    _, second = fix(emulator, "aks-lb-weu")
    assert (first.status, second.status) == ("applied", "applied")
    assert "nothing was changed" in second.detail
    assert rules(emulator) == after_first
    assert len(after_first) == len(set(after_first))
    assert [w[0] for w in writes(emulator)] == ["PATCH"]


def test_ip_covered_by_a_cidr_rule_is_not_added(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, public_estate("20.61.10.4/31"))
    estate = new_estate()
    tgt = target(emulator, estate, "aks-lb-weu")
    finding = check(emulator, "aks-lb-weu", estate)
    assert finding.status is Status.PASS
    # Called anyway (e.g. on a stale finding): nothing to add, nothing written.
    action = AllowEgressIp().apply(finding, tgt, estate, timeout=30)
    assert action.status == "applied" and "already allows all 2" in action.detail
    assert rules(emulator) == ["20.61.10.4/31"]
    assert writes(emulator) == []


def test_only_the_uncovered_ip_is_added_whatever_the_evidence_says(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, public_estate("20.61.10.4"))
    estate = new_estate()
    tgt = target(emulator, estate, "aks-lb-weu")
    finding = check(emulator, "aks-lb-weu", estate)
    # Evidence claiming other addresses is not trusted: the estate is read again.
    forged = replace(finding, evidence={"missingIps": ["1.2.3.4"]})
    action = AllowEgressIp().apply(forged, tgt, estate, timeout=30)
    assert action.status == "applied", action.detail
    assert rules(emulator) == ["20.61.10.4", "20.61.10.5"]


def test_forbidden_write_fails_with_a_reason_and_changes_nothing(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, broken("aks-lb-weu"))
    before = rules(emulator)
    estate = new_estate()
    finding = check(emulator, "aks-lb-weu", estate)
    # Reads were made by the check (cached, as in the engine); the write is what gets 403.
    emulator.deny(scenario.find_registry(emulator.state, ACR)["id"])
    action = AllowEgressIp().apply(
        finding, target(emulator, estate, "aks-lb-weu"), estate, timeout=30
    )
    assert action.status == "failed"
    assert "may not update the network rules of" in action.detail
    assert "AuthorizationFailed" in action.detail
    assert rules(emulator) == before
    assert [(w[0], w[2]) for w in writes(emulator)] == [("PATCH", 403)]


def test_unreadable_registry_fails_without_writing(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, broken("aks-lb-weu"))
    emulator.deny(scenario.find_registry(emulator.state, ACR)["id"])
    estate = new_estate()
    finding = check(emulator, "aks-lb-weu", estate)
    assert finding.status is Status.UNKNOWN
    action = AllowEgressIp().apply(
        finding, target(emulator, estate, "aks-lb-weu"), estate, timeout=30
    )
    assert action.status == "failed" and "read registry" in action.detail
    assert writes(emulator) == []


def test_public_access_disabled_is_refused_and_nothing_written(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = public_estate()
    spec["breaks"] = [{"cause": "firewall-ip-not-allowed", "registry": ACR, "variant": "disabled"}]
    scenario.load(emulator.state, spec)
    finding, action = fix(emulator, "aks-lb-weu")
    assert finding.status is Status.FAIL and finding.action_id is None
    assert action.status == "failed"
    assert f"{ACR} has public network access Disabled" in action.detail
    assert "nothing was changed" in action.detail
    assert writes(emulator) == []
    assert rules(emulator) == ORIGINAL_RULES


def test_basic_registry_fails_with_the_arm_code(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, public_estate(sku="Basic"))
    registry = scenario.find_registry(emulator.state, ACR)
    # A registry whose default action is Deny but that cannot hold IP rules (not Premium).
    registry["properties"]["networkRuleSet"] = {"defaultAction": "Deny", "ipRules": []}
    emulator.state.put(registry)
    finding, action = fix(emulator, "aks-lb-weu")
    assert finding.status is Status.FAIL
    assert action.status == "failed"
    assert "NetworkRuleSetNotSupported" in action.detail
    assert "Premium SKU" in action.detail and "is Basic" in action.detail
    assert [(w[0], w[2]) for w in writes(emulator)] == [("PATCH", 400)]
    assert rules(emulator) == []


def test_unknown_egress_is_refused(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, "network-public")
    _, action = fix(emulator, "aks-udr-weu")
    assert action.status == "failed" and "user-defined routes" in action.detail
    assert writes(emulator) == []


def test_open_registry_needs_no_rule(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, "network-public")
    estate = new_estate()
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, "aks-lb-weu")["id"])
    tgt = Target(cluster, scenario.find_registry(emulator.state, "acropenweu")["id"])
    finding = FirewallIpNotAllowed().run(tgt, estate)
    action = AllowEgressIp().apply(finding, tgt, estate, timeout=30)
    assert action.status == "applied" and "all networks" in action.detail
    assert writes(emulator) == []


def test_no_registry_in_the_target_fails(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, "network-public")
    estate = new_estate()
    tgt = Target(estate.get_cluster(scenario.find_cluster(emulator.state, "aks-lb-weu")["id"]))
    finding = FirewallIpNotAllowed().run(tgt, estate)
    action = AllowEgressIp().apply(finding, tgt, estate, timeout=30)
    assert action.status == "failed"


def test_permissions_cover_the_check_reads_and_the_write() -> None:
    permissions = set(AllowEgressIp.permissions)
    assert "Microsoft.ContainerRegistry/registries/write" in permissions
    missing = set(FirewallIpNotAllowed.meta.reads) - permissions
    # The private-endpoint reads only decide PASS; the fix never reads endpoints.
    assert missing == {
        "Microsoft.Network/privateEndpoints/read",
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups/read",
    }


# -- the registry PATCH route (registries.begin_update) ----------------------------------------


def registry_client(emulator: Emulator) -> Any:
    return ClientFactory(Settings.from_env(os.environ)).container_registry(PROD_SUB)


def test_patch_route_round_trips_and_keeps_other_properties(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    from azure.mgmt.containerregistry.models import Registry

    scenario.load(emulator.state, "network-public")
    before = scenario.find_registry(emulator.state, ACR)
    client = registry_client(emulator)
    updated = client.registries.begin_update(
        "rg-acr", ACR, {"properties": {"networkRuleSet": {"defaultAction": "Deny", "ipRules": []}}}
    ).result()
    assert updated.network_rule_set.default_action == "Deny"
    assert updated.network_rule_set.ip_rules == []
    after = scenario.find_registry(emulator.state, ACR)
    assert after["properties"]["loginServer"] == before["properties"]["loginServer"]
    assert after["sku"] == before["sku"]
    patch = next(e for e in emulator.journal("arm") if e.method == "PATCH")
    assert patch.status == 200
    assert_round_trips(Registry, after)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"properties": {"networkRuleSet": {"ipRules": []}}}, 400, "InvalidRequestContent"),
        (
            {
                "properties": {
                    "networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"value": "x"}]}
                }
            },
            400,
            "InvalidRequestContent",
        ),
        ({"sku": {"name": "Platinum"}}, 400, "InvalidRequestContent"),
    ],
)
def test_patch_route_rejects_bad_bodies(
    emulator: Emulator, app_env: dict[str, str], body: dict[str, Any], status: int, code: str
) -> None:
    scenario.load(emulator.state, "network-public")
    before = scenario.find_registry(emulator.state, ACR)
    with pytest.raises(HttpResponseError) as raised:
        registry_client(emulator).registries.begin_update("rg-acr", ACR, body).result()
    assert (raised.value.status_code, raised.value.error.code) == (status, code)
    assert scenario.find_registry(emulator.state, ACR) == before


def test_patch_route_answers_404_for_a_missing_registry(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    scenario.load(emulator.state, "network-public")
    with pytest.raises(ResourceNotFoundError):
        registry_client(emulator).registries.begin_update(
            "rg-acr", "acrnothere", {"tags": {"a": "b"}}
        ).result()
