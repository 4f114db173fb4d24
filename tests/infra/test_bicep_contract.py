"""infra/ against the code: the Bicep must deploy exactly what the code declares it needs.

Every expected set is derived from the code at test time (shared.app_settings, shared.engine,
shared.checks, shared.remediations, shared.ports.rbac), so these tests keep holding as checks,
remediations, operations and settings are added. The Bicep is read with pycep-parser (the parser
checkov uses); Bicep cannot be compiled here.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bicep_types
import pytest

from shared import permissions
from shared.app_settings import APP_SETTINGS, LOCAL_ONLY
from shared.azure.event_names import event_types
from shared.azure.run_command import PERMISSIONS as RUN_COMMAND_PERMISSIONS
from shared.checks import CHECKS
from shared.engine import HANDLED_OPERATIONS
from shared.ports.rbac import ACR_PULL_ROLE_ID, REPOSITORY_READER_ROLE_ID
from shared.remediations import REMEDIATIONS

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
RBAC_OPERATION = re.compile(r"^[A-Za-z0-9]+(\.[A-Za-z0-9]+)+/\S+$")
ROLE_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITIONS = "Microsoft.Authorization/roleDefinitions"
EVENT_SUBSCRIPTIONS = "Microsoft.EventGrid/systemTopics/eventSubscriptions"

# App settings the Bicep sets for the Functions platform rather than for the product; they are not
# in shared/app_settings.py because the product never reads them itself.
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__blobServiceUri": "host storage, identity-based, any cloud's endpoints",
    "AzureWebJobsStorage__queueServiceUri": "host queues (sweep hand-over), identity-based",
    "AzureWebJobsStorage__tableServiceUri": "host tables and the state store, identity-based",
    "AzureWebJobsStorage__credential": "managedidentity: the host signs in to its storage",
    "AzureWebJobsStorage__clientId": "which identity the host uses: the user-assigned one",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "where the host and worker send telemetry",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Entra ID auth for telemetry (local auth is off)",
}
# Flex Consumption rejects these: the runtime and the package location live in functionAppConfig.
FLEX_REJECTS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "AzureWebJobsStorage",
}


# Data-plane operations (Kubernetes objects behind AKS, ACR repositories) are granted only by
# dataActions: shared.permissions tells them from control-plane actions.
is_data_action = permissions.is_data_action


@dataclass(frozen=True)
class Role:
    name: str
    actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    custom: bool = False
    key: str = ""

    def grants(self, operation: str) -> bool:
        """RBAC semantics: a data action is granted only by dataActions, never by `*/read`."""
        if is_data_action(operation):
            return _any_match(self.data_actions, operation) and not _any_match(
                self.not_data_actions, operation
            )
        return _any_match(self.actions, operation) and not _any_match(self.not_actions, operation)

    @property
    def everything(self) -> tuple[str, ...]:
        return self.actions + self.data_actions


# Built-in roles the Bicep may assign, with their permissions (Azure built-in role definitions).
# Assigning any other built-in role fails test_every_assigned_role_is_known: add it here first.
BUILT_IN_ROLES = {
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": Role("Reader", actions=("*/read",)),
    "b93aa761-3e63-49ed-ac28-beffa264f7ac": Role(
        "Container Registry Repository Reader",
        data_actions=(
            "Microsoft.ContainerRegistry/registries/repositories/metadata/read",
            "Microsoft.ContainerRegistry/registries/repositories/content/read",
        ),
    ),
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": Role(
        "Storage Blob Data Owner",
        actions=(
            "Microsoft.Storage/storageAccounts/blobServices/containers/*",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ),
        data_actions=("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*",),
    ),
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": Role(
        "Storage Table Data Contributor",
        actions=(
            "Microsoft.Storage/storageAccounts/tableServices/tables/read",
            "Microsoft.Storage/storageAccounts/tableServices/tables/write",
            "Microsoft.Storage/storageAccounts/tableServices/tables/delete",
        ),
        data_actions=(
            "Microsoft.Storage/storageAccounts/tableServices/tables/entities/read",
            "Microsoft.Storage/storageAccounts/tableServices/tables/entities/write",
            "Microsoft.Storage/storageAccounts/tableServices/tables/entities/delete",
            "Microsoft.Storage/storageAccounts/tableServices/tables/entities/add/action",
            "Microsoft.Storage/storageAccounts/tableServices/tables/entities/update/action",
        ),
    ),
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": Role(
        "Storage Queue Data Contributor",
        actions=(
            "Microsoft.Storage/storageAccounts/queueServices/queues/delete",
            "Microsoft.Storage/storageAccounts/queueServices/queues/read",
            "Microsoft.Storage/storageAccounts/queueServices/queues/write",
        ),
        data_actions=(
            "Microsoft.Storage/storageAccounts/queueServices/queues/messages/delete",
            "Microsoft.Storage/storageAccounts/queueServices/queues/messages/read",
            "Microsoft.Storage/storageAccounts/queueServices/queues/messages/write",
            "Microsoft.Storage/storageAccounts/queueServices/queues/messages/process/action",
        ),
    ),
    "4633458b-17de-408a-b874-0445c86b69e6": Role(
        "Key Vault Secrets User",
        data_actions=(
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ),
    ),
    "3913510d-42f4-4e42-8a64-420c390055eb": Role(
        "Monitoring Metrics Publisher",
        actions=(
            "Microsoft.Insights/Register/Action",
            "Microsoft.Support/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ),
        data_actions=("Microsoft.Insights/Metrics/Write", "Microsoft.Insights/Telemetry/Write"),
    ),
    "d5a91429-5739-47e2-a06b-3470a27159e7": Role(
        "EventGrid Data Sender",
        actions=(
            "Microsoft.EventGrid/topics/read",
            "Microsoft.EventGrid/domains/read",
            "Microsoft.EventGrid/partnerNamespaces/read",
            "Microsoft.EventGrid/namespaces/read",
        ),
        data_actions=("Microsoft.EventGrid/events/send/action",),
    ),
}


# -- reading the Bicep ------------------------------------------------------------------------


parsed = bicep_types.parsed


def bicep(relative: str, root: Path = INFRA) -> dict[str, Any]:
    return parsed(root / relative)


def resources_of(doc: dict[str, Any], type_: str) -> dict[str, tuple[dict[str, Any], Any]]:
    return {
        name: bicep_types.unwrap(resource["config"])
        for name, resource in (doc.get("resources") or {}).items()
        if resource["type"].lower() == type_.lower()
    }


def the_one(doc: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [body for body, _ in resources_of(doc, type_).values()]
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return found[0]


def module_calls(doc: dict[str, Any], path: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(module body, raw module config) for every module statement deploying `path`."""
    return [
        (bicep_types.unwrap(module["config"])[0], module["config"])
        for module in (doc.get("modules") or {}).values()
        if module["detail"]["path"] == path
    ]


def resolve(doc: dict[str, Any], value: Any) -> Any:
    """Follow var references and string interpolations of vars; other expressions stay as they are."""
    variables = doc.get("variables") or {}
    if isinstance(value, str):
        if value in variables:
            return resolve(doc, variables[value]["value"])
        return re.sub(
            r"\$\{(\w+)\}",
            lambda m: str(resolve(doc, m.group(1))) if m.group(1) in variables else m.group(0),
            value,
        )
    accessed = accessor(value)
    if accessed and accessed[0] in variables:
        base = resolve(doc, accessed[0])
        if isinstance(base, dict) and accessed[1] in base:
            return resolve(doc, base[accessed[1]])
    if isinstance(value, list):
        return [resolve(doc, v) for v in value]
    return value


def accessor(value: Any) -> tuple[str, str] | None:
    """`base.key` as (base, key) when both are plain names."""
    if isinstance(value, dict) and value.get("operator", {}).get("type") == "property_accessor":
        operands = value["operator"]["operands"]
        if isinstance(operands["operand_1"], str) and isinstance(operands["operand_2"], str):
            return operands["operand_1"], operands["operand_2"]
    return None


def dotted(value: Any) -> str | None:
    """`a.b.c` as the string "a.b.c" when it is a chain of plain names, else None."""
    if isinstance(value, str):
        return value if re.fullmatch(r"\w+", value) else None
    if isinstance(value, dict) and value.get("operator", {}).get("type") == "property_accessor":
        operands = value["operator"]["operands"]
        left, right = dotted(operands["operand_1"]), dotted(operands["operand_2"])
        return f"{left}.{right}" if left and right else None
    return None


def custom_roles(root: Path = INFRA) -> dict[str, Role]:
    """custom-roles.bicep's roles, by the key of its `names` output (what scope-roles receives)."""
    doc = bicep("modules/custom-roles.bicep", root)
    definitions = resources_of(doc, ROLE_DEFINITIONS)
    roles: dict[str, Role] = {}
    for key, ref in doc["outputs"]["names"]["value"].items():
        accessed = accessor(ref)
        assert accessed and accessed[1] == "name", f"names.{key} must be <roleDefinition>.name"
        body, _ = definitions[accessed[0]]
        permissions = body["properties"]["permissions"]
        roles[key] = Role(
            key=key,
            name=resolve(doc, body["properties"]["roleName"]),
            actions=tuple(a for p in permissions for a in p.get("actions") or ()),
            data_actions=tuple(a for p in permissions for a in p.get("dataActions") or ()),
            not_actions=tuple(a for p in permissions for a in p.get("notActions") or ()),
            not_data_actions=tuple(a for p in permissions for a in p.get("notDataActions") or ()),
            custom=True,
        )
    return roles


# A module's params as its caller binds them: (the caller's parsed file, {param: expression}).
Caller = tuple[dict[str, Any], dict[str, Any]]


def role_of(
    doc: dict[str, Any], role_definition_id: Any, root: Path, caller: Caller | None = None
) -> Role:
    """The role an assignment's roleDefinitionId names: a built-in GUID or a custom role key
    (directly, or through a module param its caller binds to one)."""
    function = (
        role_definition_id.get("function", {}) if isinstance(role_definition_id, dict) else {}
    )
    assert function.get("type") == "subscription_resource_id", (
        f"roleDefinitionId must be subscriptionResourceId('{ROLE_DEFINITIONS}', ...): "
        f"{role_definition_id!r}"
    )
    assert function["parameters"]["resource_type"] == ROLE_DEFINITIONS
    ref = function["parameters"]["resource_name_1"]
    if caller is not None and isinstance(ref, str) and ref in (doc.get("parameters") or {}):
        doc, ref = caller[0], caller[1][ref]
    return _role_named(doc, ref, root)


def _role_named(doc: dict[str, Any], ref: Any, root: Path) -> Role:
    value = resolve(doc, ref)
    if isinstance(value, str) and GUID.fullmatch(value):
        assert value.lower() in BUILT_IN_ROLES, (
            f"built-in role {value} is not in BUILT_IN_ROLES: add its permissions there"
        )
        return BUILT_IN_ROLES[value.lower()]
    accessed = accessor(ref)
    custom = (doc.get("variables") or {}).get(accessed[0]) if accessed else None
    assert custom and dotted(custom["value"]) == "definitions.outputs.names", (
        f"role reference {ref!r} is neither a built-in GUID nor customRoles.<key>, "
        "with `var customRoles = definitions.outputs.names` (the custom-roles.bicep module)"
    )
    return custom_roles(root)[accessed[1]]


@dataclass
class Assignment:
    symbol: str
    role: Role
    properties: dict[str, Any]
    deploy_condition: Any
    doc: dict[str, Any] = field(repr=False)


def assignments(
    relative: str, root: Path = INFRA, caller: Caller | None = None
) -> list[Assignment]:
    doc = bicep(relative, root)
    return [
        Assignment(
            symbol,
            role_of(doc, body["properties"]["roleDefinitionId"], root, caller),
            body["properties"],
            condition,
            doc,
        )
        for symbol, (body, condition) in resources_of(doc, ROLE_ASSIGNMENTS).items()
    ]


# scope-roles.bicep's role modules, by symbol: the file each deploys, where its assignments land
# (shared.permissions.Role.at) unless scoped to the `existing` cluster (then "cluster"), and the
# enforceClusters entry key its module scope must be resourceGroup(cluster.<key>) of.
ROLE_MODULES = {
    "clusterRoles": ("cluster-roles.bicep", "cluster resource group", "resourceGroup"),
    "nodeGroupRoles": ("node-group-roles.bicep", "node resource group", "nodeResourceGroup"),
    "identityGroupRoles": (
        "node-group-roles.bicep",
        "identity resource group",
        "identityResourceGroup",
    ),
}
ROLE_MODULE_FILES = {path for path, _, _ in ROLE_MODULES.values()}
MANAGED_CLUSTERS = "Microsoft.ContainerService/managedClusters"


def existing_cluster(doc: dict[str, Any]) -> str | None:
    """The symbol of the file's `existing` managed cluster, if it declares one."""
    for symbol, resource in (doc.get("resources") or {}).items():
        if resource.get("existing") and resource["type"].lower() == MANAGED_CLUSTERS.lower():
            return str(symbol)
    return None


def assignment_scope(doc: dict[str, Any], symbol: str, module_at: str) -> str:
    """Where a role module's assignment lands: on the cluster when `scope:` is the existing
    cluster, else in the resource group the module is deployed in."""
    body, _ = resources_of(doc, ROLE_ASSIGNMENTS)[symbol]
    scope = body.get("scope")
    if scope is None:
        return module_at
    if scope == existing_cluster(doc):
        return "cluster"
    return f"unknown scope {scope!r}"


@dataclass
class Grant:
    """A role assignment the identity gets in a scope subscription, where, and in which modes."""

    assignment: Assignment
    at: str
    enforce_only: bool

    @property
    def role(self) -> Role:
        return self.assignment.role

    def active(self, mode: str) -> bool:
        return mode == "enforce" or not self.enforce_only


def condition_terms(condition: Any) -> set[str]:
    """The parameters a deploy condition ANDs: ``if (enforce && enableRunCommand)`` -> both."""
    if isinstance(condition, str):
        return {condition}
    operator = (condition or {}).get("operator") if isinstance(condition, dict) else None
    if isinstance(operator, dict) and operator.get("type") == "and":
        return {t for o in (operator.get("operands") or {}).values() for t in condition_terms(o)}
    return set()


def grants(root: Path = INFRA) -> list[Grant]:
    """scope-roles.bicep's assignments, and those of the role modules it deploys per cluster."""
    found = [
        Grant(a, "subscription", "enforce" in condition_terms(a.deploy_condition))
        for a in assignments("modules/scope-roles.bicep", root)
    ]
    doc = bicep("modules/scope-roles.bicep", root)
    for name, module in (doc.get("modules") or {}).items():
        path = module["detail"]["path"]
        if path == "custom-roles.bicep":
            continue
        assert name in ROLE_MODULES and ROLE_MODULES[name][0] == path, (
            f"scope-roles.bicep: module {name} deploys {path}, not a known role module"
        )
        body, condition = bicep_types.unwrap(module["config"])
        _, at, _ = ROLE_MODULES[name]
        module_doc = bicep(f"modules/{path}", root)
        for a in assignments(f"modules/{path}", root, caller=(doc, body["params"])):
            where = assignment_scope(module_doc, a.symbol, at)
            found.append(Grant(a, where, "enforce" in (condition, a.deploy_condition)))
    return found


def app_settings(root: Path = INFRA) -> dict[str, Any]:
    doc = bicep("modules/app.bicep", root)
    entries = the_one(doc, "Microsoft.Web/sites")["properties"]["siteConfig"]["appSettings"]
    settings = {e["name"]: e["value"] for e in entries}
    assert len(settings) == len(entries), "an app setting is set twice"
    for body, _ in resources_of(doc, "Microsoft.Web/sites/config").values():
        if body["name"] == "appsettings":
            settings.update(body["properties"])
    return settings


# -- what the code declares --------------------------------------------------------------------


def declared_permissions() -> set[str]:
    reads = {p for check in CHECKS.values() for p in check.meta.reads}
    writes = {p for remediation in REMEDIATIONS.values() for p in remediation.permissions}
    return reads | writes | set(RUN_COMMAND_PERMISSIONS)


def declared_rbac() -> set[str]:
    return {p for p in declared_permissions() if RBAC_OPERATION.match(p)}


def declared_writes() -> set[str]:
    """What only remediations need: granted only when remediationMode is enforce."""
    reads = _folded(p for check in CHECKS.values() for p in check.meta.reads)
    return {
        p
        for remediation in REMEDIATIONS.values()
        for p in remediation.permissions
        if RBAC_OPERATION.match(p) and p.casefold() not in reads and not p.endswith("/read")
    }


def _any_match(patterns: tuple[str, ...], operation: str) -> bool:
    """Azure RBAC matching: case-insensitive, `*` stands for any run of characters."""
    return any(
        re.fullmatch(".*".join(map(re.escape, p.split("*"))), operation, re.IGNORECASE)
        for p in patterns
    )


def _folded(names: Any) -> set[str]:
    return {n.casefold() for n in names}


def _difference(left: Any, right: Any) -> list[str]:
    """Names in `left` missing from `right`, case-insensitively, in `left`'s spelling."""
    folded = _folded(right)
    return sorted(n for n in left if n.casefold() not in folded)


# -- the contracts, each a list of problems (empty: it holds) ---------------------------------


def operation_filter_problems(root: Path = INFRA) -> list[str]:
    doc = bicep("modules/subscription-topic.bicep", root)
    subscriptions = [
        body
        for body, _ in resources_of(doc, EVENT_SUBSCRIPTIONS).values()
        if body["properties"]["destination"]["properties"]["resourceId"].endswith(
            "/functions/arm_events"
        )
    ]
    assert len(subscriptions) == 1, "one event subscription for arm_events per subscription topic"
    string_in = [
        f
        for f in subscriptions[0]["properties"]["filter"]["advancedFilters"]
        if f["operatorType"] == "StringIn" and f["key"] == "data.operationName"
    ]
    assert len(string_in) == 1, "one StringIn filter on data.operationName"
    values = resolve(doc, string_in[0]["values"])
    assert isinstance(values, list), values
    problems = []
    if len(values) > 25:
        problems.append(
            f"{len(values)} values: Event Grid allows at most 25 in one StringIn filter"
        )
    if len(_folded(values)) != len(values):
        problems.append("duplicate operation names")
    extra, missing = (
        _difference(values, HANDLED_OPERATIONS),
        _difference(HANDLED_OPERATIONS, values),
    )
    if extra:
        problems.append(
            f"in the Event Grid filter but not in shared.engine.HANDLED_OPERATIONS: {extra}"
        )
    if missing:
        problems.append(f"in shared.engine.HANDLED_OPERATIONS but filtered out: {missing}")
    return problems


def app_settings_problems(root: Path = INFRA) -> list[str]:
    product = set(app_settings(root)) - set(PLATFORM_SETTINGS)
    expected = set(APP_SETTINGS) - set(LOCAL_ONLY)
    problems = []
    if product - expected:
        problems.append(
            f"set by infra/ but not declared in shared/app_settings.py: {sorted(product - expected)}"
        )
    if expected - product:
        problems.append(
            f"declared (outside LOCAL_ONLY) but not set by infra/: {sorted(expected - product)}"
        )
    return problems


def ungranted_permissions(root: Path = INFRA) -> list[str]:
    scope = grants(root)
    return sorted(p for p in declared_rbac() if not any(g.role.grants(p) for g in scope))


def undeclared_custom_actions(root: Path = INFRA) -> dict[str, list[str]]:
    declared = declared_rbac()
    extra = {
        key: _difference(role.everything, declared) for key, role in custom_roles(root).items()
    }
    return {key: names for key, names in extra.items() if names}


def run_command_problems(root: Path = INFRA) -> list[str]:
    """Run Command rights only with enableRunCommand, and the app told which transport it has."""
    problems = []
    action = RUN_COMMAND_PERMISSIONS[0]
    granting = [a for a in assignments("modules/scope-roles.bicep", root) if a.role.grants(action)]
    if not granting:
        problems.append(f"no scope role grants {action}")
    for assignment in granting:
        if condition_terms(assignment.deploy_condition) != {"enforce", "enableRunCommand"}:
            problems.append(
                f"{assignment.symbol} grants {action} but is not `if (enforce && enableRunCommand)`"
            )
    transport = app_settings(root).get("KUBERNETES_TRANSPORT")
    if "enableRunCommand" not in json.dumps(transport):
        problems.append(f"KUBERNETES_TRANSPORT does not follow enableRunCommand: {transport!r}")
    return problems


def enforce_problems(root: Path = INFRA) -> list[str]:
    problems = []
    for grant in grants(root):
        granted = sorted(p for p in declared_writes() if grant.role.grants(p))
        if granted and not grant.enforce_only:
            problems.append(f"{grant.assignment.symbol} grants {granted} but is not `if (enforce)`")
    return problems


def abac_problems(root: Path = INFRA) -> list[str]:
    rights = (
        "Microsoft.Authorization/roleAssignments/write",
        "Microsoft.Authorization/roleAssignments/delete",
    )
    limited = [g.assignment for g in grants(root) if any(g.role.grants(r) for r in rights)]
    if not limited:
        return ["no scope role grants roleAssignments/write (attach-acr)"]
    expected = {ACR_PULL_ROLE_ID.lower(), REPOSITORY_READER_ROLE_ID.lower()}
    problems = []
    for assignment in limited:
        if assignment.properties.get("conditionVersion") != "2.0":
            problems.append(f"{assignment.symbol}: conditionVersion must be '2.0'")
        condition = resolve(assignment.doc, assignment.properties.get("condition"))
        if not isinstance(condition, str) or "ForAnyOfAnyValues:GuidEquals" not in condition:
            problems.append(f"{assignment.symbol}: no ABAC condition on RoleDefinitionId")
            continue
        guids = {g.lower() for g in GUID.findall(condition)}
        if guids != expected:
            problems.append(
                f"{assignment.symbol}: the condition names {sorted(guids)}, not {sorted(expected)}"
            )
        for right in rights:
            if assignment.role.grants(right) and f"ActionMatches{{\\'{right}\\'}}" not in condition:
                problems.append(f"{assignment.symbol}: the condition does not constrain {right}")
    return problems


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "data"),
    [
        ("Microsoft.ContainerService/managedClusters/pods/read", True),
        ("Microsoft.ContainerService/managedClusters/apps/deployments/write", True),
        ("Microsoft.ContainerService/managedClusters/read", False),
        ("Microsoft.ContainerService/managedClusters/listClusterUserCredential/action", False),
        ("Microsoft.ContainerService/managedClusters/agentPools/read", False),
        ("Microsoft.ContainerRegistry/registries/pull/read", False),
        ("Microsoft.ContainerRegistry/registries/repositories/content/read", True),
    ],
)
def test_reader_grants_control_plane_reads_only(operation: str, data: bool) -> None:
    assert is_data_action(operation) is data
    assert BUILT_IN_ROLES["acdd72a7-3385-48ef-bd42-f606fba81ae7"].grants(operation) is (
        operation.endswith("/read") and not data
    )


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    doc = parsed(path)
    assert doc.get("resources") or doc.get("modules"), f"{path.name} deploys nothing"


def test_every_module_path_exists() -> None:
    for path in BICEP_FILES:
        for name, module in (parsed(path).get("modules") or {}).items():
            target = path.parent / module["detail"]["path"]
            assert target.is_file(), f"{path.name}: module {name} points at missing {target}"


AZD_SUBSTITUTION = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)(?:=([^}]*))?\}$")


def parameter_value(entry: dict[str, Any]) -> Any:
    """A parameters-file value, with azd's `${NAME=default}` read as its default."""
    value = entry["value"]
    if isinstance(value, str) and (match := AZD_SUBSTITUTION.match(value)):
        default = match.group(2)
        return {"true": True, "false": False}.get(default, default) if default is not None else None
    return value


def test_parameters_file_has_safe_defaults_and_no_placeholders() -> None:
    text = (INFRA / "main.parameters.json").read_text()
    values = json.loads(text)["parameters"]
    declared = bicep("main.bicep")["parameters"]
    assert set(values) <= set(declared), f"unknown parameters: {set(values) - set(declared)}"
    # A placeholder id would override the sensible default (the deployment's own subscription).
    assert not re.search(r"0{8}-0{4}-0{4}-0{4}-0{12}", text), "placeholder subscription id"
    assert "scopeSubscriptionIds" not in values, "defaults to the deployment's subscription"
    defaults = {name: parameter_value(entry) for name, entry in values.items()}
    assert defaults["remediationMode"] == "dry-run"
    assert defaults["registryIds"] == []
    for name in ("enableOutcomeTopic", "enablePullFailureAlert", "subscribeEvents"):
        assert defaults[name] is False, name
    assert values["location"]["value"] == "${AZURE_LOCATION}", "azd asks for the region"
    for name, param in declared.items():
        descriptions = [d for d in param["decorators"] if d["type"] == "description"]
        assert descriptions, f"main.bicep param {name} has no @description"


def test_event_filter_lists_exactly_the_handled_operations() -> None:
    problems = operation_filter_problems()
    assert not problems, "\n".join(problems)


def test_arm_event_subscription_delivery() -> None:
    doc = bicep("modules/subscription-topic.bicep")
    topic, condition = resources_of(doc, "Microsoft.EventGrid/systemTopics")["newTopic"]
    assert condition, "a topic is created only when the subscription has none (one per source)"
    assert topic["properties"]["topicType"] == "Microsoft.Resources.Subscriptions"
    assert topic["location"] == "global"
    properties = the_one(doc, EVENT_SUBSCRIPTIONS)["properties"]
    assert properties["destination"]["endpointType"] == "AzureFunction"
    names = event_types()
    assert set(properties["filter"]["includedEventTypes"]) == {
        names.write_success,
        names.delete_success,
        names.action_success,
    }
    _assert_retry_and_dead_letter(properties)
    ((_, raw),) = module_calls(bicep("main.bicep"), "modules/subscription-events.bicep")
    assert raw["loop_type"]["detail"]["array_name"] == "scopeSubscriptionIds"


def test_registry_event_subscription_delivery() -> None:
    doc = bicep("modules/registry-events.bicep")
    topic = the_one(doc, "Microsoft.EventGrid/systemTopics")
    assert topic["properties"]["topicType"] == "Microsoft.ContainerRegistry.Registries"
    properties = the_one(doc, EVENT_SUBSCRIPTIONS)["properties"]
    assert properties["destination"]["endpointType"] == "AzureFunction"
    assert properties["destination"]["properties"]["resourceId"].endswith(
        "/functions/registry_events"
    )
    names = event_types()
    assert set(properties["filter"]["includedEventTypes"]) == {
        names.image_pushed,
        names.image_deleted,
    }
    _assert_retry_and_dead_letter(properties)
    ((_, raw),) = module_calls(bicep("main.bicep"), "modules/registry-events.bicep")
    assert raw["loop_type"]["detail"]["array_name"] == "registryIds", "one instance per registry"


def _assert_retry_and_dead_letter(properties: dict[str, Any]) -> None:
    retry = properties["retryPolicy"]
    assert retry["eventTimeToLiveInMinutes"] == 1440
    assert 1 <= int(retry["maxDeliveryAttempts"]) <= 30
    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"]["type"] == "UserAssigned"
    assert dead_letter["deadLetterDestination"]["endpointType"] == "StorageBlob"


def test_functions_the_infra_targets_exist(functions: dict[str, Any]) -> None:
    targeted: set[str] = set()
    for path in BICEP_FILES:
        text = path.read_text()
        targeted |= set(re.findall(r"/functions/(\w+)'", text))
        targeted |= set(re.findall(r"functionName: '(\w+)'", text))
    assert "arm_events" in targeted
    missing = sorted(targeted - set(functions))
    assert not missing, f"infra/ delivers to functions that function_app does not define: {missing}"


def test_app_settings_are_exactly_what_the_code_reads() -> None:
    problems = app_settings_problems()
    assert not problems, "\n".join(problems)


def test_app_settings_platform_part() -> None:
    settings = app_settings()
    assert set(PLATFORM_SETTINGS) <= set(settings)
    assert not set(settings) & FLEX_REJECTS, "Flex Consumption rejects these settings"
    assert not set(settings) & set(LOCAL_ONLY), "LOCAL_ONLY settings are never deployed"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    for name in ("AZURE_CLIENT_ID", "AzureWebJobsStorage__clientId"):
        assert dotted(settings[name]) == "identity.properties.clientId", name


def test_ticket_secrets_are_key_vault_references() -> None:
    doc = bicep("modules/app.bicep")
    site = the_one(doc, "Microsoft.Web/sites")
    assert dotted(site["properties"]["keyVaultReferenceIdentity"]) == "identity.id"
    settings = app_settings()
    for name in ("GITHUB_TOKEN", "AZURE_DEVOPS_PAT", "TICKET_WEBHOOK_URL"):
        if name in settings:
            assert "@Microsoft.KeyVault(SecretUri=" in json.dumps(settings[name]), name
    vault = the_one(doc, "Microsoft.KeyVault/vaults")["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enablePurgeProtection"] is True
    assert vault["enableSoftDelete"] is True


def test_every_assigned_role_is_known() -> None:
    found = [g.assignment for g in grants()] + [
        a
        for path in BICEP_FILES
        if path.name not in ROLE_MODULE_FILES and path.name != "scope-roles.bicep"
        for a in assignments(str(path.relative_to(INFRA)))
    ]
    assert len(found) >= 5
    for assignment in found:
        assert assignment.properties["principalType"] == "ServicePrincipal", assignment.symbol


def test_every_declared_permission_is_granted_in_scope() -> None:
    assert ungranted_permissions() == [], (
        "declared by checks/remediations, granted by no scope role"
    )


def test_custom_roles_grant_nothing_beyond_the_declared_set() -> None:
    extra = undeclared_custom_actions()
    assert not extra, (
        "custom roles grant actions that no check (meta.reads) or remediation (permissions) "
        "declares:\n" + "\n".join(f"{key}: {names}" for key, names in extra.items())
    )
    for key, role in custom_roles().items():
        assert not [a for a in role.everything if "*" in a], f"custom role {key} uses a wildcard"


def test_writes_are_granted_only_in_enforce_mode() -> None:
    problems = enforce_problems()
    assert not problems, "\n".join(problems)


def test_run_command_is_granted_only_where_the_transport_is_enabled() -> None:
    problems = run_command_problems()
    assert not problems, "\n".join(problems)


def test_an_unconditional_command_runner_is_caught(copy: Path) -> None:
    edit(
        copy,
        "modules/scope-roles.bicep",
        "resource commandRunner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enforce && enableRunCommand) {",
        "resource commandRunner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {",
    )
    assert any("commandRunner" in p for p in run_command_problems(copy))


def test_role_assignment_rights_are_limited_to_the_pull_roles() -> None:
    problems = abac_problems()
    assert not problems, "\n".join(problems)


def test_scope_roles_go_to_the_app_identity_in_every_scope_subscription() -> None:
    main = bicep("main.bicep")
    ((call, raw),) = module_calls(main, "modules/scope-roles.bicep")
    assert raw["loop_type"]["detail"]["array_name"] == "scopeSubscriptionIds"
    assert call["scope"]["function"]["type"] == "subscription"
    assert dotted(call["params"]["principalId"]) == "identity.outputs.principalId"
    ((app, _),) = module_calls(main, "modules/app.bicep")
    assert dotted(app["params"]["identityName"]) == "identity.outputs.name"


def test_every_role_assignment_says_why() -> None:
    for path in BICEP_FILES:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if line.startswith("resource ") and f"'{ROLE_ASSIGNMENTS}@" in line:
                above = lines[number - 1].strip() if number else ""
                assert above.startswith("//") and len(above) > 10, (
                    f"{path.name}:{number + 1}: say which check or remediation needs this role"
                )


def test_graph_permissions_are_documented() -> None:
    readme = (INFRA / "README.md").read_text()
    for permission in sorted(declared_permissions() - declared_rbac()):
        name = permission.split(":")[-1].strip()
        assert name in readme, f"{permission!r} is declared but infra/README.md never grants it"
    for name in ("Application.Read.All", "Application.ReadWrite.OwnedBy"):
        assert name in readme, name


# -- the contract checks catch what they are for (on an edited copy of infra/) ------------------


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "infra"
    shutil.copytree(INFRA, root)
    return root


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text()
    assert old in text, f"{relative} no longer contains {old!r}: update this test"
    path.write_text(text.replace(old, new, 1))


def test_a_third_role_in_the_abac_condition_is_caught(copy: Path) -> None:
    owner = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
    edit(
        copy,
        "modules/scope-roles.bicep",
        "${repositoryReaderRoleId}}",
        f"${{repositoryReaderRoleId}}, {owner}}}",
    )
    assert any(owner in problem for problem in abac_problems(copy))


def test_an_unconditional_write_role_is_caught(copy: Path) -> None:
    assert declared_writes(), "no remediation declares a write"
    edit(
        copy,
        "modules/scope-roles.bicep",
        "module clusterRoles 'cluster-roles.bicep' = [for cluster in clusters: if (enforce) {",
        "module clusterRoles 'cluster-roles.bicep' = [for cluster in clusters: {",
    )
    assert any("clusterOperator" in problem for problem in enforce_problems(copy))


def test_a_missing_reader_is_caught(copy: Path) -> None:
    edit(
        copy,
        "modules/scope-roles.bicep",
        "  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'",
        "  reader: 'b93aa761-3e63-49ed-ac28-beffa264f7ac'",
    )
    assert "Microsoft.Compute/virtualMachineScaleSets/read" in ungranted_permissions(copy)


def test_a_handled_operation_missing_from_the_filter_is_caught(copy: Path) -> None:
    operation = HANDLED_OPERATIONS[0]
    edit(copy, "modules/subscription-topic.bicep", f"  '{operation}'\n", "")
    assert any(operation in problem for problem in operation_filter_problems(copy))


def test_a_setting_missing_from_the_app_is_caught(copy: Path) -> None:
    edit(
        copy,
        "modules/app.bicep",
        "name: 'MAX_CONCURRENT_READS'",
        "name: 'MAX_CONCURRENT_READS_TYPO'",
    )
    problems = app_settings_problems(copy)
    assert any("MAX_CONCURRENT_READS_TYPO" in p for p in problems)
    assert any("'MAX_CONCURRENT_READS'" in p for p in problems)


def test_an_undeclared_custom_action_is_caught(copy: Path) -> None:
    edit(
        copy,
        "modules/custom-roles.bicep",
        "          'Microsoft.ContainerService/managedClusters/write'\n",
        "          'Microsoft.ContainerService/managedClusters/write'\n          'Microsoft.ContainerService/managedClusters/delete'\n",
    )
    extra = undeclared_custom_actions(copy)
    assert "Microsoft.ContainerService/managedClusters/delete" in extra["clusterOperator"]


def test_a_kubernetes_read_left_to_reader_is_caught(copy: Path) -> None:
    """`*/read` in Reader's actions does not grant Kubernetes data actions."""
    pods = "Microsoft.ContainerService/managedClusters/pods/read"
    if pods not in declared_rbac():
        pytest.skip("no check declares pods/read")
    edit(copy, "modules/custom-roles.bicep", f"          '{pods}'\n", "")
    assert pods in ungranted_permissions(copy)
