"""The Azure Monitor alert webhook (common alert schema) through the indexed ``alert_webhook``
function: the pods a KubeEvents "Failed to pull image" alert names are classified, diagnosed and
responded to, against the emulator.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.server import Emulator
from emulator.tickets import github_issues
from tests.conftest import SANDBOX_SUB
from tests.support.triggers import (
    Captured,
    http_post,
    logged_outcomes,
    process_handover,
    ticket_policy,
    writes,
)

__all__ = ["ticket_policy"]  # the fixture, used by name

IMAGE = "acrprodweu.azurecr.io/app:v1"
ESSENTIALS = {
    "alertId": "/subscriptions/9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c/providers/Microsoft.AlertsManagement/alerts/b9569717-bc32-442f-add5-83a997729330",
    "alertRule": "acrfix-failed-to-pull-image",
    "severity": "Sev2",
    "signalType": "Log",
    "monitorCondition": "Fired",
    "monitoringService": "Log Analytics",
    "alertTargetIDs": [
        "/subscriptions/9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c/resourcegroups/rg-monitor/providers/microsoft.operationalinsights/workspaces/law-aks"
    ],
    "configurationItems": ["law-aks"],
    "originAlertId": "9a3c1b2e_rg-monitor_microsoft.insights_scheduledqueryrules_acrfix",
    "firedDateTime": "2024-10-01T08:15:00.1234567Z",
    "description": "Pods fail to pull images",
    "essentialsVersion": "1.0",
    "alertContextVersion": "1.1",
}


def kube_event_message(image: str = IMAGE) -> str:
    """What Container Insights stores in KubeEvents.Message for the kubelet's Failed event."""
    return f'Failed to pull image "{image}": ' + k8s.unauthorized_message(
        image, with_credentials=True
    )


def log_alert_with_results(rows: list[list[str]], **essentials: Any) -> dict[str, Any]:
    """A log search alert that embeds its results (alertContext.SearchResults)."""
    columns = ["TimeGenerated", "ClusterId", "Namespace", "Name", "Message"]
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {**ESSENTIALS, **essentials},
            "alertContext": {
                "SearchQuery": 'KubeEvents | where Reason == "Failed" and Message has "Failed to pull image" | project TimeGenerated, ClusterId, Namespace, Name, Message',
                "SearchIntervalStartTimeUtc": "10/1/2024 8:00:00 AM",
                "SearchIntervalEndtimeUtc": "10/1/2024 8:15:00 AM",
                "ResultCount": len(rows),
                "SeverityDescription": "Warning",
                "WorkspaceId": "7b1c5e8a-2f4d-4c3b-9a6e-1d2f3a4b5c6d",
                "SearchIntervalDurationMin": "15",
                "SearchIntervalInMinutes": "15",
                "Threshold": 0,
                "Operator": "Greater Than",
                "SearchResults": {
                    "tables": [
                        {
                            "name": "PrimaryResult",
                            "columns": [
                                {
                                    "name": c,
                                    "type": "datetime" if c == "TimeGenerated" else "string",
                                }
                                for c in columns
                            ],
                            "rows": [["2024-10-01T08:10:00Z", *row] for row in rows],
                        }
                    ],
                    "dataSources": [
                        {
                            "resourceId": ESSENTIALS["alertTargetIDs"][0],
                            "tables": ["KubeEvents"],
                        }
                    ],
                },
                "IncludedSearchResults": "True",
                "AlertType": "Number of results",
            },
        },
    }


def log_alert_v2(cluster_id: str, **essentials: Any) -> dict[str, Any]:
    """A Log Alerts V2 rule split by ClusterId (what infra/modules/pull-failure-alert.bicep makes)."""
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {**ESSENTIALS, "monitoringService": "Log Alerts V2", **essentials},
            "alertContext": {
                "properties": {},
                "conditionType": "LogQueryCriteria",
                "condition": {
                    "windowSize": "PT15M",
                    "allOf": [
                        {
                            "searchQuery": 'KubeEvents | where Reason == "Failed" and Message has "Failed to pull image"',
                            "metricMeasureColumn": None,
                            "targetResourceTypes": "['Microsoft.OperationalInsights/workspaces']",
                            "operator": "GreaterThan",
                            "threshold": "0",
                            "timeAggregation": "Count",
                            "dimensions": [{"name": "ClusterId", "value": cluster_id}],
                            "metricValue": 4.0,
                            "failingPeriods": {
                                "numberOfEvaluationPeriods": 1,
                                "minFailingPeriodsToAlert": 1,
                            },
                            "linkToSearchResultsAPI": "https://api.loganalytics.io/v1/workspaces/7b1c5e8a/query?query=KubeEvents",
                        }
                    ],
                    "windowStartTime": "2024-10-01T08:00:00Z",
                    "windowEndTime": "2024-10-01T08:15:00Z",
                },
            },
        },
    }


def post(
    functions: dict[str, Any], body: dict[str, Any] | bytes, caplog: pytest.LogCaptureFixture
) -> tuple[int, dict[str, Any], list[str], list[dict[str, Any]]]:
    """POST to the indexed webhook: (status, JSON body, hand-over messages, logged outcomes)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    handover = Captured()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="shared"):
        response = functions["alert_webhook"].get_user_function()(
            http_post("alert_webhook", raw), handover
        )
    assert response.mimetype == "application/json"
    return (
        response.status_code,
        json.loads(response.get_body()),
        handover.messages(),
        logged_outcomes(caplog),
    )


@pytest.fixture
def failing(emulator: Emulator, sample: dict[str, Any]) -> dict[str, Any]:
    """aks-prod-weu's api pods fail to pull: its admin pull secret holds a stale password."""
    scenario.apply_break(
        emulator.state, {"cause": "pull-secret-admin-stale", "cluster": "aks-prod-weu"}
    )
    return scenario.find_cluster(emulator.state, "aks-prod-weu")


def test_log_alert_rows_are_diagnosed(
    emulator: Emulator,
    failing: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [
        [failing["id"], "payments", "api-7d9c8b6f5-abcde", kube_event_message()],
        [failing["id"], "payments", "api-7d9c8b6f5-fghij", kube_event_message()],
    ]
    status, body, handed_over, outcomes = post(functions, log_alert_with_results(rows), caplog)

    assert status == 202
    assert body["status"] == "accepted"
    assert body["pods"] == 2 and body["clusters"] == 1
    assert body["processed"] == 1  # two pods, one image, one message: one diagnosis
    assert body["verdicts"] == {"needs-attention": 1}
    assert handed_over == []
    (outcome,) = outcomes
    failed = [f["cause"] for f in outcome["findings"] if f["status"] == "FAIL"]
    assert failed == ["pull-secret-admin-stale"]
    assert all(f["cause"] != "arch-mismatch" for f in outcome["findings"])  # family 1a only
    assert [i["title"] for i in github_issues(emulator.state)] == [
        "[acr-pull] pull-secret-admin-stale on aks-prod-weu"
    ]


def test_log_alerts_v2_dimension_scans_the_cluster(
    emulator: Emulator,
    failing: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    status, body, _, outcomes = post(functions, log_alert_v2(failing["id"]), caplog)
    assert status == 202, body
    assert body["pods"] == 0 and body["clusters"] == 1
    (outcome,) = outcomes
    assert outcome["cluster"] == failing["id"]
    assert [f["cause"] for f in outcome["findings"] if f["status"] == "FAIL"] == [
        "pull-secret-admin-stale"
    ]
    assert len(github_issues(emulator.state)) == 1


def test_a_repeated_delivery_of_the_same_firing_is_handled_once(
    emulator: Emulator,
    failing: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert post(functions, log_alert_v2(failing["id"]), caplog)[0] == 202
    status, body, _, outcomes = post(functions, log_alert_v2(failing["id"]), caplog)
    assert status == 202
    assert body["status"] == "ignored" and "already handled" in body["reason"]
    assert outcomes == []


def test_a_resolved_alert_does_nothing(
    emulator: Emulator,
    failing: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = log_alert_v2(failing["id"], monitorCondition="Resolved")
    status, body, _, outcomes = post(functions, payload, caplog)
    assert (status, body["status"], body["reason"]) == (202, "ignored", "the alert is resolved")
    assert outcomes == []
    assert emulator.journal("arm") == []


def test_a_cluster_outside_the_scope_is_left_alone(
    emulator: Emulator,
    failing: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = failing["id"].replace(failing["id"].split("/")[2], SANDBOX_SUB)
    rows = [[other, "payments", "api-1", kube_event_message()]]
    status, body, _, outcomes = post(functions, log_alert_with_results(rows), caplog)
    assert status == 202
    assert body["processed"] == 0
    assert any("outside the configured scope" in n for n in body["notes"])
    assert outcomes == []
    assert writes(emulator) == []


def test_with_no_budget_the_work_is_handed_over(
    emulator: Emulator,
    failing: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWEEP_BUDGET_SECONDS", "0")
    rows = [[failing["id"], "payments", "api-1", kube_event_message()]]
    status, body, handed_over, outcomes = post(functions, log_alert_with_results(rows), caplog)
    assert status == 202
    assert (body["processed"], body["handedOver"]) == (0, 1)
    assert outcomes == [] and github_issues(emulator.state) == []
    (processed,) = process_handover(functions, handed_over, caplog)
    assert processed["verdict"] == "needs-attention"
    assert len(github_issues(emulator.state)) == 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (
            json.dumps({"schemaId": "Microsoft.Insights/activityLogs", "data": {}}).encode(),
            400,
            "schemaId",
        ),
        (
            json.dumps({"schemaId": "azureMonitorCommonAlertSchema"}).encode(),
            400,
            "data must be an object",
        ),
        (
            json.dumps(
                {"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {}}}
            ).encode(),
            400,
            "alertTargetIDs",
        ),
        (b"{" + b" " * (1024 * 1024 + 1) + b"}", 413, "larger than"),
    ],
    ids=["not-json", "not-object", "other-schema", "no-data", "no-targets", "oversized"],
)
def test_a_bad_body_is_refused_and_nothing_is_done(
    emulator: Emulator,
    failing: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    status: int,
    error: str,
) -> None:
    answer, reply, handed_over, outcomes = post(functions, body, caplog)
    assert answer == status
    assert error in reply["error"]
    assert handed_over == [] and outcomes == []
    assert emulator.journal() == []
