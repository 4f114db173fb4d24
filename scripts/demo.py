"""``make demo``: the product's main job, end to end, on the emulator.

1. Diagnose an estate with one cluster broken for each of the 15 causes (the guide's 14 and
   registry-throttled, beyond it).
2. Respond under an `enforce` policy: fix and verify what may be fixed, ticket the rest.
3. Event Grid: a kubelet identity removed from node pools, delivered to the indexed function.
4. A timeline: a stream of Event Grid events and timer ticks against the sample estate.
5. Telemetry: the OpenTelemetry metrics and traces all of the above emitted (in memory here).
6. The fleet report: one HTML file (``demo-output/fleet-report.html``) and its screenshot in
   headless Chromium (``demo-output/fleet-report.png``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from emulator import scenario
from emulator.azurite import Azurite
from emulator.events import arm_event
from emulator.server import Emulator
from emulator.tickets import github_issues

if TYPE_CHECKING:
    from scripts.telemetry_capture import Capture

PROD = "9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c"
VMSS_WRITE = "Microsoft.Compute/virtualMachineScaleSets/write"
POLICY = scenario.SCENARIOS / "demo-policy.yaml"


class OutcomeCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.outcomes: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("outcome "):
            self.outcomes.append(json.loads(message[len("outcome ") :]))


def say(text: str = "", indent: int = 0) -> None:
    prefix = " " * indent
    wrapped = textwrap.fill(
        text, 110, initial_indent=prefix, subsequent_indent=prefix + "    ", break_on_hyphens=False
    )
    print(wrapped if text else "")


def targets(emulator: Emulator, pairs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    from shared.checks import Target
    from shared.runtime import engine

    estate = engine().estate
    found = []
    for pair in pairs:
        cluster = estate.get_cluster(scenario.find_cluster(emulator.state, pair["cluster"])["id"])
        registry = scenario.find_registry(emulator.state, pair["registry"])["id"]
        found.append((pair, Target(cluster, registry, pair["image"])))
    return found


def diagnose(emulator: Emulator, spec: dict[str, Any]) -> bool:
    from shared.checks import CHECKS, Status
    from shared.runtime import engine

    say("== 1. Diagnose: one cluster broken for each cause of the guide")
    pairs = [{"cause": "(healthy)", **spec["healthy"]}, *spec["pairs"]]
    diagnoser = engine()
    ok = True
    emulator.clear_journal()
    for pair, target in targets(emulator, pairs):
        findings = diagnoser.diagnose(target)
        failed = {f.cause_id: f for f in findings if f.status is Status.FAIL}
        expected = pair["cause"]
        if expected == "(healthy)":
            ok &= not failed
            say(
                f"{'healthy pair':<26} {pair['cluster']:<15} {'PASS' if not failed else 'FAIL'}: all {len(CHECKS)} checks pass",
                2,
            )
            continue
        finding = failed.get(expected)
        ok &= finding is not None
        status = "FAIL" if finding else "MISSED"
        say(
            f"{expected:<26} {pair['cluster']:<15} {status}: {finding.summary if finding else ''}",
            2,
        )
    requests = Counter(e.service for e in emulator.journal() if e.service != "identity")
    say(
        f"{len(pairs)} pairs diagnosed; requests: "
        + ", ".join(f"{k} {v}" for k, v in sorted(requests.items())),
        2,
    )
    say()
    return ok


def respond(emulator: Emulator, spec: dict[str, Any]) -> bool:
    from shared.runtime import engine, reset_clients

    say(f"== 2. Respond under policy {POLICY.name} (mode enforce): fix and verify, or ticket")
    reset_clients()
    responder = engine(respond=True, source="demo")
    applied, tickets = Counter[str](), Counter[str]()
    for pair, target in targets(emulator, spec["pairs"]):
        outcome = responder.diagnose_and_respond(f"demo:{pair['cause']}", target, (pair["cause"],))
        handled = next((h for h in outcome.handled if h.finding.cause_id == pair["cause"]), None)
        line = f"{pair['cause']:<26} {outcome.verdict.value:<18}"
        if handled and handled.action:
            verified = handled.verification.status.value if handled.verification else "-"
            line += f" {handled.action.action_id}: {handled.action.status}, verified {verified}"
            if handled.action.status != "applied":
                line += f" ({handled.action.detail})"
            if handled.action.status == "applied" and verified == "PASS":
                applied[handled.action.action_id] += 1
        if handled and handled.ticket:
            line += f" ticket #{handled.ticket.id} ({handled.decision.reason if handled.decision else ''})"
            tickets[handled.finding.cause_id] += 1
        say(line, 2)
    issues = github_issues(emulator.state)
    say(f"applied and verified: {', '.join(sorted(applied))}", 2)
    say(f"tickets in GitHub contoso/aks-platform: {len(issues)} ({', '.join(sorted(tickets))})", 2)
    say()
    return len(applied) >= 5 and len(issues) >= 4


def event_grid(emulator: Emulator, capture: OutcomeCapture, functions: dict[str, Any]) -> bool:
    from azure.functions import meta
    from azure.functions.eventgrid import EventGridEventInConverter

    say("== 3. Event Grid: kubelet identity removed from node pools -> reconcile -> verify")
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"}
    )
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    vmss = scenario.node_pool_vmss(emulator.state, cluster, "system")[0]
    say(f"event: ResourceWriteSuccess {VMSS_WRITE} on {vmss['name']}", 2)
    payload = arm_event(vmss["id"], VMSS_WRITE)
    event = EventGridEventInConverter.decode(
        meta.Datum(json.dumps(payload), "json"), trigger_metadata={}
    )
    emulator.clear_journal()
    functions["arm_events"].get_user_function()(event)
    outcome = capture.outcomes[-1]
    for finding in outcome["findings"]:
        say(f"finding   {finding['cause']}: {finding['status']} - {finding['summary']}", 2)
    for action in outcome["actions"]:
        say(f"action    {action['action']}: {action['status']} ({action['detail']})", 2)
    for check in outcome["verification"]:
        say(f"verified  {check['cause']}: {check['status']} - {check['summary']}", 2)
    say(f"verdict   {outcome['verdict'].upper()}", 2)
    arm = emulator.journal("arm")
    say(f"ARM requests: {len(arm)} ({sum(1 for e in arm if e.method == 'PUT')} write)", 2)
    say()
    return bool(outcome["verdict"] == "remediated")


class Captured:
    """A queue output binding, as the worker hands it to the function."""

    def __init__(self) -> None:
        self.value: Any = None

    def set(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


def timeline(emulator: Emulator, capture: OutcomeCapture, functions: dict[str, Any]) -> bool:
    from azure.functions import meta
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.timer import TimerRequestConverter

    from emulator.builders.registry_data import push_image
    from emulator.events import registry_image_event

    say("== 4. Timeline: events and timer ticks against the sample estate")
    state = emulator.state
    registry = scenario.find_registry(state, "acrprodweu")

    def event(name: str, payload: dict[str, Any]) -> None:
        decoded = EventGridEventInConverter.decode(
            meta.Datum(json.dumps(payload), "json"), trigger_metadata={}
        )
        functions[name].get_user_function()(decoded)

    def tick(name: str) -> None:
        body = json.dumps({"IsPastDue": False, "ScheduleStatus": {}, "Schedule": {}})
        timer = TimerRequestConverter.decode(meta.Datum(body, "json"), trigger_metadata={})
        planned = Captured()
        functions[name].get_user_function()(timer, planned)
        if name not in ("drift_sweep", "expiry_sweep"):
            return
        # A planner: the host runs sweep_batch for each batch it queued (and their follow-ups).
        import azure.functions as func

        pending = list(planned.value or [])
        while pending:
            again = Captured()
            message = func.QueueMessage(body=pending.pop(0))
            functions["sweep_batch"].get_user_function()(message, again, Captured())
            pending += list(again.value or [])

    digest = push_image(state, registry["id"], "app", "v3", ["linux/amd64", "windows/amd64"])
    steps: list[tuple[str, Any]] = [
        (
            "someone deletes aks-batch-weu's AcrPull on acrprodweu -> roleAssignments/delete",
            lambda: (
                scenario.apply_break(
                    state,
                    {
                        "cause": "acrpull-missing",
                        "cluster": "aks-batch-weu",
                        "registry": "acrprodweu",
                    },
                ),
                event(
                    "arm_events",
                    arm_event(
                        f"{registry['id']}/providers/Microsoft.Authorization/roleAssignments/{scenario.guid('deleted')}",
                        "Microsoft.Authorization/roleAssignments/delete",
                        event_type="Microsoft.Resources.ResourceDeleteSuccess",
                    ),
                ),
            ),
        ),
        (
            "the admin password of acrprodweu is regenerated -> regenerateCredential/action",
            lambda: (
                scenario.apply_break(
                    state, {"cause": "pull-secret-admin-stale", "cluster": "aks-prod-weu"}
                ),
                event(
                    "arm_events",
                    arm_event(
                        registry["id"],
                        "Microsoft.ContainerRegistry/registries/regenerateCredential/action",
                        event_type="Microsoft.Resources.ResourceActionSuccess",
                    ),
                ),
            ),
        ),
        (
            "app:v3 is pushed without linux/arm64; aks-prod-weu has an arm64 pool -> ImagePushed",
            lambda: event(
                "registry_events",
                registry_image_event(
                    registry["id"],
                    "acrprodweu.azurecr.io",
                    "app",
                    tag="v3",
                    digest=digest,
                    media_type="application/vnd.oci.image.index.v1+json",
                ),
            ),
        ),
        (
            "the kubelet identity leaves aks-batch-weu's scale sets and the event is lost -> drift sweep tick",
            lambda: (
                scenario.apply_break(
                    state, {"cause": "kubelet-identity-detached", "cluster": "aks-batch-weu"}
                ),
                tick("drift_sweep"),
            ),
        ),
        ("daily expiry sweep tick", lambda: tick("expiry_sweep")),
        ("pull-failure scan tick", lambda: tick("pull_failure_scan")),
    ]
    ok = True
    for label, step in steps:
        before = len(capture.outcomes)
        step()
        say(f"* {label}", 2)
        produced = capture.outcomes[before:]
        shown = [o for o in produced if any(f["status"] == "FAIL" for f in o["findings"])]
        for outcome in shown or produced[:1]:
            cluster = (outcome.get("cluster") or "").rsplit("/", 1)[-1]
            failed = [f for f in outcome["findings"] if f["status"] == "FAIL"]
            say(f"-> {cluster}: {', '.join(f['cause'] for f in failed) or 'nothing failed'}", 6)
            for decision in outcome.get("decisions", []):
                if decision.get("decision"):
                    say(f"-> decision: {decision['decision']['reason']}", 8)
                if decision.get("ticket"):
                    ticket = decision["ticket"]
                    say(f"-> ticket #{ticket['id']} {ticket['state']} ({ticket['title']})", 8)
            for action in outcome["actions"]:
                say(f"-> action {action['action']}: {action['status']}", 8)
            for check in outcome["verification"]:
                say(f"-> verified {check['cause']}: {check['status']}", 8)
            say(f"=> {outcome['verdict']}", 8)
        ok &= bool(capture.outcomes[before:])
    say()
    return ok


def _output() -> Path:
    """Where the demo writes its report, screenshot and telemetry (DEMO_OUTPUT)."""
    output = Path(os.environ.get("DEMO_OUTPUT", "demo-output"))
    output.mkdir(parents=True, exist_ok=True)
    return output


def telemetry(captured: Capture) -> bool:
    from shared.telemetry import CORRELATION_ATTRIBUTE, METRICS

    say("== 5. Telemetry: what steps 1-4 emitted (OpenTelemetry, read from an in-memory reader)")
    by_name = captured.by_name()
    for name in METRICS:
        points = by_name.get(name, [])
        kind = METRICS[name].kind
        # a counter's sum, a histogram's recordings, a gauge's series (one value each)
        total = sum(p.value if kind == "counter" else p.count for p in points)
        unit = {"counter": "counted", "histogram": "recordings", "gauge": "series"}[kind]
        dims = sorted({k for p in points for k in p.attributes})
        say(f"{name:<34} {int(total):>5} {unit}  ({', '.join(dims) or '-'})", 2)
    spans = captured.spans()
    traces = {s.context.trace_id for s in spans}
    kinds = Counter(s.name.split(" ", 1)[0] for s in spans)
    say(
        f"{len(traces)} traces, {len(spans)} spans: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())),
        2,
    )
    correlated = {
        s.attributes.get(CORRELATION_ATTRIBUTE) for s in spans if s.name.startswith("invocation ")
    }
    say(f"every invocation span carries its correlation id: {None not in correlated}", 2)
    dump = _output() / "telemetry.json"
    dump.write_text(json.dumps(captured.to_dict(), indent=1, sort_keys=True), encoding="utf-8")
    say(f"all of it in {dump}", 2)
    say()
    emitted = {name for name, points in by_name.items() if points}
    return {
        "acrpull.findings",
        "acrpull.actions",
        "acrpull.eventgrid.lag",
    } <= emitted and None not in correlated


def report() -> bool:
    from scripts.browser import NoBrowser, visit
    from shared.report.build import build_report
    from shared.report.render import render_html

    say("== 6. The fleet report: every pair in scope, diagnosed now, and the audit log's actions")
    fleet = build_report("diagnosis", days=1)
    page, picture = _output() / "fleet-report.html", _output() / "fleet-report.png"
    page.write_text(render_html(fleet), encoding="utf-8")
    failing = sum(1 for c in fleet.clusters if c.state == "failing")
    say(
        f"{page}: {len(fleet.clusters)} clusters ({failing} failing), {len(fleet.credentials)} credentials on the timeline, {len(fleet.actions)} actions ({page.stat().st_size // 1024} KiB)",
        2,
    )
    try:
        seen = visit(page, screenshot=picture)
    except NoBrowser as exc:
        say(f"no screenshot: {exc}", 2)
        return False
    outside = [url for url in seen.requests if not url.startswith("file:")]
    say(
        f"{picture}: rendered by headless Chromium, {len(seen.console_errors)} console errors, {len(outside)} requests outside the file",
        2,
    )
    say()
    return not seen.console_errors and not seen.page_errors and not outside


def main() -> int:
    from scripts.telemetry_capture import Capture

    captured = Capture()
    capture = OutcomeCapture()
    logging.getLogger("shared.runtime").addHandler(capture)
    logging.getLogger("shared.runtime").setLevel(logging.INFO)
    spec = yaml.safe_load((scenario.SCENARIOS / "demo.yaml").read_text(encoding="utf-8"))
    with Emulator() as emulator, Azurite() as azurite:
        scenario.load(emulator.state, "sample")
        scenario.load(emulator.state, "demo")
        os.environ.update(emulator.environment())
        os.environ.update(azurite.environment(table_prefix="demo"))
        os.environ.update(
            {
                "SCOPE_SUBSCRIPTION_IDS": PROD,
                "REMEDIATION_MODE": "enforce",
                "POLICY_PATH": str(POLICY),
            }
        )
        say(f"Local Azure on {emulator.base_url}, Azurite tables on {azurite.endpoint}")
        say()
        import function_app  # indexed once, as the worker does

        functions = {fn.get_function_name(): fn for fn in function_app.app.get_functions()}
        results = [
            diagnose(emulator, spec),
            respond(emulator, spec),
            event_grid(emulator, capture, functions),
            timeline(emulator, capture, functions),
        ]
        results += [telemetry(captured), report()]
    captured.close()
    say(
        "demo finished: "
        + ("every step behaved as expected" if all(results) else "SOMETHING DID NOT BEHAVE")
    )
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
