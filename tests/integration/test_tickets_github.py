"""GitHub Issues through the real HTTP pipeline against the emulator's GitHub."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

import pytest

from emulator import tickets as gh
from emulator.server import Emulator
from shared.config import Settings
from shared.tickets.errors import TicketAuthError, TicketError
from shared.tickets.github import GitHubIssues
from shared.tickets.model import TicketRoute
from shared.tickets.render import build_ticket
from shared.tickets.service import TicketService, provider_for
from tests.support.ticket_index import MemoryIndex, finding, secret_values

REPO = "contoso/aks-platform"


@pytest.fixture
def service(emulator: Emulator, app_env: dict[str, str]) -> TicketService:
    settings = Settings.from_env(os.environ)
    provider = provider_for(TicketRoute("github", repository=REPO, labels=("sre",)), settings)
    return TicketService(
        provider, MemoryIndex(), clock=lambda: datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
    )


def test_open_recur_and_resolve_keep_one_issue(emulator: Emulator, service: TicketService) -> None:
    ticket = build_ticket(finding(), "ticket because attach-acr is `ticket` in scope prod")

    first = service.open_or_update(ticket)
    second = service.open_or_update(ticket)

    issues = gh.github_issues(emulator.state, REPO)
    assert len(issues) == 1
    issue = issues[0]
    assert first.is_new and not second.is_new and second.occurrences == 2
    assert (first.id, first.url) == ("1", "https://github.com/contoso/aks-platform/issues/1")
    assert issue["title"] == "[acr-pull] acrpull-missing on aks-prod-weu"
    assert [label["name"] for label in issue["labels"]] == [
        "acr-pull-remediator",
        "acrpull-missing",
        "sre",
    ]
    assert f"fingerprint: {ticket.fingerprint}" in issue["body"]
    comments = gh.github_comments(emulator.state, 1, REPO)
    assert len(comments) == 1 and issue["comments"] == 1
    assert comments[0]["body"].startswith("Recurred at 2024-05-02T08:00:00Z (occurrence 2).")

    closed = service.resolve(ticket.fingerprint, "The check acrpull-missing passed.")

    issue = gh.github_issues(emulator.state, REPO)[0]
    assert closed is not None and closed.state == "closed"
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
    assert issue["closed_at"] is not None
    last = gh.github_comments(emulator.state, 1, REPO)[-1]["body"]
    assert last.startswith("The check acrpull-missing passed. (resolved at 2024-05-02T08:00:00Z)")
    assert service.resolve(ticket.fingerprint, "again") is None
    writes = [e for e in emulator.journal("github") if e.method != "GET"]
    assert [(e.method, e.status) for e in writes] == [
        ("POST", 201),
        ("POST", 201),
        ("POST", 201),
        ("PATCH", 200),
    ]


def test_a_recovered_then_recurring_cause_opens_a_new_issue(
    emulator: Emulator, service: TicketService
) -> None:
    ticket = build_ticket(finding(), "because")
    service.open_or_update(ticket)
    service.resolve(ticket.fingerprint, "passed")
    again = service.open_or_update(ticket)
    assert again.id == "2" and again.is_new
    assert [i["state"] for i in gh.github_issues(emulator.state, REPO)] == ["closed", "open"]


def test_an_issue_closed_by_hand_is_not_reused(emulator: Emulator, service: TicketService) -> None:
    ticket = build_ticket(finding(), "because")
    service.open_or_update(ticket)
    with emulator.state.lock:
        emulator.state.github_repositories[REPO]["issues"][0]["state"] = "closed"

    ref = service.open_or_update(ticket)

    assert ref.id == "2" and ref.is_new
    assert gh.github_comments(emulator.state, 1, REPO) == []
    linked = gh.github_comments(emulator.state, 2, REPO)
    assert (
        linked[0]["body"]
        == "Previously tracked in https://github.com/contoso/aks-platform/issues/1."
    )


def test_different_resources_get_different_issues(
    emulator: Emulator, service: TicketService
) -> None:
    service.open_or_update(build_ticket(finding(), "because"))
    service.open_or_update(build_ticket(finding(resource_id=finding().resource_id + "-2"), "b"))
    assert len(gh.github_issues(emulator.state, REPO)) == 2


def test_a_bad_token_is_a_clear_auth_error_without_the_token(
    emulator: Emulator, app_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    bad = "ghp_" + "Wr0ngT0kenValue" * 2
    settings = Settings.from_env({**os.environ, "GITHUB_TOKEN": bad})
    service = TicketService(GitHubIssues.from_settings(settings, REPO), MemoryIndex())
    with caplog.at_level(logging.DEBUG), pytest.raises(TicketAuthError) as raised:
        service.open_or_update(build_ticket(finding(), "because"))
    message = str(raised.value)
    assert "GitHub rejected the credential while trying to look for an open issue" in message
    assert "401: Bad credentials" in message and "GITHUB_TOKEN" in message
    assert bad not in message and bad not in caplog.text
    assert gh.github_issues(emulator.state, REPO) == []


def test_a_missing_repository_is_a_permanent_error(app_env: dict[str, str]) -> None:
    settings = Settings.from_env(os.environ)
    provider = GitHubIssues.from_settings(settings, "contoso/does-not-exist")
    with pytest.raises(
        TicketError,
        match="GitHub refused to open an issue in contoso/does-not-exist: 404 Not Found",
    ):
        provider.create(build_ticket(finding(), "because"))


def test_no_secret_reaches_the_issue_or_its_comments(
    emulator: Emulator, service: TicketService, caplog: pytest.LogCaptureFixture
) -> None:
    ticket = build_ticket(finding(hostile=True), "because")
    with caplog.at_level(logging.DEBUG):
        service.open_or_update(ticket)
        service.open_or_update(ticket)
        service.resolve(ticket.fingerprint, "passed")
    stored = str(gh.github_issues(emulator.state, REPO)) + str(
        gh.github_comments(emulator.state, 1, REPO)
    )
    journal = str([e.body for e in emulator.journal("github")])
    assert "[redacted]" in stored
    for secret in [*secret_values(), os.environ["GITHUB_TOKEN"]]:
        assert secret not in stored
        assert secret not in journal
        assert secret not in caplog.text


def test_throttling_surfaces_as_transient(emulator: Emulator, service: TicketService) -> None:
    from shared.errors import TransientError

    emulator.inject(r"^/github/", status=503)
    with pytest.raises(TransientError, match="GitHub failed to look for an open issue"):
        service.open_or_update(build_ticket(finding(), "because"))
    assert len([e for e in emulator.journal("github") if e.method == "GET"]) > 1  # reads retried
    assert [e for e in emulator.journal("github") if e.method == "POST"] == []
