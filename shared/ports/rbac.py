"""Role assignments, role definitions and Entra ID applications (plain data and their reader).

Secrets never cross this port: an :class:`Application` carries its password credentials' key ids,
hints and dates, as Microsoft Graph lists them, never the secret text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Protocol

PULL_ACTION = "Microsoft.ContainerRegistry/registries/pull/read"
# What registries in "AbacRepositoryPermissions" mode check instead of PULL_ACTION.
REPOSITORY_READ_DATA_ACTION = "Microsoft.ContainerRegistry/registries/repositories/content/read"
# Deny assignments written for "every principal" name this object id.
EVERYONE = "00000000-0000-0000-0000-000000000000"
ACR_PULL_ROLE_ID = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
REPOSITORY_READER_ROLE_ID = "b93aa761-3e63-49ed-ac28-beffa264f7ac"


@lru_cache(maxsize=256)
def _pattern(permission: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in permission.split("*")), re.IGNORECASE)


def matches(permission: str, operation: str) -> bool:
    """Azure RBAC matching: case-insensitive, ``*`` stands for any run of characters."""
    return _pattern(permission).fullmatch(operation) is not None


@dataclass(frozen=True)
class Permission:
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def allows(self, operation: str, *, data: bool = False) -> bool:
        granted, denied = (
            (self.data_actions, self.not_data_actions) if data else (self.actions, self.not_actions)
        )
        return any(matches(p, operation) for p in granted) and not any(
            matches(p, operation) for p in denied
        )


@dataclass(frozen=True)
class RoleDefinition:
    id: str
    name: str
    role_name: str
    role_type: str
    permissions: tuple[Permission, ...]
    assignable_scopes: tuple[str, ...] = ()

    def allows(self, operation: str, *, data: bool = False) -> bool:
        return any(p.allows(operation, data=data) for p in self.permissions)

    def grants_pull(self, *, abac_mode: bool) -> bool:
        """Can a holder pull? ABAC-mode registries honour only the repository data action."""
        if self.allows(REPOSITORY_READ_DATA_ACTION, data=True):
            return True
        return not abac_mode and self.allows(PULL_ACTION)


@dataclass(frozen=True)
class RoleAssignment:
    id: str
    name: str
    scope: str
    role_definition_id: str
    principal_id: str
    principal_type: str
    condition: str | None = None

    @property
    def role_definition_name(self) -> str:
        """The role definition's GUID (the last segment of its id)."""
        return self.role_definition_id.rstrip("/").rsplit("/", 1)[-1]

    def is_for(self, principal_id: str) -> bool:
        return self.principal_id.lower() == principal_id.lower()

    def applies_to(self, scope: str) -> bool:
        """Made at ``scope`` or inherited by it from a parent scope in its path (the root ``/``
        included). Management groups are not in a resource's path: ARM's ``atScope()`` list is
        what tells that an assignment made at one applies."""
        mine, theirs = self.scope.lower().rstrip("/"), scope.lower().rstrip("/")
        return theirs == mine or theirs.startswith(mine + "/")

    def inherited_by(self, scope: str) -> bool:
        """Listed for ``scope`` but made elsewhere (a parent, a management group, the root)."""
        return self.scope.lower().rstrip("/") != scope.lower().rstrip("/")


def role_definition_guid(role_definition_id: str) -> str:
    """The GUID of a role definition id in any form ARM returns: tenant
    (``/providers/Microsoft.Authorization/roleDefinitions/{guid}``), subscription, or management
    group. Raises ValueError for anything that is not a role definition id."""
    parts = role_definition_id.strip().rstrip("/").split("/")
    if len(parts) < 4 or [p.lower() for p in parts[-4:-1]] != [
        "providers",
        "microsoft.authorization",
        "roledefinitions",
    ]:
        raise ValueError(f"not a role definition id: {role_definition_id[:200]!r}")
    return parts[-1]


@dataclass(frozen=True)
class DenyAssignment:
    """A deny assignment: the listed principals may not do what its permissions name, whatever
    role assignments say (``excludePrincipals`` are spared)."""

    id: str
    name: str
    scope: str
    permissions: tuple[Permission, ...]
    principal_ids: tuple[str, ...]
    exclude_principal_ids: tuple[str, ...] = ()
    do_not_apply_to_child_scopes: bool = False

    def denies(self, principal_id: str, operation: str, *, data: bool = False) -> bool:
        wanted = principal_id.lower()
        excluded = {p.lower() for p in self.exclude_principal_ids}
        named = {p.lower() for p in self.principal_ids}
        if wanted in excluded or not (wanted in named or EVERYONE in named):
            return False
        return any(p.allows(operation, data=data) for p in self.permissions)

    def denies_pull(self, principal_id: str, *, abac_mode: bool) -> bool:
        """Does it take away the pull a role would give? Each mode checks its own operation."""
        if abac_mode:
            return self.denies(principal_id, REPOSITORY_READ_DATA_ACTION, data=True)
        return self.denies(principal_id, PULL_ACTION)


@dataclass(frozen=True)
class PasswordCredential:
    key_id: str
    display_name: str | None
    hint: str | None
    start: datetime | None
    end: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.end is not None and self.end <= now

    def days_left(self, now: datetime) -> float | None:
        return None if self.end is None else (self.end - now).total_seconds() / 86400


@dataclass(frozen=True)
class Application:
    id: str
    app_id: str
    display_name: str
    password_credentials: tuple[PasswordCredential, ...]
    # Free-form strings on the application; a rotation in flight marks itself here.
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServicePrincipal:
    id: str
    app_id: str
    display_name: str
    service_principal_type: str
    account_enabled: bool = True


@dataclass(frozen=True)
class NewPassword:
    """A password credential just added to an application, with the only copy of its secret text.

    Graph returns ``secretText`` once, from ``addPassword``. ``repr``/``str`` hide it, so it cannot
    leak through a log line, an f-string or an exception message.
    """

    key_id: str
    display_name: str | None
    hint: str | None
    start: datetime | None
    end: datetime | None
    secret_text: str

    def __repr__(self) -> str:
        return (
            f"NewPassword(key_id={self.key_id!r}, display_name={self.display_name!r}, "
            f"end={self.end!r}, secret_text=<hidden>)"
        )

    __str__ = __repr__


class RbacPort(Protocol):
    def list_role_assignments_for_scope(self, scope: str) -> list[RoleAssignment]:
        """Assignments that apply at ``scope``: made at it or inherited from a parent scope."""
        ...

    def list_role_assignments_for_principal(
        self, subscription_id: str, principal_id: str
    ) -> list[RoleAssignment]:
        """Every assignment of one principal anywhere in a subscription."""
        ...

    def list_role_assignments_applying_to(
        self, scope: str, principal_id: str
    ) -> list[RoleAssignment]:
        """The assignments of one principal that apply at ``scope``."""
        ...

    def get_role_definition(self, role_definition_id: str) -> RoleDefinition:
        """A role definition by id, in any form ARM returns (tenant, subscription, management
        group); a role that cannot be read raises :class:`shared.errors.ReadError`."""
        ...

    def list_deny_assignments_for_scope(self, scope: str) -> list[DenyAssignment]:
        """Deny assignments that apply at ``scope``: made at it or inherited from a parent."""
        ...

    def get_application(self, app_id: str) -> Application:
        """The Entra ID application with this appId (client id), without secrets."""
        ...

    def get_service_principal(self, app_id: str) -> ServicePrincipal:
        """The service principal of an application in this tenant, by appId."""
        ...

    def get_service_principal_by_id(self, object_id: str) -> ServicePrincipal:
        """A service principal (application or managed identity) by object id."""
        ...

    # -- writes (remediations) ------------------------------------------------------------------

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
        """PUT a role assignment named ``name`` (a GUID); the same name again is a no-op (or
        updates its ``condition``, an ABAC condition of version 2.0).

        Returns None when ARM answers ``409 RoleAssignmentExists``: the same principal already has
        the same role at the same scope under another name, which is as good as created. Raises
        :class:`~shared.errors.PrincipalNotFoundError` for ``400 PrincipalNotFound`` (the
        principal is gone, or not replicated yet) and ``WriteRejected`` for other refusals.
        """
        ...

    def add_application_password(
        self, app_id: str, *, display_name: str, end: datetime
    ) -> NewPassword:
        """Graph ``addPassword`` on the application with this appId; the secret is returned once."""
        ...

    def remove_application_password(self, app_id: str, key_id: str) -> None:
        """Graph ``removePassword`` of one password credential by keyId."""
        ...

    def set_application_tags(self, app_id: str, tags: tuple[str, ...]) -> None:
        """Graph ``PATCH`` of the application's ``tags`` (the whole list)."""
        ...
