"""Microsoft Graph v1.0 (mounted under ``/graph``): applications, their password credentials, and
service principals, the part of Entra ID the product reads and rotates.

``state.graph_applications`` holds each application by appId in Graph's shape, plus private keys
that Graph never returns: ``_secrets`` ({keyId: secretText}) and ``_servicePrincipal`` (the
application's service principal in the tenant). Managed identities are service principals too:
``servicePrincipals/{id}`` answers for user- and system-assigned identities found in ARM state.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import string
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

PATH = re.compile(
    r"^(?P<set>applications|servicePrincipals)"
    r"(?:\(appId='(?P<app_id>[^']*)'\)|/(?P<object_id>[^/()]+))?"
    r"(?:/(?P<action>addPassword|removePassword))?$",
    re.IGNORECASE,
)
APP_FILTER = re.compile(r"^appId\s+eq\s+'(?P<app_id>[^']*)'$", re.IGNORECASE)
# ``az ad sp show --id <appId or name>`` looks service principals up by any of their names.
SPN_FILTER = re.compile(
    r"^servicePrincipalNames/any\((?P<var>\w+):(?P=var)\s+eq\s+'(?P<name>[^']*)'\)$",
    re.IGNORECASE,
)
DEFAULT_LIFETIME = timedelta(days=730)  # what Entra ID gives a password added without an end date
_SECRET_ALPHABET = string.ascii_letters + string.digits + "-_.~"


# The application properties a PATCH may set (of those the emulator models), and those Graph
# computes itself.
_WRITABLE_APPLICATION = frozenset({"displayName", "description", "notes", "tags"})
_READ_ONLY_APPLICATION = frozenset(
    {"id", "appId", "createdDateTime", "deletedDateTime", "publisherDomain", "passwordCredentials"}
)


class GraphError(Exception):
    """A Graph error envelope ``{"error": {"code", "message", "innerError"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# -- state helpers (scenarios, breaks and other providers use these) -----------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Graph sends up to 7 fractional digits; Python 3.11 parses them.
    return parsed


def _object_id(kind: str, app_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"graph/{kind}/{app_id.lower()}"))


def add_application(
    state: State,
    app_id: str,
    *,
    display_name: str | None = None,
    created: datetime | None = None,
) -> Json:
    """Register an application and its service principal (idempotent); returns the stored app."""
    with state.lock:
        existing = state.graph_applications.get(app_id)
        if existing is not None:
            return existing
        name = display_name or f"app-{app_id[:8]}"
        stamp = iso(created or datetime.now(UTC) - timedelta(days=400))
        app: Json = {
            "id": _object_id("application", app_id),
            "deletedDateTime": None,
            "appId": app_id,
            "createdDateTime": stamp,
            "description": None,
            "displayName": name,
            "identifierUris": [],
            "publisherDomain": "contoso.onmicrosoft.com",
            "signInAudience": "AzureADMyOrg",
            "tags": [],
            "keyCredentials": [],
            "passwordCredentials": [],
            "_secrets": {},
            "_servicePrincipal": {
                "id": _object_id("servicePrincipal", app_id),
                "deletedDateTime": None,
                "accountEnabled": True,
                "appDisplayName": name,
                "appId": app_id,
                "appOwnerOrganizationId": state.tenant_id,
                "displayName": name,
                "servicePrincipalNames": [app_id],
                "servicePrincipalType": "Application",
                "signInAudience": "AzureADMyOrg",
                "tags": [],
                "alternativeNames": [],
                "keyCredentials": [],
                "passwordCredentials": [],
            },
        }
        state.graph_applications[app_id] = app
        return app


def service_principal_id(state: State, app_id: str) -> str:
    with state.lock:
        return str(state.graph_applications[app_id]["_servicePrincipal"]["id"])


def _new_secret() -> str:
    # Entra ID secrets are 40 characters with "Q~" in them; the first three are the hint.
    head = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(3))
    return head + "8Q~" + "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(34))


def add_password(
    state: State,
    app_id: str,
    *,
    display_name: str | None = None,
    end: datetime | None = None,
    start: datetime | None = None,
) -> tuple[Json, str]:
    """Add a password credential; returns (the credential as Graph lists it, the secret text)."""
    start = start or datetime.now(UTC)
    end = end or start + DEFAULT_LIFETIME
    secret = _new_secret()
    credential: Json = {
        "customKeyIdentifier": None,
        "displayName": display_name,
        "endDateTime": iso(end),
        "hint": secret[:3],
        "keyId": str(uuid.uuid4()),
        "secretText": None,
        "startDateTime": iso(start),
    }
    with state.lock:
        app = state.graph_applications[app_id]
        app["passwordCredentials"].append(credential)
        app["_secrets"][credential["keyId"]] = secret
        if state.secret_propagation_seconds:
            ready = time.time() + state.secret_propagation_seconds
            state.secret_ready_at[credential["keyId"]] = ready
    return dict(credential), secret


def set_password_expiry(state: State, app_id: str, end: datetime) -> None:
    """Move every password credential's end date (negative windows make them expired)."""
    with state.lock:
        for credential in state.graph_applications[app_id]["passwordCredentials"]:
            credential["endDateTime"] = iso(end)
            if parse_iso(credential["startDateTime"]) > end:
                credential["startDateTime"] = iso(end - timedelta(days=365))


def graph_secret_valid(state: State, app_id: str, secret: str, now: datetime) -> bool:
    """Would Entra ID accept ``secret`` for ``app_id`` at ``now`` (a stored, unexpired password)?"""
    with state.lock:
        app = state.graph_applications.get(app_id)
        if app is None:
            return False
        credentials = {c["keyId"]: c for c in app["passwordCredentials"]}
        stored = dict(app["_secrets"])
        ready_at = dict(state.secret_ready_at)
    for key_id, text in stored.items():
        if hmac.compare_digest(text.encode(), secret.encode()):
            if ready_at.get(key_id, 0.0) > time.time():
                return False  # not replicated yet: Entra ID answers as for a wrong secret
            credential = credentials.get(key_id)
            return credential is not None and (
                parse_iso(credential["startDateTime"]) <= now < parse_iso(credential["endDateTime"])
            )
    return False


def _public(body: Json) -> Json:
    return {k: v for k, v in body.items() if not k.startswith("_")}


def _identity_principals(state: State) -> Iterable[Json]:
    """Managed identities as Graph lists them (servicePrincipalType ManagedIdentity)."""
    for resource in state.scan():
        props = resource.get("properties") or {}
        identity = resource.get("identity") or {}
        if resource.get("type", "").lower() == "microsoft.managedidentity/userassignedidentities":
            principal, client, explicit = props.get("principalId"), props.get("clientId"), True
        elif identity.get("principalId"):
            principal, client, explicit = identity["principalId"], None, False
        else:
            continue
        if not principal:
            continue
        client = client or _object_id("managedIdentityApp", str(principal))
        yield {
            "id": principal,
            "deletedDateTime": None,
            "accountEnabled": True,
            "alternativeNames": [f"isExplicit={explicit}", resource["id"]],
            "appDisplayName": None,
            "appId": client,
            "appOwnerOrganizationId": None,
            "displayName": resource["name"],
            "servicePrincipalNames": [client, f"https://identity.azure.net/{client}"],
            "servicePrincipalType": "ManagedIdentity",
            "signInAudience": "AzureADMyOrg",
            "tags": [],
            "keyCredentials": [],
            "passwordCredentials": [],
        }


def _service_principals(state: State) -> list[Json]:
    with state.lock:
        found = [dict(app["_servicePrincipal"]) for app in state.graph_applications.values()]
    return found + list(_identity_principals(state))


def _applications(state: State) -> list[Json]:
    with state.lock:
        return [json.loads(json.dumps(_public(app))) for app in state.graph_applications.values()]


# -- HTTP ------------------------------------------------------------------------------------


def _response(request: Request, body: Any, status: int = 200) -> Response:
    response = Response(
        json.dumps(body) if body is not None else None,
        status=status,
        content_type="application/json;odata.metadata=minimal;odata.streaming=true;"
        "IEEE754Compatible=false;charset=utf-8"
        if body is not None
        else None,
    )
    response.headers["request-id"] = str(uuid.uuid4())
    response.headers["client-request-id"] = request.headers.get("client-request-id") or str(
        uuid.uuid4()
    )
    return response


def _error(request: Request, exc: GraphError) -> Response:
    inner = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": str(uuid.uuid4()),
        "client-request-id": request.headers.get("client-request-id") or str(uuid.uuid4()),
    }
    return _response(
        request,
        {"error": {"code": exc.code, "message": exc.message, "innerError": inner}},
        exc.status,
    )


def _not_found(key: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def _select(request: Request, entity: Json) -> Json:
    raw = request.args.get("$select")
    if not raw:
        return entity
    wanted = {field.strip().lower() for field in raw.split(",") if field.strip()}
    return {k: v for k, v in entity.items() if k.lower() in wanted or k.startswith("@")}


def _body(request: Request) -> Json:
    try:
        parsed = json.loads(request.get_data(as_text=True) or "{}")
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
            "valid JSON format.",
        )
    return parsed


class Graph:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.state = emulator.state

    def handle(self, request: Request) -> Response:
        try:
            self._authenticate(request)
            return self._dispatch(request)
        except GraphError as exc:
            return _error(request, exc)

    def _authenticate(self, request: Request) -> None:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if not token:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        with self.state.lock:
            audience = self.state.tokens.get(token)
        if audience is None:
            raise GraphError(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.")
        if audience.rstrip("/").lower() != f"{self.emulator.base_url}/graph".lower():
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )

    def _dispatch(self, request: Request) -> Response:
        rest = request.path.split("/graph/", 1)[1] if "/graph/" in request.path else ""
        version, _, resource = rest.partition("/")
        if version != "v1.0":
            raise GraphError(400, "BadRequest", f"Invalid version: {version}")
        match = PATH.match(resource)
        if match is None:
            raise GraphError(
                400, "BadRequest", f"Resource not found for the segment '{resource.split('/')[0]}'."
            )
        entity_set = (
            "applications" if match["set"].lower() == "applications" else "servicePrincipals"
        )
        key = match["app_id"] if match["app_id"] is not None else match["object_id"]
        action = (match["action"] or "").lower()
        base = f"{self.emulator.base_url}/graph/v1.0/$metadata"
        if action:
            if request.method != "POST" or entity_set != "applications" or key is None:
                raise GraphError(
                    405,
                    "Request_BadRequest",
                    "Specified HTTP method is not allowed for the request target.",
                )
            app_id = self._app_id(match["app_id"], match["object_id"])
            return (
                self._add_password(request, app_id, base)
                if action == "addpassword"
                else self._remove(request, app_id)
            )
        if request.method == "PATCH" and entity_set == "applications" and key is not None:
            return self._update_application(
                request, self._app_id(match["app_id"], match["object_id"])
            )
        if request.method != "GET":
            raise GraphError(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        entities = (
            _applications(self.state)
            if entity_set == "applications"
            else _service_principals(self.state)
        )
        if key is None:
            wanted = request.args.get("$filter")
            if wanted:
                by_name = SPN_FILTER.match(wanted.strip())
                filtered = APP_FILTER.match(wanted.strip())
                if by_name is not None and entity_set == "servicePrincipals":
                    name = by_name["name"].lower()
                    entities = [
                        e
                        for e in entities
                        if name in {n.lower() for n in e.get("servicePrincipalNames", [])}
                    ]
                elif filtered is not None:
                    app_id = filtered["app_id"].lower()
                    entities = [e for e in entities if e["appId"].lower() == app_id]
                else:
                    raise GraphError(
                        400, "Request_UnsupportedQuery", f"Unsupported query: '{wanted}'."
                    )
            return _response(
                request,
                {
                    "@odata.context": f"{base}#{entity_set}",
                    "value": [_select(request, e) for e in entities],
                },
            )
        field = "appId" if match["app_id"] is not None else "id"
        for entity in entities:
            if str(entity.get(field, "")).lower() == key.lower():
                return _response(
                    request,
                    {"@odata.context": f"{base}#{entity_set}/$entity", **_select(request, entity)},
                )
        raise _not_found(key)

    def _update_application(self, request: Request, app_id: str) -> Response:
        """``PATCH /applications(appId='...')``: 204 No Content. Only the writable properties the
        product may set; a read-only or unknown property is refused as Graph refuses it."""
        body = _body(request)
        for name, value in body.items():
            if name in _READ_ONLY_APPLICATION:
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    f"Property '{name}' is read-only and cannot be set.",
                )
            if name not in _WRITABLE_APPLICATION:
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    f"Invalid property '{name}'.",
                )
            if name == "tags" and (
                not isinstance(value, list)
                or not all(isinstance(t, str) and 0 < len(t) <= 256 for t in value)
            ):
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    "Invalid value specified for property 'tags' of resource 'Application'.",
                )
        with self.state.lock:
            app = self.state.graph_applications[app_id]
            app.update(body)
        return Response(status=204)

    def _app_id(self, app_id: str | None, object_id: str | None) -> str:
        with self.state.lock:
            for app in self.state.graph_applications.values():
                if (app_id and app["appId"].lower() == app_id.lower()) or (
                    object_id and app["id"].lower() == object_id.lower()
                ):
                    return str(app["appId"])
        raise _not_found(app_id or object_id or "")

    def _add_password(self, request: Request, app_id: str, base: str) -> Response:
        body = _body(request)
        requested = body.get("passwordCredential") or {}
        if not isinstance(requested, dict):
            raise GraphError(
                400,
                "Request_BadRequest",
                "Invalid value specified for property 'passwordCredential'.",
            )
        try:
            start = (
                parse_iso(requested["startDateTime"]) if requested.get("startDateTime") else None
            )
            end = parse_iso(requested["endDateTime"]) if requested.get("endDateTime") else None
        except (TypeError, ValueError) as exc:
            raise GraphError(
                400,
                "Request_BadRequest",
                "Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.",
            ) from exc
        if end is not None and end <= (start or datetime.now(UTC)):
            raise GraphError(
                400, "Request_BadRequest", "Credential end date must be later than the start date."
            )
        name = requested.get("displayName")
        if name is not None and not isinstance(name, str):
            raise GraphError(
                400, "Request_BadRequest", "Invalid value specified for property 'displayName'."
            )
        credential, secret = add_password(
            self.state, app_id, display_name=name, end=end, start=start
        )
        return _response(
            request,
            {
                "@odata.context": f"{base}#microsoft.graph.passwordCredential",
                **credential,
                "secretText": secret,
            },
        )

    def _remove(self, request: Request, app_id: str) -> Response:
        key_id = _body(request).get("keyId")
        if not isinstance(key_id, str):
            raise GraphError(400, "Request_BadRequest", "The 'keyId' parameter is required.")
        with self.state.lock:
            app = self.state.graph_applications[app_id]
            kept = [c for c in app["passwordCredentials"] if c["keyId"].lower() != key_id.lower()]
            if len(kept) == len(app["passwordCredentials"]):
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    f"No password credential found with keyId '{key_id}'.",
                )
            app["passwordCredentials"] = kept
            app["_secrets"] = {
                k: v for k, v in app["_secrets"].items() if k.lower() != key_id.lower()
            }
        return _response(request, None, 204)


def register(emulator: Emulator) -> None:
    graph = Graph(emulator)
    emulator.mount("/graph/<path:rest>", "graph", graph.handle, methods=["GET", "POST", "PATCH"])
