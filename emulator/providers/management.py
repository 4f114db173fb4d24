"""Microsoft.Management: the management-group hierarchy above subscriptions (api 2023-04-01).

Only what role assignments need: which management groups a subscription sits under, up to the
tenant root group (whose name is the tenant id), and the root scope ``/`` above everything. ARM
lists assignments made at any of these scopes as inherited by every scope below them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.arm import ArmError, ArmRequest, ResourceKind
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

MANAGEMENT_GROUP = "Microsoft.Management/managementGroups"
PREFIX = f"/providers/{MANAGEMENT_GROUP}/"


def group_id(name: str) -> str:
    return f"{PREFIX}{name}"


def is_group_scope(scope: str) -> bool:
    parts = scope.strip("/").split("/")
    return len(parts) == 4 and scope.lower().startswith(PREFIX.lower())


def add_group(
    state: State, name: str, *, display_name: str | None = None, parent: str | None = None
) -> Json:
    """Store a management group under ``parent`` (a group name; default the tenant root group)."""
    root = state.tenant_id
    if name.lower() != root.lower():
        ensure_root(state)
    parent_name = None if name.lower() == root.lower() else (parent or root)
    if parent_name is not None and state.get(group_id(parent_name)) is None:
        raise KeyError(f"no management group named {parent_name!r} in the scenario")
    return state.put(
        {
            "id": group_id(name),
            "type": MANAGEMENT_GROUP,
            "name": name,
            "properties": {
                "tenantId": state.tenant_id,
                "displayName": display_name
                or ("Tenant Root Group" if parent_name is None else name),
                "details": {
                    "version": 1,
                    "updatedTime": "2024-05-02T09:14:51.0000000Z",
                    "updatedBy": state.app_principal_id,
                    "parent": {"id": group_id(parent_name), "name": parent_name}
                    if parent_name
                    else None,
                },
            },
        }
    )


def ensure_root(state: State) -> None:
    if state.get(group_id(state.tenant_id)) is None:
        add_group(state, state.tenant_id)


def place_subscription(state: State, subscription_id: str, group: str) -> None:
    """Move a subscription under a management group, as ``az account management-group
    subscription add`` does."""
    if state.get(group_id(group)) is None:
        raise KeyError(f"no management group named {group!r} in the scenario")
    with state.lock:
        state.subscriptions.setdefault(
            subscription_id.lower(), {"subscriptionId": subscription_id}
        )["managementGroup"] = group
        state.version += 1


def parent_group(state: State, subscription_id: str) -> str | None:
    """The management group a subscription is in: the tenant root group unless placed elsewhere.

    Without any management group in the scenario there is no hierarchy at all (None)."""
    with state.lock:
        placed = state.subscriptions.get(subscription_id.lower(), {}).get("managementGroup")
    if placed:
        return str(placed)
    return state.tenant_id if state.get(group_id(state.tenant_id)) else None


def ancestors(state: State, scope: str) -> list[str]:
    """The management-group scopes above ``scope`` (nearest first), then the root scope ``/``."""
    parts = scope.strip("/").split("/")
    name: str | None
    if parts and parts[0].lower() == "subscriptions" and len(parts) > 1:
        name = parent_group(state, parts[1])
    elif is_group_scope(scope):
        group = state.get(scope)
        parent = ((group or {}).get("properties", {}).get("details") or {}).get("parent")
        name = parent["name"] if parent else None
    else:
        return []
    found: list[str] = []
    while name is not None and len(found) < 8:  # ARM allows six levels below the root group
        found.append(group_id(name))
        group = state.get(group_id(name)) or {}
        parent = (group.get("properties", {}).get("details") or {}).get("parent")
        name = parent["name"] if parent else None
    return [*found, "/"]


def subscriptions_under(state: State, scope: str) -> set[str]:
    """Subscription ids (lower) in the management group ``scope`` or below it."""
    with state.lock:
        subscriptions = list(state.subscriptions)
    wanted = scope.lower().rstrip("/")
    return {
        s
        for s in subscriptions
        if wanted in (a.lower() for a in ancestors(state, f"/subscriptions/{s}"))
    }


def _get_group(state: State, arm: ArmRequest) -> Json:
    found = state.get(arm.resource_id)
    if found is None:
        raise ArmError(
            404,
            "NotFound",
            f"'{arm.names[-1]}' not found. The management group may not exist, or you may not "
            "have access to it.",
        )
    return found


def register(emulator: Emulator) -> None:
    emulator.arm.register(
        ResourceKind(type=MANAGEMENT_GROUP, read_only=True, get=_get_group, any_scope=True)
    )
