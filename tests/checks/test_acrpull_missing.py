"""acrpull-missing through the real authorization, registry and Graph clients against the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from emulator import scenario
from emulator.providers import authorization as authz
from emulator.server import Emulator
from shared.checks.acrpull_missing import AcrPullMissing
from shared.checks.base import Finding, Status, Target
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

SP_APP = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
RG_ID = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-acr"


def estate_spec(
    *,
    cluster: dict[str, Any] | None = None,
    registry: dict[str, Any] | None = None,
    group: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {"name": "rg-aks", "clusters": [{"name": "aks1", **(cluster or {})}]},
                    {
                        "name": "rg-acr",
                        "registries": [{"name": "acr1", **(registry or {})}],
                        **(group or {}),
                    },
                ],
            }
        ]
    }


def run(emulator: Emulator, *, registry: str = "acr1", image: str | None = None) -> Finding:
    estate = fresh_estate()
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, "aks1")["id"])
    registry_id = f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/{registry}"
    return AcrPullMissing().run(Target(cluster, registry_id, image), estate)


def kubelet_object_id(emulator: Emulator) -> str:
    cluster = scenario.find_cluster(emulator.state, "aks1")
    return str(cluster["properties"]["identityProfile"]["kubeletidentity"]["objectId"])


def test_attached_registry_passes(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(cluster={"attachedRegistries": ["acr1"]}))
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["principalId"] == kubelet_object_id(emulator)
    assert [(g["role"], g["inherited"]) for g in finding.evidence["granting"]] == [
        ("AcrPull", False)
    ]
    reads = [e for e in emulator.journal("arm") if "roleAssignments" in e.path]
    assert reads and all(e.api_version == "2022-04-01" for e in reads)


def test_deleted_assignment_fails_with_evidence(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state,
        {
            **estate_spec(cluster={"attachedRegistries": ["acr1"]}),
            "breaks": [{"cause": "acrpull-missing", "cluster": "aks1", "registry": "acr1"}],
        },
    )
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.action_id == "attach-acr"
    assert finding.evidence["principalId"] == kubelet_object_id(emulator)
    assert finding.evidence["identity"] == "kubelet identity"
    assert finding.evidence["granting"] == []
    assert finding.evidence["requiredRole"] == "AcrPull"
    registry_id = finding.evidence["registry"]
    assert f"az role assignment list --scope {registry_id} -o table" in finding.commands
    assert f"az aks update -n aks1 -g rg-aks --attach-acr {registry_id}" in finding.commands


def test_assignment_inherited_from_resource_group_passes(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    group = {
        "roleAssignments": [
            {"scope": "resourceGroup", "role": "AcrPull", "principal": "kubelet:aks1"}
        ]
    }
    scenario.load(emulator.state, estate_spec(group=group))
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    granting = finding.evidence["granting"]
    assert [(g["scope"], g["inherited"]) for g in granting] == [(RG_ID, True)]
    assert "inherited from" in finding.summary


def test_assignment_to_someone_else_does_not_count(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    other = "6a1c5b9e-0f7d-4e2b-8c3a-9d8e7f6a5b4c"
    group = {"roleAssignments": [{"scope": "acr1", "role": "AcrPull", "principal": other}]}
    scenario.load(emulator.state, estate_spec(group=group))
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["considered"] == []


@pytest.mark.parametrize(
    ("actions", "not_actions", "status"),
    [
        (["Microsoft.ContainerRegistry/registries/pull/read"], [], Status.PASS),
        (["Microsoft.ContainerRegistry/*"], [], Status.PASS),
        (["microsoft.containerregistry/registries/*/read"], [], Status.PASS),
        (
            ["Microsoft.ContainerRegistry/*"],
            ["Microsoft.ContainerRegistry/registries/pull/*"],
            Status.FAIL,
        ),
        (["Microsoft.ContainerRegistry/registries/read"], [], Status.FAIL),
    ],
)
def test_custom_role_counts_when_its_actions_match_pull(
    emulator: Emulator,
    app_env: dict[str, str],
    actions: list[str],
    not_actions: list[str],
    status: Status,
) -> None:
    group = {
        "customRoles": [{"name": "Image Puller", "actions": actions, "notActions": not_actions}],
        "roleAssignments": [
            {"scope": "subscription", "role": "Image Puller", "principal": "kubelet:aks1"}
        ],
    }
    scenario.load(emulator.state, estate_spec(group=group))
    finding = run(emulator)
    assert finding.status is status, finding.summary
    assert [c["role"] for c in finding.evidence["considered"]] == ["Image Puller"]
    assert finding.evidence["considered"][0]["scope"] == f"/subscriptions/{PROD_SUB}"


def test_abac_registry_ignores_acrpull(emulator: Emulator, app_env: dict[str, str]) -> None:
    group = {"roleAssignments": [{"scope": "acr1", "role": "AcrPull", "principal": "kubelet:aks1"}]}
    scenario.load(
        emulator.state,
        estate_spec(registry={"roleAssignmentMode": "AbacRepositoryPermissions"}, group=group),
    )
    finding = run(emulator)
    assert finding.status is Status.FAIL
    assert "ABAC" in finding.summary
    assert finding.evidence["requiredRole"] == "Container Registry Repository Reader"
    assert finding.evidence["roleAssignmentMode"] == "AbacRepositoryPermissions"
    assert [c["role"] for c in finding.evidence["considered"]] == ["AcrPull"]


def test_abac_registry_with_repository_reader_passes(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            cluster={"attachedRegistries": ["acr1"]},
            registry={"roleAssignmentMode": "AbacRepositoryPermissions"},
        ),
    )
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert [g["role"] for g in finding.evidence["granting"]] == [
        "Container Registry Repository Reader"
    ]


def test_owner_on_abac_registry_grants_no_pull(emulator: Emulator, app_env: dict[str, str]) -> None:
    group = {
        "roleAssignments": [{"scope": "subscription", "role": "Owner", "principal": "kubelet:aks1"}]
    }
    scenario.load(
        emulator.state,
        estate_spec(registry={"roleAssignmentMode": "AbacRepositoryPermissions"}, group=group),
    )
    assert run(emulator).status is Status.FAIL


def test_service_principal_cluster_uses_the_sp_object_id(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state,
        estate_spec(cluster={"servicePrincipal": SP_APP, "attachedRegistries": ["acr1"]}),
    )
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    sp_object_id = emulator.state.graph_applications[SP_APP]["_servicePrincipal"]["id"]
    assert finding.evidence["principalId"] == sp_object_id
    assert finding.evidence["identity"] == "service principal"
    scenario.apply_break(emulator.state, {"cause": "acrpull-missing", "cluster": "aks1"})
    assert run(emulator).status is Status.FAIL


def test_unreadable_role_assignments_are_unknown(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(cluster={"attachedRegistries": ["acr1"]}))
    emulator.deny(
        f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/acr1/providers/Microsoft.Authorization"
    )
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert finding.action_id is None
    assert [e.status for e in emulator.journal("arm") if e.path.endswith("/roleAssignments")] == [
        403
    ]


def test_missing_registry_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(cluster={"attachedRegistries": ["acr1"]}))
    finding = run(emulator, registry="nosuchacr")
    assert finding.status is Status.UNKNOWN
    assert finding.evidence["unreadable"].endswith("/registries/nosuchacr")


# -- tenants as they are: management groups, the root scope, tenant-form ids, deny assignments --

MG_ID = "/providers/Microsoft.Management/managementGroups/mg-platform"


def with_management_group(spec: dict[str, Any], grants: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "managementGroups": [
            {"name": "mg-platform", "subscriptions": [PROD_SUB], "roleAssignments": grants}
        ],
        **spec,
    }


def test_grant_inherited_from_a_management_group_passes(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    # Old main: ValueError "not a subscription-level scope" on the tenant-form role id.
    spec = with_management_group(estate_spec(), [{"role": "AcrPull", "principal": "kubelet:aks1"}])
    scenario.load(emulator.state, spec)
    emulator.state.role_ids_listed_in_tenant_form = True  # the examples' form, not only ARM's
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    [grant] = finding.evidence["granting"]
    assert (grant["scope"], grant["inherited"], grant["role"]) == (MG_ID, True, "AcrPull")
    assert grant["roleDefinitionId"] == (
        f"/providers/Microsoft.Authorization/roleDefinitions/{authz.ACR_PULL}"
    )
    assert f"inherited from {MG_ID}" in finding.summary


def test_grant_at_the_root_scope_passes(emulator: Emulator, app_env: dict[str, str]) -> None:
    group = {"roleAssignments": [{"scope": "root", "role": "AcrPull", "principal": "kubelet:aks1"}]}
    scenario.load(emulator.state, estate_spec(group=group))
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert [g["scope"] for g in finding.evidence["granting"]] == ["/"]


def test_custom_role_assigned_at_a_management_group_is_resolved(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    group = {
        "customRoles": [
            {
                "name": "Image Puller",
                "actions": ["Microsoft.ContainerRegistry/registries/pull/read"],
                "assignableScopes": [MG_ID],
            }
        ]
    }
    spec = with_management_group(
        estate_spec(group=group), [{"role": "Image Puller", "principal": "kubelet:aks1"}]
    )
    scenario.load(emulator.state, spec)
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    [grant] = finding.evidence["granting"]
    assert grant["roleDefinitionId"].startswith(f"{MG_ID}/providers/Microsoft.Authorization/")


def test_unreadable_role_is_unknown_with_the_reason(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    # Old main raised instead: the tenant-form id named no subscription.
    scenario.load(emulator.state, estate_spec(cluster={"attachedRegistries": ["acr1"]}))
    emulator.state.role_ids_listed_in_tenant_form = True
    emulator.deny("/providers/Microsoft.Authorization/roleDefinitions")
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN, finding.summary
    assert finding.action_id is None
    [unreadable] = finding.evidence["unreadableRoles"]
    assert unreadable["roleDefinitionId"].endswith(authz.ACR_PULL)
    assert "may not read role definition" in unreadable["reason"]
    assert unreadable["reason"] in finding.summary


def test_malformed_role_id_is_unknown_not_an_exception(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(cluster={"attachedRegistries": ["acr1"]}))
    for assignment in authz.assignments(emulator.state):
        assignment["properties"]["roleDefinitionId"] = "AcrPull"  # not an id at all
        emulator.state.put(assignment)
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert "not a role definition id" in finding.summary


def test_unreadable_role_does_not_hide_another_grant(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    group = {"roleAssignments": [{"scope": "acr1", "role": "AcrPull", "principal": "kubelet:aks1"}]}
    scenario.load(emulator.state, estate_spec(group=group))
    broken = authz.new_assignment(
        RG_ID,
        "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d",
        role_definition_id="/providers/Microsoft.Authorization/roleDefinitions/"
        "11111111-2222-4333-8444-555555555555",  # a role deleted since
        principal_id=kubelet_object_id(emulator),
    )
    emulator.state.put(broken)
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert [u["id"] for u in finding.evidence["unreadableRoles"]] == [broken["id"]]


@pytest.mark.parametrize("abac", [False, True])
def test_deny_assignment_takes_the_grant_away(
    emulator: Emulator, app_env: dict[str, str], abac: bool
) -> None:
    deny = {
        "scope": "resourceGroup",
        "name": "Blueprint: no pulls",
        "principals": ["everyone"],
        "excludePrincipals": ["sp:" + SP_APP],
        "actions": ["Microsoft.ContainerRegistry/registries/pull/read"],
        "dataActions": ["Microsoft.ContainerRegistry/registries/repositories/content/read"],
    }
    registry = {"roleAssignmentMode": "AbacRepositoryPermissions"} if abac else {}
    scenario.load(
        emulator.state,
        estate_spec(
            cluster={"attachedRegistries": ["acr1"]},
            registry=registry,
            group={"denyAssignments": [deny]},
        ),
    )
    finding = run(emulator)
    assert finding.status is Status.FAIL, finding.summary
    assert finding.action_id is None  # another role assignment would not help
    [denied] = finding.evidence["denyAssignments"]
    assert denied["scope"] == RG_ID
    assert "deny assignment" in finding.summary


def test_deny_assignment_for_someone_else_changes_nothing(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    deny = {
        "scope": "acr1",
        "name": "no pulls for the old SP",
        "principals": ["6a1c5b9e-0f7d-4e2b-8c3a-9d8e7f6a5b4c"],
        "actions": ["Microsoft.ContainerRegistry/registries/pull/read"],
    }
    excluded = {
        **deny,
        "name": "everyone but aks1",
        "principals": ["everyone"],
        "excludePrincipals": ["kubelet:aks1"],
    }
    scenario.load(
        emulator.state,
        estate_spec(
            cluster={"attachedRegistries": ["acr1"]},
            group={"denyAssignments": [deny, excluded]},
        ),
    )
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    assert "denyAssignments" not in finding.evidence


# -- ABAC repository conditions ----------------------------------------------------------------

REPO = "@Resource[Microsoft.ContainerRegistry/registries/repositories:name]"
READ = "Microsoft.ContainerRegistry/registries/repositories/content/read"
ABAC = {"roleAssignmentMode": "AbacRepositoryPermissions"}


def limited_to(expression: str) -> str:
    """The documented shape: content reads are allowed only when ``expression`` holds."""
    return f"((!(ActionMatches{{'{READ}'}})) OR ({expression}))"


def load_conditioned(emulator: Emulator, condition: str) -> None:
    group = {
        "roleAssignments": [
            {
                "scope": "acr1",
                "role": "Container Registry Repository Reader",
                "principal": "kubelet:aks1",
                "condition": condition,
            }
        ]
    }
    scenario.load(emulator.state, estate_spec(registry=ABAC, group=group))


def test_condition_for_another_repository_is_no_grant(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    # Old main: PASS, the condition was never read.
    condition = limited_to(f"{REPO} StringEquals 'other'")
    load_conditioned(emulator, condition)
    finding = run(emulator, image="acr1.azurecr.io/app:v1")
    assert finding.status is Status.FAIL, finding.summary
    assert finding.action_id == "attach-acr"
    assert finding.evidence["repository"] == "app"
    assert finding.evidence["granting"] == []
    [limited] = finding.evidence["limitedByCondition"]
    assert limited["condition"] == condition
    assert "'app'" in finding.summary and condition in finding.summary


@pytest.mark.parametrize(
    ("expression", "status"),
    [
        (f"{REPO} StringEquals 'app'", Status.PASS),
        (f"{REPO} StringLike 'ap*'", Status.PASS),
        (f"{REPO} StringStartsWith 'team-a/'", Status.FAIL),
        (f"{REPO} StringStartsWith 'team-a/' OR {REPO} StringEquals 'app'", Status.PASS),
        (f"{REPO} StringLike 'a*' AND {REPO} StringEquals 'other'", Status.FAIL),
        (f"{REPO} ForAnyOfAnyValues:StringEquals {{'web', 'app'}}", Status.PASS),
    ],
)
def test_condition_forms_are_evaluated_for_the_image_repository(
    emulator: Emulator, app_env: dict[str, str], expression: str, status: Status
) -> None:
    load_conditioned(emulator, limited_to(expression))
    finding = run(emulator, image="acr1.azurecr.io/app:v1")
    assert finding.status is status, finding.summary
    if status is Status.PASS:
        assert "whose condition allows repository 'app'" in finding.summary


def test_condition_that_cannot_be_evaluated_is_unknown_with_its_text(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    condition = limited_to("@Request[Microsoft.ContainerRegistry/registries:tag] StringEquals 'v1'")
    load_conditioned(emulator, condition)
    finding = run(emulator, image="acr1.azurecr.io/app:v1")
    assert finding.status is Status.UNKNOWN, finding.summary
    assert finding.action_id is None
    assert condition in finding.summary
    [entry] = finding.evidence["conditionNotEvaluable"]
    assert entry["condition"] == condition and "cannot be evaluated" in entry["reason"]


def test_unreadable_condition_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    load_conditioned(emulator, "((!(ActionMatches{'x'})) OR (")
    finding = run(emulator, image="acr1.azurecr.io/app:v1")
    assert finding.status is Status.UNKNOWN
    assert "cannot be read" in finding.evidence["conditionNotEvaluable"][0]["reason"]


def test_condition_without_an_image_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    load_conditioned(emulator, limited_to(f"{REPO} StringEquals 'app'"))
    finding = run(emulator)
    assert finding.status is Status.UNKNOWN
    assert "no image was given" in finding.summary
