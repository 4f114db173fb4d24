"""Least privilege from the code: infra/PERMISSIONS.md is generated from the declarations, infra/
grants exactly it in each mode, and dry-run's missing credentials make checks UNKNOWN, not broken.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from infra_rules import permission_mode_problems, role_module_scope_problems
from test_bicep_contract import grants

from emulator.server import Emulator
from scripts import permissions as generator
from shared import permissions
from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.checks import CHECKS
from shared.checks.base import Status, Target
from shared.config import Settings
from shared.errors import Forbidden

INFRA = Path(__file__).resolve().parents[2] / "infra"


def test_permissions_md_is_generated_from_the_declarations() -> None:
    assert (INFRA / "PERMISSIONS.md").read_text() == generator.render(), (
        "infra/PERMISSIONS.md is out of date: run python -m scripts.permissions"
    )


@pytest.mark.parametrize("mode", permissions.MODES)
def test_infra_grants_exactly_what_each_mode_needs(mode: str) -> None:
    problems = [p for p in permission_mode_problems(INFRA) if p.startswith(f"{mode}:")]
    assert not problems, "\n".join(problems)


def test_every_declared_permission_has_a_role() -> None:
    for mode in permissions.MODES:
        permissions.by_role(mode)  # raises Unplaced for a permission no role carries


def test_dry_run_holds_no_credential_listing_action() -> None:
    needed = permissions.needs("dry-run")
    for action in permissions.CREDENTIAL_LISTING:
        assert action not in needed
    assert not [p for p in needed if permissions.is_kubernetes_data(p)]
    assert set(permissions.needs("enforce")) >= set(permissions.CREDENTIAL_LISTING)


def test_cluster_writes_sit_on_the_cluster_and_assign_in_the_node_resource_group() -> None:
    assert permissions.role_of("Microsoft.ContainerService/managedClusters/write").at == "cluster"
    assert permissions.role_of(
        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
    ).at == ("node resource group")
    assert role_module_scope_problems(INFRA) == []
    where = {g.role.key: g.at for g in grants(INFRA) if g.active("enforce")}
    assert where["clusterOperator"] == "cluster"
    assert not [g for g in grants(INFRA) if g.role.key == "clusterOperator" and g.active("dry-run")]


def _edit(tmp_path: Path, relative: str, old: str, new: str) -> Path:
    root = tmp_path / "infra"
    shutil.copytree(INFRA, root)
    path = root / relative
    text = path.read_text()
    assert old in text, f"{relative} no longer has {old!r}"
    path.write_text(text.replace(old, new, 1))
    return root


def test_a_credential_reader_in_dry_run_is_caught(tmp_path: Path) -> None:
    root = _edit(
        tmp_path,
        "modules/scope-roles.bicep",
        "resource kubernetesReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enforce) {",
        "resource kubernetesReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {",
    )
    problems = permission_mode_problems(root)
    assert any(
        p.startswith("dry-run:") and "listClusterUserCredential" in p and "withheld" in p
        for p in problems
    ), problems


def test_cluster_operator_at_the_subscription_is_caught(tmp_path: Path) -> None:
    root = _edit(
        tmp_path,
        "modules/scope-roles.bicep",
        "  scope: resourceGroup(cluster.resourceGroup)\n",
        "",
    )
    assert role_module_scope_problems(root)


def test_cluster_operator_back_on_the_resource_group_is_caught(tmp_path: Path) -> None:
    """Without `scope: cluster` the assignment covers every cluster of the group again."""
    root = _edit(tmp_path, "modules/cluster-roles.bicep", "  scope: cluster\n", "")
    problems = permission_mode_problems(root)
    assert any(
        p.startswith("enforce:") and "managedClusters/write" in p and "not cluster" in p
        for p in problems
    ), problems
    assert role_module_scope_problems(root)


# -- dry-run in the product: the adapters refuse before asking Azure ------------------------------


@pytest.fixture
def dry_run_estate(
    emulator: Emulator, sample: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> ArmEstate:
    env = {**emulator.environment(), "REMEDIATION_MODE": "dry-run"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the managed identity credential reads IDENTITY_ENDPOINT
    return ArmEstate(ClientFactory(Settings.from_env(env)))


def test_dry_run_checks_needing_credentials_are_unknown_with_the_reason(
    emulator: Emulator, dry_run_estate: ArmEstate
) -> None:
    cluster = dry_run_estate.list_clusters(next(iter(emulator.state.subscriptions)))[0]
    registry = dry_run_estate.list_registries(next(iter(emulator.state.subscriptions)))[0]
    before = len(emulator.state.journal)
    for check_id, reason in permissions.unknown_in("dry-run").items():
        finding = CHECKS[check_id].run(Target(cluster, registry.id), dry_run_estate)
        assert finding.status is Status.UNKNOWN, check_id
        assert reason in finding.summary, (check_id, finding.summary)
    asked = [e.path for e in emulator.state.journal[before:]]
    assert not [
        p for p in asked if p.lower().endswith(("listclusterusercredential", "listcredentials"))
    ]
    with pytest.raises(Forbidden, match="credential-listing"):
        dry_run_estate.list_pull_failures(cluster)


def test_credential_reads_on_lifts_the_dry_run_refusal(
    emulator: Emulator, sample: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI (a person's own rights) and an operator who granted the reader by hand."""
    env = {**emulator.environment(), "REMEDIATION_MODE": "dry-run", "CREDENTIAL_READS": "on"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    estate = ArmEstate(ClientFactory(Settings.from_env(env)))
    cluster = estate.list_clusters(next(iter(emulator.state.subscriptions)))[0]
    estate.list_pull_failures(cluster)  # reads the cluster's API: no refusal
    assert any(e.path.lower().endswith("listclusterusercredential") for e in emulator.state.journal)
