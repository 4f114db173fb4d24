"""One module per fix; :data:`REMEDIATIONS` maps action id to remediation."""

from __future__ import annotations

from shared.remediations.base import ActionRecord, Plan, Remediation
from shared.remediations.reconcile_cluster import ReconcileCluster

REMEDIATIONS: dict[str, Remediation] = {r.id: r for r in (ReconcileCluster(),)}

__all__ = ["REMEDIATIONS", "ActionRecord", "Plan", "Remediation"]
