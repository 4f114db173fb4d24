"""Azure DevOps Boards work items (REST 7.1): one work item per fingerprint, discussion comments on
recurrence, moved to the route's closed state ("Done" or "Closed") on recovery.

Auth: a personal access token with the "Work Items: Read & write" scope in the
``AZURE_DEVOPS_PAT`` app setting (in Azure a Key Vault reference, which the platform resolves to
the plain value), sent as HTTP Basic with an empty user name. Azure DevOps answers a bad PAT with
401, and a request it could not authenticate at all with 203 and a sign-in page: both are
reported as :class:`~shared.tickets.errors.TicketAuthError`.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from shared.azure.http_json import JsonClient
from shared.config import Settings
from shared.errors import ConfigurationError
from shared.tickets import render
from shared.tickets.errors import TicketError, raise_for
from shared.tickets.model import CLOSED, OPEN, Ticket, TicketRef

API_VERSION = "7.1"
COMMENTS_API_VERSION = "7.1-preview.4"
PATCH_JSON = "application/json-patch+json"
CLOSED_STATES = frozenset({"done", "closed", "removed"})
_HINT = "the AZURE_DEVOPS_PAT app setting (it needs the Work Items: Read & write scope)"


class AzureDevOpsWorkItems:
    name = "azure-devops"

    def __init__(
        self,
        client: JsonClient,
        organization: str,
        project: str,
        *,
        work_item_type: str = "Issue",
        closed_state: str = "Done",
        tags: tuple[str, ...] = (),
    ) -> None:
        self._client = client
        self._prefix = f"{quote(organization, safe='')}/{quote(project, safe='')}/_apis/wit"
        self._type = work_item_type
        self._closed_state = closed_state
        self._tags = tags

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        organization: str,
        project: str,
        *,
        work_item_type: str = "Issue",
        closed_state: str = "Done",
        tags: tuple[str, ...] = (),
    ) -> AzureDevOpsWorkItems:
        if not settings.azure_devops_pat:
            raise ConfigurationError(
                "tickets go to Azure DevOps but the AZURE_DEVOPS_PAT app setting is empty"
            )
        basic = base64.b64encode(f":{settings.azure_devops_pat}".encode()).decode()
        client = JsonClient(
            settings.azure_devops_url, settings, secret_headers={"Authorization": f"Basic {basic}"}
        )
        return cls(
            client,
            organization,
            project,
            work_item_type=work_item_type,
            closed_state=closed_state,
            tags=tags,
        )

    def create(self, ticket: Ticket) -> TicketRef:
        tags = dict.fromkeys([*ticket.labels, *self._tags, f"fp-{ticket.short_id}"])
        item = self._call(
            "POST",
            f"workitems/${quote(self._type, safe='')}",
            [
                _add("System.Title", ticket.title),
                _add("System.Description", render.html_body(ticket)),
                _add("System.Tags", "; ".join(tags)),
            ],
            doing=f"create a work item of type {self._type}",
            retry=False,
        )
        return TicketRef(
            provider=self.name,
            id=str(item["id"]),
            url=_html_url(item),
            fingerprint=ticket.fingerprint,
            title=ticket.title,
        )

    def find(self, ticket: Ticket) -> TicketRef | None:
        """The open work item tagged with ``ticket``'s fingerprint tag, if any (WIQL)."""
        closed = ", ".join(_wiql(s) for s in sorted({*CLOSED_STATES, self._closed_state.lower()}))
        tag = _wiql(f"fp-{ticket.short_id}")
        # Values are WIQL string literals (quotes doubled); WIQL has no bound parameters.
        query = (
            "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "  # noqa: S608
            f"AND [System.Tags] CONTAINS {tag} AND [System.State] NOT IN ({closed}) "
            "ORDER BY [System.Id]"
        )
        result = self._call("POST", "wiql", {"query": query}, doing="query work items (WIQL)")
        items = result.get("workItems") or []
        if not items:
            return None
        ref = TicketRef(
            provider=self.name,
            id=str(items[0]["id"]),
            url="",
            fingerprint=ticket.fingerprint,
            title=ticket.title,
        )
        return self.get(ref)

    def get(self, ref: TicketRef) -> TicketRef:
        item = self._call("GET", f"workitems/{int(ref.id)}", None, doing=f"read work item {ref.id}")
        fields = item.get("fields") or {}
        state = str(fields.get("System.State") or "")
        closed = state.lower() in CLOSED_STATES | {self._closed_state.lower()}
        return TicketRef(
            provider=self.name,
            id=ref.id,
            url=_html_url(item) or ref.url,
            fingerprint=ref.fingerprint,
            title=str(fields.get("System.Title") or ref.title),
            state=CLOSED if closed else OPEN,
            occurrences=ref.occurrences,
        )

    def comment(self, ref: TicketRef, note: str, ticket: Ticket | None = None) -> None:
        self._call(
            "POST",
            f"workItems/{int(ref.id)}/comments",
            {"text": render.html_note(note, ticket)},
            doing=f"comment on work item {ref.id}",
            api_version=COMMENTS_API_VERSION,
        )

    def close(self, ref: TicketRef, note: str) -> TicketRef:
        self.comment(ref, note)
        self._call(
            "PATCH",
            f"workitems/{int(ref.id)}",
            [_add("System.State", self._closed_state)],
            doing=f"move work item {ref.id} to {self._closed_state}",
        )
        return ref.closed()

    def _call(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        doing: str,
        api_version: str = API_VERSION,
        retry: bool = True,
    ) -> dict[str, Any]:
        response = self._client.request(
            method,
            f"{self._prefix}/{path}",
            params={"api-version": api_version},
            body=body,
            content_type=PATCH_JSON if isinstance(body, list) else "application/json",
            retry=retry,
        )
        raise_for(
            response,
            system="Azure DevOps",
            doing=doing,
            ok=(200,),
            auth=(203, 401, 403),
            credential_hint=_HINT,
        )
        if not isinstance(response.body, dict):
            raise TicketError(f"Azure DevOps answered {doing} with a body that is not an object")
        return response.body


def _wiql(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _add(field: str, value: str) -> dict[str, str]:
    return {"op": "add", "path": f"/fields/{field}", "value": value}


def _html_url(item: dict[str, Any]) -> str:
    links = item.get("_links") or {}
    return str((links.get("html") or {}).get("href") or item.get("url") or "")
