"""``make coldstart``: what ``import function_app`` costs, and what telemetry adds to the first
invocation, each the median of fresh interpreters (the machine is shared: one run is noise).

- import: ``python -X importtime -c 'import function_app'``, the cumulative time of
  ``function_app``, and the process's peak RSS after the import;
- telemetry: after the modules an invocation loads anyway (runtime, azure-identity, an ARM
  client, tables), the Azure Monitor distro's ``configure_azure_monitor`` as ``shared.telemetry``
  calls it (connection string to a closed loopback port, statsbeat off), and the exporter alone
  with the OpenTelemetry SDK for comparison.

``--root DIR`` measures another checkout (the numbers before a change).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONNECTION = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/"
)
RSS = "import resource; print('rss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
INVOCATION = (
    "import function_app, shared.runtime, azure.identity, azure.mgmt.containerservice, "
    "azure.data.tables, resource, time; r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
    "t = time.perf_counter()\n{body}\n"
    "print('ms', (time.perf_counter() - t) * 1000); "
    "print('rss', (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) / 1024)"
)
DISTRO = "from shared import telemetry; assert telemetry.setup()"
EXPORTER = f"""
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter, AzureMonitorTraceExporter
metrics.set_meter_provider(MeterProvider(metric_readers=[PeriodicExportingMetricReader(AzureMonitorMetricExporter(connection_string={CONNECTION!r}))]))
provider = TracerProvider(); provider.add_span_processor(BatchSpanProcessor(AzureMonitorTraceExporter(connection_string={CONNECTION!r}))); trace.set_tracer_provider(provider)
"""


def run(root: Path, args: list[str]) -> str:
    env = {
        **os.environ,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION,
        # Nothing leaves loopback: no statsbeat or SDK stats, no instance metadata (the VM
        # resource detector; shared.telemetry keeps only the App Service one).
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "azure_app_service",
        "PYTHONPATH": str(root),
    }
    done = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout + done.stderr


def import_cost(root: Path) -> tuple[float, float]:
    out = run(root, ["-X", "importtime", "-c", f"import function_app; {RSS}"])
    line = next(row for row in out.splitlines() if row.rstrip().endswith("| function_app"))
    micros = int(line.split("|")[1])
    rss = float(re.search(r"^rss (\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    return micros / 1000, rss


def invocation_cost(root: Path, body: str) -> tuple[float, float]:
    out = run(root, ["-c", INVOCATION.format(body=body)])
    ms = float(re.search(r"^ms (\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    rss = float(re.search(r"^rss (\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    return ms, rss


def median(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--import-only", action="store_true")
    args = parser.parse_args()
    ms, rss = median([import_cost(args.root) for _ in range(args.runs)])
    print(
        f"import function_app: {ms:.0f} ms (cumulative -X importtime), peak RSS {rss:.1f} MB  [median of {args.runs}]"
    )
    if args.import_only:
        return 0
    for label, body in (
        ("Azure Monitor distro (chosen)", DISTRO),
        ("exporter + SDK only", EXPORTER),
    ):
        ms, rss = median([invocation_cost(args.root, body) for _ in range(args.runs)])
        print(f"first invocation, {label}: +{ms:.0f} ms, +{rss:.1f} MB RSS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
