"""The catalogue matches DESIGN.md section 4: 16 causes, their families and fixes."""

from __future__ import annotations

from shared.checks import CHECKS

EXPECTED = {
    "acrpull-missing": ("1a", "attach-acr"),
    "sp-secret-expired": ("1a", "rotate-sp-secret"),
    "sp-mismatch": ("1a", "attach-acr"),
    "kubelet-identity-detached": ("1a", "reconcile-cluster"),
    "pull-secret-sp-invalid": ("1a", "refresh-pull-secret"),
    "pull-secret-admin-stale": ("1a", "refresh-pull-secret"),
    "pull-secret-token-invalid": ("1a", "refresh-pull-secret"),
    "arch-mismatch": ("1b", None),
    "image-not-found": ("2", None),
    "private-dns-link-missing": ("3", "link-private-dns-zone"),
    "firewall-ip-not-allowed": ("3", "allow-egress-ip"),
    "vnet-peering-missing": ("4", None),
    "firewall-egress-blocked": ("4", None),
    "os-mismatch": ("5", "set-os-node-selector"),
    "registry-throttled": ("6", None),
    "pull-qps-exceeded": ("6", "set-pull-policy-if-not-present"),
}


def test_every_cause_has_one_check_with_its_family_and_fix() -> None:
    assert {cause: (c.meta.family, c.meta.action_id) for cause, c in CHECKS.items()} == EXPECTED


def test_metadata_is_complete() -> None:
    for check in CHECKS.values():
        meta = check.meta
        assert (
            meta.title
            and meta.guide_section
            and meta.severity in {"critical", "high", "medium", "low"}
        ), meta.id
        assert meta.reads and all("/" in action for action in meta.reads), meta.id
