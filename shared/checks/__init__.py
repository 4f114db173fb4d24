"""One module per cause in the troubleshooting guide; :data:`CHECKS` maps cause id to check.

The order is the guide's: family 1a (authorization) first, then 1b, 2, 3, 4, 5 and 6
(``pull-secret-token-invalid`` and ``registry-throttled`` are beyond the guide).
"""

from __future__ import annotations

from shared.checks.acrpull_missing import AcrPullMissing
from shared.checks.arch_mismatch import ArchMismatch
from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.checks.firewall_egress_blocked import FirewallEgressBlocked
from shared.checks.firewall_ip_not_allowed import FirewallIpNotAllowed
from shared.checks.image_not_found import ImageNotFound
from shared.checks.kubelet_identity_detached import KubeletIdentityDetached
from shared.checks.os_mismatch import OsMismatch
from shared.checks.private_dns_link_missing import PrivateDnsLinkMissing
from shared.checks.pull_qps_exceeded import PullQpsExceeded
from shared.checks.pull_secret_admin_stale import PullSecretAdminStale
from shared.checks.pull_secret_sp_invalid import PullSecretSpInvalid
from shared.checks.pull_secret_token_invalid import PullSecretTokenInvalid
from shared.checks.registry_throttled import RegistryThrottled
from shared.checks.sp_mismatch import SpMismatch
from shared.checks.sp_secret_expired import SpSecretExpired
from shared.checks.vnet_peering_missing import VnetPeeringMissing

CHECKS: dict[str, Check] = {
    check.meta.id: check
    for check in (
        AcrPullMissing(),
        SpSecretExpired(),
        SpMismatch(),
        KubeletIdentityDetached(),
        PullSecretSpInvalid(),
        PullSecretAdminStale(),
        PullSecretTokenInvalid(),
        ArchMismatch(),
        ImageNotFound(),
        PrivateDnsLinkMissing(),
        FirewallIpNotAllowed(),
        VnetPeeringMissing(),
        FirewallEgressBlocked(),
        OsMismatch(),
        RegistryThrottled(),
        PullQpsExceeded(),
    )
}


def get_check(cause_id: str) -> Check:
    try:
        return CHECKS[cause_id]
    except KeyError:
        raise KeyError(f"unknown cause {cause_id!r}; known: {', '.join(CHECKS)}") from None


__all__ = ["CHECKS", "Check", "CheckMeta", "Finding", "Status", "Target", "get_check"]
