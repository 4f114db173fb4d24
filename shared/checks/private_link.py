"""What the checks of a registry reached over Private Link share: they apply only then."""

from __future__ import annotations

from abc import abstractmethod

from shared.checks.base import Check, Finding, Status, Target
from shared.ports import Estate
from shared.ports.network import PrivateEndpoint
from shared.ports.registries import Registry


class PrivateLinkCheck(Check):
    # Completes "<registry> has no private endpoint..." with why the check does not apply.
    not_applicable: str

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        if target.registry_id is None:
            return self.finding(Status.UNKNOWN, "No registry was given to check.", target, {})
        registry = estate.get_registry(target.registry_id)
        if not registry.private_endpoint_ids:
            return self.finding(
                Status.PASS,
                f"{registry.name} has no private endpoint{self.not_applicable} (not applicable).",
                target,
                {"registry": registry.id, "privateEndpoints": []},
            )
        endpoints = [estate.get_private_endpoint(e) for e in registry.private_endpoint_ids]
        return self.evaluate_private(target, estate, registry, endpoints)

    @abstractmethod
    def evaluate_private(
        self, target: Target, estate: Estate, registry: Registry, endpoints: list[PrivateEndpoint]
    ) -> Finding: ...
