"""Contract tests for the emulator's ticket systems: documented shapes, and the requests GitHub,
Azure DevOps, Teams and Slack reject (bad credentials, bad bodies)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from emulator import tickets as t
from emulator.server import Emulator

GITHUB_ISSUE_KEYS = {
    "id", "node_id", "url", "repository_url", "labels_url", "comments_url", "events_url",
    "html_url", "number", "state", "state_reason", "title", "body", "user", "labels", "assignee",
    "assignees", "milestone", "locked", "active_lock_reason", "comments", "closed_at",
    "created_at", "updated_at", "closed_by", "author_association", "timeline_url",
    "performed_via_github_app", "reactions",
}  # fmt: skip
GITHUB_COMMENT_KEYS = {
    "id", "node_id", "url", "html_url", "body", "user", "created_at", "updated_at", "issue_url",
    "author_association", "performed_via_github_app", "reactions",
}  # fmt: skip


def call(emulator: Emulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method, emulator.base_url + path, verify=emulator.ca_path, timeout=10, **kwargs
    )


def gh(emulator: Emulator, token: str | None = None) -> dict[str, str]:
    token = token or t.github_token(emulator.state)
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }


ISSUES = "/github/repos/contoso/aks-platform/issues"


def test_github_issue_and_comment_shapes(emulator: Emulator) -> None:
    created = call(
        emulator, "POST", ISSUES, headers=gh(emulator), json={"title": "T", "labels": ["a"]}
    )
    assert created.status_code == 201 and created.headers["Location"].endswith("/issues/1")
    issue = created.json()
    assert set(issue) == GITHUB_ISSUE_KEYS
    assert (issue["number"], issue["state"], issue["body"], issue["comments"]) == (
        1,
        "open",
        None,
        0,
    )
    assert set(issue["labels"][0]) == {
        "id",
        "node_id",
        "url",
        "name",
        "color",
        "default",
        "description",
    }
    comment = call(
        emulator, "POST", f"{ISSUES}/1/comments", headers=gh(emulator), json={"body": "hi"}
    )
    assert comment.status_code == 201 and set(comment.json()) == GITHUB_COMMENT_KEYS
    closed = call(emulator, "PATCH", f"{ISSUES}/1", headers=gh(emulator), json={"state": "closed"})
    assert closed.json()["state_reason"] == "completed" and closed.json()["closed_at"]
    assert call(emulator, "GET", f"{ISSUES}/1", headers=gh(emulator)).json()["comments"] == 1
    listed = call(emulator, "GET", ISSUES, headers=gh(emulator), params={"state": "all"}).json()
    assert [i["number"] for i in listed] == [1]
    assert call(emulator, "GET", ISSUES, headers=gh(emulator)).json() == []


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "Requires authentication"),
        ({"Authorization": "Bearer ghp_wrong"}, 401, "Bad credentials"),
        ({"Authorization": "Basic Z2hwOng="}, 401, "Bad credentials"),
    ],
)
def test_github_rejects_bad_credentials(
    emulator: Emulator, headers: dict[str, str], status: int, message: str
) -> None:
    response = call(emulator, "POST", ISSUES, headers=headers, json={"title": "T"})
    assert response.status_code == status
    assert response.json()["message"] == message
    assert response.json()["documentation_url"].startswith("https://docs.github.com/")
    assert t.github_issues(emulator.state) == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"body": "no title"}, 422, "Validation Failed"),
        ({"title": ""}, 422, "Validation Failed"),
        ({"title": "x" * 257}, 422, "Validation Failed"),
        ({"title": "T", "body": "x" * 65537}, 422, "Validation Failed"),
        ({"title": ["list"]}, 422, "Invalid request."),
        ({"title": "T", "labels": "not-a-list"}, 422, "Invalid request."),
        ([{"title": "T"}], 422, "Invalid request."),
    ],
)
def test_github_rejects_bad_issue_bodies(
    emulator: Emulator, body: Any, status: int, message: str
) -> None:
    response = call(emulator, "POST", ISSUES, headers=gh(emulator), json=body)
    assert response.status_code == status
    assert response.json()["message"].startswith(message)
    assert t.github_issues(emulator.state) == []


def test_github_rejects_bad_json_updates_and_unknown_things(emulator: Emulator) -> None:
    headers = gh(emulator)
    bad_json = call(
        emulator, "POST", ISSUES, headers={**headers, "Content-Type": "application/json"}, data="{"
    )
    assert (bad_json.status_code, bad_json.json()["message"]) == (400, "Problems parsing JSON")
    missing = call(emulator, "POST", ISSUES, headers=gh(emulator), json={"title": "T"})
    assert missing.status_code == 201
    wrong_state = call(emulator, "PATCH", f"{ISSUES}/1", headers=headers, json={"state": "done"})
    assert wrong_state.status_code == 422
    no_body = call(emulator, "POST", f"{ISSUES}/1/comments", headers=headers, json={})
    assert no_body.status_code == 422 and no_body.json()["errors"][0]["code"] == "missing_field"
    assert call(emulator, "GET", f"{ISSUES}/9", headers=headers).status_code == 404
    other = "/github/repos/contoso/other/issues"
    assert call(emulator, "POST", other, headers=headers, json={"title": "T"}).status_code == 404
    version = call(
        emulator, "GET", ISSUES, headers={**headers, "X-GitHub-Api-Version": "2020-01-01"}
    )
    assert version.status_code == 400


# -- Azure DevOps ----------------------------------------------------------------------------

WIT = "/ado/contoso/Platform/_apis/wit"
PATCH = "application/json-patch+json"


def ado(emulator: Emulator, pat: str | None = None, content_type: str = PATCH) -> dict[str, str]:
    pat = pat if pat is not None else t.ado_pat(emulator.state)
    basic = base64.b64encode(f":{pat}".encode()).decode()
    return {"Authorization": f"Basic {basic}", "Content-Type": content_type}


def title(value: str) -> list[dict[str, str]]:
    return [{"op": "add", "path": "/fields/System.Title", "value": value}]


def test_ado_work_item_and_comment_shapes(emulator: Emulator) -> None:
    created = call(
        emulator,
        "POST",
        f"{WIT}/workitems/$Issue",
        params={"api-version": "7.1"},
        headers=ado(emulator),
        json=title("T"),
    )
    assert created.status_code == 200
    item = created.json()
    assert set(item) == {"id", "rev", "fields", "_links", "url"}
    assert (item["id"], item["rev"]) == (1, 1)
    assert (
        item["fields"]["System.State"] == "To Do"
        and item["fields"]["System.WorkItemType"] == "Issue"
    )
    assert set(item["_links"]) >= {"self", "html", "workItemComments", "workItemType", "fields"}
    comment = call(
        emulator,
        "POST",
        f"{WIT}/workItems/1/comments",
        params={"api-version": "7.1-preview.4"},
        headers=ado(emulator, content_type="application/json"),
        json={"text": "<p>hi</p>"},
    )
    assert comment.status_code == 200
    assert set(comment.json()) >= {
        "workItemId",
        "id",
        "version",
        "text",
        "createdBy",
        "createdDate",
        "url",
    }
    moved = call(
        emulator,
        "PATCH",
        f"{WIT}/workitems/1",
        params={"api-version": "7.1"},
        headers=ado(emulator),
        json=[{"op": "add", "path": "/fields/System.State", "value": "Done"}],
    )
    assert moved.json()["fields"]["System.State"] == "Done" and moved.json()["rev"] == 2
    assert moved.json()["fields"]["System.CommentCount"] == 1


@pytest.mark.parametrize(
    ("pat", "status"),
    [(None, 200), ("", 203), ("wrong-pat", 401)],
)
def test_ado_rejects_bad_credentials(emulator: Emulator, pat: str | None, status: int) -> None:
    headers = ado(emulator, pat)
    if pat == "":
        headers.pop("Authorization")
    response = call(
        emulator,
        "POST",
        f"{WIT}/workitems/$Issue",
        params={"api-version": "7.1"},
        headers=headers,
        json=title("T"),
    )
    assert response.status_code == status
    if status == 203:
        assert response.headers["Content-Type"].startswith("text/html")
    if status == 401:
        assert response.json()["typeKey"] == "UnauthorizedRequestException"
    assert len(emulator.state.ado_work_items) == (1 if status == 200 else 0)


@pytest.mark.parametrize(
    ("path", "params", "content_type", "body", "status", "type_key"),
    [
        ("workitems/$Issue", {}, PATCH, title("T"), 400, "VssVersionNotSpecifiedException"),
        (
            "workitems/$Issue",
            {"api-version": "7.1"},
            "application/json",
            title("T"),
            400,
            "VssRequestContentTypeNotSupportedException",
        ),
        (
            "workitems/$Issue",
            {"api-version": "7.1"},
            PATCH,
            {"title": "T"},
            400,
            "VssPropertyValidationException",
        ),
        (
            "workitems/$Issue",
            {"api-version": "7.1"},
            PATCH,
            [{"op": "add", "path": "/fields/System.Description", "value": "d"}],
            400,
            "RuleValidationException",
        ),
        (
            "workitems/$Issue",
            {"api-version": "7.1"},
            PATCH,
            [*title("T"), {"op": "add", "path": "/fields/System.State", "value": "Closed"}],
            400,
            "RuleValidationException",
        ),
        (
            "workitems/$Issue",
            {"api-version": "7.1"},
            PATCH,
            [{"op": "add", "path": "/fields/Custom.X", "value": "d"}],
            400,
            "WorkItemFieldInvalidException",
        ),
        (
            "workitems/$Bug",
            {"api-version": "7.1"},
            PATCH,
            title("T"),
            404,
            "WorkItemTypeNotFoundException",
        ),
        (
            "workItems/1/comments",
            {"api-version": "7.1"},
            "application/json",
            {"text": "x"},
            400,
            "VssInvalidPreviewVersionException",
        ),
        (
            "workItems/42/comments",
            {"api-version": "7.1-preview.4"},
            "application/json",
            {"text": "x"},
            404,
            "WorkItemUnauthorizedAccessException",
        ),
    ],
)
def test_ado_rejects_bad_requests(
    emulator: Emulator,
    path: str,
    params: dict[str, str],
    content_type: str,
    body: Any,
    status: int,
    type_key: str,
) -> None:
    response = call(
        emulator,
        "POST",
        f"{WIT}/{path}",
        params=params,
        headers=ado(emulator, content_type=content_type),
        json=body,
    )
    assert response.status_code == status
    assert response.json()["typeKey"] == type_key
    assert emulator.state.ado_work_items == {}


def test_ado_unknown_project(emulator: Emulator) -> None:
    response = call(
        emulator,
        "POST",
        "/ado/contoso/Nope/_apis/wit/workitems/$Issue",
        params={"api-version": "7.1"},
        headers=ado(emulator),
        json=title("T"),
    )
    assert response.status_code == 404
    assert response.json()["message"].startswith(
        "TF200016: The following project does not exist: Nope."
    )


# -- webhooks --------------------------------------------------------------------------------


def card() -> dict[str, Any]:
    content = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": "x"}],
    }
    return {
        "type": "message",
        "attachments": [{"contentType": t.ADAPTIVE_CARD, "content": content}],
    }


def test_teams_accepts_cards_and_rejects_bad_signatures_and_bodies(emulator: Emulator) -> None:
    url = t.teams_webhook_url(emulator.base_url, emulator.state)
    ok = requests.post(url, json=card(), verify=emulator.ca_path, timeout=10)
    assert ok.status_code == 202
    bad_sig = requests.post(
        url.split("&sig=")[0] + "&sig=wrong", json=card(), verify=emulator.ca_path, timeout=10
    )
    assert (bad_sig.status_code, bad_sig.json()["error"]["code"]) == (
        401,
        "DirectApiInvalidAuthorizationSignature",
    )
    no_sig = requests.post(url.split("&sig=")[0], json=card(), verify=emulator.ca_path, timeout=10)
    assert (no_sig.status_code, no_sig.json()["error"]["code"]) == (
        401,
        "DirectApiAuthorizationRequired",
    )
    for body in (
        {"text": "plain"},
        {**card(), "attachments": [{"contentType": "text/plain"}]},
        {"type": "message", "attachments": []},
    ):
        bad = requests.post(url, json=body, verify=emulator.ca_path, timeout=10)
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "TriggerInputSchemaMismatch")
    assert len(emulator.state.webhook_messages) == 1


def test_slack_accepts_blocks_and_rejects_bad_tokens_and_bodies(emulator: Emulator) -> None:
    url = t.slack_webhook_url(emulator.base_url, emulator.state)
    post = lambda u, **kw: requests.post(u, verify=emulator.ca_path, timeout=10, **kw)  # noqa: E731
    ok = post(
        url,
        json={
            "text": "hi",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
        },
    )
    assert (ok.status_code, ok.text) == (200, "ok")
    assert (post(url[:-4] + "xxxx", json={"text": "hi"}).text) == "invalid_token"
    assert post(url.replace("T0EMULATOR", "T1"), json={"text": "hi"}).status_code == 404
    assert (
        post(url, data="{", headers={"Content-Type": "application/json"}).text
    ) == "invalid_payload"
    assert post(url, json={}).text == "no_text"
    header = {"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}
    assert post(url, json={"text": "x", "blocks": [header]}).text == "invalid_blocks"
    assert len(emulator.state.webhook_messages) == 1
