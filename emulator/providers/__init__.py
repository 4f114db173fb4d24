"""Resource providers the emulator serves; each module registers its routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulator.server import Emulator


def register_all(emulator: Emulator) -> None:
    from emulator.providers import compute, containerregistry, containerservice, msi

    for provider in (containerservice, compute, msi, containerregistry):
        provider.register(emulator)
