"""Node architecture from Azure VM size names."""

from __future__ import annotations

import pytest

from shared.vm_sizes import vm_size_architecture


@pytest.mark.parametrize(
    "size",
    [
        "Standard_D4ps_v5",
        "Standard_D2pls_v5",
        "Standard_D8pds_v5",
        "Standard_D16plds_v5",
        "Standard_E8pds_v5",
        "Standard_E4ps_v5",
        "Standard_D4ps_v6",
        "Standard_E16pds_v6",
        "Standard_B2pts_v2",
        "Standard_B2pls_v2",
        "standard_d4ps_v5",
    ],
)
def test_arm64_sizes(size: str) -> None:
    assert vm_size_architecture(size) == "arm64"


@pytest.mark.parametrize(
    "size",
    [
        "Standard_D4s_v5",
        "Standard_D2as_v5",
        "Standard_E8ds_v5",
        "Standard_DS2_v2",
        "Standard_A2_v2",
        "Standard_B2ms",
        "Standard_NP10s",
        "Standard_NC24ads_A100_v4",
        "Standard_E4-2ds_v4",
        "Standard_M416ms_v2",
        "Standard_HB120rs_v3",
        "Basic_A1",
    ],
)
def test_amd64_sizes(size: str) -> None:
    assert vm_size_architecture(size) == "amd64"


@pytest.mark.parametrize("size", ["", "D4ps_v5", "Standard_", "Standard_Dps_v5", "arm64"])
def test_unparsable_sizes(size: str) -> None:
    assert vm_size_architecture(size) is None
