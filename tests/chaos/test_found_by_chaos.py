"""Defects the fault suite found, each pinned at its fault point so it stays fixed.

1. A connection dropped while listing a cluster's workloads was read as "cannot reach this
   cluster": pair discovery went on without the pair, the role-assignment event found nothing to
   do and was marked done; AcrPull stayed missing. A broken exchange is now a transient error,
   so the delivery fails and Event Grid's redelivery fixes the cluster.
2. A reconcile whose PUT committed but whose response was lost (or whose worker was killed with
   the PUT in flight) left the cluster Updating, and every redelivery deferred: the emulator ended
   an operation only when someone polled it. Azure ends it anyway; so does the emulator now, and
   the redelivery after it converges.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from emulator.azurite import Azurite
from tests.chaos.harness import Kind, recorded, run_point
from tests.chaos.paths import ATTACH_ACR, RECONCILE


def test_a_dropped_workload_listing_fails_the_delivery_and_the_redelivery_fixes_it(
    azurite_server: Azurite, functions: dict[str, Any], tmp_path: Path
) -> None:
    calls, secrets = recorded(azurite_server, ATTACH_ACR, functions, tmp_path)
    # The workloads of aks-prod-weu: its pair with acrprodweu is found only from them now.
    prod = next(c for c in calls if c.path.endswith("/aks-prod-weu/listClusterUserCredential"))
    api = next(c.path.split("/api/")[0] for c in calls[calls.index(prod) :] if "/k8s/" in c.path)
    [listing] = [c for c in calls if re.fullmatch(rf"{api}/api/v1/serviceaccounts", c.path)]

    result = run_point(
        azurite_server, ATTACH_ACR, Kind.TIMEOUT, listing, functions, tmp_path, secrets
    )
    assert result.fired
    assert result.converged, result
    assert result.outcome == "fixed"
    assert result.deliveries == 2  # the first failed, as it must: it could not see the pair


def test_a_lost_reconcile_response_converges_once_the_operation_ends(
    azurite_server: Azurite, functions: dict[str, Any], tmp_path: Path
) -> None:
    calls, secrets = recorded(azurite_server, RECONCILE, functions, tmp_path)
    [put] = [c for c in calls if c.method == "PUT"]
    result = run_point(
        azurite_server, RECONCILE, Kind.LOST_RESPONSE, put, functions, tmp_path, secrets
    )
    assert result.fired
    assert result.converged, result
    assert result.outcome == "fixed"
