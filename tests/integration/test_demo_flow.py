"""``make demo`` as users run it (a subprocess): its flow emits the declared metrics and one
trace per function invocation, and it writes the fleet report and the report's screenshot.

The demo reads its metrics and spans from the OpenTelemetry SDK's in-memory reader and span
exporter and writes them to ``telemetry.json`` beside the report; this test reads that file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from shared import telemetry
from shared.telemetry import METRICS

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_emits_metrics_and_traces_and_writes_the_report(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scripts.demo"],
        cwd=ROOT,
        env={**os.environ, "DEMO_OUTPUT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "== 5. Telemetry" in result.stdout and "== 6. The fleet report" in result.stdout
    emitted = json.loads((tmp_path / "telemetry.json").read_text(encoding="utf-8"))

    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for point in emitted["points"]:
        by_name[point["name"]].append(point)
    for name, points in by_name.items():
        assert name in METRICS, name
        for point in points:
            assert set(point["attributes"]) == set(METRICS[name].dimensions), (name, point)
    # Nothing in the demo is throttled by ARM or handed over: test_telemetry.py covers those.
    expected = set(METRICS) - {telemetry.ARM_THROTTLED, telemetry.HANDOVERS}
    assert expected <= set(by_name), expected - set(by_name)
    failed = {
        p["attributes"]["cause"]
        for p in by_name[telemetry.FINDINGS]
        if p["attributes"]["status"] == "FAIL"
    }
    assert {"kubelet-identity-detached", "acrpull-missing", "arch-mismatch"} <= failed
    assert "applied" in {p["attributes"]["outcome"] for p in by_name[telemetry.ACTIONS]}

    spans = emitted["spans"]
    # Steps 3-4 go through the functions: one trace per invocation. Steps 1-2 and the report
    # call the engine directly: their checks are traces of their own, with no invocation.
    roots = {s["trace"]: s["name"] for s in spans if s["parent"] is None}
    invocations = {name for name in roots.values() if name.startswith("invocation ")}
    assert {
        "invocation arm_events",
        "invocation registry_events",
        "invocation drift_sweep",
        "invocation expiry_sweep",
        "invocation pull_failure_scan",
    } <= invocations
    inside = [s for s in spans if roots.get(s["trace"], "").startswith("invocation ")]
    assert {s["name"].split(" ")[0] for s in inside} == {"invocation", "check", "remediate"}
    per_trace = defaultdict(set)
    for span in inside:
        per_trace[span["trace"]].add(span["attributes"][telemetry.CORRELATION_ATTRIBUTE])
    assert all(len(ids) == 1 for ids in per_trace.values())  # one correlation id per trace

    page, picture = tmp_path / "fleet-report.html", tmp_path / "fleet-report.png"
    assert page.stat().st_size > 20_000 and picture.stat().st_size > 50_000
    html = page.read_text(encoding="utf-8")
    assert "aks-kubelet" in html and "<script" not in html.lower()
