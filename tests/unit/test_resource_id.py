from __future__ import annotations

import pytest

from shared.resource_id import ResourceId, same_id

VMSS = "/subscriptions/s1/resourcegroups/MC_rg_aks_westeurope/providers/Microsoft.Compute/virtualMachineScaleSets/aks-system-1-vmss"


def test_parse_keeps_casing_and_reads_parts() -> None:
    rid = ResourceId.parse(VMSS)
    assert (rid.subscription_id, rid.resource_group, rid.full_type, rid.name) == (
        "s1",
        "MC_rg_aks_westeurope",
        "Microsoft.Compute/virtualMachineScaleSets",
        "aks-system-1-vmss",
    )
    assert rid.resource_group_id == "/subscriptions/s1/resourceGroups/MC_rg_aks_westeurope"


def test_child_resources() -> None:
    rid = ResourceId.parse(
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/aks"
    )
    assert (rid.name, rid.child) == ("v", "/subnets/aks")
    assert str(rid).endswith("/virtualNetworks/v/subnets/aks")


@pytest.mark.parametrize(
    "bad", ["", "/subscriptions/s", "not an id", "/subscriptions/s/resourceGroups/g", "x" * 5000]
)
def test_bad_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        ResourceId.parse(bad)


def test_same_id_ignores_case_and_trailing_slash() -> None:
    assert same_id(VMSS, VMSS.upper() + "/")
    assert not same_id(VMSS, VMSS + "x")
