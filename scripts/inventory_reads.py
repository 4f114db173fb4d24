"""ARM reads per healthy pair of one drift sweep, with and without the Resource Graph inventory.

``python -m scripts.inventory_reads [PAIRS] [SUBSCRIPTIONS]`` builds an estate of healthy pairs
(one cluster attached to one registry, running one image from it) over a few subscriptions, runs
the drift sweep twice against the emulator (``RESOURCE_GRAPH_INVENTORY=off``: ARM discovery; ``on``: the
Resource Graph inventory) and prints the requests of each run by kind, per pair. Counts, not
times: they are the same on any machine. ``make bench-fleet`` (issue 12, part 5) is the fleet
bench with latency and ARM's token buckets; this measures only what discovery costs.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from typing import Any

from emulator import scenario
from emulator.azurite import Azurite
from emulator.server import Emulator
from emulator.state import JournalEntry

REGISTRY = "acrfleet"


def estate(pairs: int, subscriptions: int) -> dict[str, Any]:
    """Healthy pairs spread over ``subscriptions``; the registry lives in the first one."""
    subs = [scenario.guid("fleet", str(s)) for s in range(subscriptions)]
    spec: dict[str, Any] = {"subscriptions": []}
    for index, sub_id in enumerate(subs):
        groups: list[dict[str, Any]] = [
            {
                "name": "rg-fleet",
                "location": "westeurope",
                "clusters": [
                    {
                        "name": f"aks-{index}-{n}",
                        "nodePools": [{"name": "system", "count": 1, "mode": "System"}],
                        "attachedRegistries": [REGISTRY],
                        "namespaces": ["app"],
                        "workloads": [
                            {
                                "namespace": "app",
                                "name": "api",
                                "image": f"{REGISTRY}.azurecr.io/app:v1",
                            }
                        ],
                    }
                    for n in range(index, pairs, subscriptions)
                ],
            }
        ]
        if index == 0:
            groups.append(
                {
                    "name": "rg-acr",
                    "location": "westeurope",
                    "registries": [
                        {"name": REGISTRY, "repositories": {"app": {"v1": ["linux/amd64"]}}}
                    ],
                }
            )
        spec["subscriptions"].append(
            {"id": sub_id, "name": f"fleet-{index}", "resourceGroups": groups}
        )
    return spec


def kind(entry: JournalEntry) -> str:
    path = entry.path.lower()
    if entry.service != "arm":
        return entry.service
    if "/providers/microsoft.resourcegraph/" in path:
        return "resource graph"
    if entry.method == "GET":
        return "arm read"
    if entry.method == "POST" and path.endswith("/listclusterusercredential"):
        return "arm credential post"
    return f"arm {entry.method.lower()}"


def main() -> int:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    subscriptions = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with Emulator() as emulator, Azurite().start() as azurite:
        scenario.load(emulator.state, estate(pairs, subscriptions))
        subs = ",".join(sorted(emulator.state.subscriptions))
        base = {
            **emulator.environment(),
            **azurite.environment(),
            "SCOPE_SUBSCRIPTION_IDS": subs,
            "REMEDIATION_MODE": "enforce",
            "POLICY_PATH": "tests/policies/enforce-all.yaml",
        }
        for setting in ("off", "on"):
            counts = run(emulator, {**base, "RESOURCE_GRAPH_INVENTORY": setting})
            shown = ", ".join(f"{k} {v / pairs:.2f}" for k, v in sorted(counts.items()))
            print(
                f"RESOURCE_GRAPH_INVENTORY={setting}: {pairs} pairs, {subscriptions} subscriptions; per pair: {shown}"
            )
    return 0


def run(emulator: Emulator, env: dict[str, str]) -> Counter[str]:
    from shared import runtime

    os.environ.update(env)
    runtime.reset_clients()
    emulator.clear_journal()
    runtime.run_sweep("drift", source="drift_sweep")
    return Counter(kind(e) for e in emulator.journal() if e.service != "identity")


if __name__ == "__main__":
    sys.exit(main())
