"""attach-acr through the real authorization, registry and Graph clients against the emulator:
from a broken estate to a role assignment ARM holds and a check that passes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from emulator import scenario
from emulator.providers import authorization as authz
from emulator.server import Emulator
from shared.azure.estate import ArmEstate
from shared.checks.acrpull_missing import AcrPullMissing
from shared.checks.base import Check, Finding, Status, Target
from shared.checks.sp_mismatch import SpMismatch
from shared.remediations.attach_acr import AttachAcr, assignment_name
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

SP_APP = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
NEW_APP = "8b1e4c2d-6f3a-4d5e-9a7b-0c1d2e3f4a5b"
RG_ID = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-acr"
REGISTRY_ID = f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/acr1"
WRITES = ("PUT", "POST", "PATCH", "DELETE")


def estate_spec(
    *,
    cluster: dict[str, Any] | None = None,
    registry: dict[str, Any] | None = None,
    group: dict[str, Any] | None = None,
    breaks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {
                        "name": "rg-aks",
                        "clusters": [
                            {"name": "aks1", "attachedRegistries": ["acr1"], **(cluster or {})}
                        ],
                    },
                    {
                        "name": "rg-acr",
                        "registries": [{"name": "acr1", **(registry or {})}],
                        **(group or {}),
                    },
                ],
            }
        ],
        "breaks": breaks
        if breaks is not None
        else [{"cause": "acrpull-missing", "cluster": "aks1", "registry": "acr1"}],
    }


def new_estate() -> ArmEstate:
    return fresh_estate()


def target(estate: ArmEstate, emulator: Emulator) -> Target:
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, "aks1")["id"])
    return Target(cluster, REGISTRY_ID)


def check(emulator: Emulator, kind: type[Check] = AcrPullMissing) -> Finding:
    estate = new_estate()
    return kind().run(target(estate, emulator), estate)


def assignments_at_registry(emulator: Emulator) -> list[dict[str, Any]]:
    return [
        a
        for a in authz.assignments(emulator.state)
        if a["properties"]["scope"].lower() == REGISTRY_ID.lower()
    ]


def kubelet_object_id(emulator: Emulator) -> str:
    cluster = scenario.find_cluster(emulator.state, "aks1")
    return str(cluster["properties"]["identityProfile"]["kubeletidentity"]["objectId"])


def sp_object_id(emulator: Emulator, app_id: str) -> str:
    return str(emulator.state.graph_applications[app_id]["_servicePrincipal"]["id"])


def writes(emulator: Emulator) -> list[tuple[str, str, int]]:
    return [(e.method, e.path, e.status) for e in emulator.journal() if e.method in WRITES]


def apply(emulator: Emulator, finding: Finding) -> Any:
    estate = new_estate()
    return AttachAcr().apply(finding, target(estate, emulator), estate, timeout=30)


def test_missing_acrpull_is_assigned_at_the_registry(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec())
    assert assignments_at_registry(emulator) == []
    finding = check(emulator)
    assert finding.status is Status.FAIL and finding.action_id == "attach-acr"

    record = apply(emulator, finding)

    assert record.status == "applied", record.detail
    assert "AcrPull on acr1 for the kubelet identity of aks1" in record.detail
    principal = kubelet_object_id(emulator)
    [assignment] = assignments_at_registry(emulator)
    props = assignment["properties"]
    # attach-acr writes the subscription form; ARM keeps built-in roles in the tenant form.
    assert props["roleDefinitionId"] == (
        f"/providers/Microsoft.Authorization/roleDefinitions/{authz.ACR_PULL}"
    )
    put = next(e for e in emulator.journal("arm") if e.method == "PUT")
    assert put.body["properties"]["roleDefinitionId"] == (
        f"/subscriptions/{PROD_SUB}/providers/Microsoft.Authorization/roleDefinitions/{authz.ACR_PULL}"
    )
    assert props["principalId"] == principal
    assert props["principalType"] == "ServicePrincipal"
    assert assignment["name"] == assignment_name(REGISTRY_ID, authz.ACR_PULL, principal)
    assert props["createdBy"] == emulator.state.app_principal_id  # written through ARM, by us
    [(method, path, status)] = writes(emulator)
    assert (method, status) == ("PUT", 201)
    assert (
        path.lower()
        == f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/{assignment['name']}".lower()
    )
    verification = check(emulator)
    assert verification.status is Status.PASS, verification.summary
    assert verification.evidence["granting"][0]["scope"] == REGISTRY_ID


def test_plan_is_a_dry_run(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec())
    finding = check(emulator)
    before = assignments_at_registry(emulator)

    plan = AttachAcr().plan(finding, target(new_estate(), emulator))

    principal = kubelet_object_id(emulator)
    assert plan.action_id == "attach-acr"
    assert plan.commands == (
        f"az aks update -n aks1 -g rg-aks --attach-acr {REGISTRY_ID}",
        f"az role assignment create --assignee-object-id {principal} "
        f'--assignee-principal-type ServicePrincipal --role "AcrPull" --scope {REGISTRY_ID}',
    )
    assert "AcrPull on acr1" in plan.summary and principal in plan.summary
    assert writes(emulator) == []
    assert assignments_at_registry(emulator) == before == []


def test_apply_twice_leaves_one_assignment(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec())
    finding = check(emulator)

    first, second = apply(emulator, finding), apply(emulator, finding)

    assert (first.status, second.status) == ("applied", "applied")
    assert len(assignments_at_registry(emulator)) == 1
    puts = writes(emulator)
    assert [(m, s) for m, _, s in puts] == [("PUT", 201), ("PUT", 200)]
    assert puts[0][1] == puts[1][1]  # the same deterministic name both times


def test_same_grant_under_another_name_counts_as_success(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    other_name = "0b7f3c1e-2a4d-4e5f-8a9b-1c2d3e4f5a6b"
    group = {
        "roleAssignments": [
            {"scope": "acr1", "role": "AcrPull", "principal": "kubelet:aks1", "name": other_name}
        ]
    }
    scenario.load(
        emulator.state, estate_spec(cluster={"attachedRegistries": []}, group=group, breaks=[])
    )
    assert check(emulator).status is Status.PASS  # already fixed, e.g. by a person meanwhile

    record = apply(emulator, check(emulator))

    assert record.status == "applied", record.detail
    assert "already existed" in record.detail
    assert [a["name"] for a in assignments_at_registry(emulator)] == [other_name]
    [(method, _, status)] = writes(emulator)
    assert (method, status) == ("PUT", 409)


def test_abac_registry_gets_repository_reader(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(
        emulator.state, estate_spec(registry={"roleAssignmentMode": "AbacRepositoryPermissions"})
    )
    finding = check(emulator)
    assert finding.status is Status.FAIL
    assert finding.evidence["requiredRole"] == "Container Registry Repository Reader"
    plan = AttachAcr().plan(finding, target(new_estate(), emulator))
    assert '--role "Container Registry Repository Reader"' in plan.commands[1]

    record = apply(emulator, finding)

    assert record.status == "applied", record.detail
    [assignment] = assignments_at_registry(emulator)
    assert assignment["properties"]["roleDefinitionId"].endswith(f"/{authz.REPOSITORY_READER}")
    assert assignment["properties"]["principalId"] == kubelet_object_id(emulator)
    verification = check(emulator)
    assert verification.status is Status.PASS, verification.summary
    assert [g["role"] for g in verification.evidence["granting"]] == [
        "Container Registry Repository Reader"
    ]


def test_sp_mismatch_assigns_the_current_service_principal(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            cluster={"servicePrincipal": SP_APP},
            breaks=[{"cause": "sp-mismatch", "cluster": "aks1", "newAppId": NEW_APP}],
        ),
    )
    finding = check(emulator, SpMismatch)
    assert finding.status is Status.FAIL and finding.action_id == "attach-acr"
    plan = AttachAcr().plan(finding, target(new_estate(), emulator))
    assert sp_object_id(emulator, NEW_APP) in plan.commands[1]
    assert any("previous service principal" in w and "left in place" in w for w in plan.warnings)

    record = apply(emulator, finding)

    assert record.status == "applied", record.detail
    assert f"service principal {NEW_APP}" in record.detail
    principals = {a["properties"]["principalId"] for a in assignments_at_registry(emulator)}
    # The new SP is granted; the old SP's assignment is still there (not ours to delete).
    assert principals == {sp_object_id(emulator, NEW_APP), sp_object_id(emulator, SP_APP)}
    assert check(emulator, SpMismatch).status is Status.PASS
    assert check(emulator).status is Status.PASS


def test_service_principal_cluster_with_acrpull_missing(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(cluster={"servicePrincipal": SP_APP}))
    record = apply(emulator, check(emulator))
    assert record.status == "applied", record.detail
    [assignment] = assignments_at_registry(emulator)
    assert assignment["properties"]["principalId"] == sp_object_id(emulator, SP_APP)
    assert check(emulator).status is Status.PASS


def test_forbidden_role_assignment_write_fails_cleanly(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec())
    finding = check(emulator)
    emulator.deny(f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/")

    record = apply(emulator, finding)

    assert record.status == "failed"
    assert "may not create role assignments" in record.detail
    assert "AuthorizationFailed" in record.detail
    assert assignments_at_registry(emulator) == []
    [(method, _, status)] = writes(emulator)
    assert (method, status) == ("PUT", 403)


def test_deleted_registry_fails_without_writing(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec())
    finding = check(emulator)
    emulator.state.delete(REGISTRY_ID)

    record = apply(emulator, finding)

    assert record.status == "failed"
    assert "acr1 was not found" in record.detail
    assert writes(emulator) == []


@pytest.mark.parametrize(
    ("registry_id", "principal"),
    [
        (REGISTRY_ID, "6a1c5b9e-0f7d-4e2b-8c3a-9d8e7f6a5b4c"),
        (REGISTRY_ID.upper(), "6A1C5B9E-0F7D-4E2B-8C3A-9D8E7F6A5B4C"),
    ],
)
def test_assignment_name_ignores_case(registry_id: str, principal: str) -> None:
    assert assignment_name(registry_id, authz.ACR_PULL, principal) == assignment_name(
        REGISTRY_ID, authz.ACR_PULL, "6a1c5b9e-0f7d-4e2b-8c3a-9d8e7f6a5b4c"
    )
    assert assignment_name(REGISTRY_ID, authz.REPOSITORY_READER, principal) != assignment_name(
        REGISTRY_ID, authz.ACR_PULL, principal
    )


# -- PrincipalNotFound: a new identity replicating, a deleted one gone -------------------------


def test_a_new_kubelet_identity_is_retried_until_it_replicates(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec())
    finding = check(emulator)
    emulator.state.replication_delay = 1.0
    emulator.state.principal_new(kubelet_object_id(emulator))  # created just now
    estate = new_estate()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    record = AttachAcr(poll=0.2, sleep=sleep).apply(
        finding, target(estate, emulator), estate, timeout=30
    )

    assert record.status == "applied", record.detail
    statuses = [status for method, _, status in writes(emulator) if method == "PUT"]
    assert statuses[0] == 400 and statuses[-1] == 201
    assert set(statuses[:-1]) == {400}
    assert waits and waits == sorted(waits)  # backoff, never shorter
    [assignment] = assignments_at_registry(emulator)
    assert assignment["properties"]["principalId"] == kubelet_object_id(emulator)
    assert check(emulator).status is Status.PASS


def test_an_identity_still_replicating_after_the_wait_is_deferred_not_failed(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    from shared.errors import Busy, Replicating

    scenario.load(emulator.state, estate_spec())
    finding = check(emulator)
    emulator.state.replication_delay = 3600.0
    emulator.state.principal_new(kubelet_object_id(emulator))
    estate = new_estate()
    fix = AttachAcr(poll=0.05, replication_wait=0.3)

    with pytest.raises(Replicating) as caught:
        fix.apply(finding, target(estate, emulator), estate, timeout=30)

    assert isinstance(caught.value, Busy)  # the responder defers a Busy: redelivered later
    assert "replication" in caught.value.reason
    assert assignments_at_registry(emulator) == []
    emulator.state.replication_delay = 0.0  # replicated by the next delivery
    estate = new_estate()
    assert fix.apply(finding, target(estate, emulator), estate, timeout=30).status == "applied"


def test_a_deleted_kubelet_identity_is_a_failed_action_with_the_reason(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            breaks=[
                {"cause": "acrpull-missing", "cluster": "aks1", "registry": "acr1"},
                {"cause": "kubelet-identity-deleted", "cluster": "aks1"},
            ]
        ),
    )
    finding = check(emulator)
    assert finding.status is Status.FAIL
    slept: list[float] = []
    estate = new_estate()

    record = AttachAcr(sleep=slept.append).apply(
        finding, target(estate, emulator), estate, timeout=30
    )

    assert record.status == "failed"
    assert "was deleted" in record.detail and "PrincipalNotFound" in record.detail
    assert "--assign-kubelet-identity" in record.detail
    assert slept == []  # gone is not worth waiting for
    assert [(m, s) for m, _, s in writes(emulator)] == [("PUT", 400)]
    assert assignments_at_registry(emulator) == []


def test_abac_registry_grant_is_limited_to_the_repositories_the_cluster_runs(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    from shared.abac import Request, evaluate
    from shared.checks.repository_conditions import REPOSITORY_NAME
    from shared.ports.rbac import REPOSITORY_READ_DATA_ACTION

    workloads = [
        {"namespace": "shop", "name": "api", "image": "acr1.azurecr.io/shop/api:v1"},
        {"namespace": "shop", "name": "web", "image": "acr1.azurecr.io/web:v2"},
        {"namespace": "shop", "name": "proxy", "image": "docker.io/library/nginx:1.27"},
    ]
    scenario.load(
        emulator.state,
        estate_spec(
            cluster={"namespaces": ["shop"], "workloads": workloads},
            registry={"roleAssignmentMode": "AbacRepositoryPermissions"},
        ),
    )
    estate = new_estate()
    image_target = Target(target(estate, emulator).cluster, REGISTRY_ID, "acr1.azurecr.io/web:v2")
    finding = AcrPullMissing().run(image_target, estate)
    assert finding.status is Status.FAIL, finding.summary
    plan = AttachAcr().plan(finding, image_target)
    assert "--condition-version 2.0" in plan.commands[1] and "'web'" in plan.commands[1]

    record = AttachAcr().apply(finding, image_target, new_estate(), timeout=30)

    assert record.status == "applied", record.detail
    assert "for repositories shop/api, web" in record.detail
    [assignment] = assignments_at_registry(emulator)
    props = assignment["properties"]
    assert props["conditionVersion"] == "2.0"

    def allows(repository: str) -> bool:
        request = Request(REPOSITORY_READ_DATA_ACTION, {REPOSITORY_NAME: [repository]})
        return evaluate(props["condition"], request)

    assert (allows("shop/api"), allows("web"), allows("library/nginx"), allows("other")) == (
        True,
        True,
        False,
        False,
    )
    for image, status in (
        ("acr1.azurecr.io/shop/api:v1", Status.PASS),
        ("acr1.azurecr.io/other:v1", Status.FAIL),
    ):
        estate = new_estate()
        verify = Target(target(estate, emulator).cluster, REGISTRY_ID, image)
        assert AcrPullMissing().run(verify, estate).status is status
