"""The operations workbook and its alerts against the code: every metric name and dimension their
KQL reads is one that shared/telemetry.py emits, and the workbook JSON is a well-formed
Notebook/1.0 document wired into the Bicep (the resource itself is checked against the Bicep
types with the rest of infra/, test_infra_mutations.py)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bicep_types
import pytest

from shared.telemetry import METRICS

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
WORKBOOK = INFRA / "workbook" / "operations.workbook.json"
MODULE = INFRA / "modules" / "operations-dashboard.bicep"
PLACEHOLDERS = {"__APP_INSIGHTS_ID__", "__WORKSPACE_ID__"}
# Workbook parameters as the portal renders them into the query text before it runs.
RENDERED = {"{TimeRange:grain}": "1h", "{TimeRange}": "ago(7d)", "{Workspace}": "workspace"}
METRIC_FILTER = re.compile(r'\bname\s*(==|in)\s*(\("[^)]*"\)|"[^"]*")')
DIMENSION = re.compile(r"customDimensions\.([A-Za-z_]+)")
STRING = re.compile(r'"([^"]*)"')
ITEM_TYPES = {1: "text", 3: "query", 9: "parameters"}
RESOURCE_TYPES = {"microsoft.insights/components", "microsoft.operationalinsights/workspaces"}


def workbook(root: Path = INFRA) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "workbook" / "operations.workbook.json").read_text())
    return data


def rendered(query: str) -> str:
    for parameter, value in RENDERED.items():
        query = query.replace(parameter, value)
    return query


def workbook_queries(root: Path = INFRA) -> Iterator[tuple[str, str]]:
    for item in workbook(root)["items"]:
        if item["type"] == 3:
            yield f"workbook item {item['name']}", rendered(item["content"]["query"])


def alert_queries(root: Path = INFRA) -> Iterator[tuple[str, str]]:
    doc = bicep_types.parsed(root / "modules" / "operations-dashboard.bicep")
    for name, resource in doc["resources"].items():
        if resource["type"].lower() == "microsoft.insights/scheduledqueryrules":
            body, _ = bicep_types.unwrap(resource["config"])
            for criterion in body["properties"]["criteria"]["allOf"]:
                yield f"alert {name}", criterion["query"]


def query_problems(where: str, query: str) -> list[str]:
    """Metric names and dimensions a customMetrics query reads that the code does not emit."""
    problems = []
    if query.count("(") != query.count(")") or query.count('"') % 2:
        problems.append(f"{where}: unbalanced parentheses or quotes")
    if "customMetrics" not in query:
        return problems
    names = [n for match in METRIC_FILTER.finditer(query) for n in STRING.findall(match.group(2))]
    if not names:
        problems.append(f"{where}: reads customMetrics without naming a metric")
    unknown = [n for n in names if n not in METRICS]
    problems += [f"{where}: no metric {n!r} is emitted (shared/telemetry.py)" for n in unknown]
    offered = {d for n in names if n in METRICS for d in METRICS[n].dimensions}
    problems += [
        f"{where}: no metric it reads has the dimension {d!r}"
        for d in sorted(set(DIMENSION.findall(query)) - offered)
    ]
    return problems


def all_problems(root: Path = INFRA) -> list[str]:
    problems: list[str] = []
    for where, query in [*workbook_queries(root), *alert_queries(root)]:
        problems += query_problems(where, query)
    return problems


def test_every_query_reads_only_emitted_metrics_and_dimensions() -> None:
    assert all_problems() == []


def test_the_workbook_shows_what_operators_need() -> None:
    text = " ".join(q for _, q in workbook_queries())
    for metric in (
        "acrpull.findings",  # open problems by cause and by cluster
        "acrpull.actions",  # fixes over time
        "acrpull.tickets",  # tickets over time
        "acrpull.remediation.duration",  # time to remediate, failed remediations
        "acrpull.credential.days_left",  # the expiry calendar
        "acrpull.sweep.subscriptions",  # subscriptions the sweeps reached, and which they did not
    ):
        assert f'"{metric}"' in text, metric
    assert '"DeadLetteredCount"' in text  # Event Grid's own metric, via diagnostic settings
    titles = {item["name"] for item in workbook()["items"]}
    assert {
        "open-by-cause",
        "open-by-cluster",
        "fixes-over-time",
        "time-to-remediate",
        "expiry-calendar",
        "failed-remediations",
        "dead-lettered",
        "sweep-subscriptions",
    } <= titles
    alerts = " ".join(q for _, q in alert_queries())
    assert '"acrpull.remediation.duration"' in alerts and '"DeadLetteredCount"' in alerts
    assert '"acrpull.sweep.subscriptions"' in alerts and '"unreadable"' in alerts


def test_the_workbook_is_a_well_formed_notebook() -> None:
    data = workbook()
    assert data["version"] == "Notebook/1.0"
    names = [item["name"] for item in data["items"]]
    assert len(names) == len(set(names))
    parameters = {
        p["name"]
        for item in data["items"]
        if item["type"] == 9
        for p in item["content"]["parameters"]
    }
    for item in data["items"]:
        assert item["type"] in ITEM_TYPES, item["name"]
        content = item["content"]
        if item["type"] == 3:
            assert content["version"] == "KqlItem/1.0"
            assert content["queryType"] == 0  # Logs
            assert content["resourceType"] in RESOURCE_TYPES
            assert content["timeContextFromParameter"] in parameters
            used = set(re.findall(r"\{(\w+)(?::\w+)?\}", content["query"]))
            assert used <= parameters, (item["name"], used - parameters)
    text = WORKBOOK.read_text()
    assert set(re.findall(r"__[A-Z_]+__", text)) == PLACEHOLDERS
    module = MODULE.read_text()
    assert "loadTextContent('../workbook/operations.workbook.json')" in module
    assert all(f"'{placeholder}'" in module for placeholder in PLACEHOLDERS)


def test_the_workbook_is_deployed_with_the_app() -> None:
    main = bicep_types.parsed(INFRA / "main.bicep")
    (module,) = [
        m
        for m in main["modules"].values()
        if m["detail"]["path"] == "modules/operations-dashboard.bicep"
    ]
    config, condition = bicep_types.unwrap(module["config"])
    assert condition is None  # always: the workbook and the alerts come with the app
    assert "appInsightsId" in json.dumps(config["params"]["appInsightsId"])  # app.outputs...
    doc = bicep_types.parsed(MODULE)
    ((body, _),) = [
        bicep_types.unwrap(r["config"])
        for r in doc["resources"].values()
        if r["type"].lower() == "microsoft.insights/workbooks"
    ]
    assert body["kind"] == "shared"
    assert body["properties"]["sourceId"] == "appInsightsId"  # the app's Application Insights
    assert body["properties"]["serializedData"] == "workbookJson"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"acrpull.remediation.duration"', '"acrpull.remediation.seconds"'),
        ("customDimensions.cluster", "customDimensions.clusterName"),
        ('where name == \\"acrpull.findings\\"', 'where name == \\"acrpull.finding\\"'),
    ],
    ids=["renamed metric", "renamed dimension", "misspelt name"],
)
def test_a_query_that_drifts_from_the_code_is_caught(old: str, new: str, tmp_path: Path) -> None:
    root = tmp_path / "infra"
    shutil.copytree(INFRA, root)
    for path in (
        root / "workbook" / "operations.workbook.json",
        root / "modules" / "operations-dashboard.bicep",
    ):
        path.write_text(path.read_text().replace(old, new))
    bicep_types.parsed.cache_clear()
    try:
        assert all_problems(root), f"{old} -> {new} went unnoticed"
    finally:
        bicep_types.parsed.cache_clear()
