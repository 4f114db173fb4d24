"""Microsoft.Insights metrics (Azure Monitor, api-version 2023-10-01) for container registries.

``GET {resourceId}/providers/Microsoft.Insights/metrics`` with ``metricnames``, ``timespan``,
``interval`` and ``aggregation``, answered in the shape of the REST specification's
``GetMetric.json`` example. Registries serve ``TotalPullCount`` and ``SuccessfulPullCount`` from
``state.registry_pull_metrics`` (scenario breaks set them); other metric names are refused as
Azure refuses them, and other resource types have no metrics here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from emulator.arm import ArmError, ArmRequest, ResourceKind
from emulator.providers.containerregistry import REGISTRY
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

METRICS = "Microsoft.Insights/metrics"
REGISTRY_METRICS = {
    "TotalPullCount": ("Total Pull Count", "Number of image pulls in total", "total"),
    "SuccessfulPullCount": (
        "Successful Pull Count",
        "Number of successful image pulls",
        "successful",
    ),
}
INTERVALS = {"PT1M": 1, "PT5M": 5, "PT15M": 15, "PT30M": 30, "PT1H": 60}
_TIMESPAN = re.compile(r"^(?P<start>[0-9T:.\-]+Z?)/(?P<end>[0-9T:.\-]+Z?)$")


def _metrics(state: State, arm: ArmRequest) -> Json:
    scope = arm.scope
    registry = state.get(scope)
    if registry is None or registry.get("type", "").lower() != REGISTRY.lower():
        raise ArmError(404, "ResourceNotFound", f"The resource '{scope}' has no metrics here.")
    args = arm.request.args
    names = [n for n in (args.get("metricnames") or "").split(",") if n]
    unknown = [n for n in names if n not in REGISTRY_METRICS]
    if not names or unknown:
        raise ArmError(
            400,
            "BadRequest",
            f"Failed to find metric configuration for provider: Microsoft.ContainerRegistry, "
            f"resource Type: registries, metric: {', '.join(unknown) or '(none)'}, Valid "
            f"metrics: {', '.join(REGISTRY_METRICS)}",
        )
    interval = args.get("interval", "PT1M")
    if interval not in INTERVALS:
        raise ArmError(400, "BadRequest", f"Invalid interval '{interval}'.")
    if (args.get("aggregation") or "Total").lower() != "total":
        raise ArmError(400, "BadRequest", "Only the Total aggregation is served for pull counts.")
    start, end = _timespan(args.get("timespan"))
    step = INTERVALS[interval]
    samples = state.registry_pull_metrics.get(scope.lower(), [])
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    value: list[Json] = []
    points = 0
    for name in names:
        localized, description, key = REGISTRY_METRICS[name]
        data = []
        slot = start
        while slot < end:
            total = 0.0
            for sample in samples:
                at = now - timedelta(minutes=int(sample["minutesAgo"]))
                if slot <= at < slot + timedelta(minutes=step):
                    total += float(sample[key])
            data.append({"timeStamp": _iso(slot), "total": total})
            slot += timedelta(minutes=step)
        points += len(data)
        value.append(
            {
                "id": f"{scope}/providers/Microsoft.Insights/metrics/{name}",
                "type": METRICS,
                "name": {"value": name, "localizedValue": localized},
                "displayDescription": description,
                "unit": "Count",
                "timeseries": [{"metadatavalues": [], "data": data}],
                "errorCode": "Success",
            }
        )
    return {
        "cost": points,
        "timespan": f"{_iso(start)}/{_iso(end)}",
        "interval": interval,
        "value": value,
        "namespace": REGISTRY.lower(),
        "resourceregion": registry.get("location", ""),
    }


def _timespan(raw: str | None) -> tuple[datetime, datetime]:
    """ISO 8601 'start/end' (Azure's default is the last hour), floored to the minute."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    if not raw:
        return now - timedelta(hours=1), now
    match = _TIMESPAN.match(raw)
    try:
        if match is None:
            raise ValueError(raw)
        start, end = (_parse(match.group(g)) for g in ("start", "end"))
    except ValueError as exc:
        raise ArmError(400, "BadRequest", f"Invalid timespan '{raw}'.") from exc
    if end <= start or end - start > timedelta(days=93):
        raise ArmError(400, "BadRequest", f"Invalid timespan '{raw}'.")
    return start.replace(second=0, microsecond=0), end.replace(second=0, microsecond=0)


def _parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def register(emulator: Emulator) -> None:
    emulator.arm.register(ResourceKind(type=METRICS, read_only=True, get_collection=_metrics))
