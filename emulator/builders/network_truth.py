"""Scenario section ``networkTruth``: what the network really does, apart from ARM config.

    networkTruth:
      - vnet: vnet-spoke                     # a VNet name (or id) of the scenario
        subnet: aks-win                       # optional: only the node pools on this subnet
                                              # (an NSG on it); dns is the VNet's, as a rule
        dns: {acrhubweu.azurecr.io: public}   # name -> private | public | nxdomain | [addresses]
        drop: [acrhubweu.azurecr.io]          # port 443 of these names times out (an NSG, a firewall)
        refuse: []                            # ... or is refused
        imds: blocked                         # or reachable (the default)

Everything not declared follows from the configuration (emulator/probe.py). The node pull probe
reads it; the configuration checks never see it.
"""

from __future__ import annotations

import weakref
from typing import Any

from emulator.scenario import TOP_SECTIONS
from emulator.scenario_schema import ScenarioError, check
from emulator.state import Json, State

DNS_ANSWERS = ("private", "public", "nxdomain")
_DECLARED: weakref.WeakKeyDictionary[State, list[Json]] = weakref.WeakKeyDictionary()


def declared(state: State) -> list[Json]:
    with state.lock:
        return list(_DECLARED.get(state, []))


def build_network_truth(state: State, entries: Any) -> None:
    if not isinstance(entries, list):
        raise ScenarioError(
            "networkTruth: expected a list of {vnet, subnet, dns, drop, refuse, imds}"
        )
    for n, entry in enumerate(entries):
        where = f"networkTruth[{n}]"
        check("networkTruth", entry, where)
        if "vnet" not in entry:
            raise ScenarioError(f"{where}: a vnet is required")
        for name, answer in (entry.get("dns") or {}).items():
            if not isinstance(answer, list) and answer not in DNS_ANSWERS:
                raise ScenarioError(
                    f"{where}.dns[{name!r}]: {answer!r} is not one of {', '.join(DNS_ANSWERS)} "
                    "or a list of addresses"
                )
        if entry.get("imds", "reachable") not in ("reachable", "blocked"):
            raise ScenarioError(f"{where}.imds: {entry['imds']!r} is not reachable or blocked")
    with state.lock:
        _DECLARED.setdefault(state, []).extend(entries)


TOP_SECTIONS["networkTruth"] = build_network_truth
