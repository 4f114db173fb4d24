"""Microsoft.ContainerRegistry: registries, their admin credentials and network rules."""

from __future__ import annotations

import copy
import secrets
from typing import TYPE_CHECKING

from werkzeug.wrappers import Response

from emulator.arm import ArmError, ArmRequest, ResourceKind, json_response
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

REGISTRY = "Microsoft.ContainerRegistry/registries"

READ_ONLY = (
    "provisioningState",
    "loginServer",
    "creationDate",
    "status",
    "privateEndpointConnections",
    "dataEndpointHostNames",
)

REGISTRY_SCHEMA: Json = {
    "type": "object",
    "required": ["location", "sku"],
    "properties": {
        "location": {"type": "string", "minLength": 1},
        "sku": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"enum": ["Basic", "Standard", "Premium"]}},
        },
        "properties": {
            "type": "object",
            "properties": {
                "adminUserEnabled": {"type": "boolean"},
                "publicNetworkAccess": {"enum": ["Enabled", "Disabled"]},
                "anonymousPullEnabled": {"type": "boolean"},
                "networkRuleBypassOptions": {"enum": ["AzureServices", "None"]},
                "networkRuleSet": {
                    "type": "object",
                    "required": ["defaultAction"],
                    "properties": {
                        "defaultAction": {"enum": ["Allow", "Deny"]},
                        "ipRules": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["value"],
                                "properties": {
                                    "action": {"enum": ["Allow"]},
                                    "value": {"type": "string", "pattern": r"^[0-9./]+$"},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def new_password(name: str) -> Json:
    return {"name": name, "value": secrets.token_urlsafe(32)}


def _merge_put(state: State, resource_id: str, body: Json, existing: Json | None) -> Json:
    merged = copy.deepcopy(existing) if existing else {}
    for key in ("location", "tags", "sku", "identity"):
        if key in body:
            merged[key] = body[key]
    properties = merged.setdefault("properties", {})
    for key, value in body.get("properties", {}).items():
        if key not in READ_ONLY:
            properties[key] = value
    rules = properties.get("networkRuleSet")
    if rules and rules.get("ipRules") and merged["sku"]["name"] != "Premium":
        raise ArmError(
            400,
            "NetworkRuleSetNotSupported",
            "Network rules are only supported for registries with the Premium SKU.",
        )
    return merged


def _list_credentials(state: State, arm: ArmRequest) -> Response:
    registry = state.get(arm.resource_id)
    assert registry is not None
    if not registry["properties"].get("adminUserEnabled"):
        raise ArmError(
            400,
            "AdminUserIsDisabled",
            f"Admin user is disabled for registry '{registry['name']}'. Enable the admin user first.",
        )
    passwords = state.registry_passwords.setdefault(
        registry["id"].lower(), [new_password("password"), new_password("password2")]
    )
    return json_response({"username": registry["name"], "passwords": passwords})


def _regenerate_credential(state: State, arm: ArmRequest) -> Response:
    body = arm.body()
    name = body.get("name")
    if name not in ("password", "password2"):
        raise ArmError(400, "InvalidRequestContent", "name must be 'password' or 'password2'.")
    passwords = state.registry_passwords.setdefault(
        arm.resource_id.lower(), [new_password("password"), new_password("password2")]
    )
    for index, entry in enumerate(passwords):
        if entry["name"] == name:
            passwords[index] = new_password(name)
    registry = state.get(arm.resource_id)
    assert registry is not None
    return json_response({"username": registry["name"], "passwords": passwords})


# RegistryUpdateParameters: the PUT body's fields, none of them required.
REGISTRY_PATCH_SCHEMA: Json = {
    key: value for key, value in copy.deepcopy(REGISTRY_SCHEMA).items() if key != "required"
}


def register(emulator: Emulator) -> None:
    emulator.arm.register(
        ResourceKind(
            type=REGISTRY,
            schema=REGISTRY_SCHEMA,
            # registries.begin_update; merged like a PUT (Premium-only IP rules).
            patch_schema=REGISTRY_PATCH_SCHEMA,
            on_put=_merge_put,
            actions={
                "listcredentials": _list_credentials,
                "regeneratecredential": _regenerate_credential,
            },
        )
    )
