"""Microsoft.Compute: scale sets and virtual machines (AKS node pools in the node resource group)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.arm import ResourceKind

if TYPE_CHECKING:
    from emulator.server import Emulator

VMSS = "Microsoft.Compute/virtualMachineScaleSets"
# Node VMs of VirtualMachines node pools and node auto-provisioning.
VM = "Microsoft.Compute/virtualMachines"


def register(emulator: Emulator) -> None:
    # Scale sets are written by AKS itself; the product only reads them, so writes are refused.
    emulator.arm.register(ResourceKind(type=VMSS, read_only=True))
    emulator.arm.register(ResourceKind(type=VM, read_only=True))
