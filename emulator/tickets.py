"""Ticket systems: GitHub Issues, Azure DevOps work items and chat webhooks (Teams, Slack).

Routes (the product finds them through ``GITHUB_API_URL``, ``AZURE_DEVOPS_URL`` and
``TICKET_WEBHOOK_URL``, which :meth:`Emulator.environment` sets):

- ``/github/repos/<owner>/<repo>/issues`` (GET list ``?state=``, POST create),
  ``.../issues/<number>`` (GET, PATCH), ``.../issues/<number>/comments`` (GET, POST): REST API
  2022-11-28 shapes; ``Authorization: Bearer|token <token>`` from ``state.github_tokens`` (401
  "Bad credentials" otherwise); 422 "Validation Failed" for a missing/too long title or body.
- ``/ado/<org>/<project>/_apis/wit/workitems/$<type>`` (POST, ``application/json-patch+json``),
  ``.../workitems/<id>`` (GET, PATCH), ``.../workItems/<id>/comments`` (GET, POST; a ``-preview``
  api-version): REST 7.1 shapes; Basic auth with a PAT from ``state.ado_pats`` (401 for a wrong
  PAT, 203 and a sign-in page without credentials, as Azure DevOps does); rule errors (TF401320)
  for a missing title or a state the work item type does not have.
- ``/webhooks/teams/<hook>?sig=<secret>`` (a Teams Workflows trigger: 202, Adaptive Card
  messages only) and ``/webhooks/slack/services/<team>/<bot>/<secret>`` (200 ``ok``; Slack's
  plain-text errors ``invalid_payload``, ``no_text``, ``invalid_blocks``, ``invalid_token``).

Seeded: GitHub repository ``contoso/aks-platform`` and Azure DevOps project ``contoso/Platform``
(Basic process). Tests add more with :func:`add_github_repository` and :func:`add_ado_project`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

DEFAULT_REPOSITORY = "contoso/aks-platform"
DEFAULT_ADO_PROJECT = ("contoso", "Platform")
GITHUB_API_VERSIONS = ("2022-11-28",)
GITHUB_DOCS = "https://docs.github.com/rest"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
PROCESSES: dict[str, dict[str, list[str]]] = {
    "Basic": {
        "Issue": ["To Do", "Doing", "Done"],
        "Task": ["To Do", "Doing", "Done"],
        "Epic": ["To Do", "Doing", "Done"],
    },
    "Agile": {
        "Bug": ["New", "Active", "Resolved", "Closed"],
        "Issue": ["Active", "Closed"],
        "Task": ["New", "Active", "Closed", "Removed"],
        "User Story": ["New", "Active", "Resolved", "Closed", "Removed"],
    },
    "Scrum": {
        "Bug": ["New", "Approved", "Committed", "Done", "Removed"],
        "Impediment": ["Open", "Closed"],
        "Product Backlog Item": ["New", "Approved", "Committed", "Done", "Removed"],
        "Task": ["To Do", "In Progress", "Done", "Removed"],
    },
}
ADO_FIELDS = frozenset(
    {
        "System.Title",
        "System.Description",
        "System.Tags",
        "System.State",
        "System.History",
        "System.AssignedTo",
        "System.AreaPath",
        "System.IterationPath",
        "Microsoft.VSTS.TCM.ReproSteps",
        "Microsoft.VSTS.Common.Priority",
    }
)


def register(emulator: Emulator) -> None:
    state = emulator.state
    add_github_repository(state, DEFAULT_REPOSITORY)
    add_ado_project(state, *DEFAULT_ADO_PROJECT)
    github = GitHub(state, lambda: emulator.base_url)
    ado = AzureDevOps(state, lambda: emulator.base_url)
    hooks = Webhooks(state)
    repo = "/github/repos/<owner>/<repo>/issues"
    routes: list[tuple[str, str, Callable[..., Response], list[str]]] = [
        (repo, "github", github.issues, ["GET", "POST"]),
        (f"{repo}/<int:number>", "github", github.issue, ["GET", "PATCH"]),
        (f"{repo}/<int:number>/comments", "github", github.comments, ["GET", "POST"]),
        ("/webhooks/teams/<hook>", "webhook", hooks.teams, ["POST"]),
        ("/webhooks/slack/services/<team>/<bot>/<secret>", "webhook", hooks.slack, ["POST"]),
    ]
    routes.append(("/ado/<org>/<project>/_apis/wit/wiql", "azure-devops", ado.wiql, ["POST"]))
    for segment in ("workitems", "workItems"):  # Azure DevOps paths are case-insensitive
        wit = f"/ado/<org>/<project>/_apis/wit/{segment}"
        routes.append((f"{wit}/<item>", "azure-devops", ado.work_item, ["GET", "POST", "PATCH"]))
        routes.append(
            (f"{wit}/<int:item_id>/comments", "azure-devops", ado.comments, ["GET", "POST"])
        )
    for rule, service, handler, methods in routes:
        emulator.mount(rule, service, routed(rule, handler), methods)


def routed(rule: str, handler: Callable[..., Response]) -> Callable[[Request], Response]:
    """Adapt ``handler(request, **url_args)`` to the emulator's ``handler(request)``."""
    single = Map([Rule(rule, endpoint="route")])

    def serve(request: Request) -> Response:
        _, args = single.bind_to_environ(request.environ).match()
        return handler(request, **args)

    return serve


# -- helpers for tests and the emulator's environment() ---------------------------------------


def add_github_repository(state: State, full_name: str) -> Json:
    owner, name = full_name.split("/")
    with state.lock:
        return state.github_repositories.setdefault(
            full_name.lower(),
            {
                "full_name": full_name,
                "owner": owner,
                "name": name,
                "id": 700000000 + len(state.github_repositories) + 1,
                "issues": [],
                "comments": {},
                "labels": {},
            },
        )


def add_ado_project(state: State, organization: str, project: str, process: str = "Basic") -> Json:
    with state.lock:
        return state.ado_projects.setdefault(
            f"{organization}/{project}".lower(),
            {
                "organization": organization,
                "name": project,
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"ado/{organization}/{project}".lower())),
                "process": process,
                "types": PROCESSES[process],
            },
        )


def github_token(state: State) -> str:
    return sorted(state.github_tokens)[0]


def ado_pat(state: State) -> str:
    return sorted(state.ado_pats)[0]


def teams_webhook_url(base_url: str, state: State) -> str:
    secret = state.webhook_secrets["teams"]
    return f"{base_url}/webhooks/teams/acr-pull?api-version=2016-06-01&sig={quote(secret)}"


def slack_webhook_url(base_url: str, state: State) -> str:
    return (
        f"{base_url}/webhooks/slack/services/T0EMULATOR/B0EMULATOR/{state.webhook_secrets['slack']}"
    )


def github_issues(state: State, full_name: str = DEFAULT_REPOSITORY) -> list[Json]:
    with state.lock:
        issues: list[Json] = json.loads(
            json.dumps(state.github_repositories[full_name.lower()]["issues"])
        )
        return issues


def github_comments(state: State, number: int, full_name: str = DEFAULT_REPOSITORY) -> list[Json]:
    with state.lock:
        repo = state.github_repositories[full_name.lower()]
        comments: list[Json] = json.loads(json.dumps(repo["comments"].get(number, [])))
        return comments


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(
        json.dumps(body), status=status, content_type="application/json; charset=utf-8"
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _parse_json(request: Request) -> tuple[bool, Any]:
    try:
        return True, json.loads(request.get_data(as_text=True) or "null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False, None


# -- GitHub ------------------------------------------------------------------------------------

BOT_USER = {
    "login": "acr-pull-remediator",
    "id": 190000001,
    "node_id": "U_kgDOC1Remed",
    "avatar_url": "https://avatars.githubusercontent.com/u/190000001?v=4",
    "gravatar_id": "",
    "type": "User",
    "site_admin": False,
}


class GitHub:
    def __init__(self, state: State, base_url: Any) -> None:
        self.state = state
        self.base_url = base_url

    def _error(self, status: int, message: str, doc: str = GITHUB_DOCS, **extra: Any) -> Response:
        return _json(
            {"message": message, "documentation_url": doc, "status": str(status), **extra}, status
        )

    def _validation(self, resource: str, field: str, code: str, message: str = "") -> Response:
        error: Json = {"resource": resource, "code": code, "field": field}
        if message:
            error["message"] = message
        return self._error(
            422,
            "Validation Failed",
            f"{GITHUB_DOCS}/issues/issues#create-an-issue",
            errors=[error],
        )

    def _guard(
        self, request: Request, owner: str, repo: str
    ) -> tuple[Json | None, Response | None]:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if not auth:
            if request.method != "GET":
                return None, self._error(401, "Requires authentication")
            return None, self._error(404, "Not Found")
        if scheme.lower() not in ("bearer", "token") or token not in self.state.github_tokens:
            return None, self._error(401, "Bad credentials")
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in GITHUB_API_VERSIONS:
            return None, self._error(400, f"API version {version} is not supported.")
        found = self.state.github_repositories.get(f"{owner}/{repo}".lower())
        if found is None:
            return None, self._error(404, "Not Found")
        return found, None

    def _body(self, request: Request) -> tuple[Json | None, Response | None]:
        ok, body = _parse_json(request)
        if not ok:
            return None, self._error(400, "Problems parsing JSON")
        if not isinstance(body, dict):
            return None, self._error(
                422, f"Invalid request.\n\n{json.dumps(body)} is not an object."
            )
        return body, None

    def _api(self, repo: Json) -> str:
        return f"{self.base_url()}/github/repos/{repo['full_name']}"

    def _html(self, repo: Json) -> str:
        return f"https://github.com/{repo['full_name']}"

    def issues(self, request: Request, owner: str, repo: str) -> Response:
        with self.state.lock:
            found, error = self._guard(request, owner, repo)
            if error is not None or found is None:
                return error or self._error(404, "Not Found")
            if request.method == "GET":
                wanted = request.args.get("state", "open")
                if wanted not in ("open", "closed", "all"):
                    return self._validation("Issue", "state", "invalid")
                listed = [i for i in reversed(found["issues"]) if wanted in ("all", i["state"])]
                # ?labels=a,b: issues that carry every one of them (names compare case-blind).
                names = {n.strip().lower() for n in request.args.get("labels", "").split(",")}
                names.discard("")
                listed = [
                    i for i in listed if names <= {label["name"].lower() for label in i["labels"]}
                ]
                per_page = min(int(request.args.get("per_page", "30") or 30), 100)
                page = max(int(request.args.get("page", "1") or 1), 1)
                chunk = listed[(page - 1) * per_page : page * per_page]
                headers = {}
                if page * per_page < len(listed):
                    api = f"{self._api(found)}/issues"
                    query = {**request.args.to_dict(), "page": str(page + 1)}
                    headers["Link"] = f'<{api}?{urlencode(query)}>; rel="next"'
                return _json(chunk, 200, headers)
            body, error = self._body(request)
            if error is not None or body is None:
                return error or self._error(400, "Problems parsing JSON")
            invalid = self._check_issue_fields(body, creating=True)
            if invalid is not None:
                return invalid
            number = len(found["issues"]) + 1
            now = _now()
            issue_id = found["id"] * 1000 + number
            api = f"{self._api(found)}/issues/{number}"
            issue = {
                "id": issue_id,
                "node_id": "I_kwDO" + base64.b64encode(str(issue_id).encode()).decode().rstrip("="),
                "url": api,
                "repository_url": self._api(found),
                "labels_url": f"{api}/labels{{/name}}",
                "comments_url": f"{api}/comments",
                "events_url": f"{api}/events",
                "html_url": f"{self._html(found)}/issues/{number}",
                "number": number,
                "state": "open",
                "state_reason": None,
                "title": str(body["title"]),
                "body": body.get("body"),
                "user": BOT_USER,
                "labels": self._labels(found, body.get("labels") or []),
                "assignee": None,
                "assignees": [],
                "milestone": None,
                "locked": False,
                "active_lock_reason": None,
                "comments": 0,
                "closed_at": None,
                "created_at": now,
                "updated_at": now,
                "closed_by": None,
                "author_association": "CONTRIBUTOR",
                "timeline_url": f"{api}/timeline",
                "performed_via_github_app": None,
                "reactions": _reactions(api),
            }
            found["issues"].append(issue)
            return _json(issue, 201, {"Location": api})

    def issue(self, request: Request, owner: str, repo: str, number: int) -> Response:
        with self.state.lock:
            found, error = self._guard(request, owner, repo)
            if error is not None or found is None:
                return error or self._error(404, "Not Found")
            if not 0 < number <= len(found["issues"]):
                return self._error(404, "Not Found")
            issue = found["issues"][number - 1]
            if request.method == "GET":
                return _json(issue)
            body, error = self._body(request)
            if error is not None or body is None:
                return error or self._error(400, "Problems parsing JSON")
            invalid = self._check_issue_fields(body, creating=False)
            if invalid is not None:
                return invalid
            for key in ("title", "body"):
                if key in body:
                    issue[key] = body[key]
            if "labels" in body:
                issue["labels"] = self._labels(found, body["labels"] or [])
            state = body.get("state")
            if state == "closed" and issue["state"] == "open":
                issue.update(
                    state="closed",
                    state_reason=body.get("state_reason") or "completed",
                    closed_at=_now(),
                    closed_by=BOT_USER,
                )
            elif state == "open" and issue["state"] == "closed":
                issue.update(state="open", state_reason="reopened", closed_at=None, closed_by=None)
            issue["updated_at"] = _now()
            return _json(issue)

    def comments(self, request: Request, owner: str, repo: str, number: int) -> Response:
        with self.state.lock:
            found, error = self._guard(request, owner, repo)
            if error is not None or found is None:
                return error or self._error(404, "Not Found")
            if not 0 < number <= len(found["issues"]):
                return self._error(404, "Not Found")
            issue = found["issues"][number - 1]
            thread = found["comments"].setdefault(number, [])
            if request.method == "GET":
                return _json(thread)
            body, error = self._body(request)
            if error is not None or body is None:
                return error or self._error(400, "Problems parsing JSON")
            text = body.get("body")
            if not isinstance(text, str) or not text:
                return self._validation("IssueComment", "body", "missing_field")
            if len(text) > 65536:
                return self._validation(
                    "IssueComment",
                    "body",
                    "custom",
                    "body is too long (maximum is 65536 characters)",
                )
            comment_id = 2000000000 + sum(len(t) for t in found["comments"].values()) + 1
            now = _now()
            api = f"{self._api(found)}/issues/comments/{comment_id}"
            comment = {
                "id": comment_id,
                "node_id": f"IC_kwDO{comment_id}",
                "url": api,
                "html_url": f"{issue['html_url']}#issuecomment-{comment_id}",
                "body": text,
                "user": BOT_USER,
                "created_at": now,
                "updated_at": now,
                "issue_url": issue["url"],
                "author_association": "CONTRIBUTOR",
                "performed_via_github_app": None,
                "reactions": _reactions(api),
            }
            thread.append(comment)
            issue["comments"] += 1
            issue["updated_at"] = now
            return _json(comment, 201, {"Location": api})

    def _check_issue_fields(self, body: Json, *, creating: bool) -> Response | None:
        title = body.get("title")
        if creating and (title is None or title == ""):
            return self._validation("Issue", "title", "missing_field")
        if title is not None and not isinstance(title, (str, int)):
            return self._error(
                422,
                f"Invalid request.\n\nFor 'properties/title', {json.dumps(title)} is not a string or an integer.",
            )
        if title is not None and len(str(title)) > 256:
            return self._validation(
                "Issue", "title", "custom", "title is too long (maximum is 256 characters)"
            )
        text = body.get("body")
        if text is not None and not isinstance(text, str):
            return self._error(
                422,
                f"Invalid request.\n\nFor 'properties/body', {json.dumps(text)} is not a string or null.",
            )
        if isinstance(text, str) and len(text) > 65536:
            return self._validation(
                "Issue", "body", "custom", "body is too long (maximum is 65536 characters)"
            )
        labels = body.get("labels")
        if labels is not None and (
            not isinstance(labels, list)
            or not all(isinstance(x, str) or (isinstance(x, dict) and "name" in x) for x in labels)
        ):
            return self._error(
                422,
                "Invalid request.\n\nFor 'properties/labels', is not an array of strings or objects.",
            )
        state = body.get("state")
        if state is not None and state not in ("open", "closed"):
            return self._error(
                422,
                f'Invalid request.\n\nFor \'properties/state\', {json.dumps(state)} is not one of ["open", "closed"].',
            )
        reason = body.get("state_reason")
        if reason is not None and reason not in (
            "completed",
            "not_planned",
            "reopened",
            "duplicate",
        ):
            return self._error(
                422,
                f"Invalid request.\n\nFor 'properties/state_reason', {json.dumps(reason)} is not one of "
                '["completed", "not_planned", "duplicate", "reopened", null].',
            )
        return None

    def _labels(self, repo: Json, wanted: list[Any]) -> list[Json]:
        labels = []
        for item in wanted:
            name = item["name"] if isinstance(item, dict) else str(item)
            label = repo["labels"].get(name.lower())
            if label is None:  # GitHub creates a missing label for a user with push access
                label_id = 5000000000 + len(repo["labels"]) + 1
                label = {
                    "id": label_id,
                    "node_id": f"LA_kwDO{label_id}",
                    "url": f"{self._api(repo)}/labels/{quote(name)}",
                    "name": name,
                    "color": "ededed",
                    "default": False,
                    "description": None,
                }
                repo["labels"][name.lower()] = label
            labels.append(label)
        return labels


def _reactions(api: str) -> Json:
    counts = dict.fromkeys(
        ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes"), 0
    )
    return {"url": f"{api}/reactions", "total_count": 0, **counts}


# -- Azure DevOps ------------------------------------------------------------------------------

ADO_IDENTITY = {
    "displayName": "ACR Pull Remediator",
    "id": "8c0f7e1a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
    "uniqueName": "acr-pull-remediator@contoso.com",
    "descriptor": "aad.OGMwZjdlMWEtMmIzYy00ZDVlLThmOTAtYTFiMmMzZDRlNWY2",
}
SIGN_IN_PAGE = (
    "<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head>"
    "<body>Sign in to your account</body></html>"
)


class AzureDevOps:
    def __init__(self, state: State, base_url: Any) -> None:
        self.state = state
        self.base_url = base_url

    @staticmethod
    def _error(status: int, type_key: str, message: str, type_name: str = "") -> Response:
        return _json(
            {
                "$id": "1",
                "innerException": None,
                "message": message,
                "typeName": type_name
                or f"Microsoft.VisualStudio.Services.WebApi.{type_key}, Microsoft.VisualStudio.Services.WebApi",
                "typeKey": type_key,
                "errorCode": 0,
                "eventId": 3000,
            },
            status,
        )

    def _guard(
        self, request: Request, org: str, project: str, *, preview: bool
    ) -> tuple[Json | None, Response | None]:
        auth = request.headers.get("Authorization", "")
        if not auth:
            return None, Response(SIGN_IN_PAGE, status=203, content_type="text/html; charset=utf-8")
        scheme, _, encoded = auth.partition(" ")
        try:
            _, _, pat = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            pat = ""
        if scheme.lower() != "basic" or pat not in self.state.ado_pats:
            response = self._error(
                401,
                "UnauthorizedRequestException",
                "TF400813: The user '' is not authorized to access this resource.",
            )
            response.headers["WWW-Authenticate"] = 'Basic realm="https://dev.azure.com/"'
            return None, response
        version = request.args.get("api-version")
        if not version:
            return None, self._error(
                400,
                "VssVersionNotSpecifiedException",
                f'No api-version was supplied for the "{request.method}" request. The version must be '
                'supplied either as part of the Accept header (e.g. "application/json; api-version=1.0") '
                "or as a query parameter (e.g. '?api-version=1.0').",
            )
        number, _, suffix = version.partition("-")
        if number not in ("5.1", "6.0", "7.0", "7.1") or (
            suffix and not suffix.startswith("preview")
        ):
            return None, self._error(
                400,
                "VssVersionOutOfRangeException",
                f"The requested REST API version of {version} is out of range for this server.",
            )
        if preview and not suffix:
            return None, self._error(
                400,
                "VssInvalidPreviewVersionException",
                f'The requested version "{version}" of the resource is under preview. The -preview '
                f'flag must be supplied in the api-version for such requests. For example: "{version}-preview"',
            )
        found = self.state.ado_projects.get(f"{org}/{project}".lower())
        if found is None:
            return None, self._error(
                404,
                "ProjectDoesNotExistWithNameException",
                f"TF200016: The following project does not exist: {project}. Verify that the name of "
                "the project is correct and that the project exists on the specified Azure DevOps Server.",
            )
        return found, None

    def _url(self, project: Json, item_id: int) -> str:
        return f"{self.base_url()}/ado/{project['organization']}/{project['id']}/_apis/wit/workItems/{item_id}"

    def work_item(self, request: Request, org: str, project: str, item: str) -> Response:
        with self.state.lock:
            found, error = self._guard(request, org, project, preview=False)
            if error is not None or found is None:
                return error or self._error(404, "NotFound", "Not found.")
            if request.method == "POST":
                if not item.startswith("$"):
                    return self._error(
                        405,
                        "MethodNotAllowed",
                        "The requested resource does not support http method 'POST'.",
                    )
                return self._create(request, found, item[1:])
            if not item.isdigit():
                return self._error(
                    400, "ArgumentException", f"The work item id {item} is not valid."
                )
            work_item = self.state.ado_work_items.get(int(item))
            if work_item is None or work_item["_project"] != found["id"]:
                return self._missing(int(item))
            if request.method == "GET":
                return _json(_public(work_item))
            ops, error = self._patch_document(request)
            if error is not None or ops is None:
                return error or self._error(400, "VssPropertyValidationException", "Invalid patch.")
            return self._apply(work_item, ops, found, creating=False)

    def wiql(self, request: Request, org: str, project: str) -> Response:
        """A flat WIQL query: the conditions the product sends (team project, a tag, states)."""
        with self.state.lock:
            found, error = self._guard(request, org, project, preview=False)
            if error is not None or found is None:
                return error or self._error(404, "NotFound", "Not found.")
            ok, body = _parse_json(request)
            query = body.get("query") if ok and isinstance(body, dict) else None
            if not isinstance(query, str) or not re.match(
                r"(?is)^\s*select\s.+\sfrom\s+workitems", query
            ):
                return self._error(
                    400,
                    "WiqlSyntaxException",
                    "TF51005: The query references a field that does not exist.",
                )
            tags = re.findall(r"(?i)\[System\.Tags\]\s+CONTAINS\s+'([^']*)'", query)
            excluded = re.search(r"(?i)\[System\.State\]\s+NOT\s+IN\s*\(([^)]*)\)", query)
            states = (
                {s.strip(" '").lower() for s in excluded.group(1).split(",")} if excluded else set()
            )
            items = [
                w
                for w in sorted(self.state.ado_work_items.values(), key=lambda w: w["id"])
                if w["_project"] == found["id"]
                and all(
                    t.lower()
                    in {
                        x.strip().lower()
                        for x in str(w["fields"].get("System.Tags", "")).split(";")
                    }
                    for t in tags
                )
                and str(w["fields"].get("System.State", "")).lower() not in states
            ]
            return _json(
                {
                    "queryType": "flat",
                    "queryResultType": "workItem",
                    "asOf": _now(),
                    "columns": [{"referenceName": "System.Id", "name": "ID"}],
                    "workItems": [{"id": w["id"], "url": self._url(found, w["id"])} for w in items],
                }
            )

    def _missing(self, item_id: int) -> Response:
        return self._error(
            404,
            "WorkItemUnauthorizedAccessException",
            f"TF401232: Work item {item_id} does not exist, or you do not have permissions to read it.",
        )

    def _patch_document(self, request: Request) -> tuple[list[Json] | None, Response | None]:
        content_type = request.headers.get("Content-Type", "")
        if not content_type.lower().startswith("application/json-patch+json"):
            return None, self._error(
                400,
                "VssRequestContentTypeNotSupportedException",
                f'The request indicated a Content-Type of "{content_type}" for method type '
                f'"{request.method}" which is not supported. Valid content types for this method '
                "are: application/json-patch+json.",
            )
        ok, ops = _parse_json(request)
        valid_ops = ("add", "remove", "replace", "test", "copy", "move")
        if (
            not ok
            or not isinstance(ops, list)
            or not ops
            or not all(
                isinstance(op, dict)
                and op.get("op") in valid_ops
                and isinstance(op.get("path"), str)
                for op in ops
            )
        ):
            return None, self._error(
                400,
                "VssPropertyValidationException",
                "You must pass a valid patch document in the body of the request.",
            )
        for op in ops:
            field = op["path"].removeprefix("/fields/")
            if not op["path"].startswith("/fields/") or field not in ADO_FIELDS:
                return None, self._error(
                    400, "WorkItemFieldInvalidException", f"TF51535: Cannot find field {field}."
                )
        return ops, None

    def _create(self, request: Request, project: Json, kind: str) -> Response:
        types = {name.lower(): name for name in project["types"]}
        if kind.lower() not in types:
            return self._error(
                404,
                "WorkItemTypeNotFoundException",
                f"VS402323: Work item type {kind} does not exist in project {project['name']} or you "
                "do not have permission to access it.",
            )
        ops, error = self._patch_document(request)
        if error is not None or ops is None:
            return error or self._error(400, "VssPropertyValidationException", "Invalid patch.")
        kind = types[kind.lower()]
        item_id = max(self.state.ado_work_items, default=0) + 1
        now = _now()
        work_item: Json = {
            "id": item_id,
            "rev": 0,
            "_project": project["id"],
            "fields": {
                "System.AreaPath": project["name"],
                "System.TeamProject": project["name"],
                "System.IterationPath": project["name"],
                "System.WorkItemType": kind,
                "System.State": project["types"][kind][0],
                "System.Reason": "Added to backlog" if project["process"] == "Basic" else "New",
                "System.CreatedDate": now,
                "System.CreatedBy": ADO_IDENTITY,
                "System.CommentCount": 0,
                "Microsoft.VSTS.Common.Priority": 2,
            },
        }
        return self._apply(work_item, ops, project, creating=True)

    def _apply(
        self, work_item: Json, ops: list[Json], project: Json, *, creating: bool
    ) -> Response:
        fields = dict(work_item["fields"])
        history = None
        for op in ops:
            field = op["path"].removeprefix("/fields/")
            if op["op"] == "remove":
                fields.pop(field, None)
            elif op["op"] in ("add", "replace"):
                if field == "System.History":
                    history = str(op.get("value") or "")
                    continue
                fields[field] = op.get("value")
        title = fields.get("System.Title")
        if not isinstance(title, str) or not title.strip():
            return self._rule_error("Title", "Required, InvalidEmpty")
        if len(title) > 255:
            return self._rule_error("Title", "InvalidTooLong")
        allowed = project["types"][fields["System.WorkItemType"]]
        if fields.get("System.State") not in allowed:
            return self._rule_error("State", "LimitedToValues")
        if isinstance(fields.get("System.Tags"), str):
            tags = sorted(
                {t.strip() for t in fields["System.Tags"].split(";") if t.strip()}, key=str.lower
            )
            fields["System.Tags"] = "; ".join(tags)
        if fields["System.State"] != work_item["fields"]["System.State"] and not creating:
            fields["System.Reason"] = f"Moved to state {fields['System.State']}"
            fields["Microsoft.VSTS.Common.StateChangeDate"] = _now()
            if fields["System.State"] in ("Done", "Closed"):
                fields["Microsoft.VSTS.Common.ClosedDate"] = _now()
        fields["System.ChangedDate"] = _now()
        fields["System.ChangedBy"] = ADO_IDENTITY
        work_item["fields"] = fields
        work_item["rev"] += 1
        url = self._url(project, work_item["id"])
        work_item["url"] = url
        work_item["_links"] = {
            "self": {"href": url},
            "workItemUpdates": {"href": f"{url}/updates"},
            "workItemRevisions": {"href": f"{url}/revisions"},
            "workItemComments": {"href": f"{url}/comments"},
            "html": {
                "href": f"{self.base_url()}/ado/{project['organization']}/{quote(project['name'])}/_workitems/edit/{work_item['id']}"
            },
            "workItemType": {
                "href": f"{self.base_url()}/ado/{project['organization']}/{project['id']}/_apis/wit/workItemTypes/{quote(fields['System.WorkItemType'])}"
            },
            "fields": {
                "href": f"{self.base_url()}/ado/{project['organization']}/{project['id']}/_apis/wit/fields"
            },
        }
        self.state.ado_work_items[work_item["id"]] = work_item
        if history:
            self._add_comment(project, work_item, history)
        return _json(_public(work_item))

    def _rule_error(self, field: str, codes: str) -> Response:
        return self._error(
            400,
            "RuleValidationException",
            f"TF401320: Rule Error for field {field}. Error code: {codes}.",
            "Microsoft.TeamFoundation.WorkItemTracking.Server.RuleValidationException, "
            "Microsoft.TeamFoundation.WorkItemTracking.Server",
        )

    def comments(self, request: Request, org: str, project: str, item_id: int) -> Response:
        with self.state.lock:
            found, error = self._guard(request, org, project, preview=True)
            if error is not None or found is None:
                return error or self._error(404, "NotFound", "Not found.")
            work_item = self.state.ado_work_items.get(item_id)
            if work_item is None or work_item["_project"] != found["id"]:
                return self._missing(item_id)
            thread = self.state.ado_comments.setdefault(item_id, [])
            if request.method == "GET":
                return _json({"totalCount": len(thread), "count": len(thread), "comments": thread})
            ok, body = _parse_json(request)
            if (
                not ok
                or not isinstance(body, dict)
                or not isinstance(body.get("text"), str)
                or not body["text"]
            ):
                return self._error(
                    400,
                    "VssPropertyValidationException",
                    "The request body is invalid: text is required.",
                )
            return _json(self._add_comment(found, work_item, body["text"]))

    def _add_comment(self, project: Json, work_item: Json, text: str) -> Json:
        thread = self.state.ado_comments.setdefault(work_item["id"], [])
        comment_id = sum(len(t) for t in self.state.ado_comments.values()) + 1
        now = _now()
        comment = {
            "workItemId": work_item["id"],
            "id": comment_id,
            "version": 1,
            "text": text,
            "renderedText": text,
            "format": "html",
            "createdBy": ADO_IDENTITY,
            "createdDate": now,
            "modifiedBy": ADO_IDENTITY,
            "modifiedDate": now,
            "url": f"{self._url(project, work_item['id'])}/comments/{comment_id}",
        }
        thread.append(comment)
        work_item["fields"]["System.CommentCount"] = len(thread)
        return comment


def _public(work_item: Json) -> Json:
    return {k: v for k, v in work_item.items() if not k.startswith("_") or k == "_links"}


# -- chat webhooks -----------------------------------------------------------------------------


class Webhooks:
    def __init__(self, state: State) -> None:
        self.state = state

    def teams(self, request: Request, hook: str) -> Response:
        sig = request.args.get("sig")
        if not sig:
            return _json(
                {
                    "error": {
                        "code": "DirectApiAuthorizationRequired",
                        "message": "The request must be authenticated only by Shared Access scheme.",
                    }
                },
                401,
            )
        if not hmac.compare_digest(sig, self.state.webhook_secrets["teams"]):
            return _json(
                {
                    "error": {
                        "code": "DirectApiInvalidAuthorizationSignature",
                        "message": "The provided authorization signature is not valid for this request.",
                    }
                },
                401,
            )
        ok, body = _parse_json(request)
        problem = _teams_problem(body) if ok else "The request content is not valid JSON."
        if problem:
            return _json({"error": {"code": "TriggerInputSchemaMismatch", "message": problem}}, 400)
        with self.state.lock:
            self.state.webhook_messages.append({"format": "teams", "payload": body})
        return Response(status=202)

    def slack(self, request: Request, team: str, bot: str, secret: str) -> Response:
        if team != "T0EMULATOR" or bot != "B0EMULATOR":
            return Response("no_service", status=404, content_type="text/plain")
        if not hmac.compare_digest(secret, self.state.webhook_secrets["slack"]):
            return Response("invalid_token", status=403, content_type="text/plain")
        ok, body = _parse_json(request)
        if not ok or not isinstance(body, dict):
            return Response("invalid_payload", status=400, content_type="text/plain")
        if not body.get("text") and not body.get("blocks"):
            return Response("no_text", status=400, content_type="text/plain")
        if "blocks" in body and not _slack_blocks_valid(body["blocks"]):
            return Response("invalid_blocks", status=400, content_type="text/plain")
        with self.state.lock:
            self.state.webhook_messages.append({"format": "slack", "payload": body})
        return Response("ok", status=200, content_type="text/plain")


def _teams_problem(body: Any) -> str:
    if not isinstance(body, dict) or body.get("type") != "message":
        return "The message must be an object with type 'message'."
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "The message must have at least one attachment."
    for attachment in attachments:
        if not isinstance(attachment, dict) or attachment.get("contentType") != ADAPTIVE_CARD:
            return f"Attachments must have contentType '{ADAPTIVE_CARD}'."
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            return "The attachment content must be an AdaptiveCard."
        if not isinstance(card.get("version"), str) or not isinstance(card.get("body"), list):
            return "An AdaptiveCard needs a version and a body."
        if not all(isinstance(e, dict) and isinstance(e.get("type"), str) for e in card["body"]):
            return "Every AdaptiveCard body element needs a type."
    if len(json.dumps(body)) > 28 * 1024:
        return "The message is larger than 28 KB."
    return ""


def _slack_blocks_valid(blocks: Any) -> bool:
    if not isinstance(blocks, list) or len(blocks) > 50:
        return False
    for block in blocks:
        if not isinstance(block, dict):
            return False
        kind, text = block.get("type"), block.get("text")
        if kind == "header":
            if (
                not isinstance(text, dict)
                or text.get("type") != "plain_text"
                or len(text.get("text", "")) > 150
            ):
                return False
        elif kind == "section":
            fields = block.get("fields")
            if text is None and not fields:
                return False
            if isinstance(text, dict) and len(text.get("text", "")) > 3000:
                return False
            if fields is not None and (
                not isinstance(fields, list)
                or len(fields) > 10
                or any(len(f.get("text", "")) > 2000 for f in fields)
            ):
                return False
        elif kind == "context":
            if not isinstance(block.get("elements"), list) or not block["elements"]:
                return False
        elif kind not in ("divider", "actions", "image", "rich_text"):
            return False
    return True
