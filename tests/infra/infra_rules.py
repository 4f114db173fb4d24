"""The rules infra/ must keep, each a function from an infra/ folder to its list of problems.

`all_problems(root)` is what the mutation test runs on every edited copy of infra/: the schema
(bicep_types), the contracts with the code (test_bicep_contract) and the rules below, which turn
what used to be bare assertions into checks that can be run on any copy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import test_bicep_contract as contract
from bicep_types import parsed, schema_problems, unwrap

from shared import permissions
from shared.abac import ConditionNotEvaluable, ConditionSyntaxError, Request, evaluate
from shared.ports.rbac import ACR_PULL_ROLE_ID, REPOSITORY_READER_ROLE_ID

WRITE = "Microsoft.Authorization/roleAssignments/write"
ROLE = "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId]"
PRINCIPAL_TYPE = "@Request[Microsoft.Authorization/roleAssignments:PrincipalType]"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"

# (role definition GUID, principal type, allowed?) for a roleAssignments/write request.
ABAC_CASES = [
    (ACR_PULL_ROLE_ID, "ServicePrincipal", True),
    (REPOSITORY_READER_ROLE_ID, "ServicePrincipal", True),
    (OWNER, "ServicePrincipal", False),
    (CONTRIBUTOR, "ServicePrincipal", False),
    (USER_ACCESS_ADMINISTRATOR, "ServicePrincipal", False),
    (ACR_PULL_ROLE_ID, "User", False),
    (ACR_PULL_ROLE_ID, "Group", False),
    (ACR_PULL_ROLE_ID, "ForeignGroup", False),
]


def _bicep_unescape(text: str) -> str:
    """A Bicep string literal's `\\'` is a plain quote in the deployed condition."""
    return text.replace("\\'", "'")


def abac_evaluation_problems(root: Path) -> list[str]:
    problems = []
    for assignment in (g.assignment for g in contract.grants(root)):
        if not assignment.role.grants(WRITE):
            continue
        condition = contract.resolve(assignment.doc, assignment.properties.get("condition"))
        if not isinstance(condition, str):
            problems.append(f"{assignment.symbol}: grants {WRITE} with no condition")
            continue
        text = _bicep_unescape(condition)
        for role, principal_type, allowed in ABAC_CASES:
            request = Request(WRITE, {ROLE: [role], PRINCIPAL_TYPE: [principal_type]})
            try:
                verdict = evaluate(text, request)
            except (ConditionSyntaxError, ConditionNotEvaluable) as exc:
                problems.append(f"{assignment.symbol}: the condition cannot be evaluated: {exc}")
                break
            if verdict is not allowed:
                word = "lets through" if verdict else "refuses"
                problems.append(
                    f"{assignment.symbol}: the condition {word} {role} for a {principal_type}"
                )
        other = Request("Microsoft.Authorization/roleAssignments/read", {})
        try:
            if not evaluate(text, other):
                problems.append(
                    f"{assignment.symbol}: the condition blocks actions it does not name"
                )
        except (ConditionSyntaxError, ConditionNotEvaluable):
            pass  # reported above
    return problems


def principal_type_problems(root: Path) -> list[str]:
    problems = []
    found = [("scope roles", g.assignment) for g in contract.grants(root)]
    for path in sorted(root.rglob("*.bicep")):
        relative = str(path.relative_to(root))
        if path.name in contract.ROLE_MODULE_FILES or path.name == "scope-roles.bicep":
            continue
        found += [(relative, a) for a in contract.assignments(relative, root)]
    for where, assignment in found:
        if assignment.properties.get("principalType") != "ServicePrincipal":
            problems.append(f"{where}: {assignment.symbol}: principalType is not ServicePrincipal")
    return problems


def assignable_scope_problems(root: Path) -> list[str]:
    """Custom roles are assignable in subscriptions only: never `/` or a management group."""
    doc = contract.bicep("modules/custom-roles.bicep", root)
    problems = []
    for symbol, (body, _) in contract.resources_of(doc, contract.ROLE_DEFINITIONS).items():
        scopes = contract.resolve(doc, body["properties"]["assignableScopes"])
        for scope in _flatten_scopes(doc, scopes):
            if not isinstance(scope, str) or not scope.startswith("/subscriptions/"):
                problems.append(f"custom-roles.bicep: {symbol}: assignable at {scope!r}")
    return problems


def _flatten_scopes(doc: dict[str, Any], value: Any) -> list[Any]:
    """The literal scopes of `union(a, [b])`, `[for ...]` lists and `subscription().id`."""
    value = contract.resolve(doc, value)
    if isinstance(value, list):
        return [s for item in value for s in _flatten_scopes(doc, item)]
    if isinstance(value, dict) and value.get("function", {}).get("type") == "union":
        parameters = value["function"]["parameters"]
        return [s for item in parameters.values() for s in _flatten_scopes(doc, item)]
    if isinstance(value, dict) and "loop_type" in value:
        return _flatten_scopes(doc, value.get("config"))
    function = value.get("function", {}) if isinstance(value, dict) else {}
    if function.get("type") == "subscription" and function.get("property_name") == "id":
        return ["/subscriptions/<this deployment's>"]
    return [value]


# Built-in role names granted on the app's own resources, by the symbol of the resource they scope.
APP_RESOURCE_ROLES = {
    "storage": {
        "Storage Blob Data Owner",
        "Storage Table Data Contributor",
        "Storage Queue Data Contributor",
    },
    "vault": {"Key Vault Secrets User"},
    "appInsights": {"Monitoring Metrics Publisher"},
}


def app_role_problems(root: Path) -> list[str]:
    granted: dict[str, set[str]] = {}
    for assignment in contract.assignments("modules/app.bicep", root):
        body, _ = contract.resources_of(assignment.doc, contract.ROLE_ASSIGNMENTS)[
            assignment.symbol
        ]
        granted.setdefault(str(body.get("scope")), set()).add(assignment.role.name)
    problems = []
    for scope, roles in APP_RESOURCE_ROLES.items():
        if granted.get(scope) != roles:
            problems.append(
                f"app.bicep: roles on {scope} are {sorted(granted.get(scope, ()))}, not {sorted(roles)}"
            )
    return problems


def delivery_problems(root: Path) -> list[str]:
    problems = []
    for relative in ("modules/subscription-topic.bicep", "modules/registry-events.bicep"):
        doc = contract.bicep(relative, root)
        for symbol, (body, _) in contract.resources_of(doc, contract.EVENT_SUBSCRIPTIONS).items():
            properties = body["properties"]
            retry = properties.get("retryPolicy") or {}
            if retry.get("eventTimeToLiveInMinutes") != 1440:
                problems.append(
                    f"{relative}: {symbol}: events must live 24 h (Event Grid's maximum)"
                )
            dead_letter = properties.get("deadLetterWithResourceIdentity") or {}
            if (dead_letter.get("identity") or {}).get("type") != "UserAssigned":
                problems.append(
                    f"{relative}: {symbol}: dead letters must be written with the app identity"
                )
            if properties.get("destination", {}).get("endpointType") != "AzureFunction":
                problems.append(f"{relative}: {symbol}: must deliver to an AzureFunction")
    return problems


# main.bicep's module calls: the scope each must be deployed at, as (function, its argument).
EXPECTED_SCOPES = {
    "modules/app.bicep": "group",
    "modules/identity.bicep": "group",
    "modules/scope-roles.bicep": ("subscription", "subscriptionId"),
    "modules/subscription-events.bicep": ("subscription", "subscriptionId"),
}


def module_scope_problems(root: Path) -> list[str]:
    main = parsed(root / "main.bicep")
    problems = []
    for module in (main.get("modules") or {}).values():
        path = module["detail"]["path"]
        if path not in EXPECTED_SCOPES:
            continue
        body, _ = unwrap(module["config"])
        scope = body.get("scope")
        expected = EXPECTED_SCOPES[path]
        if isinstance(expected, tuple):
            function = scope.get("function", {}) if isinstance(scope, dict) else {}
            arguments = list((function.get("parameters") or {}).values())
            if function.get("type") != expected[0] or arguments != [expected[1]]:
                problems.append(
                    f"main.bicep: {path} must be deployed at {expected[0]}({expected[1]})"
                )
        elif scope != expected:
            problems.append(f"main.bicep: {path} must be deployed at scope {expected}")
    return problems


# Microsoft Graph application permissions by app role id (the same in every tenant), and whether
# only enforce mode may hold them.
GRAPH_APP_ROLES = {
    "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30": ("Application.Read.All", False),
    "18a4783c-866b-4cc7-a460-3d5e5662c884": ("Application.ReadWrite.OwnedBy", True),
}


def graph_role_problems(root: Path) -> list[str]:
    doc = parsed(root / "modules/graph-app-roles.bicep")
    found: dict[str, bool] = {}
    problems = []
    for symbol, resource in (doc.get("resources") or {}).items():
        if resource["type"] != "Microsoft.Graph/appRoleAssignedTo":
            continue
        body, condition = unwrap(resource["config"])
        role = contract.resolve(doc, body.get("appRoleId"))
        if role not in GRAPH_APP_ROLES:
            problems.append(
                f"graph-app-roles.bicep: {symbol} grants app role {role!r}, not one the code needs"
            )
            continue
        name, write = GRAPH_APP_ROLES[role]
        found[name] = condition is not None
        if write and condition != "grantRotation":
            problems.append(f"graph-app-roles.bicep: {symbol} grants {name} outside enforce mode")
    missing = {name for name, _ in GRAPH_APP_ROLES.values()} - set(found)
    problems += [f"graph-app-roles.bicep: {name} is never granted" for name in sorted(missing)]
    return problems


def role_module_scope_problems(root: Path) -> list[str]:
    """Cluster writes on the cluster (its module in the cluster's resource group), assign/action in
    its node resource group and in the identity resource group an entry may name."""
    doc = contract.bicep("modules/scope-roles.bicep", root)
    problems = []
    for name, module in (doc.get("modules") or {}).items():
        path = module["detail"]["path"]
        if path not in contract.ROLE_MODULE_FILES:
            continue
        if name not in contract.ROLE_MODULES:
            problems.append(f"scope-roles.bicep: {name} deploys {path} outside ROLE_MODULES")
            continue
        body, _ = unwrap(module["config"])
        scope = body.get("scope")
        function = scope.get("function", {}) if isinstance(scope, dict) else {}
        _, _, key = contract.ROLE_MODULES[name]
        argument = contract.dotted((function.get("parameters") or {}).get("resource_group_name"))
        if function.get("type") != "resource_group" or argument != f"cluster.{key}":
            problems.append(
                f"scope-roles.bicep: {name} must be deployed at resourceGroup(cluster.{key})"
            )
    return problems + cluster_scope_problems(root)


def cluster_scope_problems(root: Path) -> list[str]:
    """cluster-roles.bicep assigns on the `existing` cluster the enforceClusters entry names, with an
    assignment name derived from that cluster's id (names are unique across scopes)."""
    doc = contract.bicep("modules/cluster-roles.bicep", root)
    cluster = contract.existing_cluster(doc)
    if cluster is None:
        return [f"cluster-roles.bicep: no existing {contract.MANAGED_CLUSTERS} to scope to"]
    problems = []
    body, _ = unwrap(doc["resources"][cluster]["config"])
    if body.get("name") != "clusterName" or "clusterName" not in (doc.get("parameters") or {}):
        problems.append(f"cluster-roles.bicep: {cluster} must be named by the clusterName param")
    scope_roles = contract.bicep("modules/scope-roles.bicep", root)
    module = (scope_roles.get("modules") or {}).get("clusterRoles")
    given = (unwrap(module["config"])[0].get("params") or {}) if module else {}
    if contract.dotted(given.get("clusterName")) != "cluster.name":
        problems.append("scope-roles.bicep: clusterRoles must pass clusterName: cluster.name")
    for symbol, (assignment, _) in contract.resources_of(doc, contract.ROLE_ASSIGNMENTS).items():
        if assignment.get("scope") != cluster:
            problems.append(f"cluster-roles.bicep: {symbol} must be scoped to {cluster}")
        seed = ((assignment.get("name") or {}).get("function") or {}).get("parameters") or {}
        if contract.dotted(seed.get("base_string")) != f"{cluster}.id":
            problems.append(f"cluster-roles.bicep: {symbol} must be named guid({cluster}.id, ...)")
    return problems


def permission_mode_problems(root: Path) -> list[str]:
    """Per mode, infra/ grants exactly what shared.permissions derives from the code's declarations:
    each need by its role at its scope, nothing that mode withholds, custom roles listing exactly
    their placed actions, and only the built-in roles that mode names."""
    problems: list[str] = []
    all_grants = contract.grants(root)
    custom = contract.custom_roles(root)
    for mode in permissions.MODES:
        active = [g for g in all_grants if g.active(mode)]
        for permission in permissions.needs(mode):
            role = permissions.role_of(permission)
            if role.graph:
                continue  # graph_role_problems
            carriers = [g for g in active if g.role.grants(permission)]
            if not carriers:
                problems.append(f"{mode}: {permission} ({role.key}) is granted by no role")
            elif not any(g.at == role.at for g in carriers):
                where = sorted({g.at for g in carriers})
                problems.append(f"{mode}: {permission} is granted at {where}, not {role.at}")
        for declared in permissions.declarations().values():
            for permission in {p for ps in declared.values() for p in ps}:
                if permissions.withheld(mode, permission) and any(
                    g.role.grants(permission) for g in active
                ):
                    problems.append(f"{mode}: {permission} is withheld in {mode} but granted")
        expected = permissions.custom_actions(mode)
        held = {g.role.key for g in active if g.role.custom}
        if held != set(expected):
            problems.append(
                f"{mode}: custom roles assigned {sorted(held)}, shared.permissions places "
                f"{sorted(expected)}"
            )
        for key in held & set(expected):
            listed = {a.casefold() for a in custom[key].everything}
            wanted = {a.casefold() for a in expected[key]}
            if listed != wanted:
                problems.append(
                    f"{mode}: custom role {key} lists {sorted(listed - wanted)} beyond and lacks "
                    f"{sorted(wanted - listed)}"
                )
        built_in = {g.role.name for g in active if not g.role.custom}
        named = {r.name for r in permissions.ROLES if r.built_in and mode in r.modes}
        if built_in != named:
            problems.append(f"{mode}: built-in roles {sorted(built_in)}, not {sorted(named)}")
    return sorted(set(problems))


def alert_key_problems(root: Path) -> list[str]:
    """The alert calls alert_webhook with that function's own key: a host key opens every function."""
    doc = contract.bicep("modules/pull-failure-alert.bicep", root)
    group = contract.the_one(doc, "Microsoft.Insights/actionGroups")
    problems = []
    for receiver in group["properties"].get("azureFunctionReceivers") or []:
        url = str(receiver.get("httpTriggerUrl"))
        if receiver.get("functionName") != "alert_webhook":
            problems.append("pull-failure-alert.bicep: the action group must call alert_webhook")
        if "Microsoft.Web/sites/functions" not in url or "alert_webhook" not in url:
            problems.append(
                "pull-failure-alert.bicep: the URL must carry listKeys of the alert_webhook "
                "function (its own key), not a host key"
            )
    return problems


def alert_condition_problems(root: Path) -> list[str]:
    """The alert waits for the published functions and never deploys with no workspace."""
    text = (root / "main.bicep").read_text()
    wanted = "enablePullFailureAlert && subscribeEvents && !empty(alertWorkspaceIds)"
    if f"var deployPullFailureAlert = {wanted}" not in text or (
        "module pullFailureAlert 'modules/pull-failure-alert.bicep' = if (deployPullFailureAlert)"
        not in text
    ):
        return [f"main.bicep: the pull-failure alert must be deployed only if ({wanted})"]
    return []


# main.bicep parameters whose bad value would fail late (or deploy something useless): the
# decorators that make ARM refuse it before anything is created.
PARAMETER_VALIDATION = {
    "scopeSubscriptionIds": {"min_length": 1},
    "namePrefix": {"min_length": 3, "max_length": 11},
    "remediationMode": {"allowed": ["dry-run", "enforce"]},
    "ticketSecrets": {"allowed": ["GITHUB_TOKEN", "AZURE_DEVOPS_PAT", "TICKET_WEBHOOK_URL"]},
}


def parameter_validation_problems(root: Path) -> list[str]:
    declared = parsed(root / "main.bicep").get("parameters") or {}
    problems = []
    for name, wanted in PARAMETER_VALIDATION.items():
        have = {
            d["type"]: d.get("argument") for d in (declared.get(name) or {}).get("decorators") or []
        }
        for decorator, argument in wanted.items():
            if have.get(decorator) != argument:
                problems.append(f"main.bicep: param {name} needs @{decorator}({argument!r})")
    return problems


RULES: list[Callable[[Path], list[str]]] = [
    schema_problems,
    contract.operation_filter_problems,
    contract.app_settings_problems,
    contract.ungranted_permissions,
    lambda root: [f"{k}: {v}" for k, v in contract.undeclared_custom_actions(root).items()],
    contract.enforce_problems,
    contract.abac_problems,
    abac_evaluation_problems,
    principal_type_problems,
    assignable_scope_problems,
    app_role_problems,
    delivery_problems,
    module_scope_problems,
    graph_role_problems,
    role_module_scope_problems,
    permission_mode_problems,
    alert_key_problems,
    alert_condition_problems,
    parameter_validation_problems,
]


def all_problems(root: Path) -> list[str]:
    problems: list[str] = []
    for rule in RULES:
        try:
            problems += rule(root)
        except (AssertionError, KeyError, TypeError, AttributeError, permissions.Unplaced) as exc:
            # A rule that cannot even read the infra has found a problem too.
            problems.append(f"{getattr(rule, '__name__', 'rule')}: {type(exc).__name__}: {exc}")
    return problems
