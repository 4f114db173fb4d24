"""Scenario builders for role assignments, custom roles and Entra ID applications.

YAML this module reads (all optional)::

    subscriptions:
      - id: ...
        resourceGroups:
          - name: rg-acr
            # Entra ID applications with a service principal each (tenant-wide; written in any group).
            servicePrincipals:
              - appId: 3f2504e0-4f89-41d3-9a0c-0305e82c3301
                displayName: aks-dev-neu-sp          # default app-<first 8 of appId>
                secrets:                             # default: one secret valid for 365 days
                  - {displayName: rbac, expiresInDays: 90}
                  - {displayName: old, expiresInDays: -10, ageDays: 700}  # expired; created 700 days ago
            # Custom roles, stored at this subscription; assignable at it unless assignableScopes says.
            customRoles:
              - name: Registry Puller
                description: pulls only
                actions: [Microsoft.ContainerRegistry/registries/pull/read]
                notActions: []
                dataActions: []
                assignableScopes: [/subscriptions/...]
            # Role assignments; scope is a registry name, "resourceGroup" (this group),
            # "subscription" (this subscription), "managementGroup:<name>", "root" (the scope
            # "/") or a full ARM id.
            roleAssignments:
              - scope: acrprodweu
                role: AcrPull                        # a built-in or custom role name
                principal: kubelet:aks-prod-weu      # or sp:<appId>, identity:<name>, or an object id
                principalType: ServicePrincipal      # default
                name: <guid>                         # default: stable guid of scope/role/principal
                condition: "..."                     # optional ABAC condition (version 2.0)
            # Deny assignments (Azure creates them for Blueprints, managed apps, deployment stacks).
            denyAssignments:
              - scope: acrprodweu                    # as for roleAssignments
                name: Deny pulls                     # denyAssignmentName
                principals: [kubelet:aks-prod-weu]   # principal refs, or "everyone"
                excludePrincipals: []
                actions: [Microsoft.ContainerRegistry/registries/pull/read]
                dataActions: []
                doNotApplyToChildScopes: false
            clusters:
              - name: aks-prod-weu
                attachedRegistries: [acrprodweu]     # az aks update --attach-acr, see below

``attachedRegistries`` creates what ``az aks update --attach-acr`` creates: an AcrPull assignment at
the registry for the kubelet identity (managed identity clusters) or for the cluster's service
principal (``servicePrincipal: <appId>`` clusters); registries in ``AbacRepositoryPermissions``
mode get Container Registry Repository Reader instead. A service-principal cluster always gets a
Graph application and service principal for its appId (one 365-day secret unless declared).

Management groups (top level; the tenant root group, named after the tenant id, is implied)::

    managementGroups:
      - name: mg-platform
        parent: mg-corp                              # default: the tenant root group
        subscriptions: [<subscription id>]           # placed under this group
        roleAssignments:                             # scope defaults to this group
          - {role: AcrPull, principal: kubelet:aks-prod-weu}

Breaks: ``acrpull-missing`` {cluster, registry?}, ``sp-mismatch`` {cluster, newAppId?},
``sp-secret-expired`` {cluster | appId, days: -1}.
"""

from __future__ import annotations

import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

from emulator.providers import authorization as authz
from emulator.providers import graph, management
from emulator.providers.containerservice import IDENTITY
from emulator.scenario import (
    CLUSTER_HOOKS,
    GROUP_SECTIONS,
    LOADED_HOOKS,
    REGISTRY_HOOKS,
    TOP_SECTIONS,
    breaks,
    find_cluster,
    find_registry,
    guid,
)
from emulator.state import Json, State

DEFAULT_SECRET_DAYS = 365
# Role assignments that name resources built later (another group) wait for the post-build hooks.
_PENDING: weakref.WeakKeyDictionary[State, list[tuple[str, str, dict[str, Any]]]] = (
    weakref.WeakKeyDictionary()
)


# -- service principals --------------------------------------------------------------------


def ensure_application(state: State, app_id: str, spec: dict[str, Any] | None = None) -> Json:
    """The Graph application for ``app_id``, created with its secrets when new."""
    with state.lock:
        known = app_id in state.graph_applications
    app = graph.add_application(state, app_id, display_name=(spec or {}).get("displayName"))
    if not known:
        now = datetime.now(UTC)
        declared = (spec or {}).get("secrets")
        for secret in declared if declared is not None else [{"displayName": "rbac"}]:
            days = float(secret.get("expiresInDays", DEFAULT_SECRET_DAYS))
            end = now + timedelta(days=days)
            start = min(now, end) - timedelta(days=float(secret.get("ageDays", 30)))
            graph.add_password(
                state, app_id, display_name=secret.get("displayName"), end=end, start=start
            )
    return app


def build_service_principals(
    state: State, sub_id: str, group: str, location: str, specs: list[dict[str, Any]]
) -> None:
    for spec in specs:
        ensure_application(state, str(spec["appId"]), spec)


# -- custom roles --------------------------------------------------------------------------


def build_custom_roles(
    state: State, sub_id: str, group: str, location: str, specs: list[dict[str, Any]]
) -> None:
    for spec in specs:
        role_guid = spec.get("id") or guid(sub_id, "customRole", spec["name"])
        stamp = authz.now_iso()
        state.put(
            {
                "id": authz.definition_id(sub_id, role_guid),
                "name": role_guid,
                "type": authz.ROLE_DEFINITION,
                "properties": {
                    "roleName": spec["name"],
                    "type": "CustomRole",
                    "description": spec.get("description"),
                    "assignableScopes": spec.get("assignableScopes", [f"/subscriptions/{sub_id}"]),
                    "permissions": [
                        {
                            "actions": list(spec.get("actions", [])),
                            "notActions": list(spec.get("notActions", [])),
                            "dataActions": list(spec.get("dataActions", [])),
                            "notDataActions": list(spec.get("notDataActions", [])),
                        }
                    ],
                    "createdOn": stamp,
                    "updatedOn": stamp,
                    "createdBy": authz.SCENARIO_ADMIN,
                    "updatedBy": authz.SCENARIO_ADMIN,
                },
            }
        )


# -- role assignments ----------------------------------------------------------------------


def pull_principal(state: State, cluster: Json) -> str:
    """The object id that pulls for a cluster: its kubelet identity, or its service principal."""
    props = cluster["properties"]
    kubelet = props.get("identityProfile", {}).get("kubeletidentity")
    if kubelet:
        return str(kubelet["objectId"])
    app_id = props["servicePrincipalProfile"]["clientId"]
    ensure_application(state, app_id)
    return graph.service_principal_id(state, app_id)


def _principal(state: State, ref: str) -> str:
    kind, _, value = ref.partition(":")
    if kind == "kubelet":
        return pull_principal(state, find_cluster(state, value))
    if kind == "sp":
        ensure_application(state, value)
        return graph.service_principal_id(state, value)
    if kind == "identity":
        for resource in state.typed(IDENTITY):
            if resource["type"] == IDENTITY and resource["name"].lower() == value.lower():
                return str(resource["properties"]["principalId"])
        raise KeyError(f"no user-assigned identity named {value!r} in the scenario")
    if authz.GUID.match(ref):
        return ref
    raise ValueError(
        f"principal {ref!r} is not kubelet:<cluster>, sp:<appId>, identity:<name> or a GUID"
    )


def _scope(state: State, sub_id: str, group: str, ref: str) -> str:
    if ref.startswith("/"):
        return ref.rstrip("/") or "/"
    if ref == "root":
        return "/"
    if ref.startswith("managementGroup:"):
        name = ref.partition(":")[2]
        if state.get(management.group_id(name)) is None:
            raise ValueError(f"no management group named {name!r} in the scenario")
        return management.group_id(name)
    if ref == "resourceGroup":
        return f"/subscriptions/{sub_id}/resourceGroups/{group}"
    if ref == "subscription":
        return f"/subscriptions/{sub_id}"
    return str(find_registry(state, ref)["id"])


def assign(
    state: State,
    scope: str,
    role: str,
    principal_id: str,
    *,
    principal_type: str = "ServicePrincipal",
    name: str | None = None,
    condition: str | None = None,
    description: str | None = None,
) -> Json:
    """Store a role assignment as ARM would after a successful PUT (idempotent by name)."""
    definition = authz.find_definition_by_name(state, role, scope) or authz.find_definition(
        state, role, scope
    )
    if definition is None:
        raise KeyError(f"no role named {role!r} (built-in or in customRoles)")
    role_guid = definition["name"]
    name = name or guid(scope.lower(), role_guid, principal_id.lower())
    return state.put(
        authz.new_assignment(
            scope,
            name,
            role_definition_id=authz.assigned_definition_id(scope, role_guid),
            principal_id=principal_id,
            principal_type=principal_type,
            condition=condition,
            condition_version="2.0" if condition else None,
            description=description,
        )
    )


def _apply_assignment(state: State, sub_id: str, group: str, spec: dict[str, Any]) -> None:
    principal_type = spec.get("principalType", "ServicePrincipal")
    ref = str(spec["principal"])
    if authz.GUID.match(ref):
        # A principal the scenario names by object id (a user, a group): the directory holds it.
        with state.lock:
            state.directory_objects.setdefault(ref.lower(), principal_type)
    assign(
        state,
        _scope(state, sub_id, group, str(spec["scope"])),
        str(spec["role"]),
        _principal(state, ref),
        principal_type=principal_type,
        name=spec.get("name"),
        condition=spec.get("condition"),
        description=spec.get("description"),
    )


def build_role_assignments(
    state: State, sub_id: str, group: str, location: str, specs: list[dict[str, Any]]
) -> None:
    for spec in specs:
        try:
            _apply_assignment(state, sub_id, group, spec)
        except KeyError:
            _PENDING.setdefault(state, []).append((sub_id, group, spec))


def _flush_pending(state: State) -> None:
    for sub_id, group, spec in _PENDING.pop(state, []):
        if "principals" in spec:
            _apply_deny(state, sub_id, group, spec)
        else:
            _apply_assignment(state, sub_id, group, spec)


def _deny_principal(state: State, ref: str) -> Json:
    if ref == "everyone":
        return {"id": "00000000-0000-0000-0000-000000000000", "type": "SystemDefined"}
    return {"id": _principal(state, ref), "type": "ServicePrincipal"}


def _apply_deny(state: State, sub_id: str, group: str, spec: dict[str, Any]) -> None:
    scope = _scope(state, sub_id, group, str(spec["scope"]))
    display = str(spec.get("name") or "Deny assignment")
    state.put(
        authz.new_deny_assignment(
            scope,
            str(spec.get("id") or guid(scope.lower(), "deny", display)),
            display_name=display,
            principals=[_deny_principal(state, str(p)) for p in spec["principals"]],
            exclude_principals=[
                _deny_principal(state, str(p)) for p in spec.get("excludePrincipals", [])
            ],
            actions=list(spec.get("actions", [])),
            not_actions=list(spec.get("notActions", [])),
            data_actions=list(spec.get("dataActions", [])),
            not_data_actions=list(spec.get("notDataActions", [])),
            do_not_apply_to_child_scopes=bool(spec.get("doNotApplyToChildScopes", False)),
            description=spec.get("description"),
        )
    )


def build_deny_assignments(
    state: State, sub_id: str, group: str, location: str, specs: list[dict[str, Any]]
) -> None:
    for spec in specs:
        if not spec.get("principals"):
            raise ValueError(f"deny assignment {spec.get('name')!r} names no principals")
        # Principals may name clusters built later: apply once the estate is built.
        _PENDING.setdefault(state, []).append((sub_id, group, spec))


def build_management_groups(state: State, specs: list[dict[str, Any]]) -> None:
    """Groups first (a parent may be declared after its child), then subscriptions, then grants."""
    management.ensure_root(state)
    remaining = list(specs)
    while remaining:
        ready = [
            s
            for s in remaining
            if state.get(management.group_id(str(s.get("parent") or state.tenant_id))) is not None
        ]
        if not ready:
            names = ", ".join(repr(s.get("parent")) for s in remaining)
            raise ValueError(f"management groups name parents that do not exist: {names}")
        for spec in ready:
            management.add_group(
                state,
                str(spec["name"]),
                display_name=spec.get("displayName"),
                parent=spec.get("parent"),
            )
            remaining.remove(spec)
    for spec in specs:
        for subscription_id in spec.get("subscriptions", []):
            management.place_subscription(state, str(subscription_id), str(spec["name"]))
        for grant in spec.get("roleAssignments", []):
            scoped = {"scope": f"managementGroup:{spec['name']}", **grant}
            _PENDING.setdefault(state, []).append(("", "", scoped))


def attach_registry(state: State, cluster: Json, registry: Json) -> Json:
    """What ``az aks update --attach-acr`` creates for this cluster on this registry."""
    abac = registry["properties"].get("roleAssignmentMode") == "AbacRepositoryPermissions"
    role = "Container Registry Repository Reader" if abac else "AcrPull"
    return assign(state, registry["id"], role, pull_principal(state, cluster))


def cluster_hook(state: State, cluster: Json, spec: dict[str, Any]) -> None:
    _flush_pending(state)
    app_id = spec.get("servicePrincipal")
    if app_id:
        ensure_application(state, str(app_id))
    for ref in spec.get("attachedRegistries", []):
        registry = state.get(ref) if str(ref).startswith("/") else find_registry(state, str(ref))
        if registry is None:
            raise KeyError(f"no registry {ref!r} in the scenario")
        attach_registry(state, find_cluster(state, cluster["name"]), registry)


def registry_hook(state: State, registry: Json, spec: dict[str, Any]) -> None:
    _flush_pending(state)


GROUP_SECTIONS["servicePrincipals"] = build_service_principals
GROUP_SECTIONS["customRoles"] = build_custom_roles
GROUP_SECTIONS["roleAssignments"] = build_role_assignments
GROUP_SECTIONS["denyAssignments"] = build_deny_assignments
TOP_SECTIONS["managementGroups"] = build_management_groups
LOADED_HOOKS.append(_flush_pending)
CLUSTER_HOOKS.append(cluster_hook)
REGISTRY_HOOKS.append(registry_hook)


# -- breaks --------------------------------------------------------------------------------


@breaks("acrpull-missing")
def remove_pull_assignments(state: State, spec: dict[str, Any]) -> None:
    """Someone deleted the cluster identity's role assignments on the registry (or above it)."""
    cluster = find_cluster(state, spec["cluster"])
    principal = pull_principal(state, cluster).lower()
    registry_id = find_registry(state, spec["registry"])["id"] if spec.get("registry") else None
    for assignment in authz.assignments(state):
        props = assignment["properties"]
        if props["principalId"].lower() != principal:
            continue
        if registry_id is None or authz.within(state, registry_id, props["scope"]):
            state.delete(assignment["id"])


@breaks("sp-mismatch")
def replace_service_principal(state: State, spec: dict[str, Any]) -> None:
    """The cluster moved to a new service principal; the registry still trusts the old one."""
    cluster = find_cluster(state, spec["cluster"])
    profile = cluster["properties"]["servicePrincipalProfile"]
    if profile.get("clientId", "msi") == "msi":
        raise ValueError(
            f"cluster {spec['cluster']!r} uses a managed identity, not a service principal"
        )
    new_app = str(spec.get("newAppId") or guid(cluster["id"], "replacement-sp"))
    ensure_application(state, new_app, {"displayName": f"{cluster['name']}-sp-new"})
    profile["clientId"] = new_app
    state.put(cluster)


@breaks("sp-secret-expired")
def expire_secret(state: State, spec: dict[str, Any]) -> None:
    """Every password of the cluster's service principal ends ``days`` from now (negative: expired)."""
    if spec.get("appId"):
        app_id = str(spec["appId"])
    else:
        cluster = find_cluster(state, spec["cluster"])
        app_id = cluster["properties"]["servicePrincipalProfile"]["clientId"]
        if app_id == "msi":
            raise ValueError(
                f"cluster {spec['cluster']!r} uses a managed identity, not a service principal"
            )
    ensure_application(state, app_id)
    graph.set_password_expiry(
        state, app_id, datetime.now(UTC) + timedelta(days=float(spec.get("days", -1)))
    )
