"""GitHub Issues (REST API 2022-11-28): one issue per fingerprint, comments on recurrence,
closed as completed on recovery.

Auth: a fine-grained personal access token or GitHub App installation token with "Issues: read
and write" on the repository, in the ``GITHUB_TOKEN`` app setting (in Azure a Key Vault
reference, which the platform resolves to the plain value). GitHub Enterprise Server: set
``GITHUB_API_URL`` to ``https://HOST/api/v3``.
"""

from __future__ import annotations

from typing import Any

from shared.azure.http_json import JsonClient, JsonResponse
from shared.config import Settings
from shared.errors import ConfigurationError, TransientError
from shared.tickets import render
from shared.tickets.errors import TicketError, raise_for
from shared.tickets.model import CLOSED, OPEN, Ticket, TicketRef

API_VERSION = "2022-11-28"
MAX_PAGES = 10  # open issues of one cause looked through for a marker
_HINT = "the GITHUB_TOKEN app setting (it needs Issues: read and write on the repository)"


class GitHubIssues:
    name = "github"

    def __init__(
        self, client: JsonClient, repository: str, *, labels: tuple[str, ...] = ()
    ) -> None:
        self._client = client
        self._repository = repository
        self._labels = labels

    @classmethod
    def from_settings(
        cls, settings: Settings, repository: str, *, labels: tuple[str, ...] = ()
    ) -> GitHubIssues:
        if not settings.github_token:
            raise ConfigurationError(
                "tickets go to GitHub but the GITHUB_TOKEN app setting is empty"
            )
        client = JsonClient(
            settings.github_api_url,
            settings,
            secret_headers={"Authorization": f"Bearer {settings.github_token}"},
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION},
        )
        return cls(client, repository, labels=labels)

    def create(self, ticket: Ticket) -> TicketRef:
        issue = self._call(
            "POST",
            "issues",
            {
                "title": ticket.title,
                "body": render.markdown(ticket),
                "labels": list(dict.fromkeys([*ticket.labels, *self._labels])),
            },
            doing=f"open an issue in {self._repository}",
            ok=(201,),
            retry=False,
        )
        return self._ref(issue, ticket.fingerprint)

    def find(self, ticket: Ticket) -> TicketRef | None:
        """The open issue this product made for ``ticket.fingerprint``, if any: the issues that
        carry its labels, and the hidden fingerprint marker in the body."""
        wanted = render.marker(ticket)
        labels = ",".join(ticket.labels[:2])  # the product's label and the cause's
        for page in range(1, MAX_PAGES + 1):
            response = self._client.request(
                "GET",
                f"repos/{self._repository}/issues",
                params={"state": "open", "labels": labels, "per_page": "100", "page": str(page)},
            )
            if _rate_limited(response):
                raise TransientError("GitHub rate limit while looking for an open issue")
            raise_for(
                response,
                system="GitHub",
                doing=f"look for an open issue in {self._repository}",
                ok=(200,),
                credential_hint=_HINT,
            )
            issues = response.body if isinstance(response.body, list) else []
            for issue in issues:
                if isinstance(issue, dict) and wanted in str(issue.get("body") or ""):
                    return self._ref(issue, ticket.fingerprint)
            if len(issues) < 100:
                return None
        return None

    def get(self, ref: TicketRef) -> TicketRef:
        issue = self._call("GET", f"issues/{int(ref.id)}", None, doing=f"read issue #{ref.id}")
        return TicketRef(
            provider=self.name,
            id=ref.id,
            url=str(issue.get("html_url") or ref.url),
            fingerprint=ref.fingerprint,
            title=str(issue.get("title") or ref.title),
            state=CLOSED if issue.get("state") == "closed" else OPEN,
            occurrences=ref.occurrences,
        )

    def comment(self, ref: TicketRef, note: str, ticket: Ticket | None = None) -> None:
        self._call(
            "POST",
            f"issues/{int(ref.id)}/comments",
            {"body": render.markdown_note(note, ticket)},
            doing=f"comment on issue #{ref.id}",
            ok=(201,),
        )

    def close(self, ref: TicketRef, note: str) -> TicketRef:
        self.comment(ref, note)
        self._call(
            "PATCH",
            f"issues/{int(ref.id)}",
            {"state": "closed", "state_reason": "completed"},
            doing=f"close issue #{ref.id}",
        )
        return ref.closed()

    # -- helpers ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        doing: str,
        ok: tuple[int, ...] = (200,),
        retry: bool = True,
    ) -> dict[str, Any]:
        response = self._client.request(
            method, f"repos/{self._repository}/{path}", body=body, retry=retry
        )
        if _rate_limited(response):
            raise TransientError(f"GitHub rate limit while trying to {doing}")
        raise_for(response, system="GitHub", doing=doing, ok=ok, credential_hint=_HINT)
        if not isinstance(response.body, dict):
            raise TicketError(f"GitHub answered {doing} with a body that is not an object")
        return response.body

    def _ref(self, issue: dict[str, Any], fingerprint: str) -> TicketRef:
        return TicketRef(
            provider=self.name,
            id=str(issue["number"]),
            url=str(issue.get("html_url") or ""),
            fingerprint=fingerprint,
            title=str(issue.get("title") or ""),
        )


def _rate_limited(response: JsonResponse) -> bool:
    headers = {k.lower(): v for k, v in response.headers.items()}
    return response.status in (403, 429) and (
        headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
    )
