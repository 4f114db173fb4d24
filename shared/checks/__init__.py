"""One module per cause in the troubleshooting guide; :data:`CHECKS` maps cause id to check."""

from __future__ import annotations

from shared.checks.base import Check, Finding, Status, Target
from shared.checks.kubelet_identity_detached import KubeletIdentityDetached

CHECKS: dict[str, Check] = {check.meta.id: check for check in (KubeletIdentityDetached(),)}


def get_check(cause_id: str) -> Check:
    try:
        return CHECKS[cause_id]
    except KeyError:
        raise KeyError(f"unknown cause {cause_id!r}; known: {', '.join(sorted(CHECKS))}") from None


__all__ = ["CHECKS", "Check", "Finding", "Status", "Target", "get_check"]
