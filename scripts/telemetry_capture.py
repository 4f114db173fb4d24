"""Metrics and spans kept in memory (OpenTelemetry SDK), for the demo and the tests.

The product's own calls (``shared.telemetry``) are what fill them: this only swaps the Azure
Monitor exporter for an in-memory reader and span exporter.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Point:
    name: str
    attributes: dict[str, str]
    value: float  # a counter's sum, a histogram's sum, a gauge's last value
    count: int  # a histogram's count of recordings (1 for a counter or gauge point)


class Capture:
    def __init__(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from shared import telemetry

        self.reader = InMemoryMetricReader()
        self.exporter = InMemorySpanExporter()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        telemetry.use_providers(self.meter_provider, self.tracer_provider)

    def points(self) -> list[Point]:
        data = self.reader.get_metrics_data()
        found: list[Point] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        attributes = {k: str(v) for k, v in (point.attributes or {}).items()}
                        if hasattr(point, "sum") and hasattr(point, "bucket_counts"):
                            found.append(
                                Point(metric.name, attributes, float(point.sum), int(point.count))
                            )
                        else:
                            found.append(Point(metric.name, attributes, float(point.value), 1))
        return found

    def by_name(self) -> dict[str, list[Point]]:
        grouped: dict[str, list[Point]] = defaultdict(list)
        for point in self.points():
            grouped[point.name].append(point)
        return dict(grouped)

    def spans(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def to_dict(self) -> dict[str, Any]:
        """Points and spans as plain JSON (what ``make demo`` writes for its test to read)."""
        return {
            "points": [
                {"name": p.name, "attributes": p.attributes, "value": p.value, "count": p.count}
                for p in self.points()
            ],
            "spans": [
                {
                    "name": s.name,
                    "trace": f"{s.context.trace_id:032x}",
                    "span": f"{s.context.span_id:016x}",
                    "parent": f"{s.parent.span_id:016x}" if s.parent else None,
                    "attributes": {k: str(v) for k, v in (s.attributes or {}).items()},
                }
                for s in self.spans()
            ],
        }

    def close(self) -> None:
        from shared import telemetry

        telemetry.reset()
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()
