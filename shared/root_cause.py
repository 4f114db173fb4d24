"""Root cause first: findings follow the network path, and a later finding that an earlier one
explains is reported as its consequence, in its ticket, never acted on by itself.

A pull goes: name resolution -> route and peering -> firewall -> authentication -> image. The
rules below are the guide's causes read along that path. Only pairs where fixing the first is
what fixes the second are listed; every other pair that can fail together (a missing DNS link
*and* a missing peering, any network cause and a missing AcrPull) is two problems with two fixes,
so two tickets. ``tests/unit/test_root_cause_rules.py`` and ``tests/integration/test_root_cause.py``
test each pair.

| root cause | explains | why |
|---|---|---|
| private-dns-link-missing | firewall-ip-not-allowed | unlinked VNet resolves the registry's public address, so the public firewall answers 403 |
| vnet-peering-missing | firewall-ip-not-allowed | without the private path the pull has to go public and meets the firewall |
| firewall-egress-blocked | firewall-ip-not-allowed | traffic for the private endpoint crosses an appliance; the public firewall is not on its path |
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from shared.checks.base import Finding, Status

# Where each cause sits on the path a pull takes; unknown ids sort last, in their given order.
STAGES: dict[str, int] = {
    "private-dns-link-missing": 0,  # name resolution
    "vnet-peering-missing": 1,  # route and peering
    "firewall-egress-blocked": 1,
    "firewall-ip-not-allowed": 2,  # firewall
    "acrpull-missing": 3,  # authentication
    "sp-mismatch": 3,
    "sp-secret-expired": 3,
    "kubelet-identity-detached": 3,
    "pull-secret-sp-invalid": 3,
    "pull-secret-admin-stale": 3,
    "pull-secret-token-invalid": 3,
    "image-not-found": 4,  # image
    "arch-mismatch": 4,
    "os-mismatch": 4,
    "registry-throttled": 5,  # rate limits, once everything else works
    "pull-qps-exceeded": 5,
}

# root cause -> the causes it explains when both fail for the same (cluster, registry) pair.
EXPLAINS: dict[str, frozenset[str]] = {
    "private-dns-link-missing": frozenset({"firewall-ip-not-allowed"}),
    "vnet-peering-missing": frozenset({"firewall-ip-not-allowed"}),
    "firewall-egress-blocked": frozenset({"firewall-ip-not-allowed"}),
}

CONSEQUENCE_OF = "consequenceOf"
CONSEQUENCES = "consequences"


def path_order(findings: Iterable[Finding]) -> list[Finding]:
    """Findings sorted along the pull's path (stable within a stage)."""
    return sorted(findings, key=lambda f: STAGES.get(f.cause_id, len(STAGES)))


def roots_of(cause_id: str, failed: Iterable[str]) -> list[str]:
    """The failed causes that explain ``cause_id``, earliest on the path first."""
    return sorted(
        (root for root in failed if cause_id in EXPLAINS.get(root, frozenset())),
        key=lambda c: STAGES.get(c, len(STAGES)),
    )


def explain(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """Findings in path order; a FAIL explained by another FAIL carries ``consequenceOf`` (its
    roots) and each root carries ``consequences`` (what it explains), both in the evidence."""
    ordered = path_order(findings)
    failed = [f.cause_id for f in ordered if f.status is Status.FAIL]
    explained: dict[str, list[str]] = {
        f.cause_id: roots
        for f in ordered
        if f.status is Status.FAIL and (roots := roots_of(f.cause_id, failed))
    }
    result = []
    for finding in ordered:
        if finding.cause_id in explained:
            extra: dict[str, object] = {CONSEQUENCE_OF: explained[finding.cause_id]}
        else:
            later = [
                {"cause": f.cause_id, "summary": f.summary}
                for f in ordered
                if finding.cause_id in explained.get(f.cause_id, ())
            ]
            extra = {CONSEQUENCES: later} if later and finding.status is Status.FAIL else {}
        result.append(
            replace(finding, evidence={**finding.evidence, **extra}) if extra else finding
        )
    return tuple(result)


def consequence_of(finding: Finding) -> tuple[str, ...]:
    """The root causes a finding was explained by (empty for a root or a lone finding)."""
    roots = finding.evidence.get(CONSEQUENCE_OF) or ()
    return tuple(str(r) for r in roots)
