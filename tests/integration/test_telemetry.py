"""Metrics and traces, read from the OpenTelemetry SDK's in-memory reader and span exporter.

The product code under test is the real one: triggers, engine, responder, sweeps, the SDK
clients' response hook. Only the exporter is swapped (Azure Monitor -> memory).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import scenario
from emulator.events import arm_event
from emulator.server import Emulator
from scripts.telemetry_capture import Capture
from shared import telemetry
from shared.telemetry import CORRELATION_ATTRIBUTE, METRICS
from tests.conftest import PROD_SUB, SANDBOX_SUB, UNKNOWN_SUB
from tests.integration.test_timers import APPS, PULL_SECRET_APP, expiry_estate
from tests.support.triggers import Captured, drain_batches, run_timer, timer

ROOT = Path(__file__).resolve().parents[2]
VMSS_WRITE = "Microsoft.Compute/virtualMachineScaleSets/write"


@pytest.fixture
def captured() -> Iterator[Capture]:
    capture = Capture()
    yield capture
    capture.close()


def deliver(functions: dict[str, Any], name: str, payload: dict[str, Any]) -> None:
    from azure.functions import meta
    from azure.functions.eventgrid import EventGridEventInConverter

    event = EventGridEventInConverter.decode(
        meta.Datum(json.dumps(payload), "json"), trigger_metadata={}
    )
    functions[name].get_user_function()(event)


def test_an_event_is_one_trace_with_a_span_per_check_and_remediation(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    captured: Capture,
) -> None:
    from shared import runtime

    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"}
    )
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    vmss = scenario.node_pool_vmss(emulator.state, cluster, "system")[0]
    deliver(functions, "arm_events", arm_event(vmss["id"], VMSS_WRITE))

    spans = captured.spans()
    (root,) = [s for s in spans if s.name == "invocation arm_events"]
    assert root.parent is None
    mine = [s for s in spans if s.context.trace_id == root.context.trace_id]
    checks = [s for s in mine if s.name.startswith("check ")]
    fixes = [s for s in mine if s.name.startswith("remediate ")]
    assert [s.name for s in checks] == [
        "check kubelet-identity-detached"
    ] * 3  # found, re-check, verify
    assert [s.name for s in fixes] == ["remediate reconcile-cluster"]
    assert fixes[0].attributes["acrpull.outcome"] == "remediated"
    correlation = root.attributes[CORRELATION_ATTRIBUTE]
    assert {s.attributes[CORRELATION_ATTRIBUTE] for s in mine} == {correlation}
    # The audit log and the outcome events carry the same correlation id.
    store = runtime.state_store()
    from datetime import UTC, datetime, timedelta

    audit = store.list_audit(datetime.now(UTC) - timedelta(hours=1))
    assert {r.correlation_id for r in audit} == {correlation}

    by_name = captured.by_name()
    (lag,) = by_name["acrpull.eventgrid.lag"]
    assert lag.attributes == {
        "source": "arm_events",
        "event_type": "Microsoft.Resources.ResourceWriteSuccess",
    }
    (action,) = by_name["acrpull.actions"]
    assert action.attributes["outcome"] == "applied" and action.value == 1
    (latency,) = by_name["acrpull.signal.verdict_latency"]
    assert latency.attributes == {"source": "arm_events", "verdict": "remediated"}
    (duration,) = by_name["acrpull.remediation.duration"]
    assert duration.attributes["action"] == "reconcile-cluster" and duration.value > 0
    requests = by_name["acrpull.arm.requests"]
    assert {p.attributes["service"] for p in requests} == {"arm"}
    assert sum(p.value for p in requests if p.attributes["method"] == "PUT") >= 1


def test_throttling_and_handovers_are_counted(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    captured: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared import runtime

    # The sweep lists the fleet from Resource Graph first: its first answer is a 429.
    emulator.inject(
        r"/providers/Microsoft\.ResourceGraph/resources$", status=429, retry_after=0, times=1
    )
    monkeypatch.setenv("SWEEP_BUDGET_SECONDS", "0")
    handed = runtime.run_sweep("drift", source="drift_sweep")
    assert handed
    by_name = captured.by_name()
    (throttled,) = by_name["acrpull.arm.throttled"]
    assert throttled.attributes == {"service": "arm"} and throttled.value == 1
    statuses = {p.attributes["status_class"]: p.value for p in by_name["acrpull.arm.requests"]}
    assert statuses["4xx"] >= 1 and statuses["2xx"] >= 1
    pairs = {p.attributes["state"]: p.value for p in by_name["acrpull.sweep.pairs"]}
    assert pairs == {"known": len(handed), "checked": 0, "handed-over": len(handed)}
    (handovers,) = by_name["acrpull.sweep.handovers"]
    assert handovers.value == len(handed)
    (coverage,) = by_name["acrpull.sweep.coverage"]
    assert coverage.value == 0.0 and coverage.attributes == {"sweep": "drift"}


def test_off_without_a_connection_string_and_import_stays_light() -> None:
    """No connection string: nothing is set up; ``import function_app`` loads no OpenTelemetry."""
    import subprocess
    import sys

    assert not telemetry.setup({})
    code = (
        "import sys, function_app; "
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'azure.monitor'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_readme_lists_every_metric_with_its_dimensions() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(
        re.findall(r"^\| `(acrpull\.[a-z_.]+)` \|[^|]*\|[^|]*\| ([^|]+) \|", readme, re.MULTILINE)
    )
    assert set(rows) == set(METRICS)
    for name, metric in METRICS.items():
        assert re.findall(r"`([a-z_]+)`", rows[name]) == list(metric.dimensions), name


def test_the_distro_is_configured_once_and_asks_no_metadata_service() -> None:
    """With a connection string (a closed loopback port here), ``setup`` configures the Azure
    Monitor distro, and its VM resource detector, which would ask 169.254.169.254, never runs."""
    import subprocess
    import sys

    code = "\n".join(
        [
            "import os",
            "import opentelemetry.resource.detector.azure.vm as vm",
            "def asked(): raise SystemExit('the instance metadata service was asked')",
            "vm._get_azure_vm_metadata = asked",
            "from shared import telemetry",
            "assert telemetry.setup() and telemetry.setup()",
            "telemetry.count(telemetry.HANDOVERS, 1, sweep='drift')",
            "print('on', telemetry.enabled())",
            "os._exit(0)",
        ]
    )
    env = {
        **os.environ,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            "IngestionEndpoint=https://127.0.0.1:9/"
        ),
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    }
    env.pop("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "on True"


def test_credential_days_left_is_a_gauge_that_keeps_expired_credentials(
    emulator: Emulator,
    app_env: dict[str, str],
    functions: dict[str, Any],
    captured: Capture,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An expired secret is the one an operator most needs on the expiry calendar: a histogram
    drops negative values (and sums an interval's recordings), so days left is a gauge."""
    scenario.load(emulator.state, expiry_estate())
    monkeypatch.setenv("REMEDIATION_MODE", "dry-run")
    for _ in range(2):  # twice: the latest value, never the sum of both runs
        run_timer(functions, "expiry_sweep", caplog)

    assert "must be non-negative" not in caplog.text
    left = {
        p.attributes["owner"]: p.value
        for p in captured.by_name()["acrpull.credential.days_left"]
        if p.attributes["kind"] == "service principal secret"
    }
    expected = {app: days for app, days in APPS.items() if app != PULL_SECRET_APP}
    assert set(expected) <= set(left), sorted(left)
    for app, days in expected.items():
        assert abs(left[app] - days) < 0.1, (app, left[app], days)
    assert min(left.values()) < 0  # the expired secret is there, negative


def test_batch_invocations_count_what_they_check(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    captured: Capture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The drift timer only plans; the queue's batch invocations report the sweep's coverage."""
    outcomes, handed_over = run_timer(functions, "drift_sweep", caplog)
    assert outcomes and not handed_over
    by_name = captured.by_name()
    pairs: dict[str, float] = {}
    for point in by_name["acrpull.sweep.pairs"]:
        assert point.attributes["sweep"] == "drift"
        pairs[point.attributes["state"]] = pairs.get(point.attributes["state"], 0) + point.value
    checked = len([o for o in outcomes if o.get("cluster")])
    assert pairs == {"known": checked, "checked": checked, "handed-over": 0}
    coverage = by_name["acrpull.sweep.coverage"]
    assert coverage and all(p.value == 1.0 for p in coverage)


def subscription_states(captured: Capture) -> set[tuple[str, str, str, float]]:
    points = captured.by_name()[telemetry.SWEEP_SUBSCRIPTIONS]
    return {
        (p.attributes["sweep"], p.attributes["subscription"], p.attributes["state"], p.value)
        for p in points
    }


def test_each_planner_run_counts_the_subscriptions_it_reached_and_those_it_could_not(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    captured: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subscription in scope the app cannot read is swept by nobody: the alert reads this."""
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", f"{PROD_SUB},{SANDBOX_SUB},{UNKNOWN_SUB}")
    functions["expiry_sweep"].get_user_function()(timer(), Captured())
    assert subscription_states(captured) == {
        ("expiry", PROD_SUB, "planned", 1),
        ("expiry", SANDBOX_SUB, "planned", 1),
        ("expiry", UNKNOWN_SUB, "unreadable", 1),
    }


def test_an_inventory_handed_over_is_counted_when_a_worker_plans_it(
    emulator: Emulator,
    sample: dict[str, Any],
    app_env: dict[str, str],
    functions: dict[str, Any],
    captured: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", f"{PROD_SUB},{UNKNOWN_SUB}")
    plans = [
        json.dumps({"v": 1, "sweep": "drift", "signal": "s", "subscription": sub, "plan": True})
        for sub in (PROD_SUB, UNKNOWN_SUB)
    ]
    drain_batches(functions, plans)
    assert subscription_states(captured) == {
        ("drift", PROD_SUB, "planned", 1),
        ("drift", UNKNOWN_SUB, "unreadable", 1),
    }
