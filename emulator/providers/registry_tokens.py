"""Microsoft.ContainerRegistry repository-scoped tokens: scope maps, tokens, generateCredentials.

Shapes from the 2025-11-01 examples (TokenGet, TokenCreate, RegistryGenerateCredentials; copied
into tests/contract/examples/containerregistry/):

- ``registries/{r}/scopeMaps/{name}``: ``properties.actions`` such as
  ``repositories/app/content/read``; ``type`` ``UserDefined``, or ``SystemDefined`` for the
  built-in maps every registry has (``_repositories_pull``, ``_repositories_push``,
  ``_repositories_admin``, ...), which are served, not stored. A PUT is a long-running operation.
- ``registries/{r}/tokens/{name}``: ``scopeMapId`` (a scope map of the same registry), ``status``
  (lowercase ``enabled``/``disabled``), ``credentials.passwords[]`` with ``name`` (``password1``
  or ``password2``), ``creationTime`` and ``expiry`` but never the value. A PUT (201 with
  ``Azure-AsyncOperation``) and a PATCH (``az acr token update``) change status and scope map;
  passwords come only from generateCredentials.
- ``POST registries/{r}/generateCredentials`` ``{tokenId, expiry?, name?}``: new values for one
  slot (``name``) or both; answered ``202`` with ``Location`` (``.../operationStatuses/
  registries-{guid}``), which answers ``202`` until the operation ends, then ``200`` with
  ``{username, passwords: [{creationTime, expiry, name, value}]}`` for the slots generated. The
  values are kept beside the resource (:data:`State.token_passwords`), as Azure keeps secrets.

The ACR data plane accepts ``<token name>:<password>`` while the token is enabled and that slot
has not expired, and grants per repository what the scope map's actions allow (:func:`allowed`).
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from emulator.arm import ArmError, ArmRequest, ResourceKind, json_response
from emulator.state import Json, Operation, State

if TYPE_CHECKING:
    from emulator.server import Emulator

REGISTRY = "Microsoft.ContainerRegistry/registries"
TOKEN = f"{REGISTRY}/tokens"
SCOPE_MAP = f"{REGISTRY}/scopeMaps"
SLOTS = ("password1", "password2")
# What each scope map action lets a docker client do (the token service's actions).
DOCKER_ACTIONS = {
    "content/read": "pull",
    "content/write": "push",
    "content/delete": "delete",
    "metadata/read": "metadata_read",
    "metadata/write": "metadata_write",
}
ACTION = re.compile(
    r"^repositories/(?P<repo>[a-z0-9*][a-z0-9._/*-]*)/"
    r"(?P<verb>content/read|content/write|content/delete|metadata/read|metadata/write)$"
)
_SYSTEM_MAPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "_repositories_pull": (
        "Can pull any repository of the registry",
        ("repositories/*/content/read",),
    ),
    "_repositories_pull_metadata_read": (
        "Can perform all read operations on the registry",
        ("repositories/*/content/read", "repositories/*/metadata/read"),
    ),
    "_repositories_push": (
        "Can push to any repository of the registry",
        ("repositories/*/content/read", "repositories/*/content/write"),
    ),
    "_repositories_push_metadata_write": (
        "Can perform all read and write operations on the registry",
        (
            "repositories/*/metadata/read",
            "repositories/*/metadata/write",
            "repositories/*/content/read",
            "repositories/*/content/write",
        ),
    ),
    "_repositories_admin": (
        "Can perform all read, write and delete operations on the registry",
        (
            "repositories/*/metadata/read",
            "repositories/*/metadata/write",
            "repositories/*/content/read",
            "repositories/*/content/write",
            "repositories/*/content/delete",
        ),
    ),
}
_SYSTEM_CREATED = "2019-10-01T00:00:00.0000000Z"

SCOPE_MAP_SCHEMA: Json = {
    "type": "object",
    "required": ["properties"],
    "properties": {
        "properties": {
            "type": "object",
            "required": ["actions"],
            "properties": {
                "description": {"type": ["string", "null"]},
                "actions": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": ACTION.pattern},
                },
            },
        }
    },
}

_TOKEN_PROPERTIES: Json = {
    "type": "object",
    "properties": {
        "scopeMapId": {"type": "string", "minLength": 1},
        "status": {"enum": ["enabled", "disabled"]},
        "credentials": {"type": "object"},
    },
}
TOKEN_SCHEMA: Json = {
    "type": "object",
    "required": ["properties"],
    "properties": {"properties": {**_TOKEN_PROPERTIES, "required": ["scopeMapId"]}},
}
TOKEN_PATCH_SCHEMA: Json = {"type": "object", "properties": {"properties": _TOKEN_PROPERTIES}}
GENERATE_SCHEMA: Json = {
    "type": "object",
    "required": ["tokenId"],
    "properties": {
        "tokenId": {"type": "string", "minLength": 1},
        "expiry": {"type": "string"},
        "name": {"enum": list(SLOTS)},
    },
}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise ArmError(
            400, "InvalidRequestContent", f"The expiry '{text}' is not a valid date-time."
        ) from None


def _registry_of(resource_id: str) -> str:
    """The registry id of a token or scope map id (case kept)."""
    at = resource_id.lower().rfind("/tokens/")
    at = at if at >= 0 else resource_id.lower().rfind("/scopemaps/")
    return resource_id[:at]


# -- scope maps ------------------------------------------------------------------------------


def system_scope_map(registry_id: str, name: str) -> Json | None:
    found = next((k for k in _SYSTEM_MAPS if k.lower() == name.lower()), None)
    if found is None:
        return None
    description, actions = _SYSTEM_MAPS[found]
    return {
        "id": f"{registry_id}/scopeMaps/{found}",
        "name": found,
        "type": SCOPE_MAP,
        "properties": {
            "description": description,
            "type": "SystemDefined",
            "creationDate": _SYSTEM_CREATED,
            "provisioningState": "Succeeded",
            "actions": list(actions),
        },
    }


def find_scope_map(state: State, scope_map_id: str) -> Json | None:
    stored = state.get(scope_map_id)
    if stored is not None:
        return stored
    registry_id, _, name = scope_map_id.rpartition("/scopeMaps/")
    if not name:
        registry_id, _, name = scope_map_id.rpartition("/scopemaps/")
    return system_scope_map(registry_id, name) if state.get(registry_id) else None


def _put_scope_map(state: State, resource_id: str, body: Json, existing: Json | None) -> Json:
    name = resource_id.rsplit("/", 1)[-1]
    if name.startswith("_"):
        raise ArmError(
            400, "InvalidScopeMapName", f"Scope map name '{name}' is reserved for system use."
        )
    properties = body["properties"]
    return {
        "id": resource_id,
        "name": name,
        "type": SCOPE_MAP,
        "properties": {
            "description": properties.get("description"),
            "type": "UserDefined",
            "creationDate": (existing or {}).get("properties", {}).get("creationDate")
            or iso(datetime.now(UTC)),
            "provisioningState": "Succeeded",
            "actions": list(properties["actions"]),
        },
    }


def _get_scope_map(state: State, arm: ArmRequest) -> Json:
    found = find_scope_map(state, arm.resource_id)
    if found is None:
        raise ArmError(
            404, "ResourceNotFound", f"The scope map '{arm.names[-1]}' could not be found."
        )
    return found


def _list_scope_maps(state: State, arm: ArmRequest) -> list[Json]:
    registry_id = arm.resource_id
    if state.get(registry_id) is None:
        raise ArmError(404, "ResourceNotFound", f"The registry '{arm.names[0]}' was not found.")
    system = [system_scope_map(registry_id, name) for name in _SYSTEM_MAPS]
    return [m for m in system if m is not None] + state.children(registry_id, SCOPE_MAP)


def allowed(actions: list[str], repository: str) -> frozenset[str]:
    """Docker actions (``pull``, ``push``, ...) a scope map grants on ``repository``.

    ``repositories/*/...`` covers every repository and ``repositories/team/*/...`` the ones
    below ``team/``, as ACR's wildcard scope maps do."""
    granted = set()
    for action in actions:
        match = ACTION.match(action)
        if match is None:
            continue
        pattern = match["repo"]
        below = pattern.endswith("/*") and repository.startswith(pattern[:-1])
        if pattern in ("*", repository) or below:
            granted.add(DOCKER_ACTIONS[match["verb"]])
    return frozenset(granted)


# -- tokens -----------------------------------------------------------------------------------


def _passwords_view(state: State, token_id: str) -> list[Json]:
    """``credentials.passwords`` as ARM shows them: name, creationTime, expiry; no value."""
    with state.lock:
        stored = dict(state.token_passwords.get(token_id.lower(), {}))
    view = []
    for slot in SLOTS:
        if slot in stored:
            entry = {"creationTime": stored[slot]["creationTime"], "name": slot}
            if stored[slot].get("expiry"):
                entry["expiry"] = stored[slot]["expiry"]
            view.append(entry)
    return view


def refresh_token_view(state: State, token_id: str) -> None:
    token = state.get(token_id)
    if token is None:
        return
    credentials = token["properties"].setdefault("credentials", {})
    credentials.setdefault("certificates", [])
    credentials["passwords"] = _passwords_view(state, token_id)
    state.put(token)


def _put_token(state: State, resource_id: str, body: Json, existing: Json | None) -> Json:
    properties = body["properties"]
    old = (existing or {}).get("properties", {})
    scope_map_id = properties.get("scopeMapId") or old.get("scopeMapId")
    registry_id = _registry_of(resource_id)
    if not scope_map_id or not scope_map_id.lower().startswith(registry_id.lower() + "/scopemaps/"):
        raise ArmError(
            400,
            "InvalidScopeMapId",
            f"The scope map '{scope_map_id}' must be a scope map of registry '{registry_id}'.",
        )
    scope_map = find_scope_map(state, scope_map_id)
    if scope_map is None:
        raise ArmError(404, "ScopeMapNotFound", f"The scope map '{scope_map_id}' was not found.")
    if existing is None:  # a new token (perhaps of a deleted one's name) has no passwords yet
        with state.lock:
            state.token_passwords.pop(resource_id.lower(), None)
    credentials = properties.get("credentials") or {}
    if any("value" in p for p in credentials.get("passwords") or []):
        raise ArmError(
            400, "InvalidRequestContent", "Token passwords are generated by the registry."
        )
    return {
        "id": resource_id,
        "name": resource_id.rsplit("/", 1)[-1],
        "type": TOKEN,
        "properties": {
            "creationDate": old.get("creationDate") or iso(datetime.now(UTC)),
            "scopeMapId": scope_map["id"],
            "status": properties.get("status") or old.get("status") or "enabled",
            "provisioningState": "Succeeded",
            "credentials": {
                "certificates": [],
                "passwords": _passwords_view(state, resource_id),
            },
        },
    }


def find_token(state: State, registry_id: str, name: str) -> Json | None:
    for token in state.children(registry_id, TOKEN):
        if token["name"].lower() == name.lower():
            return token
    return None


def token_principal(state: State, registry: Json, username: str, password: str) -> Json | None:
    """The data plane's principal for ``<token>:<password>``, or None (401) when the token is
    unknown or disabled, the password is no slot's value, or that slot has expired."""
    import hmac

    token = find_token(state, registry["id"], username)
    if token is None or token["properties"].get("status") != "enabled":
        return None
    now = datetime.now(UTC)
    with state.lock:
        stored = dict(state.token_passwords.get(token["id"].lower(), {}))
    for slot, entry in stored.items():
        if not hmac.compare_digest(entry["value"].encode(), password.encode()):
            continue
        if entry.get("expiry") and _parse_time(entry["expiry"]) <= now:
            return None
        return {"kind": "token", "sub": token["name"], "token": token["id"], "slot": slot}
    return None


def token_allows(state: State, token_id: str, repository: str) -> frozenset[str]:
    token = state.get(token_id)
    if token is None:
        return frozenset()
    scope_map = find_scope_map(state, token["properties"]["scopeMapId"])
    return allowed(list((scope_map or {}).get("properties", {}).get("actions", [])), repository)


def set_password(
    state: State, token_id: str, slot: str, *, expiry: datetime | None, created: datetime
) -> str:
    """Store a new value for ``slot``; what generateCredentials and scenarios use."""
    value = secrets.token_urlsafe(32)
    entry: Json = {"value": value, "creationTime": iso(created)}
    if expiry is not None:
        entry["expiry"] = iso(expiry)
    with state.lock:
        state.token_passwords.setdefault(token_id.lower(), {})[slot] = entry
    refresh_token_view(state, token_id)
    return value


# -- generateCredentials ------------------------------------------------------------------------

_OPERATIONS = "operationStatuses"


def _generate_credentials(state: State, arm: ArmRequest) -> Response:
    import jsonschema

    body = arm.body()
    errors = list(jsonschema.Draft202012Validator(GENERATE_SCHEMA).iter_errors(body))
    if errors:
        raise ArmError(400, "InvalidRequestContent", f"The request is invalid: {errors[0].message}")
    token_id = str(body["tokenId"])
    registry_id = arm.resource_id
    if not token_id.lower().startswith(registry_id.lower() + "/tokens/"):
        raise ArmError(
            400, "InvalidTokenId", f"The token '{token_id}' is not a token of '{registry_id}'."
        )
    token = state.get(token_id)
    if token is None:
        raise ArmError(404, "TokenNotFound", f"The token '{token_id}' was not found.")
    expiry = _parse_time(str(body["expiry"])) if body.get("expiry") else None
    slots = [str(body["name"])] if body.get("name") else list(SLOTS)
    now = datetime.now(UTC)
    passwords = []
    for slot in slots:
        value = set_password(state, token["id"], slot, expiry=expiry, created=now)
        entry: Json = {"creationTime": iso(now), "name": slot, "value": value}
        if expiry is not None:
            entry["expiry"] = iso(expiry)
        passwords.append(entry)
    fault = state.take_fault("LRO", arm.request.path)
    operation = Operation(
        id=f"registries-{uuid.uuid4()}",
        resource_id=registry_id,
        polls_left=state.lro_polls,
        fails=bool(fault and fault.lro_fails),
    )
    with state.lock:
        state.operations[operation.id] = operation
        state.operation_results[operation.id] = {"username": token["name"], "passwords": passwords}
    location = (
        f"{arm.request.host_url.rstrip('/')}{registry_id}/{_OPERATIONS}/{operation.id}"
        f"?api-version={arm.request.args['api-version']}"
    )
    response = Response(status=202)
    response.headers["Location"] = location
    response.headers["Retry-After"] = str(state.retry_after)
    response.headers["x-ms-request-id"] = str(uuid.uuid4())
    return response


def _operation_status(state: State, request: Request) -> Response:
    """``GET .../registries/{r}/operationStatuses/{id}``: 202 while running, then the result."""
    operation_id = request.path.rstrip("/").rsplit("/", 1)[-1]
    with state.lock:
        operation = state.operations.get(operation_id)
        if operation is None:
            raise ArmError(404, "NotFound", f"Operation '{operation_id}' was not found.")
        if operation.status == "InProgress":
            operation.polls_left -= 1
            if operation.polls_left < 0:
                operation.status = "Failed" if operation.fails else "Succeeded"
        status, result = operation.status, state.operation_results.get(operation_id)
    if status == "InProgress":
        response = Response(status=202)
        response.headers["Location"] = request.url
        response.headers["Retry-After"] = str(state.retry_after)
        return response
    if status == "Failed":
        return ArmError(
            500, "InternalServerError", "Generating the token credentials failed."
        ).response()
    return json_response(result or {})


def register(emulator: Emulator) -> None:
    state = emulator.state
    emulator.arm.register(
        ResourceKind(
            type=SCOPE_MAP,
            schema=SCOPE_MAP_SCHEMA,
            long_running=True,
            on_put=_put_scope_map,
            get=_get_scope_map,
            list_children=_list_scope_maps,
        )
    )
    emulator.arm.register(
        ResourceKind(
            type=TOKEN,
            schema=TOKEN_SCHEMA,
            long_running=True,
            on_put=_put_token,
            patch_schema=TOKEN_PATCH_SCHEMA,
        )
    )
    registry_kind = emulator.arm.kinds[REGISTRY.lower()]
    registry_kind.actions["generatecredentials"] = _generate_credentials
    emulator.arm.register_path(
        r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ContainerRegistry/"
        rf"registries/[^/]+/{_OPERATIONS}/[^/]+",
        lambda request: _operation_status(state, request),
    )
