"""``make demo``: the product's main job, end to end, on the emulator's sample estate.

Starts the local Azure, breaks a cluster the way people break them, delivers the Event Grid
event Azure would send to the indexed function, and prints what was found, done and verified.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
from typing import Any

from emulator import scenario
from emulator.events import arm_event
from emulator.server import Emulator

PROD = "9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c"
VMSS_WRITE = "Microsoft.Compute/virtualMachineScaleSets/write"


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
        text, 100, initial_indent=prefix, subsequent_indent=prefix + "  ", break_on_hyphens=False
    )
    print(wrapped if text else "")


def deliver(
    functions: dict[str, Any], payload: dict[str, Any], capture: OutcomeCapture
) -> dict[str, Any]:
    from azure.functions import meta
    from azure.functions.eventgrid import EventGridEventInConverter

    event = EventGridEventInConverter.decode(
        meta.Datum(json.dumps(payload), "json"), trigger_metadata={}
    )
    functions["arm_events"].get_user_function()(event)
    return capture.outcomes[-1]


def show(outcome: dict[str, Any]) -> None:
    for finding in outcome["findings"]:
        say(f"finding   {finding['cause']}: {finding['status']} - {finding['summary']}", 2)
    for plan in outcome["plans"]:
        say(f"plan      {plan['action']}: {plan['summary']}", 2)
        for command in plan["commands"]:
            say(f"$ {command}", 12)
    for action in outcome["actions"]:
        say(f"action    {action['action']}: {action['status']} ({action['detail']})", 2)
    for check in outcome["verification"]:
        say(f"verified  {check['cause']}: {check['status']} - {check['summary']}", 2)
    say(f"verdict   {outcome['verdict'].upper()}: {outcome['reason']}", 2)


def closed_loop(emulator: Emulator, functions: dict[str, Any], capture: OutcomeCapture) -> bool:
    say("== 1. Kubelet identity removed from node pool scale sets -> reconcile -> verify")
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"}
    )
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    vmss = scenario.node_pool_vmss(emulator.state, cluster, "system")[0]
    say(f"broken: someone ran `az vmss identity remove` on the node pools of {cluster['name']}", 2)
    say(f"event:  ResourceWriteSuccess {VMSS_WRITE} on {vmss['name']}", 2)
    emulator.clear_journal()
    outcome = deliver(functions, arm_event(vmss["id"], VMSS_WRITE), capture)
    show(outcome)
    arm = emulator.journal("arm")
    say(f"ARM requests: {len(arm)} ({sum(1 for e in arm if e.method == 'PUT')} write)", 2)
    say()

    say("== 2. The same kind of event where nothing is wrong, and where the fix is not ours")
    web = next(r for r in emulator.state.iter_resources() if r["name"] == "web-vmss")
    show(deliver(functions, arm_event(web["id"], VMSS_WRITE), capture))
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-deleted", "cluster": "aks-batch-weu"}
    )
    batch = scenario.find_cluster(emulator.state, "aks-batch-weu")
    deleted = deliver(
        functions,
        arm_event(scenario.node_pool_vmss(emulator.state, batch)[0]["id"], VMSS_WRITE),
        capture,
    )
    show(deleted)
    say()
    return outcome["verdict"] == "remediated" and deleted["verdict"] == "needs-attention"


def main() -> int:
    capture = OutcomeCapture()
    logging.getLogger("shared.runtime").addHandler(capture)
    logging.getLogger("shared.runtime").setLevel(logging.INFO)
    with Emulator() as emulator:
        scenario.load(emulator.state, "sample")
        os.environ.update(emulator.environment())
        os.environ.update({"SCOPE_SUBSCRIPTION_IDS": PROD, "REMEDIATION_MODE": "enforce"})
        import function_app

        functions = {fn.get_function_name(): fn for fn in function_app.app.get_functions()}
        say(
            f"Local Azure on {emulator.base_url}; sample estate: 3 clusters, 1 registry, mode=enforce"
        )
        say()
        ok = closed_loop(emulator, functions, capture)
    say(
        "demo finished: " + ("every step behaved as expected" if ok else "SOMETHING DID NOT BEHAVE")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
