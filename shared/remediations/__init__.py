"""One module per fix; :func:`build_remediations` maps action id to remediation.

:data:`REMEDIATIONS` holds the same fixes built with defaults, for what does not depend on the
settings: ids, declared permissions, plans.
"""

from __future__ import annotations

from shared.config import Settings
from shared.remediations.allow_egress_ip import AllowEgressIp
from shared.remediations.attach_acr import AttachAcr
from shared.remediations.base import ActionRecord, Plan, Remediation
from shared.remediations.link_private_dns_zone import LinkPrivateDnsZone
from shared.remediations.reconcile_cluster import ReconcileCluster
from shared.remediations.refresh_pull_secret import RefreshPullSecret
from shared.remediations.replace_kubelet_identity import ReplaceKubeletIdentity
from shared.remediations.rotate_sp_secret import RotateSpSecret
from shared.remediations.set_os_node_selector import SetOsNodeSelector
from shared.remediations.set_pull_policy_if_not_present import SetPullPolicyIfNotPresent


def build_remediations(settings: Settings | None = None) -> dict[str, Remediation]:
    subscriptions = tuple(sorted(settings.subscriptions)) if settings else ()
    fixes: tuple[Remediation, ...] = (
        AttachAcr(),
        ReconcileCluster(),
        ReplaceKubeletIdentity(),
        RotateSpSecret(subscription_ids=subscriptions),
        RefreshPullSecret(subscription_ids=subscriptions),
        AllowEgressIp(),
        LinkPrivateDnsZone(),
        SetPullPolicyIfNotPresent(),
        SetOsNodeSelector(),
    )
    return {fix.id: fix for fix in fixes}


REMEDIATIONS = build_remediations()

__all__ = ["REMEDIATIONS", "ActionRecord", "Plan", "Remediation", "build_remediations"]
