"""Microsoft.ManagedIdentity: user-assigned identities (read; created by scenarios)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.arm import ResourceKind

if TYPE_CHECKING:
    from emulator.server import Emulator

TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"


def register(emulator: Emulator) -> None:
    emulator.arm.register(ResourceKind(type=TYPE, read_only=True))
