"""Azure Monitor platform metrics of registries (``Microsoft.Insights/metrics``, 2023-10-01)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.azure.cache import RunCache, cached
from shared.azure.errors import translated
from shared.ports.registries import PullMinute, RegistryPullMetrics

if TYPE_CHECKING:
    from shared.azure.factory import ClientFactory

API_VERSION = "2023-10-01"
PULL_METRICS = ("TotalPullCount", "SuccessfulPullCount")


class MetricsReader:
    factory: ClientFactory
    cache: RunCache

    # Once per registry per run: every pair of a sweep's batch on that registry shares the hour.
    @cached
    def get_registry_pull_metrics(self, registry_id: str, *, minutes: int) -> RegistryPullMetrics:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            ResourceNotFoundError,
            map_error,
        )
        from azure.core.rest import HttpRequest

        end = datetime.now(UTC).replace(second=0, microsecond=0)
        start = end - timedelta(minutes=minutes)
        client = self.factory.monitor()
        request = HttpRequest(
            "GET",
            client.format_url(f"{registry_id}/providers/Microsoft.Insights/metrics"),
            params={
                "api-version": API_VERSION,
                "metricnames": ",".join(PULL_METRICS),
                "timespan": f"{_iso(start)}/{_iso(end)}",
                "interval": "PT1M",
                "aggregation": "Total",
            },
        )
        with translated(registry_id, doing="read the pull metrics of"):
            response = client.send_request(request)
            map_error(
                response.status_code,
                response,
                {401: ClientAuthenticationError, 404: ResourceNotFoundError},
            )
            response.raise_for_status()
            body: dict[str, Any] = response.json()
        return _pull_metrics(body, minutes)


def _pull_metrics(body: dict[str, Any], minutes: int) -> RegistryPullMetrics:
    """One series per metric; minutes missing from a series had no pulls of that kind."""
    series: dict[str, dict[str, float]] = {}
    for metric in body.get("value") or []:
        name = (metric.get("name") or {}).get("value", "")
        points = series.setdefault(name, {})
        for timeseries in metric.get("timeseries") or []:
            for point in timeseries.get("data") or []:
                at = point.get("timeStamp", "")
                points[at] = points.get(at, 0.0) + float(point.get("total") or 0)
    total, successful = series.get(PULL_METRICS[0], {}), series.get(PULL_METRICS[1], {})
    return RegistryPullMetrics(
        window_minutes=minutes,
        minutes=tuple(
            PullMinute(at=at, total=int(total.get(at, 0)), successful=int(successful.get(at, 0)))
            for at in sorted(set(total) | set(successful))
        ),
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
