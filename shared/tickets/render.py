"""Builds a :class:`Ticket` from a finding and renders it as Markdown (GitHub) or HTML (Azure DevOps).

Every string that reaches a ticket passes :func:`shared.tickets.redact.redact` first; the body
ends with a hidden marker ``<!-- acr-pull-remediator fingerprint: ... -->`` that finds the
ticket again even without the index.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from shared.tickets.model import Ticket, fingerprint
from shared.tickets.redact import redact, redact_text

PRODUCT = "acr-pull-remediator"
TITLE_PREFIX = "[acr-pull]"
PORTALS = {
    "AzureCloud": "https://portal.azure.com",
    "AzureChinaCloud": "https://portal.azure.cn",
    "AzureUSGovernment": "https://portal.azure.us",
}
GITHUB_BODY_LIMIT = 65536  # GitHub rejects longer issue and comment bodies with 422
TITLE_LIMIT = 256
_VALUE_LIMIT = 500


class FindingLike(Protocol):
    """:class:`shared.checks.base.Finding`, or anything with the same fields."""

    @property
    def cause_id(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def resource_id(self) -> str: ...
    @property
    def evidence(self) -> Mapping[str, Any]: ...
    @property
    def commands(self) -> tuple[str, ...]: ...


def build_ticket(
    finding: FindingLike | Mapping[str, Any],
    reason: str,
    *,
    labels: Sequence[str] = (),
    portal: str = PORTALS["AzureCloud"],
) -> Ticket:
    """The ticket for ``finding`` (a Finding, or its ``to_dict()``), ticketed because ``reason``."""
    fields = _finding_fields(finding)
    cause_id, resource_id = fields["cause"], fields["resource"]
    name = _resource_name(resource_id)
    title = f"{TITLE_PREFIX} {cause_id} on {name}"
    return Ticket(
        fingerprint=fingerprint(cause_id, resource_id),
        cause_id=cause_id,
        resource_id=resource_id,
        resource_name=name,
        status=fields["status"],
        title=redact_text(title)[:TITLE_LIMIT],
        summary=redact_text(fields["summary"]),
        reason=redact_text(reason),
        evidence=redact(fields["evidence"]),
        commands=tuple(redact_text(c) for c in fields["commands"]),
        portal_url=portal_url(resource_id, portal),
        labels=tuple(dict.fromkeys([PRODUCT, cause_id, *labels])),
    )


def portal_url(resource_id: str, portal: str = PORTALS["AzureCloud"]) -> str:
    return f"{portal.rstrip('/')}/#resource{resource_id}"


def marker(ticket: Ticket) -> str:
    return f"<!-- {PRODUCT} fingerprint: {ticket.fingerprint.replace('>', '')} -->"


# -- Markdown (GitHub) -----------------------------------------------------------------------


def markdown(ticket: Ticket) -> str:
    parts = [
        f"> {PRODUCT} · cause `{ticket.cause_id}` · status **{ticket.status}**",
        f"**What is wrong.** {_md_text(ticket.summary)}",
        f"**Why a ticket.** {_md_text(ticket.reason)}",
        "### Evidence",
        markdown_evidence(ticket.evidence),
    ]
    if ticket.commands:
        parts += ["### What to run", _fenced("bash", "\n".join(ticket.commands))]
    parts += [
        "### Links",
        f"- [{_md_text(ticket.resource_name)} in the Azure portal]({ticket.portal_url})\n"
        f"- Resource id: `{ticket.resource_id}`",
        marker(ticket),
    ]
    return _cap("\n\n".join(parts), GITHUB_BODY_LIMIT, tail=marker(ticket))


def markdown_note(note: str, ticket: Ticket | None = None) -> str:
    """A comment: one sentence, plus the evidence as it is now when ``ticket`` is given."""
    parts = [_md_text(redact_text(note))]
    if ticket is not None:
        parts += [f"**What is wrong.** {_md_text(ticket.summary)}"]
        parts += [markdown_evidence(ticket.evidence)]
    return _cap("\n\n".join(parts), GITHUB_BODY_LIMIT)


def markdown_evidence(evidence: Mapping[str, Any]) -> str:
    if not evidence:
        return "_No evidence recorded._"
    rows = ["| Evidence | Value |", "| --- | --- |"]
    rows += [f"| {_md_cell(str(k))} | {_md_code(value_text(v))} |" for k, v in evidence.items()]
    return "\n".join(rows)


# -- HTML (Azure DevOps System.Description and comments) ------------------------------------


def html_body(ticket: Ticket) -> str:
    e = html.escape
    parts = [
        f"<p><i>{PRODUCT}</i> · cause <code>{e(ticket.cause_id)}</code> · status "
        f"<b>{e(ticket.status)}</b></p>",
        f"<p><b>What is wrong.</b> {e(ticket.summary)}</p>",
        f"<p><b>Why a ticket.</b> {e(ticket.reason)}</p>",
        "<h3>Evidence</h3>",
        html_evidence(ticket.evidence),
    ]
    if ticket.commands:
        parts += [
            "<h3>What to run</h3>",
            f"<pre><code>{e(chr(10).join(ticket.commands))}</code></pre>",
        ]
    parts += [
        "<h3>Links</h3>",
        f'<ul><li><a href="{e(ticket.portal_url)}">{e(ticket.resource_name)} in the Azure portal</a>'
        f"</li><li>Resource id: <code>{e(ticket.resource_id)}</code></li></ul>",
        marker(ticket),
    ]
    return "\n".join(parts)


def html_note(note: str, ticket: Ticket | None = None) -> str:
    parts = [f"<p>{html.escape(redact_text(note))}</p>"]
    if ticket is not None:
        parts += [f"<p><b>What is wrong.</b> {html.escape(ticket.summary)}</p>"]
        parts += [html_evidence(ticket.evidence)]
    return "\n".join(parts)


def html_evidence(evidence: Mapping[str, Any]) -> str:
    if not evidence:
        return "<p><i>No evidence recorded.</i></p>"
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td><code>{html.escape(value_text(v))}</code></td></tr>"
        for k, v in evidence.items()
    )
    return f"<table><tr><th>Evidence</th><th>Value</th></tr>{rows}</table>"


# -- helpers ---------------------------------------------------------------------------------


def _finding_fields(finding: FindingLike | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(finding, Mapping):
        return {
            "cause": str(finding["cause"]),
            "status": str(finding.get("status", "FAIL")),
            "summary": str(finding.get("summary", "")),
            "resource": str(finding["resource"]),
            "evidence": dict(finding.get("evidence") or {}),
            "commands": tuple(str(c) for c in finding.get("commands") or ()),
        }
    status = getattr(finding, "status", "FAIL")
    return {
        "cause": finding.cause_id,
        "status": str(getattr(status, "value", status)),
        "summary": finding.summary,
        "resource": finding.resource_id,
        "evidence": dict(finding.evidence),
        "commands": tuple(finding.commands),
    }


def _resource_name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1] or resource_id


def value_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= _VALUE_LIMIT else text[: _VALUE_LIMIT - 1] + "…"


def _md_text(text: str) -> str:
    """Plain text in Markdown: no raw HTML, no line breaks that start new blocks."""
    return html.escape(" ".join(text.split()), quote=False)


def _md_cell(text: str) -> str:
    return _md_text(text).replace("|", "\\|")


def _md_code(text: str) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fenced(language: str, text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _cap(text: str, limit: int, *, tail: str = "") -> str:
    if len(text) <= limit:
        return text
    note = "\n\n_(truncated)_\n\n"
    return text[: limit - len(note) - len(tail)] + note + tail
