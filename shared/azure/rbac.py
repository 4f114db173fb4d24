"""Role assignments and definitions through azure-mgmt-authorization; applications through Graph.

Graph is called with azure-core's pipeline (bearer token, retries) rather than the msgraph SDK,
whose import alone would dominate a cold start. Secret text never leaves this module: Graph only
returns it from ``addPassword``, which this reader does not call.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from shared.azure.cache import RunCache, cached
from shared.azure.clusters import _text
from shared.azure.errors import translated
from shared.azure.factory import ClientFactory
from shared.errors import NotFound, PrincipalNotFoundError, ReadError, WriteRejected
from shared.ports.rbac import (
    Application,
    DenyAssignment,
    NewPassword,
    PasswordCredential,
    Permission,
    RoleAssignment,
    RoleDefinition,
    ServicePrincipal,
    role_definition_guid,
)

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class RbacReader:
    factory: ClientFactory
    cache: RunCache

    @cached
    def list_role_assignments_for_scope(self, scope: str) -> list[RoleAssignment]:
        # Includes what is inherited from management groups and the root scope "/".
        client = self.factory.authorization(_subscription_of(scope))
        with translated(scope, doing="list role assignments at"):
            return [
                _assignment(a)
                for a in client.role_assignments.list_for_scope(scope, filter="atScope()")
            ]

    @cached
    def list_role_assignments_applying_to(
        self, scope: str, principal_id: str
    ) -> list[RoleAssignment]:
        """``principal_id``'s assignments that apply at ``scope``: one list of the scope, shared
        by every principal's pair in the run; a fleet batch seeds it from its inventory slice,
        which holds its own principals' assignments, not a registry's hundreds of others."""
        return [a for a in self.list_role_assignments_for_scope(scope) if a.is_for(principal_id)]

    @cached
    def list_role_assignments_for_principal(
        self, subscription_id: str, principal_id: str
    ) -> list[RoleAssignment]:
        client = self.factory.authorization(subscription_id)
        scope = f"/subscriptions/{subscription_id}"
        with translated(scope, doing="list role assignments of a principal in"):
            return [
                _assignment(a)
                for a in client.role_assignments.list_for_subscription(
                    filter=f"principalId eq '{_key(principal_id)}'"
                )
            ]

    @cached
    def list_deny_assignments_for_scope(self, scope: str) -> list[DenyAssignment]:
        client = self.factory.authorization(_subscription_of(scope))
        with translated(scope, doing="list deny assignments at"):
            return [
                _deny(d) for d in client.deny_assignments.list_for_scope(scope, filter="atScope()")
            ]

    @cached
    def get_role_definition(self, role_definition_id: str) -> RoleDefinition:
        from azure.core.exceptions import HttpResponseError

        try:
            role_definition_guid(role_definition_id)
        except ValueError as exc:
            raise ReadError(
                f"cannot read role {role_definition_id[:200]!r}: not a role definition id",
                resource_id=role_definition_id,
            ) from exc
        # Every form (tenant, subscription, management group) is a GET by id; ARM serves built-in
        # roles at the tenant form, which names no subscription.
        client = self.factory.authorization(_subscription_of(role_definition_id))
        try:
            with translated(role_definition_id, doing="read role definition"):
                return _definition(client.role_definitions.get_by_id(role_definition_id))
        except HttpResponseError as exc:
            code = getattr(exc.error, "code", None) or str(exc.status_code)
            raise ReadError(
                f"cannot read role {role_definition_id} ({exc.status_code} {code})",
                resource_id=role_definition_id,
            ) from exc

    @cached
    def get_application(self, app_id: str) -> Application:
        body = self._graph_get(f"/v1.0/applications(appId='{_key(app_id)}')", app_id, "application")
        return Application(
            id=str(body["id"]),
            app_id=str(body["appId"]),
            display_name=str(body.get("displayName") or ""),
            password_credentials=tuple(_password(c) for c in body.get("passwordCredentials") or ()),
            tags=tuple(str(t) for t in body.get("tags") or ()),
        )

    @cached
    def get_service_principal(self, app_id: str) -> ServicePrincipal:
        path = f"/v1.0/servicePrincipals(appId='{_key(app_id)}')"
        return _service_principal(self._graph_get(path, app_id, "service principal"))

    @cached
    def get_service_principal_by_id(self, object_id: str) -> ServicePrincipal:
        path = f"/v1.0/servicePrincipals/{_key(object_id)}"
        return _service_principal(self._graph_get(path, object_id, "service principal"))

    def _graph_get(self, path: str, key: str, what: str) -> dict[str, Any]:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            ResourceNotFoundError,
            map_error,
        )
        from azure.core.rest import HttpRequest

        client = self.factory.graph()
        with translated(f"{what} {key}", doing=f"read {what}"):
            response = client.send_request(HttpRequest("GET", client.format_url(path)))
            map_error(
                response.status_code,
                response,
                {401: ClientAuthenticationError, 404: ResourceNotFoundError},
            )
            response.raise_for_status()
            body: dict[str, Any] = response.json()
        return body

    # -- writes (remediations) --------------------------------------------------------------

    def create_role_assignment(
        self,
        scope: str,
        name: str,
        *,
        role_definition_id: str,
        principal_id: str,
        principal_type: str = "ServicePrincipal",
        description: str | None = None,
        condition: str | None = None,
    ) -> RoleAssignment | None:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

        client = self.factory.authorization(_subscription_of(scope))
        parameters = RoleAssignmentCreateParameters(
            role_definition_id=role_definition_id,
            principal_id=principal_id,
            principal_type=principal_type,
            description=description,
            condition=condition,
            condition_version="2.0" if condition else None,
        )
        rejected: WriteRejected | None = None
        try:
            with translated(scope, doing="create role assignments at"):
                try:
                    created = client.role_assignments.create(scope, name, parameters)
                except HttpResponseError as exc:
                    code = getattr(exc.error, "code", None) or ""
                    if exc.status_code == 409 and code == "RoleAssignmentExists":
                        return None
                    if exc.status_code not in (400, 409, 422):
                        raise
                    if exc.status_code == 400 and code == "PrincipalNotFound":
                        # Deleted, never existed, or not replicated yet: the caller tells which.
                        rejected = PrincipalNotFoundError(
                            f"ARM does not know principal {principal_id} (400 PrincipalNotFound)",
                            principal_id=principal_id,
                            resource_id=scope,
                        )
                    else:
                        rejected = WriteRejected(
                            f"ARM refused the role assignment at {scope} "
                            f"({exc.status_code} {code})",
                            resource_id=scope,
                            code=code,
                        )
        finally:
            self.cache.clear()
        if rejected is not None:
            raise rejected
        return _assignment(created)

    def add_application_password(
        self, app_id: str, *, display_name: str, end: datetime
    ) -> NewPassword:
        path = f"/v1.0/applications(appId='{_key(app_id)}')/addPassword"
        body = {"passwordCredential": {"displayName": display_name, "endDateTime": _iso(end)}}
        try:
            created = self._graph_post(path, body, app_id, "add a password to application")
        finally:
            self.cache.clear()
        secret = created.pop("secretText", None) if created else None
        if not secret or not created:
            raise WriteRejected(
                f"Graph added no password to application {app_id}", resource_id=app_id
            )
        credential = _password(created)
        return NewPassword(
            key_id=credential.key_id,
            display_name=credential.display_name,
            hint=credential.hint,
            start=credential.start,
            end=credential.end,
            secret_text=str(secret),
        )

    def remove_application_password(self, app_id: str, key_id: str) -> None:
        path = f"/v1.0/applications(appId='{_key(app_id)}')/removePassword"
        try:
            self._graph_post(
                path, {"keyId": _key(key_id)}, app_id, "remove a password of application"
            )
        finally:
            self.cache.clear()

    def set_application_tags(self, app_id: str, tags: tuple[str, ...]) -> None:
        path = f"/v1.0/applications(appId='{_key(app_id)}')"
        try:
            self._graph_post(path, {"tags": list(tags)}, app_id, "tag application", method="PATCH")
        finally:
            self.cache.clear()

    def _graph_post(
        self, path: str, body: dict[str, Any], key: str, doing: str, *, method: str = "POST"
    ) -> dict[str, Any] | None:
        """POST a Graph action (or PATCH an object); 400/409 become :class:`WriteRejected`
        (code only, no bodies)."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            ResourceNotFoundError,
            map_error,
        )
        from azure.core.rest import HttpRequest

        client = self.factory.graph()
        rejected: WriteRejected | None = None
        with translated(f"application {key}", doing=doing):
            response = client.send_request(HttpRequest(method, client.format_url(path), json=body))
            map_error(
                response.status_code,
                response,
                {401: ClientAuthenticationError, 404: ResourceNotFoundError},
            )
            if response.status_code in (400, 409, 422):
                code = _graph_error_code(response)
                rejected = WriteRejected(
                    f"Graph refused to {doing} {key} ({response.status_code} {code})",
                    resource_id=key,
                    code=code,
                )
            else:
                response.raise_for_status()
        if rejected is not None:
            raise rejected
        if response.status_code == 204 or not response.content:
            return None
        parsed: dict[str, Any] = response.json()
        return parsed


def _key(value: str) -> str:
    """A GUID for a Graph key segment; anything else cannot name a Graph object."""
    if not _GUID.match(value):
        raise NotFound(f"{value[:64]!r} is not a Microsoft Entra object or application id")
    return quote(value, safe="-")


def _subscription_of(scope: str) -> str:
    """The subscription in a scope, or "" for tenant, root and management-group scopes.

    The authorization client only puts its subscription into subscription-level URLs; the calls
    made here with "" (by scope, by id) never do, so one client serves every scope above them."""
    parts = scope.strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        return ""
    return parts[1]


def _assignment(model: Any) -> RoleAssignment:
    return RoleAssignment(
        id=model.id,
        name=model.name,
        scope=model.scope or "",
        role_definition_id=model.role_definition_id or "",
        principal_id=model.principal_id or "",
        principal_type=_text(model.principal_type),
        condition=model.condition,
    )


def _permission(p: Any) -> Permission:
    return Permission(
        actions=tuple(p.actions or ()),
        not_actions=tuple(p.not_actions or ()),
        data_actions=tuple(p.data_actions or ()),
        not_data_actions=tuple(p.not_data_actions or ()),
    )


def _deny(model: Any) -> DenyAssignment:
    return DenyAssignment(
        id=model.id or "",
        name=model.name or "",
        scope=model.scope or "",
        permissions=tuple(_permission(p) for p in model.permissions or ()),
        principal_ids=tuple(p.id for p in model.principals or () if p.id),
        exclude_principal_ids=tuple(p.id for p in model.exclude_principals or () if p.id),
        do_not_apply_to_child_scopes=bool(model.do_not_apply_to_child_scopes),
    )


def _definition(model: Any) -> RoleDefinition:
    return RoleDefinition(
        id=model.id,
        name=model.name,
        role_name=model.role_name or "",
        role_type=model.role_type or "",
        permissions=tuple(_permission(p) for p in model.permissions or ()),
        assignable_scopes=tuple(model.assignable_scopes or ()),
    )


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def _password(body: dict[str, Any]) -> PasswordCredential:
    return PasswordCredential(
        key_id=str(body.get("keyId") or ""),
        display_name=body.get("displayName"),
        hint=body.get("hint"),
        start=_when(body.get("startDateTime")),
        end=_when(body.get("endDateTime")),
    )


def _service_principal(body: dict[str, Any]) -> ServicePrincipal:
    return ServicePrincipal(
        id=str(body["id"]),
        app_id=str(body.get("appId") or ""),
        display_name=str(body.get("displayName") or ""),
        service_principal_type=str(body.get("servicePrincipalType") or ""),
        account_enabled=bool(body.get("accountEnabled", True)),
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _graph_error_code(response: Any) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return str(response.reason or "")
