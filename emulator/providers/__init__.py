"""Resource providers the emulator serves; each module registers its routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulator.server import Emulator


def register_all(emulator: Emulator) -> None:
    from emulator.providers import (
        compute,
        containerregistry,
        containerservice,
        msi,
        registry_tokens,
    )

    for provider in (containerservice, compute, msi, containerregistry, registry_tokens):
        provider.register(emulator)

    from emulator.providers import authorization, graph, management

    for provider in (management, authorization, graph):
        provider.register(emulator)

    from emulator.providers import monitor, network, resources, web

    for provider in (network, resources, monitor, web):
        provider.register(emulator)

    from emulator import acr_data

    acr_data.register(emulator)

    from emulator import kubernetes

    kubernetes.register(emulator)

    from emulator import run_command

    run_command.register(emulator)

    from emulator import eventgrid_topic, resource_graph, tickets

    for service in (tickets, eventgrid_topic, resource_graph):
        service.register(emulator)
