"""shared.abac: ABAC conditions as Azure documents them, parsed and evaluated."""

from __future__ import annotations

import pytest

from shared.abac import ConditionNotEvaluable, ConditionSyntaxError, Request, evaluate

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
REPOSITORY_READER = "b93aa761-3e63-49ed-ac28-beffa264f7ac"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
WRITE = "Microsoft.Authorization/roleAssignments/write"
ROLE = "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId]"
PRINCIPAL_TYPE = "@Request[Microsoft.Authorization/roleAssignments:PrincipalType]"
REPOSITORY = "@Resource[Microsoft.ContainerRegistry/registries/repositories:name]"

# The documented "constrain roles" example, with this product's two roles.
CONSTRAIN_ROLES = (
    f"((!(ActionMatches{{'{WRITE}'}})) OR ({ROLE} ForAnyOfAnyValues:GuidEquals "
    f"{{{ACR_PULL}, {REPOSITORY_READER}}} AND {PRINCIPAL_TYPE} "
    "ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}))"
)


def assignment(role: str, principal_type: str = "ServicePrincipal", action: str = WRITE) -> Request:
    return Request(action, {ROLE: [role], PRINCIPAL_TYPE: [principal_type]})


@pytest.mark.parametrize(
    ("request_", "allowed"),
    [
        (assignment(ACR_PULL), True),
        (assignment(REPOSITORY_READER.upper()), True),
        (assignment(OWNER), False),
        (assignment(ACR_PULL, "User"), False),
        (assignment(ACR_PULL, "Group"), False),
        (assignment(OWNER, action="Microsoft.Authorization/roleAssignments/read"), True),
    ],
)
def test_constrain_roles_condition(request_: Request, allowed: bool) -> None:
    assert evaluate(CONSTRAIN_ROLES, request_) is allowed


@pytest.mark.parametrize(
    ("condition", "repository", "allowed"),
    [
        (f"{REPOSITORY} StringEquals 'app'", "app", True),
        (f"{REPOSITORY} StringEquals 'app'", "App", False),
        (f"{REPOSITORY} StringEqualsIgnoreCase 'app'", "App", True),
        (f"{REPOSITORY} StringLike 'team-a/*'", "team-a/api", True),
        (f"{REPOSITORY} StringLike 'team-a/*'", "team-b/api", False),
        (f"{REPOSITORY} StringStartsWith 'base'", "baseimages/nginx", True),
        (f"{REPOSITORY} StringNotEquals 'other'", "app", True),
        (f"{REPOSITORY} StringEquals 'a' OR {REPOSITORY} StringEquals 'b'", "b", True),
        (f"{REPOSITORY} StringEquals 'a' && {REPOSITORY} StringLike '*'", "b", False),
        (f"NOT ({REPOSITORY} StringEquals 'other')", "app", True),
        (f"{REPOSITORY} ForAnyOfAnyValues:StringEquals {{'x', 'app'}}", "app", True),
    ],
)
def test_repository_conditions(condition: str, repository: str, allowed: bool) -> None:
    request = Request(
        "Microsoft.ContainerRegistry/registries/repositories/content/read",
        {REPOSITORY: [repository]},
    )
    assert evaluate(condition, request) is allowed


def test_an_attribute_nobody_knows_is_not_guessed() -> None:
    with pytest.raises(ConditionNotEvaluable, match="Principal"):
        evaluate(
            "@Principal[Microsoft.Directory/CustomSecurityAttributes/Id:team] StringEquals 'a'",
            Request("x", {}),
        )


def test_an_operator_it_does_not_know_is_not_guessed() -> None:
    with pytest.raises(ConditionNotEvaluable, match="NumericLessThan"):
        evaluate(f"{REPOSITORY} NumericLessThan '3'", Request("x", {REPOSITORY: ["a"]}))


@pytest.mark.parametrize(
    "garbled",
    [
        f"{REPOSITORY} StringEquals",
        f"({REPOSITORY} StringEquals 'a'",
        f"{REPOSITORY} StringEquals 'a' AND",
        "ActionMatches{'x'} ) OR",
        "%%%",
    ],
)
def test_garbled_conditions_are_refused(garbled: str) -> None:
    with pytest.raises(ConditionSyntaxError):
        evaluate(garbled, Request("x", {REPOSITORY: ["a"]}))
