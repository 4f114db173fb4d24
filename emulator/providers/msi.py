"""Microsoft.ManagedIdentity: user-assigned identities (``az identity create``), as ARM serves them.

A PUT creates the identity with a new service principal (``principalId``) and application
(``clientId``) in the tenant; both are read-only, so a PUT of an existing identity keeps them.
A new principal is unknown to role assignment writes until Entra ID has replicated it
(``State.replication_delay``). Shape: azure-mgmt-msi's ``Identity`` (2023-01-31): ``location``,
``tags``, ``properties.{tenantId, principalId, clientId}``.
"""

from __future__ import annotations

import copy
import uuid
from typing import TYPE_CHECKING

from emulator.arm import ResourceKind
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"

SCHEMA: Json = {
    "type": "object",
    "required": ["location"],
    "properties": {
        "location": {"type": "string", "minLength": 1},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "properties": {"type": "object"},
    },
}


def _put(state: State, resource_id: str, body: Json, existing: Json | None) -> Json:
    if existing is not None:
        merged = copy.deepcopy(existing)
        merged["tags"] = body.get("tags", merged.get("tags", {}))
        return merged
    principal_id = str(uuid.uuid4())
    state.principal_new(principal_id)
    return {
        "id": resource_id,
        "name": resource_id.rsplit("/", 1)[-1],
        "type": TYPE,
        "location": body["location"],
        "tags": body.get("tags", {}),
        "properties": {
            "tenantId": state.tenant_id,
            "principalId": principal_id,
            "clientId": str(uuid.uuid4()),
        },
    }


def register(emulator: Emulator) -> None:
    emulator.arm.register(ResourceKind(type=TYPE, schema=SCHEMA, on_put=_put))
