"""The ticket for a firewall that does not allow the cluster's egress sends the reader where the
egress addresses are, for the cluster's outbound type: a registry write event through the indexed
``arm_events`` function, the real clients, and the emulator's GitHub issues
(emulator/scenarios/network-public.yaml)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from emulator import scenario
from emulator.server import Emulator
from emulator.tickets import github_issues
from tests.conftest import PROD_SUB
from tests.support.events import arm_event
from tests.support.triggers import deliver_event, ticket_policy

__all__ = ["ticket_policy"]  # the fixture, used by name

REGISTRY_WRITE = "Microsoft.ContainerRegistry/registries/write"
EGRESS = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-net-egress/providers/Microsoft.Network"

# cluster: (a command its ticket must hold, text it must not send the reader to)
EXPECTED = {
    "aks-natuser-weu": (
        f"az network nat gateway show --ids {EGRESS}/natGateways/ng-aks",
        "loadBalancerProfile",
    ),
    "aks-natmanaged-weu": (
        "networkProfile.natGatewayProfile.effectiveOutboundIPs",
        "loadBalancerProfile",
    ),
    "aks-lbown-weu": (
        f"az network public-ip prefix show --ids {EGRESS}/publicIPPrefixes/ippre-lb-own",
        "natGateway",
    ),
}


@pytest.mark.parametrize("cluster", sorted(EXPECTED))
def test_the_ticket_names_the_egress_of_the_outbound_type(
    emulator: Emulator,
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    cluster: str,
) -> None:
    spec: dict[str, Any] = yaml.safe_load(
        (scenario.SCENARIOS / "network-public.yaml").read_text(encoding="utf-8")
    )
    for group in spec["subscriptions"][0]["resourceGroups"]:
        for found in group.get("clusters", []):
            found["attachedRegistries"] = ["acrpublicweu"] if found["name"] == cluster else []
    spec["breaks"] = [
        {"cause": "firewall-ip-not-allowed", "registry": "acrpublicweu", "cluster": cluster}
    ]
    scenario.load(emulator.state, spec)
    registry_id = scenario.find_registry(emulator.state, "acrpublicweu")["id"]
    deliver_event(functions, "arm_events", arm_event(registry_id, REGISTRY_WRITE), caplog)

    (issue,) = github_issues(emulator.state)
    assert issue["title"] == f"[acr-pull] firewall-ip-not-allowed on {cluster}"
    must, never = EXPECTED[cluster]
    assert must in issue["body"]
    assert never not in issue["body"].split("### What to run", 1)[1]
