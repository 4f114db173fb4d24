"""The product's estate adapter as one invocation builds it, aimed at the emulator by app_env."""

from __future__ import annotations

import os

from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.config import Settings


def fresh_estate() -> ArmEstate:
    """A new estate (and run cache) over real SDK clients, as the engine makes per invocation."""
    return ArmEstate(ClientFactory(Settings.from_env(os.environ)))
