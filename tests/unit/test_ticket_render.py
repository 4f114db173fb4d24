"""Ticket content: fingerprints, titles, Markdown/HTML bodies, routes, and the redaction step."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.errors import ConfigurationError
from shared.tickets import render
from shared.tickets.model import TicketRef, TicketRoute, fingerprint, short_hash
from shared.tickets.redact import REDACTED, redact, redact_text
from shared.tickets.webhook import slack_message, teams_message
from tests.support.ticket_index import CLUSTER_ID, finding, secret_values


def test_fingerprint_is_stable_and_case_insensitive() -> None:
    a = fingerprint("acrpull-missing", CLUSTER_ID)
    assert a == fingerprint("ACRPULL-MISSING", CLUSTER_ID.upper() + "/")
    assert a.startswith("acrpull-missing:/subscriptions/9a3c1b2e-")
    assert a == a.lower()
    assert len(short_hash(a)) == 10
    assert short_hash(a) != short_hash(fingerprint("acrpull-missing", CLUSTER_ID + "2"))


def test_ticket_title_labels_and_markdown_sections() -> None:
    ticket = render.build_ticket(finding(), "ticket because attach-acr is `ticket` in scope prod")
    assert ticket.title == "[acr-pull] acrpull-missing on aks-prod-weu"
    assert ticket.labels == ("acr-pull-remediator", "acrpull-missing")
    body = render.markdown(ticket)
    assert "The kubelet identity aks-prod-weu-agentpool has no AcrPull role" in body
    assert "ticket because attach-acr is `ticket` in scope prod" in body
    assert "| kubelet_identity | `aks-prod-weu-agentpool` |" in body
    assert "| role_assignments | `0` |" in body
    assert (
        "```bash\naz aks update -g rg-aks-prod -n aks-prod-weu --attach-acr contosoacr\n```" in body
    )
    assert f"https://portal.azure.com/#resource{CLUSTER_ID}" in body
    assert body.endswith(f"<!-- acr-pull-remediator fingerprint: {ticket.fingerprint} -->")


def test_a_finding_dict_gives_the_same_ticket_as_the_finding() -> None:
    f = finding()
    assert render.build_ticket(f.to_dict(), "r") == render.build_ticket(f, "r")


def test_hostile_strings_cannot_break_out_of_their_cell_or_block() -> None:
    f = finding()
    hostile = {
        "name": "x | y\n### injected heading",
        "html": "<img src=x onerror=alert(1)>",
        "ticks": "a ``` b",
    }
    ticket = render.build_ticket(
        {**f.to_dict(), "evidence": hostile, "commands": ["echo '```'"]}, "because"
    )
    body = render.markdown(ticket)
    assert "\n### injected heading" not in body
    assert "x \\| y ### injected heading" in body
    assert "````bash\necho '```'\n````" in body
    html = render.html_body(ticket)
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_huge_finding_is_cut_to_githubs_limit_and_keeps_the_marker() -> None:
    f = finding()
    evidence = {f"key{i}": "v" * 400 for i in range(400)}
    ticket = render.build_ticket({**f.to_dict(), "evidence": evidence}, "because")
    body = render.markdown(ticket)
    assert len(body) <= render.GITHUB_BODY_LIMIT
    assert "_(truncated)_" in body
    assert body.endswith(render.marker(ticket))


def test_redaction_by_key_keeps_what_is_not_a_secret() -> None:
    out = redact(
        {
            "password": "p@ss",
            "client_secret": {"value": "x"},
            "dockerconfigjson": "eyJhdXRocyI6e319",
            "Authorization": "Basic abc",
            "secret_expires": "2024-06-01T00:00:00Z",
            "secret_key_id": "0b3c5e9a-1111-4d2e-9f00-123456789abc",
            "token_count": 3,
            "admin_user_enabled": True,
            "nested": [{"api_key": "k"}, {"ok": "value"}],
        }
    )
    assert out["password"] == out["client_secret"] == out["dockerconfigjson"] == REDACTED
    assert out["Authorization"] == REDACTED
    assert out["secret_expires"] == "2024-06-01T00:00:00Z"
    assert out["secret_key_id"] == "0b3c5e9a-1111-4d2e-9f00-123456789abc"
    assert out["token_count"] == 3 and out["admin_user_enabled"] is True
    assert out["nested"] == [{"api_key": REDACTED}, {"ok": "value"}]


@pytest.mark.parametrize("secret", secret_values())
def test_redaction_by_shape_removes_credentials_in_free_text(secret: str) -> None:
    assert secret not in redact_text(f"error: got {secret} back; password={secret}")


@pytest.mark.parametrize(
    "text",
    [
        CLUSTER_ID,
        "/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d",
        "contosoacr.azurecr.io/team-a/web:v1.2.3@sha256:3d380ca8864549e74af4b29c10f9cb0956236dfb01c40ca076fb6c37253234db",
        "AKSUbuntu-2204gen2containerd-202401.09.0",
        "Windows2022Datacenter-containerd",
        "kubectl create secret docker-registry acr-auth --docker-password <service-principal-password>",
        'az acr login -n contosoacr --password "$ACR_PASSWORD"',
        "2024-05-01T12:00:00.0000000Z",
    ],
)
def test_redaction_keeps_ids_digests_images_and_placeholders(text: str) -> None:
    assert redact_text(text) == text


def test_redaction_catches_the_entra_secret_format() -> None:
    secret = "abc8Q~Zx.y_1234567890abcdefghijKLMNOPQRST"
    assert redact_text(f"reset gave {secret}") == f"reset gave {REDACTED}"


def test_no_secret_reaches_any_rendering() -> None:
    ticket = render.build_ticket(finding(hostile=True), f"because {secret_values()[0]}")
    ref = TicketRef("webhook", "1", "", ticket.fingerprint, ticket.title)
    outputs = [
        render.markdown(ticket),
        render.html_body(ticket),
        render.markdown_note("recurred", ticket),
        render.html_note("recurred", ticket),
        str(teams_message("opened", ref.title, ref.fingerprint, "", ticket)),
        str(slack_message("updated", ref.title, ref.fingerprint, "note", ticket)),
    ]
    for output in outputs:
        for secret in secret_values():
            assert secret not in output
    assert "docker login contosoacr.azurecr.io -u contosoacr --password [redacted]" in outputs[0]


def test_routes_validate_with_the_allowed_values_in_the_message() -> None:
    assert (
        TicketRoute.from_mapping({"provider": "github", "repository": "contoso/ops"}).labels == ()
    )
    with pytest.raises(ConfigurationError, match="github, azure-devops, webhook"):
        TicketRoute(provider="jira")
    with pytest.raises(ConfigurationError, match="owner/name"):
        TicketRoute(provider="github", repository="not a repo")
    with pytest.raises(ConfigurationError, match=r"organization.*project"):
        TicketRoute(provider="azure-devops")
    with pytest.raises(ConfigurationError, match="teams, slack"):
        TicketRoute(provider="webhook", webhook_format="discord")
    with pytest.raises(ConfigurationError, match="unknown keys repo; allowed"):
        TicketRoute.from_mapping({"provider": "github", "repo": "x/y"})


def test_a_route_and_the_settings_never_print_credentials() -> None:
    route = TicketRoute(provider="webhook", webhook_url="https://hooks.example/secret-part")
    assert "secret-part" not in repr(route)
    settings = Settings.from_env(
        {
            "GITHUB_TOKEN": "ghp_tokenvalue",
            "AZURE_DEVOPS_PAT": "patvalue",
            "TICKET_WEBHOOK_URL": "https://hooks.example/secret-part",
            "OUTCOME_TOPIC_KEY": "topickey",
        }
    )
    for value in ("ghp_tokenvalue", "patvalue", "secret-part", "topickey"):
        assert value not in repr(settings)
    assert settings.github_api_url == "https://api.github.com"
    with pytest.raises(ConfigurationError, match="TICKET_WEBHOOK_URL: the value must be an https"):
        Settings.from_env({"TICKET_WEBHOOK_URL": "http://hooks.example/secret-part"})


def test_ticket_ref_round_trips_for_the_store() -> None:
    ref = TicketRef("github", "12", "https://github.com/o/r/issues/12", "fp", "t", occurrences=3)
    assert TicketRef.from_dict(ref.to_dict()) == ref
    assert ref.closed().state == "closed" and not ref.is_new
