"""A ticket is created once per fingerprint, even when the create's response is lost.

The emulator commits the write and then answers 500 (``lost_response``): the product must not
write again blindly. It looks the ticket up in the ticket system itself (GitHub: the hidden
fingerprint marker among the issues with its labels; Azure DevOps: the fingerprint tag, by WIQL),
before creating and after a create that failed transiently.
"""

from __future__ import annotations

import os

import pytest

from emulator import tickets as systems
from emulator.server import Emulator
from shared.config import Settings
from shared.tickets.model import TicketRoute
from shared.tickets.render import build_ticket
from shared.tickets.service import TicketService, provider_for
from tests.support.ticket_index import MemoryIndex, finding

GITHUB = TicketRoute("github", repository="contoso/aks-platform", labels=("sre",))
ADO = TicketRoute("azure-devops", organization="contoso", project="Platform", labels=("aks",))


def service(route: TicketRoute) -> TicketService:
    return TicketService(provider_for(route, Settings.from_env(os.environ)), MemoryIndex())


def opened(emulator: Emulator, route: TicketRoute) -> int:
    if route.provider == "github":
        return len(systems.github_issues(emulator.state, "contoso/aks-platform"))
    return len(emulator.state.ado_work_items)


CREATE = {"github": r"/issues$", "azure-devops": r"/workitems/\$"}


@pytest.mark.parametrize("route", [GITHUB, ADO], ids=["github", "azure-devops"])
def test_a_lost_create_response_does_not_open_a_second_ticket(
    emulator: Emulator, app_env: dict[str, str], route: TicketRoute
) -> None:
    emulator.inject(CREATE[route.provider], method="POST", status=500, lost_response=True, times=1)
    ref = service(route).open_or_update(build_ticket(finding(), "because"))
    assert opened(emulator, route) == 1
    creates = [e for e in emulator.journal() if e.method == "POST" and "comments" not in e.path]
    assert [e.status for e in creates if not e.path.endswith("/wiql")] == [500]  # never re-sent
    assert ref.id == "1" and ref.is_open


@pytest.mark.parametrize("route", [GITHUB, ADO], ids=["github", "azure-devops"])
def test_an_empty_index_finds_the_open_ticket_in_the_ticket_system(
    emulator: Emulator, app_env: dict[str, str], route: TicketRoute
) -> None:
    first = service(route).open_or_update(build_ticket(finding(), "because"))
    # A fresh index (the state store reset, or its write lost): the system itself knows.
    again = service(route).open_or_update(build_ticket(finding(), "because"))
    assert opened(emulator, route) == 1
    assert again.id == first.id


def test_a_ticket_for_another_fingerprint_is_not_taken(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    s = service(GITHUB)
    s.open_or_update(build_ticket(finding(), "because"))
    other = finding().__class__(
        **{**finding().__dict__, "resource_id": finding().resource_id + "2"}
    )
    s.open_or_update(build_ticket(other, "because"))
    assert opened(emulator, GITHUB) == 2
