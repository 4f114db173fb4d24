"""Microsoft.Authorization: role assignments at any scope and role definitions (api 2022-04-01).

Role assignments are extension resources stored at ``{scope}/providers/Microsoft.Authorization/
roleAssignments/{guid}``, where the scope is a resource, resource group, subscription, management
group (``/providers/Microsoft.Management/managementGroups/{id}``) or the root ``/``. Listing follows
ARM: assignments at the scope, above it (inherited from the resource group, subscription, its
management groups and the root) and, unless ``$filter=atScope()``, below it.

Role definition ids come in the forms ARM uses: an assignment of a built-in role is answered with
the tenant form ``/providers/Microsoft.Authorization/roleDefinitions/{guid}`` whatever form the PUT
sent (see the RoleAssignments_Create examples); a custom role keeps the form of the scope it was
assigned at (subscription, or management group). Built-in role definitions are not stored: ARM
serves them at every scope, so the GET and list hooks render them for the scope asked for. Custom
roles are stored at their subscription, as ``az role definition create`` leaves them.

Deny assignments (read-only: only Azure Blueprints, managed applications and deployment stacks
create them) are listed like role assignments.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from emulator.arm import ArmError, ArmRequest, ResourceKind
from emulator.providers import management
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"
DENY_ASSIGNMENT = "Microsoft.Authorization/denyAssignments"
IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
DEFINITION_ID = re.compile(
    r"^(/subscriptions/[^/]+|/providers/Microsoft\.Management/managementGroups/[^/]+)?"
    r"/providers/Microsoft\.Authorization/roleDefinitions/(?P<guid>[^/]+)$",
    re.IGNORECASE,
)

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
ACR_DELETE = "c2f4ef07-c644-48eb-af81-4b1b4947fb11"
REPOSITORY_READER = "b93aa761-3e63-49ed-ac28-beffa264f7ac"
REPOSITORY_WRITER = "2a1e307c-b015-4ebd-883e-5b7698a07328"
REPOSITORY_CONTRIBUTOR = "2efddaa5-3f1f-4df3-97df-af3f13818f4c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
MANAGED_IDENTITY_OPERATOR = "f1a07417-d97a-45cb-824c-7a7467783830"

_REPO = "Microsoft.ContainerRegistry/registries/repositories"


def _builtin(
    guid: str, name: str, description: str, created: str, updated: str, **permission: list[str]
) -> Json:
    return {
        "name": guid,
        "type": ROLE_DEFINITION,
        "properties": {
            "roleName": name,
            "type": "BuiltInRole",
            "description": description,
            "assignableScopes": ["/"],
            "permissions": [
                {
                    "actions": permission.get("actions", []),
                    "notActions": permission.get("notActions", []),
                    "dataActions": permission.get("dataActions", []),
                    "notDataActions": permission.get("notDataActions", []),
                }
            ],
            "createdOn": created,
            "updatedOn": updated,
            "createdBy": None,
            "updatedBy": None,
        },
    }


# The built-in roles that matter for pulling from ACR, as `az role definition list` shows them.
BUILT_IN_ROLES: dict[str, Json] = {
    role["name"]: role
    for role in (
        _builtin(
            ACR_PULL,
            "AcrPull",
            "acr pull",
            "2018-03-15T23:23:08.4038322Z",
            "2021-11-11T20:13:07.4993029Z",
            actions=["Microsoft.ContainerRegistry/registries/pull/read"],
        ),
        _builtin(
            ACR_PUSH,
            "AcrPush",
            "acr push",
            "2018-10-29T17:52:32.5201177Z",
            "2021-11-11T20:13:07.8993047Z",
            actions=[
                "Microsoft.ContainerRegistry/registries/pull/read",
                "Microsoft.ContainerRegistry/registries/push/write",
            ],
        ),
        _builtin(
            ACR_DELETE,
            "AcrDelete",
            "acr delete",
            "2019-03-11T20:24:38.9845104Z",
            "2021-11-11T20:13:05.7643198Z",
            actions=["Microsoft.ContainerRegistry/registries/artifacts/delete"],
        ),
        _builtin(
            REPOSITORY_READER,
            "Container Registry Repository Reader",
            "Allows for read access to Azure Container Registry repositories, but excluding catalog listing.",
            "2024-06-05T15:32:11.0000000Z",
            "2024-08-19T15:08:52.0000000Z",
            dataActions=[f"{_REPO}/content/read", f"{_REPO}/metadata/read"],
        ),
        _builtin(
            REPOSITORY_WRITER,
            "Container Registry Repository Writer",
            "Allows for read, write access to Azure Container Registry repositories, but excluding catalog listing.",
            "2024-06-05T15:32:11.0000000Z",
            "2024-08-19T15:08:52.0000000Z",
            dataActions=[
                f"{_REPO}/metadata/read",
                f"{_REPO}/content/read",
                f"{_REPO}/metadata/write",
                f"{_REPO}/content/write",
            ],
        ),
        _builtin(
            REPOSITORY_CONTRIBUTOR,
            "Container Registry Repository Contributor",
            "Allows for read, write, and delete access to Azure Container Registry repositories, but excluding "
            "catalog listing.",
            "2024-06-07T15:51:33.6250000Z",
            "2025-10-07T15:22:18.2130000Z",
            dataActions=[
                f"{_REPO}/metadata/read",
                f"{_REPO}/content/read",
                f"{_REPO}/metadata/write",
                f"{_REPO}/content/write",
                f"{_REPO}/metadata/delete",
                f"{_REPO}/content/delete",
            ],
        ),
        _builtin(
            READER,
            "Reader",
            "View all resources, but does not allow you to make any changes.",
            "2015-02-02T21:55:09.8806423Z",
            "2021-11-11T20:13:47.8628684Z",
            actions=["*/read"],
        ),
        _builtin(
            CONTRIBUTOR,
            "Contributor",
            "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, "
            "manage assignments in Azure Blueprints, or share image galleries.",
            "2015-02-02T21:55:09.8806423Z",
            "2023-07-10T15:35:34.1818327Z",
            actions=["*"],
            notActions=[
                "Microsoft.Authorization/*/Delete",
                "Microsoft.Authorization/*/Write",
                "Microsoft.Authorization/elevateAccess/Action",
                "Microsoft.Blueprint/blueprintAssignments/write",
                "Microsoft.Blueprint/blueprintAssignments/delete",
                "Microsoft.Compute/galleries/share/action",
                "Microsoft.Purview/consents/write",
                "Microsoft.Purview/consents/delete",
            ],
        ),
        _builtin(
            MANAGED_IDENTITY_OPERATOR,
            "Managed Identity Operator",
            "Read and Assign User Assigned Identity",
            "2017-12-14T19:52:04.3924594Z",
            "2021-11-11T20:13:38.9699620Z",
            actions=[
                "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
                "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                "Microsoft.Authorization/*/read",
                "Microsoft.Insights/alertRules/*",
                "Microsoft.Resources/subscriptions/resourceGroups/read",
                "Microsoft.Resources/deployments/*",
                "Microsoft.Support/*",
            ],
        ),
        _builtin(
            OWNER,
            "Owner",
            "Grants full access to manage all resources, including the ability to assign roles "
            "in Azure RBAC.",
            "2015-02-02T21:55:09.8806423Z",
            "2021-11-11T20:13:45.8978856Z",
            actions=["*"],
        ),
    )
}

ASSIGNMENT_SCHEMA: Json = {
    "type": "object",
    "required": ["properties"],
    "properties": {
        "properties": {
            "type": "object",
            "required": ["roleDefinitionId", "principalId"],
            "properties": {
                "roleDefinitionId": {"type": "string", "minLength": 1},
                "principalId": {"type": "string", "minLength": 1},
                "principalType": {"enum": list(PRINCIPAL_TYPES)},
                "description": {"type": ["string", "null"]},
                "condition": {"type": ["string", "null"]},
                "conditionVersion": {"enum": ["2.0", None]},
                "delegatedManagedIdentityResourceId": {"type": ["string", "null"]},
            },
        }
    },
}

_ACTIONS: Json = {"type": "array", "items": {"type": "string", "minLength": 1}}
DEFINITION_SCHEMA: Json = {
    "type": "object",
    "required": ["properties"],
    "properties": {
        "properties": {
            "type": "object",
            "required": ["roleName", "permissions", "assignableScopes"],
            "properties": {
                "roleName": {"type": "string", "minLength": 1},
                "description": {"type": ["string", "null"]},
                "type": {"enum": ["CustomRole"]},
                "assignableScopes": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "minLength": 1},
                },
                "permissions": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "actions": _ACTIONS,
                            "notActions": _ACTIONS,
                            "dataActions": _ACTIONS,
                            "notDataActions": _ACTIONS,
                        },
                    },
                },
            },
        }
    },
}

# The identity scenarios and the emulator act as when they create assignments themselves.
SCENARIO_ADMIN = "0e9c7b6e-4c1d-4f4e-9d8e-3b1f2a6c5d70"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())


def definition_id(subscription_id: str, guid: str) -> str:
    return f"/subscriptions/{subscription_id}/providers/{ROLE_DEFINITION}/{guid}"


def tenant_definition_id(guid: str) -> str:
    """The tenant form ARM answers built-in roles with: no subscription in it."""
    return f"/providers/{ROLE_DEFINITION}/{guid}"


def definition_id_at(scope: str, guid: str) -> str:
    """A role definition id in the form of ``scope``: subscription, management group or tenant."""
    subscription_id = _subscription_of(scope)
    if subscription_id:
        return definition_id(subscription_id, guid)
    if management.is_group_scope(scope):
        return f"{scope.rstrip('/')}/providers/{ROLE_DEFINITION}/{guid}"
    return tenant_definition_id(guid)


def assigned_definition_id(scope: str, guid: str) -> str:
    """What ARM stores and returns as an assignment's roleDefinitionId."""
    if guid.lower() in BUILT_IN_ROLES:
        return tenant_definition_id(guid.lower())
    return definition_id_at(scope, guid)


def assignment_id(scope: str, name: str) -> str:
    return f"{scope.rstrip('/')}/providers/{ROLE_ASSIGNMENT}/{name}"


def _subscription_of(scope: str) -> str:
    parts = scope.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else ""


def split_assignment_id(resource_id: str) -> tuple[str, str]:
    """(scope, name) of a role assignment id."""
    marker = f"/providers/{ROLE_ASSIGNMENT}/".lower()
    at = resource_id.lower().rfind(marker)
    return resource_id[:at], resource_id[at + len(marker) :]


def _under(child: str, parent: str) -> bool:
    """``child`` is ``parent`` or lies below it in its path (compared case-insensitively)."""
    child, parent = child.lower().rstrip("/"), parent.lower().rstrip("/")
    return child == parent or child.startswith(parent + "/")


def within(state: State, child: str, parent: str) -> bool:
    """``child`` is ``parent`` or below it, management groups and the root ``/`` included."""
    if _under(child, parent):
        return True
    wanted = parent.lower().rstrip("/") or "/"
    if wanted != "/" and not wanted.startswith(management.PREFIX.lower()):
        return False  # only the root and management groups hold what their path does not name
    return any(a.lower() == wanted for a in management.ancestors(state, child))


# -- role definitions ----------------------------------------------------------------------


def custom_roles(state: State) -> list[Json]:
    return [r for r in state.typed(ROLE_DEFINITION)]


def find_definition(state: State, guid: str, scope: str) -> Json | None:
    """A built-in role (rendered for ``scope``) or a custom role, by its GUID."""
    builtin = BUILT_IN_ROLES.get(guid.lower())
    if builtin is not None:
        return {"id": definition_id_at(scope, guid.lower()), **builtin}
    for role in custom_roles(state):
        if role["name"].lower() == guid.lower():
            return role
    return None


def find_definition_by_name(state: State, role_name: str, scope: str) -> Json | None:
    for guid, role in BUILT_IN_ROLES.items():
        if role["properties"]["roleName"].lower() == role_name.lower():
            return find_definition(state, guid, scope)
    for role in custom_roles(state):
        if role["properties"]["roleName"].lower() == role_name.lower():
            return role
    return None


def _definition_not_found(guid: str) -> ArmError:
    return ArmError(
        400,
        "RoleDefinitionDoesNotExist",
        f"The specified role definition with ID '{guid}' does not exist.",
    )


def _get_definition(state: State, arm: ArmRequest) -> Json:
    found = find_definition(state, arm.names[-1], arm.scope)
    if found is None:
        raise ArmError(
            404,
            "RoleDefinitionDoesNotExist",
            f"The specified role definition with ID '{arm.names[-1]}' does not exist.",
        )
    return found


def _list_definitions(state: State, arm: ArmRequest) -> list[Json]:
    roles = [find_definition(state, guid, arm.scope) for guid in BUILT_IN_ROLES]
    roles += [
        r
        for r in custom_roles(state)
        if any(
            within(state, arm.scope, s) or within(state, s, arm.scope)
            for s in r["properties"]["assignableScopes"]
        )
    ]
    wanted = _definition_filter(arm)
    return [
        r
        for r in roles
        if r is not None
        and r["properties"]["roleName"].lower()
        == wanted.get("rolename", r["properties"]["roleName"].lower())
        and r["properties"]["type"].lower() == wanted.get("type", r["properties"]["type"].lower())
    ]


def _put_definition(state: State, resource_id: str, body: Json, existing: Json | None) -> Json:
    guid = resource_id.rsplit("/", 1)[-1]
    if not GUID.match(guid):
        raise ArmError(
            400, "InvalidRoleDefinitionId", f"The role definition ID '{guid}' is not valid."
        )
    if guid.lower() in BUILT_IN_ROLES:
        raise ArmError(403, "AuthorizationFailed", "Built-in role definitions cannot be changed.")
    props = body["properties"]
    scope = resource_id[: resource_id.lower().rfind(f"/providers/{ROLE_DEFINITION.lower()}/")]
    for role in custom_roles(state):
        same_name = role["properties"]["roleName"].lower() == props["roleName"].lower()
        if same_name and role["name"].lower() != guid.lower():
            raise ArmError(
                409,
                "RoleDefinitionWithSameNameExists",
                "A custom role with the same name already exists in this directory. Use a different name.",
            )
    stamp = now_iso()
    return {
        "id": definition_id_at(scope, guid),
        "name": guid,
        "type": ROLE_DEFINITION,
        "properties": {
            "roleName": props["roleName"],
            "type": "CustomRole",
            "description": props.get("description"),
            "assignableScopes": props["assignableScopes"],
            "permissions": [
                {
                    key: p.get(key, [])
                    for key in ("actions", "notActions", "dataActions", "notDataActions")
                }
                for p in props["permissions"]
            ],
            "createdOn": existing["properties"]["createdOn"] if existing else stamp,
            "updatedOn": stamp,
            "createdBy": (existing or {})
            .get("properties", {})
            .get("createdBy", state.app_principal_id),
            "updatedBy": state.app_principal_id,
        },
    }


# -- role assignments ----------------------------------------------------------------------


def principal_type(state: State, principal_id: str) -> str | None:
    """What Entra ID would say this object id is, when the directory holds it.

    The directory is: service principals of Graph applications, user-assigned identities,
    system-assigned identities (``identity.principalId`` of any resource), the app's own identity
    and the users and groups a scenario names by object id. A role assignment's ``principalId`` is
    not evidence: an assignment outlives the principal it names.
    """
    wanted = principal_id.lower()
    with state.lock:
        apps = list(state.graph_applications.values())
        directory = dict(state.directory_objects)
    if wanted in directory:
        return directory[wanted]
    if wanted in (state.app_principal_id.lower(), SCENARIO_ADMIN):
        return "ServicePrincipal"
    for app in apps:
        if str(app.get("_servicePrincipal", {}).get("id", "")).lower() == wanted:
            return "ServicePrincipal"
    for resource in state.scan():
        ids = [(resource.get("identity") or {}).get("principalId")]
        if resource.get("type", "").lower() == IDENTITY.lower():
            ids.append(resource.get("properties", {}).get("principalId"))
        if any(isinstance(i, str) and i.lower() == wanted for i in ids):
            return "ServicePrincipal"
    return None


def _principal_not_found(state: State, principal: str) -> ArmError:
    # Azure's message, which names the replication delay as one cause.
    return ArmError(
        400,
        "PrincipalNotFound",
        f"Principal {principal.replace('-', '')} does not exist in the directory "
        f"{state.tenant_id}. Check that you have the correct principal ID. If you are creating "
        "this principal and then immediately assigning a role, this error might be related to a "
        "replication delay. In this case, set the role assignment principalType property to a "
        "value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
    )


def assignments(state: State) -> list[Json]:
    return [r for r in state.typed(ROLE_ASSIGNMENT)]


def _check_scope(state: State, scope: str) -> None:
    if scope in ("", "/") or management.is_group_scope(scope):
        return  # the dispatcher already answered 404 for a management group that does not exist
    if "/providers/" in scope.lower() and state.get(scope) is None:
        kind_and_name = scope.split("/providers/", 1)[1]
        raise ArmError(
            404,
            "ResourceNotFound",
            f"The Resource '{kind_and_name}' was not found. For more details please go to "
            "https://aka.ms/ARMResourceNotFoundFix",
        )


def _put_assignment(state: State, resource_id: str, body: Json, existing: Json | None) -> Json:
    scope, name = split_assignment_id(resource_id)
    scope = scope or "/"
    if not GUID.match(name):
        raise ArmError(
            400,
            "InvalidRoleAssignmentId",
            f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
        )
    _check_scope(state, scope)
    props = body["properties"]
    principal = props["principalId"]
    if not GUID.match(principal):
        raise ArmError(
            400, "InvalidPrincipalId", "A valid principal ID must be provided for role assignment."
        )
    match = DEFINITION_ID.match(props["roleDefinitionId"])
    if match is None:
        raise ArmError(
            400,
            "InvalidRoleDefinitionId",
            f"The role definition ID '{props['roleDefinitionId']}' is not valid.",
        )
    definition = find_definition(state, match["guid"], scope)
    if definition is None:
        raise _definition_not_found(match["guid"])
    if not any(within(state, scope, s) for s in definition["properties"]["assignableScopes"]):
        raise ArmError(
            403,
            "InvalidRoleDefinitionScope",
            f"The role definition '{match['guid']}' is not assignable at scope '{scope}'.",
        )
    known_type = principal_type(state, principal)
    if known_type is None or not state.principal_replicated(principal):
        raise _principal_not_found(state, principal)
    wanted_type = props.get("principalType") or known_type or "User"
    if known_type is not None and known_type != wanted_type:
        # Azure's own message, typo included.
        raise ArmError(
            400,
            "UnmatchedPrincipalType",
            f"The PrincipalId '{principal}' has type '{known_type}' , which is different from specified "
            f"PrinciaplType '{wanted_type}'.",
        )
    # ARM answers in its own form, whatever form the request used (RoleAssignments_Create examples).
    role_id = assigned_definition_id(scope, match["guid"].lower())
    if existing is not None:
        old = existing["properties"]
        if (
            old["principalId"].lower() != principal.lower()
            or old["roleDefinitionId"].lower() != role_id.lower()
        ):
            raise ArmError(
                400,
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            )
    for other in assignments(state):
        p = other["properties"]
        if (
            other["name"].lower() != name.lower()
            and p["scope"].lower() == scope.lower()
            and p["principalId"].lower() == principal.lower()
            and p["roleDefinitionId"].rsplit("/", 1)[-1].lower() == match["guid"].lower()
        ):
            raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
    return new_assignment(
        scope,
        name,
        role_definition_id=role_id,
        principal_id=principal,
        principal_type=wanted_type,
        created_by=state.app_principal_id,
        description=props.get("description"),
        condition=props.get("condition"),
        condition_version=props.get("conditionVersion"),
        existing=existing,
    )


def new_assignment(
    scope: str,
    name: str,
    *,
    role_definition_id: str,
    principal_id: str,
    principal_type: str = "ServicePrincipal",
    created_by: str = SCENARIO_ADMIN,
    description: str | None = None,
    condition: str | None = None,
    condition_version: str | None = None,
    existing: Json | None = None,
) -> Json:
    """A role assignment in the shape ARM returns (api-version 2022-04-01)."""
    stamp = now_iso()
    return {
        "id": assignment_id(scope, name),
        "name": name,
        "type": ROLE_ASSIGNMENT,
        "properties": {
            "roleDefinitionId": role_definition_id,
            "principalId": principal_id,
            "principalType": principal_type,
            "scope": scope,
            "condition": condition,
            "conditionVersion": condition_version if condition else None,
            "createdOn": existing["properties"]["createdOn"] if existing else stamp,
            "updatedOn": stamp,
            "createdBy": existing["properties"]["createdBy"] if existing else created_by,
            "updatedBy": created_by,
            "delegatedManagedIdentityResourceId": None,
            "description": description,
        },
    }


def _get_assignment(state: State, arm: ArmRequest) -> Json:
    found = state.get(arm.resource_id)
    if found is None:
        _check_scope(state, arm.scope)
        raise ArmError(
            404, "RoleAssignmentNotFound", f"The role assignment '{arm.names[-1]}' is not found."
        )
    return found


_AT_SCOPE = re.compile(r"^atscope\(\)$", re.IGNORECASE)
_PRINCIPAL = re.compile(
    r"^(?:principalId\s+eq\s+'?(?P<eq>[^')\s]+)'?|assignedTo\('(?P<to>[^']+)'\))$", re.IGNORECASE
)


def _parse_assignment_filter(raw: str | None) -> tuple[bool, str | None]:
    """(at scope or above only, principal id) from ARM's ``$filter``; 400 for anything else."""
    at_scope, principal = False, None
    if not raw:
        return at_scope, principal
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        if _AT_SCOPE.match(clause):
            at_scope = True
            continue
        match = _PRINCIPAL.match(clause)
        if match is None:
            raise ArmError(400, "UnsupportedQuery", f"The filter '{raw}' is not supported.")
        principal = match["eq"] or match["to"]
    return at_scope, principal


def _relation(state: State, scope: str, assigned: str) -> tuple[bool, bool]:
    """(the assignment at ``assigned`` applies at ``scope``, it lies below ``scope``)."""
    scope = scope or "/"
    return within(state, scope, assigned), assigned != scope and within(state, assigned, scope)


def _list_assignments(state: State, arm: ArmRequest) -> list[Json]:
    _check_scope(state, arm.scope)
    at_scope, principal = _parse_assignment_filter(arm.request.args.get("$filter"))
    found = []
    # Stored bodies, filtered and serialized, never changed: a fleet's thousands of assignments
    # are not copied for each list.
    for assignment in state.typed(ROLE_ASSIGNMENT, copy=False):
        props = assignment["properties"]
        if principal and props["principalId"].lower() != principal.lower():
            continue
        above, below = _relation(state, arm.scope, props["scope"])
        if not (above or (below and not at_scope)):
            continue
        subscription_id = "" if state.role_ids_listed_in_tenant_form else arm.subscription_id
        found.append(listed_in(subscription_id, assignment))
    return found


def listed_in(subscription_id: str, assignment: Json) -> Json:
    """An assignment as a list made through ``subscription_id`` shows it.

    ARM lists built-in roles in the subscription form of the subscription in the request path,
    management-group assignments included (a captured ``roleAssignments`` list in
    Azure/azure-cli#27509 shows ``/subscriptions/{sub}/providers/.../roleDefinitions/{guid}`` on
    an assignment whose scope is a management group). That is the id ``roleDefinitions`` lists
    at the same scope, which is how ``az role assignment list`` fills in ``roleDefinitionName``.
    A list at a management group or the root (no subscription) keeps the tenant form, and so
    do the PUT answer and a GET by id, as the RoleAssignments examples show.
    """
    role_id = assignment["properties"]["roleDefinitionId"]
    match = DEFINITION_ID.match(role_id)
    if not subscription_id or match is None or match["guid"].lower() not in BUILT_IN_ROLES:
        return assignment
    rendered = {**assignment, "properties": dict(assignment["properties"])}
    rendered["properties"]["roleDefinitionId"] = definition_id(subscription_id, match["guid"])
    return rendered


# -- deny assignments ----------------------------------------------------------------------


def deny_assignments(state: State) -> list[Json]:
    return [r for r in state.typed(DENY_ASSIGNMENT)]


def new_deny_assignment(
    scope: str,
    name: str,
    *,
    display_name: str,
    principals: list[Json],
    actions: list[str] | None = None,
    not_actions: list[str] | None = None,
    data_actions: list[str] | None = None,
    not_data_actions: list[str] | None = None,
    exclude_principals: list[Json] | None = None,
    do_not_apply_to_child_scopes: bool = False,
    description: str | None = None,
) -> Json:
    """A deny assignment in the shape of the GetDenyAssignmentByScope example (2022-04-01)."""
    return {
        "id": f"{scope.rstrip('/')}/providers/{DENY_ASSIGNMENT}/{name}",
        "name": name,
        "type": DENY_ASSIGNMENT,
        "properties": {
            "denyAssignmentName": display_name,
            "description": description,
            "permissions": [
                {
                    "actions": actions or [],
                    "notActions": not_actions or [],
                    "dataActions": data_actions or [],
                    "notDataActions": not_data_actions or [],
                }
            ],
            "scope": scope,
            "doNotApplyToChildScopes": do_not_apply_to_child_scopes,
            "principals": principals,
            "excludePrincipals": exclude_principals or [],
            "isSystemProtected": True,
        },
    }


def _list_deny_assignments(state: State, arm: ArmRequest) -> list[Json]:
    _check_scope(state, arm.scope)
    at_scope, principal = _parse_assignment_filter(arm.request.args.get("$filter"))
    found = []
    for deny in deny_assignments(state):
        props = deny["properties"]
        above, below = _relation(state, arm.scope, props["scope"])
        if props.get("doNotApplyToChildScopes") and (arm.scope or "/") != props["scope"]:
            above = False
        if not (above or (below and not at_scope)):
            continue
        ids = {p["id"].lower() for p in props["principals"]}
        # Everyone (the all-principals object id) is written as 00000000-...-000000000000.
        if principal and principal.lower() not in ids and _EVERYONE not in ids:
            continue
        found.append(deny)
    return found


_EVERYONE = "00000000-0000-0000-0000-000000000000"


_DEFINITION_FILTER = re.compile(
    r"^(?P<field>roleName|type)\s+eq\s+'(?P<value>[^']*)'$", re.IGNORECASE
)


def _definition_filter(arm: ArmRequest) -> dict[str, str]:
    """``roleName eq '...'`` and/or ``type eq '...'``, as ``az role definition list`` sends them."""
    raw = arm.request.args.get("$filter")
    wanted: dict[str, str] = {}
    if not raw:
        return wanted
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        match = _DEFINITION_FILTER.match(clause)
        if match is None:
            raise ArmError(400, "UnsupportedQuery", f"The filter '{raw}' is not supported.")
        wanted[match["field"].lower()] = match["value"].lower()
    return wanted


def register(emulator: Emulator) -> None:
    emulator.arm.register(
        ResourceKind(
            type=ROLE_ASSIGNMENT,
            schema=ASSIGNMENT_SCHEMA,
            on_put=_put_assignment,
            list_children=_list_assignments,
            get=_get_assignment,
            any_scope=True,
        )
    )
    emulator.arm.register(
        ResourceKind(
            type=ROLE_DEFINITION,
            schema=DEFINITION_SCHEMA,
            on_put=_put_definition,
            list_children=_list_definitions,
            get=_get_definition,
            any_scope=True,
        )
    )
    emulator.arm.register(
        ResourceKind(
            type=DENY_ASSIGNMENT,
            read_only=True,
            list_children=_list_deny_assignments,
            any_scope=True,
        )
    )
