"""link-private-dns-zone against the emulator's hub-and-spoke estate through the real network,
private DNS, registry and AKS clients: from a deleted zone link (emulator/scenarios/
network-private.yaml + the private-dns-link-missing break) to a link the check passes, plus dry
run, idempotency, 409, 403, a failing or slow operation, and the zone search."""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml

from emulator import scenario
from emulator.server import Emulator
from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.checks.base import Finding, Status, Target
from shared.checks.private_dns_link_missing import PrivateDnsLinkMissing
from shared.config import Settings
from shared.remediations.base import ActionRecord
from shared.remediations.link_private_dns_zone import LinkPrivateDnsZone, link_name
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

NET = f"/subscriptions/{PROD_SUB}/resourceGroups/%s/providers/Microsoft.Network"
HUB_VNET = f"{NET % 'rg-net-hub'}/virtualNetworks/vnet-hub"
SPOKE_VNET = f"{NET % 'rg-net-spoke'}/virtualNetworks/vnet-spoke"
ZONE_ID = f"{NET % 'rg-net-hub'}/privateDnsZones/privatelink.azurecr.io"
LINK_ID = f"{ZONE_ID}/virtualNetworkLinks/{link_name(SPOKE_VNET)}"
WRITES = ("PUT", "PATCH", "POST", "DELETE")


def private_estate(*, broken: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(
        (scenario.SCENARIOS / "network-private.yaml").read_text(encoding="utf-8")
    )
    if broken:
        spec["breaks"] = [{"cause": "private-dns-link-missing", "cluster": "aks-spoke-weu"}]
    return spec


def group(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in spec["subscriptions"][0]["resourceGroups"] if g["name"] == name)


def new_estate() -> ArmEstate:
    return fresh_estate()


def target(emulator: Emulator, estate: ArmEstate) -> Target:
    return Target(
        estate.get_cluster(scenario.find_cluster(emulator.state, "aks-spoke-weu")["id"]),
        scenario.find_registry(emulator.state, "acrhubweu")["id"],
    )


def check(emulator: Emulator, estate: ArmEstate | None = None) -> Finding:
    estate = estate or new_estate()
    return PrivateDnsLinkMissing().run(target(emulator, estate), estate)


def fix(emulator: Emulator, *, timeout: float = 30) -> tuple[Finding, ActionRecord]:
    """Check, then apply with the same estate (as the engine does)."""
    estate = new_estate()
    finding = check(emulator, estate)
    action = LinkPrivateDnsZone().apply(finding, target(emulator, estate), estate, timeout=timeout)
    return finding, action


def links_to(emulator: Emulator, vnet_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in emulator.state.children(
            ZONE_ID, "Microsoft.Network/privateDnsZones/virtualNetworkLinks"
        )
        if r["properties"]["virtualNetwork"]["id"].lower() == vnet_id.lower()
    ]


def writes(emulator: Emulator) -> list[tuple[str, str, int]]:
    return [(e.method, e.path, e.status) for e in emulator.journal() if e.method in WRITES]


def test_deleted_link_is_recreated_and_the_check_passes(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, private_estate())
    assert links_to(emulator, SPOKE_VNET) == []

    finding, action = fix(emulator)

    assert finding.status is Status.FAIL and finding.evidence["unlinkedVnets"] == [SPOKE_VNET]
    assert (action.action_id, action.status) == ("link-private-dns-zone", "applied"), action.detail
    assert "vnet-spoke" in action.detail and link_name(SPOKE_VNET) in action.detail
    link = emulator.state.get(LINK_ID)
    assert link is not None
    assert link["location"] == "global"
    assert link["properties"]["virtualNetwork"]["id"] == SPOKE_VNET
    assert link["properties"]["registrationEnabled"] is False
    assert link["properties"]["virtualNetworkLinkState"] == "Completed"
    assert link["properties"]["provisioningState"] == "Succeeded"
    assert [(w[0], w[1], w[2]) for w in writes(emulator)] == [("PUT", LINK_ID, 201)]
    verified = check(emulator)
    assert verified.status is Status.PASS, verified.summary
    assert sorted(verified.evidence["linkedVnets"]) == sorted([HUB_VNET, SPOKE_VNET])


def test_plan_only_names_the_command_and_changes_nothing(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, private_estate())
    estate = new_estate()
    finding = check(emulator, estate)
    plan = LinkPrivateDnsZone().plan(finding, target(emulator, estate))
    assert plan.action_id == "link-private-dns-zone"
    assert plan.commands == (
        "az network private-dns link vnet create -g rg-net-hub -z privatelink.azurecr.io "
        f"-n {link_name(SPOKE_VNET)} -v {SPOKE_VNET} -e false",
    )
    assert "vnet-spoke" in plan.summary and "aks-spoke-weu" in plan.summary
    assert plan.warnings
    assert writes(emulator) == []
    assert links_to(emulator, SPOKE_VNET) == []


def test_second_apply_changes_nothing_and_reports_applied(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, private_estate())
    _, first = fix(emulator)
    _, second = fix(emulator)
    assert (first.status, second.status) == ("applied", "applied")
    assert "nothing was changed" in second.detail
    assert len(links_to(emulator, SPOKE_VNET)) == 1
    assert [w[0] for w in writes(emulator)] == ["PUT"]


def test_vnet_linked_under_another_name_is_left_alone(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, private_estate(broken=False))
    _, action = fix(emulator)
    assert action.status == "applied" and "already linked" in action.detail
    assert writes(emulator) == []
    assert emulator.state.get(LINK_ID) is None


def test_conflict_for_a_link_someone_just_made_is_success(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, private_estate())
    estate = new_estate()
    finding = check(emulator, estate)
    # A person links the VNet (under their own name) between the check and the fix.
    client = ClientFactory(Settings.from_env(os.environ)).private_dns(PROD_SUB)
    client.virtual_network_links.begin_create_or_update(
        "rg-net-hub",
        "privatelink.azurecr.io",
        "by-hand",
        {"location": "global", "properties": {"virtualNetwork": {"id": SPOKE_VNET}}},
    ).result()
    emulator.clear_journal()
    action = LinkPrivateDnsZone().apply(finding, target(emulator, estate), estate, timeout=30)
    assert action.status == "applied", action.detail
    assert [(w[0], w[2]) for w in writes(emulator)] == [("PUT", 409)]
    assert [r["name"] for r in links_to(emulator, SPOKE_VNET)] == ["by-hand"]


def test_forbidden_zone_fails_with_a_reason_and_links_nothing(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, private_estate())
    estate = new_estate()
    finding = check(emulator, estate)
    emulator.deny(ZONE_ID)
    action = LinkPrivateDnsZone().apply(finding, target(emulator, estate), estate, timeout=30)
    assert action.status == "failed"
    assert "may not create the virtual network link" in action.detail
    assert "AuthorizationFailed" in action.detail
    assert [(w[0], w[2]) for w in writes(emulator)] == [("PUT", 403)]
    assert links_to(emulator, SPOKE_VNET) == []


def test_failed_operation_fails_and_a_retry_repairs_the_link(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, private_estate())
    emulator.inject(r"/virtualNetworkLinks/", lro_fails=True, times=1)
    _, action = fix(emulator)
    assert action.status == "failed"
    assert "ended Failed" in action.detail
    assert emulator.state.get(LINK_ID)["properties"]["provisioningState"] == "Failed"
    # The next run PUTs the same link again instead of trusting a failed one.
    _, retry = fix(emulator)
    assert retry.status == "applied", retry.detail
    assert emulator.state.get(LINK_ID)["properties"]["provisioningState"] == "Succeeded"
    assert [(w[0], w[1]) for w in writes(emulator)] == [("PUT", LINK_ID), ("PUT", LINK_ID)]
    assert len(links_to(emulator, SPOKE_VNET)) == 1


def test_slow_operation_is_in_progress_then_not_written_again(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, private_estate())
    emulator.state.lro_polls = 10**9
    _, action = fix(emulator, timeout=0.3)
    assert action.status == "in-progress", action.detail
    assert "still running" in action.detail
    _, again = fix(emulator, timeout=0.3)
    assert again.status == "in-progress" and "Creating" in again.detail
    assert [w[0] for w in writes(emulator)] == ["PUT"]


def test_zone_found_by_name_without_a_zone_group(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = private_estate()
    acr = next(r for r in group(spec, "rg-acr")["registries"] if r["name"] == "acrhubweu")
    acr["privateEndpoint"]["zoneGroup"] = False
    scenario.load(emulator.state, spec)
    _, action = fix(emulator)
    assert action.status == "applied", action.detail
    assert emulator.state.get(LINK_ID) is not None
    assert check(emulator).status is Status.PASS


def test_no_zone_fails_without_writing(emulator: Emulator, app_env: dict[str, str]) -> None:
    spec = private_estate(broken=False)
    del group(spec, "rg-net-hub")["privateDnsZones"]
    acr = next(r for r in group(spec, "rg-acr")["registries"] if r["name"] == "acrhubweu")
    acr["privateEndpoint"]["dnsZone"] = None
    scenario.load(emulator.state, spec)
    _, action = fix(emulator)
    assert action.status == "failed" and "found none" in action.detail
    assert writes(emulator) == []


def test_registry_without_private_endpoint_needs_no_link(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, "network-public")
    estate = new_estate()
    tgt = Target(
        estate.get_cluster(scenario.find_cluster(emulator.state, "aks-lb-weu")["id"]),
        scenario.find_registry(emulator.state, "acrpublicweu")["id"],
    )
    finding = PrivateDnsLinkMissing().run(tgt, estate)
    action = LinkPrivateDnsZone().apply(finding, tgt, estate, timeout=30)
    assert action.status == "applied" and "no private endpoint" in action.detail
    assert writes(emulator) == []


def test_permissions_cover_the_check_reads_the_write_and_the_vnet_join() -> None:
    permissions = set(LinkPrivateDnsZone.permissions)
    assert set(PrivateDnsLinkMissing.meta.reads) <= permissions
    assert {
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks/write",
        "Microsoft.Network/virtualNetworks/join/action",
    } <= permissions


@pytest.mark.parametrize(
    ("vnet_id", "other"),
    [
        (SPOKE_VNET, SPOKE_VNET.replace("rg-net-spoke", "rg-other")),
        (
            f"{NET % 'rg-net-spoke'}/virtualNetworks/{'v' * 64}",
            f"{NET % 'rg-net-hub'}/virtualNetworks/{'v' * 64}",
        ),
    ],
)
def test_link_names_are_stable_distinct_and_within_limits(vnet_id: str, other: str) -> None:
    name = link_name(vnet_id)
    # ARM names are case-insensitive: another spelling of the id names the same link.
    assert name.lower() == link_name(vnet_id.upper()).lower()
    assert name == link_name(vnet_id + "/")
    assert name != link_name(other)
    assert 1 <= len(name) <= 80
    assert name.startswith(vnet_id.rsplit("/", 1)[-1][:71] + "-")
