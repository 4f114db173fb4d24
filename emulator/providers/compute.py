"""Microsoft.Compute: virtual machine scale sets (the AKS node pools in the node resource group)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.arm import ResourceKind

if TYPE_CHECKING:
    from emulator.server import Emulator

VMSS = "Microsoft.Compute/virtualMachineScaleSets"


def register(emulator: Emulator) -> None:
    # Scale sets are written by AKS itself; the product only reads them, so writes are refused.
    emulator.arm.register(ResourceKind(type=VMSS, read_only=True))
