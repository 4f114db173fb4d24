"""The root-cause rules as data: every pair in the table, the pairs that stay two problems, and
the path order (the end-to-end cases are in tests/integration/test_root_cause.py)."""

from __future__ import annotations

import itertools

import pytest

from shared.checks import CHECKS
from shared.checks.base import Finding, Status
from shared.root_cause import EXPLAINS, STAGES, consequence_of, explain

CLUSTER = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c"
)


def failing(*causes: str) -> list[Finding]:
    return [Finding(c, Status.FAIL, f"{c} fails", CLUSTER, None) for c in causes]


def test_every_check_has_a_place_on_the_path() -> None:
    assert set(CHECKS) <= set(STAGES)  # causes still to come (DESIGN.md 4) have a place too
    assert all(root in STAGES and set(later) <= set(STAGES) for root, later in EXPLAINS.items())


@pytest.mark.parametrize(
    ("root", "consequence"),
    sorted((root, later) for root, laters in EXPLAINS.items() for later in laters),
)
def test_a_root_explains_its_consequence_in_either_order(root: str, consequence: str) -> None:
    for given in (failing(consequence, root), failing(root, consequence)):
        first, second = explain(given)
        assert (first.cause_id, second.cause_id) == (root, consequence)
        assert consequence_of(second) == (root,)
        assert first.evidence["consequences"] == [
            {"cause": consequence, "summary": f"{consequence} fails"}
        ]
        assert consequence_of(first) == ()


INDEPENDENT = [
    pair
    for pair in itertools.combinations(sorted(STAGES), 2)
    if pair[1] not in EXPLAINS.get(pair[0], ()) and pair[0] not in EXPLAINS.get(pair[1], ())
]


@pytest.mark.parametrize(("left", "right"), INDEPENDENT)
def test_other_pairs_stay_two_problems(left: str, right: str) -> None:
    found = explain(failing(right, left))
    assert all(consequence_of(f) == () and "consequences" not in f.evidence for f in found)
    # Along the path; within one stage, as given.
    assert [f.cause_id for f in found] == sorted((right, left), key=STAGES.__getitem__)


def test_a_passing_root_explains_nothing() -> None:
    dns = Finding("private-dns-link-missing", Status.PASS, "ok", CLUSTER, None)
    (firewall,) = failing("firewall-ip-not-allowed")
    assert [consequence_of(f) for f in explain([firewall, dns])] == [(), ()]


def test_explain_is_idempotent() -> None:
    once = explain(failing("firewall-ip-not-allowed", "vnet-peering-missing"))
    assert explain(once) == once
