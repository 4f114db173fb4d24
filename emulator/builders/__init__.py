"""Scenario builders per domain; importing this package registers their sections and hooks."""

from emulator.builders import kubernetes, network, rbac, registry_data, tokens

__all__ = ["kubernetes", "network", "rbac", "registry_data", "tokens"]
