"""Azure DevOps work items through the real HTTP pipeline against the emulator's Azure DevOps."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest

from emulator import tickets as emu_tickets
from emulator.server import Emulator
from shared.config import Settings
from shared.tickets.azure_devops import AzureDevOpsWorkItems
from shared.tickets.errors import TicketAuthError, TicketError
from shared.tickets.model import TicketRoute
from shared.tickets.render import build_ticket
from shared.tickets.service import TicketService, provider_for
from tests.support.ticket_index import MemoryIndex, finding, secret_values


def items(emulator: Emulator) -> dict[int, dict[str, Any]]:
    with emulator.state.lock:
        return {k: dict(v) for k, v in emulator.state.ado_work_items.items()}


def comments(emulator: Emulator, item_id: int) -> list[dict[str, Any]]:
    with emulator.state.lock:
        return list(emulator.state.ado_comments.get(item_id, []))


def service_for(route: TicketRoute, **env: str) -> TicketService:
    settings = Settings.from_env({**os.environ, **env})
    return TicketService(provider_for(route, settings), MemoryIndex())


BASIC = TicketRoute("azure-devops", organization="contoso", project="Platform", labels=("aks",))


def test_open_recur_and_resolve_keep_one_work_item(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    service = service_for(BASIC)
    ticket = build_ticket(finding(), "ticket because attach-acr is `ticket` in scope prod")

    first = service.open_or_update(ticket)
    second = service.open_or_update(ticket)

    work_items = items(emulator)
    assert list(work_items) == [1]
    fields = work_items[1]["fields"]
    assert fields["System.Title"] == "[acr-pull] acrpull-missing on aks-prod-weu"
    assert fields["System.WorkItemType"] == "Issue" and fields["System.State"] == "To Do"
    assert (
        fields["System.Tags"] == f"acr-pull-remediator; acrpull-missing; aks; fp-{ticket.short_id}"
    )
    assert "<code>aks-prod-weu-agentpool</code>" in fields["System.Description"]
    assert first.url.endswith("/ado/contoso/Platform/_workitems/edit/1")
    assert second.occurrences == 2 and len(comments(emulator, 1)) == 1
    assert comments(emulator, 1)[0]["text"].startswith("<p>Recurred at ")

    closed = service.resolve(ticket.fingerprint, "The check acrpull-missing passed.")

    assert closed is not None and closed.state == "closed"
    fields = items(emulator)[1]["fields"]
    assert fields["System.State"] == "Done" and "Microsoft.VSTS.Common.ClosedDate" in fields
    assert "The check acrpull-missing passed." in comments(emulator, 1)[-1]["text"]
    calls = [(e.method, e.api_version, e.status) for e in emulator.journal("azure-devops")]
    assert calls == [
        ("POST", "7.1", 200),  # WIQL: is one open already? (no)
        ("POST", "7.1", 200),
        ("GET", "7.1", 200),
        ("POST", "7.1-preview.4", 200),
        ("POST", "7.1-preview.4", 200),
        ("PATCH", "7.1", 200),
    ]
    assert emulator.journal("azure-devops")[0].path.endswith("/_apis/wit/wiql")
    create = emulator.journal("azure-devops")[1].body
    assert [op["path"] for op in create] == [
        "/fields/System.Title",
        "/fields/System.Description",
        "/fields/System.Tags",
    ]


def test_the_closed_state_follows_the_process(emulator: Emulator, app_env: dict[str, str]) -> None:
    emu_tickets.add_ado_project(emulator.state, "contoso", "Legacy Apps", process="Agile")
    agile = TicketRoute(
        "azure-devops",
        organization="contoso",
        project="Legacy Apps",
        work_item_type="Bug",
        closed_state="Closed",
    )
    ticket = build_ticket(finding(), "because")
    service = service_for(agile)
    service.open_or_update(ticket)
    service.resolve(ticket.fingerprint, "passed")
    assert items(emulator)[1]["fields"]["System.State"] == "Closed"

    wrong = service_for(TicketRoute(**{**agile.__dict__, "closed_state": "Done"}))
    wrong.open_or_update(ticket)
    with pytest.raises(TicketError, match="TF401320: Rule Error for field State"):
        wrong.resolve(ticket.fingerprint, "passed")


def test_an_unknown_work_item_type_is_a_permanent_error(app_env: dict[str, str]) -> None:
    route = TicketRoute(
        "azure-devops", organization="contoso", project="Platform", work_item_type="Bug"
    )
    with pytest.raises(TicketError, match="VS402323: Work item type Bug does not exist"):
        service_for(route).open_or_update(build_ticket(finding(), "because"))


def test_a_bad_pat_is_a_clear_auth_error_without_the_pat(
    emulator: Emulator, app_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    bad = "x" * 52
    with caplog.at_level(logging.DEBUG), pytest.raises(TicketAuthError) as raised:
        service_for(BASIC, AZURE_DEVOPS_PAT=bad).open_or_update(build_ticket(finding(), "b"))
    message = str(raised.value)
    assert (
        "Azure DevOps rejected the credential while trying to query work items (WIQL) (401"
        in message
    )
    assert "AZURE_DEVOPS_PAT" in message
    assert bad not in message and bad not in caplog.text
    assert items(emulator) == {}


def test_a_request_without_credentials_gets_the_sign_in_page(app_env: dict[str, str]) -> None:
    from shared.azure.http_json import JsonClient

    settings = Settings.from_env(os.environ)
    provider = AzureDevOpsWorkItems(
        JsonClient(settings.azure_devops_url, settings), "contoso", "Platform"
    )
    with pytest.raises(TicketAuthError, match=r"\(203\); check the AZURE_DEVOPS_PAT"):
        provider.create(build_ticket(finding(), "because"))


def test_no_secret_reaches_the_work_item_or_its_comments(
    emulator: Emulator, app_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    service = service_for(BASIC)
    ticket = build_ticket(finding(hostile=True), "because")
    with caplog.at_level(logging.DEBUG):
        service.open_or_update(ticket)
        service.open_or_update(ticket)
        service.resolve(ticket.fingerprint, "passed")
    stored = str(items(emulator)) + str(comments(emulator, 1))
    assert "[redacted]" in stored
    for secret in [*secret_values(), os.environ["AZURE_DEVOPS_PAT"]]:
        assert secret not in stored
        assert secret not in caplog.text
