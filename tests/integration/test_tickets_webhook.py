"""Teams and Slack webhooks through the real HTTP pipeline against the emulator's webhook sinks."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest

from emulator import tickets as emu_tickets
from emulator.server import Emulator
from shared.config import Settings
from shared.tickets.errors import TicketAuthError
from shared.tickets.model import TicketRoute
from shared.tickets.render import build_ticket
from shared.tickets.service import TicketService, provider_for
from tests.support.ticket_index import MemoryIndex, finding, secret_values


def messages(emulator: Emulator) -> list[dict[str, Any]]:
    with emulator.state.lock:
        return list(emulator.state.webhook_messages)


def texts(card: dict[str, Any]) -> list[str]:
    return [b.get("text", "") for b in card["attachments"][0]["content"]["body"]]


def service_for(route: TicketRoute) -> TicketService:
    return TicketService(provider_for(route, Settings.from_env(os.environ)), MemoryIndex())


def test_teams_gets_opened_updated_and_resolved_cards(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    service = service_for(TicketRoute("webhook"))  # the URL comes from TICKET_WEBHOOK_URL
    ticket = build_ticket(finding(), "ticket because attach-acr is `ticket` in scope prod")

    first = service.open_or_update(ticket)
    second = service.open_or_update(ticket)
    closed = service.resolve(ticket.fingerprint, "The check passed.")

    sent = messages(emulator)
    assert [m["format"] for m in sent] == ["teams"] * 3
    headings = [texts(m["payload"])[0] for m in sent]
    assert headings == ["New", "Updated (recurred)", "Resolved"]
    opened = sent[0]["payload"]["attachments"][0]
    assert opened["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert opened["content"]["actions"][0]["url"] == ticket.portal_url
    facts = next(b for b in opened["content"]["body"] if b["type"] == "FactSet")["facts"]
    assert {"title": "kubelet_identity", "value": "aks-prod-weu-agentpool"} in facts
    tag = f"acr-pull-remediator fingerprint {ticket.short_id}"
    assert all(texts(m["payload"])[-1] == tag for m in sent)
    assert first.is_new and second.occurrences == 2 and closed is not None
    assert service.resolve(ticket.fingerprint, "again") is None
    assert len(messages(emulator)) == 3


def test_slack_gets_blocks(emulator: Emulator, app_env: dict[str, str]) -> None:
    url = emu_tickets.slack_webhook_url(emulator.base_url, emulator.state)
    service = service_for(TicketRoute("webhook", webhook_format="slack", webhook_url=url))
    ticket = build_ticket(finding(), "because")
    service.open_or_update(ticket)
    service.resolve(ticket.fingerprint, "The check passed.")
    sent = messages(emulator)
    assert [m["format"] for m in sent] == ["slack", "slack"]
    assert sent[0]["payload"]["text"] == "New: [acr-pull] acrpull-missing on aks-prod-weu"
    assert sent[1]["payload"]["text"] == "Resolved: [acr-pull] acrpull-missing on aks-prod-weu"
    kinds = [b["type"] for b in sent[0]["payload"]["blocks"]]
    assert kinds == ["header", "section", "section", "section", "section", "context"]


@pytest.mark.parametrize("fmt", ["teams", "slack"])
def test_a_revoked_webhook_url_is_an_auth_error_that_hides_the_url(
    emulator: Emulator, app_env: dict[str, str], caplog: pytest.LogCaptureFixture, fmt: str
) -> None:
    good = (
        os.environ["TICKET_WEBHOOK_URL"]
        if fmt == "teams"
        else emu_tickets.slack_webhook_url(emulator.base_url, emulator.state)
    )
    secret = emulator.state.webhook_secrets[fmt]
    bad = good.replace(secret, "revoked" + secret[7:])
    service = service_for(TicketRoute("webhook", webhook_format=fmt, webhook_url=bad))
    with caplog.at_level(logging.DEBUG), pytest.raises(TicketAuthError) as raised:
        service.open_or_update(build_ticket(finding(), "because"))
    message = str(raised.value)
    assert f"The {fmt} webhook at 127.0.0.1:" in message and "TICKET_WEBHOOK_URL" in message
    assert secret[7:] not in message and secret[7:] not in caplog.text
    assert messages(emulator) == []


def test_no_secret_reaches_a_chat_message(emulator: Emulator, app_env: dict[str, str]) -> None:
    ticket = build_ticket(finding(hostile=True), "because")
    for fmt in ("teams", "slack"):
        url = os.environ["TICKET_WEBHOOK_URL"] if fmt == "teams" else None
        url = url or emu_tickets.slack_webhook_url(emulator.base_url, emulator.state)
        service = service_for(TicketRoute("webhook", webhook_format=fmt, webhook_url=url))
        service.open_or_update(ticket)
        service.open_or_update(ticket)
    stored = str(messages(emulator))
    assert len(messages(emulator)) == 4 and "[redacted]" in stored
    for secret in secret_values():
        assert secret not in stored
