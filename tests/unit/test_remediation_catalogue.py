"""Every action a check names has a remediation, and every remediation declares what it needs."""

from __future__ import annotations

from shared.checks import CHECKS
from shared.policy import ACTION_IDS
from shared.remediations import REMEDIATIONS


def test_every_action_a_check_names_exists() -> None:
    named = {c.meta.action_id for c in CHECKS.values() if c.meta.action_id}
    assert named <= set(REMEDIATIONS)


def test_the_policy_knows_exactly_the_remediations() -> None:
    assert set(ACTION_IDS) == set(REMEDIATIONS)


def test_permissions_are_declared_as_rbac_actions() -> None:
    for remediation in REMEDIATIONS.values():
        assert remediation.permissions, remediation.id
        for action in remediation.permissions:
            assert action.startswith("Microsoft.") and action.count("/") >= 2, (
                remediation.id,
                action,
            )
