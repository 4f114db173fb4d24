"""From the policy's ticket route (as written in YAML) to a ticket service with credentials."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from shared.config import Settings
from shared.policy import Decision
from shared.policy.model import TicketRoute as PolicyRoute
from shared.store import StateStore
from shared.tickets.model import TicketRoute
from shared.tickets.service import TicketService, provider_for


def ticket_route(route: PolicyRoute, env: Mapping[str, str]) -> TicketRoute:
    """The policy's provider-specific keys, in the ticket package's terms."""
    keys = dict(route.route)
    values: dict[str, object] = {"provider": route.provider, "labels": route.labels}
    if route.provider == "github":
        values["repository"] = keys.get("repo")
    elif route.provider == "azure-devops":
        values.update(organization=keys.get("organization"), project=keys.get("project"))
        if keys.get("workItemType"):
            values["work_item_type"] = keys["workItemType"]
    else:
        setting = keys.get("urlSetting")
        values["webhook_url"] = env.get(str(setting)) if setting else keys.get("url")
        values["webhook_format"] = keys.get("format", "teams")
    return TicketRoute.from_mapping(values)


class TicketRouter:
    """One ticket service per route, built on first use, all sharing the store as their index."""

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        env: Mapping[str, str],
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.store = store
        self.env = env
        self.clock = clock
        self._services: dict[str, TicketService] = {}

    def service(self, route: PolicyRoute | None) -> TicketService | None:
        if route is None:
            return None
        key = repr(route)  # routes hold read-only mappings, which do not hash
        if key not in self._services:
            provider = provider_for(ticket_route(route, self.env), self.settings)
            self._services[key] = TicketService(provider, self.store, clock=self.clock)
        return self._services[key]

    def service_for(self, decision: Decision | None) -> TicketService | None:
        return self.service(decision.ticket_route if decision else None)

    @staticmethod
    def labels(decision: Decision | None) -> tuple[str, ...]:
        route = decision.ticket_route if decision else None
        return route.labels if route else ()
