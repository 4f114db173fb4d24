"""Chat notifications by incoming webhook: a Microsoft Teams channel (an Adaptive Card message, as
a Teams "Workflows" webhook or a legacy connector accepts it) or Slack (``text`` + ``blocks``).

A webhook cannot comment on or close what it posted: a recurrence posts a new message marked
"updated" and a recovery one marked "resolved", each carrying the same fingerprint.

The URL is a credential (whoever has it can post): keep it in the ``TICKET_WEBHOOK_URL`` app
setting (a Key Vault reference in Azure). Errors and logs name its host only.
"""

from __future__ import annotations

from typing import Any

from shared.azure.http_json import JsonClient
from shared.config import Settings
from shared.errors import ConfigurationError
from shared.tickets.errors import raise_for
from shared.tickets.model import WEBHOOK_FORMATS, Ticket, TicketRef, short_hash
from shared.tickets.redact import redact_text
from shared.tickets.render import value_text

OPENED, UPDATED, RESOLVED = "opened", "updated", "resolved"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
_HINT = "the TICKET_WEBHOOK_URL app setting (the URL may have been revoked or mistyped)"
_HEADINGS = {OPENED: "New", UPDATED: "Updated (recurred)", RESOLVED: "Resolved"}


class WebhookNotifier:
    name = "webhook"

    def __init__(self, client: JsonClient, *, message_format: str = "teams") -> None:
        if message_format not in WEBHOOK_FORMATS:
            raise ConfigurationError(
                f"webhook format {message_format!r} is not one of: {', '.join(WEBHOOK_FORMATS)}"
            )
        self._client = client
        self._format = message_format

    @classmethod
    def from_settings(
        cls, settings: Settings, *, url: str | None = None, message_format: str = "teams"
    ) -> WebhookNotifier:
        url = url or settings.ticket_webhook_url
        if not url:
            raise ConfigurationError(
                "tickets go to a webhook but the TICKET_WEBHOOK_URL app setting is empty"
            )
        return cls(JsonClient(url, settings, secret_url=True), message_format=message_format)

    def find(self, ticket: Ticket) -> TicketRef | None:
        """A chat channel cannot be searched: a notification is delivered at least once."""
        return None

    def create(self, ticket: Ticket) -> TicketRef:
        self._post(OPENED, ticket.title, ticket.fingerprint, "", ticket)
        return TicketRef(
            provider=self.name,
            id=f"webhook-{ticket.short_id}",
            url=ticket.portal_url,
            fingerprint=ticket.fingerprint,
            title=ticket.title,
        )

    def get(self, ref: TicketRef) -> TicketRef:
        return ref  # a chat message has no state of its own

    def comment(self, ref: TicketRef, note: str, ticket: Ticket | None = None) -> None:
        self._post(UPDATED, ref.title, ref.fingerprint, note, ticket)

    def close(self, ref: TicketRef, note: str) -> TicketRef:
        self._post(RESOLVED, ref.title, ref.fingerprint, note, None)
        return ref.closed()

    def payload(
        self, kind: str, title: str, fingerprint: str, note: str, ticket: Ticket | None
    ) -> dict[str, Any]:
        build = slack_message if self._format == "slack" else teams_message
        return build(kind, title, fingerprint, note, ticket)

    def _post(
        self, kind: str, title: str, fingerprint: str, note: str, ticket: Ticket | None
    ) -> None:
        body = self.payload(kind, title, fingerprint, note, ticket)
        response = self._client.request("POST", "", body=body)
        raise_for(
            response,
            system=f"The {self._format} webhook at {self._client.host}",
            doing=f"post a {kind} message",
            ok=(200, 202),
            auth=(401, 403, 404),
            credential_hint=_HINT,
        )


def teams_message(
    kind: str, title: str, fingerprint: str, note: str, ticket: Ticket | None
) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": _HEADINGS[kind], "isSubtle": True, "spacing": "None"},
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True},
    ]
    if note:
        body.append({"type": "TextBlock", "text": redact_text(note), "wrap": True})
    actions: list[dict[str, Any]] = []
    if ticket is not None:
        body.append({"type": "TextBlock", "text": ticket.summary, "wrap": True})
        body.append({"type": "TextBlock", "text": f"Why: {ticket.reason}", "wrap": True})
        if ticket.evidence:
            body.append(
                {
                    "type": "FactSet",
                    "facts": [
                        {"title": str(k), "value": value_text(v)}
                        for k, v in ticket.evidence.items()
                    ],
                }
            )
        if ticket.commands:
            body.append({"type": "TextBlock", "text": "What to run", "weight": "Bolder"})
            body.append(
                {
                    "type": "TextBlock",
                    "text": "\n\n".join(ticket.commands),
                    "fontType": "Monospace",
                    "wrap": True,
                }
            )
        actions.append(
            {
                "type": "Action.OpenUrl",
                "title": "Open in the Azure portal",
                "url": ticket.portal_url,
            }
        )
    body.append({"type": "TextBlock", "text": _tag(fingerprint), "isSubtle": True, "size": "Small"})
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if actions:
        content["actions"] = actions
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": content}],
    }


def slack_message(
    kind: str, title: str, fingerprint: str, note: str, ticket: Ticket | None
) -> dict[str, Any]:
    heading = f"{_HEADINGS[kind]}: {title}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": heading[:150]}},
    ]
    if note:
        blocks.append(_section(_slack_escape(redact_text(note))))
    if ticket is not None:
        blocks.append(_section(_slack_escape(ticket.summary)))
        blocks.append(_section(f"*Why:* {_slack_escape(ticket.reason)}"))
        facts = list(ticket.evidence.items())[:10]  # Slack allows ten fields per section
        if facts:
            blocks.append(
                {
                    "type": "section",
                    "fields": [
                        {
                            "type": "mrkdwn",
                            "text": f"*{_slack_escape(str(k))}*\n{_slack_escape(value_text(v))}"[
                                :2000
                            ],
                        }
                        for k, v in facts
                    ],
                }
            )
        if ticket.commands:
            commands = _slack_escape("\n".join(ticket.commands)).replace("```", "'''")
            blocks.append(_section(f"*What to run*\n```{commands[:2900]}```"))
    context = [{"type": "mrkdwn", "text": _tag(fingerprint)}]
    if ticket is not None:
        context.insert(
            0, {"type": "mrkdwn", "text": f"<{ticket.portal_url}|Open in the Azure portal>"}
        )
    blocks.append({"type": "context", "elements": context})
    return {"text": heading, "blocks": blocks}


def _tag(fingerprint: str) -> str:
    return f"acr-pull-remediator fingerprint {short_hash(fingerprint)}"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
