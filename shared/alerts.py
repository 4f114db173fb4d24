"""Azure Monitor alerts in the common alert schema, as an action group posts them.

Two shapes name failing pods' clusters (``infra/modules/pull-failure-alert.bicep`` makes the
second):

- a log search alert that embeds its search results (``alertContext.SearchResults.tables``, the
  ``Log Analytics`` monitoring service): rows of a ``KubeEvents`` query with the columns
  ``ClusterId``, ``Namespace``, ``Name`` (the pod) and ``Message``;
- a ``Log Alerts V2`` rule (``conditionType: LogQueryCriteria``), which never embeds results: its
  ``condition.allOf[].dimensions`` carry ``ClusterId``, and the failing pods are read from the
  cluster.

``essentials.alertTargetIDs`` that are managed clusters count as clusters too (an alert scoped to
a cluster rather than to a Log Analytics workspace). Anything else is a :class:`BadAlert`: the
webhook answers 400 (or 413) and does nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.resource_id import ResourceId
from shared.signals import MAX_FIELD_LENGTH, BadSignal

SCHEMA_ID = "azureMonitorCommonAlertSchema"
# Action groups cap common-schema alerts at 256 KB; a body four times that is not an alert.
MAX_BODY_BYTES = 1024 * 1024
MAX_ROWS = 1000
MAX_MESSAGE_CHARS = 16 * 1024  # what shared.classify scans
MANAGED_CLUSTERS = "microsoft.containerservice/managedclusters"
POD_COLUMNS = {
    "clusterid": "cluster",
    "namespace": "namespace",
    "name": "pod",
    "message": "message",
}


class BadAlert(BadSignal):
    """A request body that is not a common-schema alert we can read; ``status`` is the answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AlertPod:
    """One search result row: a pod that failed to pull, and the kubelet's message."""

    cluster_id: str
    namespace: str
    pod: str
    message: str


@dataclass(frozen=True)
class Alert:
    alert_id: str
    rule: str
    monitor_condition: str  # "Fired" or "Resolved"
    fired: str
    target_ids: tuple[str, ...]
    pods: tuple[AlertPod, ...]  # rows that name pods
    clusters: tuple[str, ...]  # cluster ids named without pods (dimensions, alert targets)
    skipped: tuple[str, ...] = ()  # why rows were left out

    @property
    def resolved(self) -> bool:
        return self.monitor_condition.lower() == "resolved"

    @property
    def signal_id(self) -> str:
        """One id per firing: an action group that retries a delivery sends the same one."""
        return f"alert:{self.alert_id}:{self.fired}"


def parse_alert(body: bytes) -> Alert:
    if len(body) > MAX_BODY_BYTES:
        raise BadAlert(f"the request body is larger than {MAX_BODY_BYTES} bytes", 413)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadAlert("the request body is not JSON") from None
    if not isinstance(payload, Mapping):
        raise BadAlert("the request body must be a JSON object")
    if payload.get("schemaId") != SCHEMA_ID:
        raise BadAlert(f"schemaId must be {SCHEMA_ID!r} (enable the common alert schema)")
    data = _object(payload, "data", "data")
    essentials = _object(data, "essentials", "data.essentials")
    context = data.get("alertContext") or {}
    if not isinstance(context, Mapping):
        raise BadAlert("data.alertContext must be an object")
    targets = essentials.get("alertTargetIDs")
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise BadAlert("data.essentials.alertTargetIDs must be a list of resource ids")
    skipped: list[str] = []
    pods = _search_result_pods(context, skipped)
    named = {p.cluster_id.lower() for p in pods}
    clusters = [c for c in _dimension_clusters(context) if c.lower() not in named]
    clusters += [
        t for t in targets if _is_cluster(t) and t.lower() not in named and t not in clusters
    ]
    return Alert(
        alert_id=_text(essentials, "alertId", "data.essentials.alertId"),
        rule=_text(essentials, "alertRule", "data.essentials.alertRule", required=False),
        monitor_condition=_text(essentials, "monitorCondition", "data.essentials.monitorCondition"),
        fired=_text(essentials, "firedDateTime", "data.essentials.firedDateTime", required=False),
        target_ids=tuple(_clip(t) for t in targets[:20]),
        pods=tuple(pods),
        clusters=tuple(dict.fromkeys(clusters)),
        skipped=tuple(skipped),
    )


def _search_result_pods(context: Mapping[str, Any], skipped: list[str]) -> list[AlertPod]:
    results = context.get("SearchResults")
    if results is None:
        return []
    tables = results.get("tables") if isinstance(results, Mapping) else None
    if not isinstance(tables, list):
        raise BadAlert("alertContext.SearchResults.tables must be a list")
    pods: list[AlertPod] = []
    for table in tables:
        if not isinstance(table, Mapping):
            raise BadAlert("each of alertContext.SearchResults.tables must be an object")
        columns, rows = table.get("columns"), table.get("rows")
        if not isinstance(columns, list) or not isinstance(rows, list):
            raise BadAlert("a search results table needs columns and rows lists")
        names = [str(c.get("name", "")).lower() if isinstance(c, Mapping) else "" for c in columns]
        index = {POD_COLUMNS[n]: i for i, n in enumerate(names) if n in POD_COLUMNS}
        if set(index) != set(POD_COLUMNS.values()):
            missing = sorted(k for k, v in POD_COLUMNS.items() if v not in index)
            skipped.append(f"table without the columns {', '.join(missing)}")
            continue
        for number, row in enumerate(rows):
            if len(pods) >= MAX_ROWS:
                skipped.append(f"rows beyond the first {MAX_ROWS}")
                return pods
            pod = _row_pod(row, index)
            if isinstance(pod, str):
                skipped.append(f"row {number}: {pod}")
            else:
                pods.append(pod)
    return pods


def _row_pod(row: Any, index: Mapping[str, int]) -> AlertPod | str:
    if not isinstance(row, list) or len(row) <= max(index.values()):
        return "not a list of the table's columns"
    values = {key: row[i] for key, i in index.items()}
    if not all(isinstance(v, str) for v in values.values()):
        return "a column is not a string"
    cluster, namespace, pod = values["cluster"], values["namespace"], values["pod"]
    for name, value in (("ClusterId", cluster), ("Namespace", namespace), ("Name", pod)):
        if not value or len(value) > MAX_FIELD_LENGTH or not value.isprintable():
            return f"{name} is empty, too long or holds control characters"
    if not _is_cluster(cluster):
        return "ClusterId is not a managed cluster resource id"
    return AlertPod(cluster, namespace, pod, values["message"][:MAX_MESSAGE_CHARS])


def _dimension_clusters(context: Mapping[str, Any]) -> list[str]:
    condition = context.get("condition")
    criteria = condition.get("allOf") if isinstance(condition, Mapping) else None
    found: list[str] = []
    for criterion in criteria if isinstance(criteria, list) else ():
        dimensions = criterion.get("dimensions") if isinstance(criterion, Mapping) else None
        for dimension in dimensions if isinstance(dimensions, list) else ():
            if not isinstance(dimension, Mapping):
                continue
            name, value = dimension.get("name"), dimension.get("value")
            if str(name).lower() == "clusterid" and isinstance(value, str) and _is_cluster(value):
                found.append(value)
    for dimension in context.get("Dimensions") or ():  # log search alerts with results
        if isinstance(dimension, Mapping) and str(dimension.get("name")).lower() == "clusterid":
            value = dimension.get("value")
            if isinstance(value, str) and _is_cluster(value):
                found.append(value)
    return found


def _is_cluster(value: str) -> bool:
    if len(value) > MAX_FIELD_LENGTH or not value.isprintable():
        return False
    try:
        resource = ResourceId.parse(value)
    except ValueError:
        return False
    return resource.full_type.lower() == MANAGED_CLUSTERS and not resource.child


def _object(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if not isinstance(value, Mapping):
        raise BadAlert(f"{path} must be an object")
    return value


def _text(parent: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> str:
    value = parent.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise BadAlert(f"{path} must be a non-empty string")
    if len(value) > MAX_FIELD_LENGTH or not value.isprintable():
        raise BadAlert(f"{path} is too long or holds control characters")
    return value


def _clip(value: str, limit: int = 300) -> str:
    return value if len(value) <= limit else value[:limit] + "..."
