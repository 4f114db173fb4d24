"""Container registries as ARM describes them (not the /v2/ data plane)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Protocol

from shared.models import OperationResult
from shared.resource_id import ResourceId


@dataclass(frozen=True)
class IpRule:
    value: str
    action: str = "Allow"


@dataclass(frozen=True)
class Registry:
    id: str
    name: str
    login_server: str
    location: str
    sku: str
    admin_user_enabled: bool
    public_network_access: str
    network_default_action: str
    ip_rules: tuple[IpRule, ...]
    private_endpoint_ids: tuple[str, ...]
    anonymous_pull_enabled: bool
    # "AbacRepositoryPermissions" registries need Container Registry Repository Reader, not AcrPull.
    role_assignment_mode: str
    data_endpoint_enabled: bool = False

    @property
    def resource(self) -> ResourceId:
        return ResourceId.parse(self.id)

    @property
    def abac_mode(self) -> bool:
        return self.role_assignment_mode.lower() == "abacrepositorypermissions"


# The admin account's two password slots, as listCredentials and regenerateCredential name them.
ADMIN_PASSWORD_SLOTS = ("password", "password2")


@dataclass(frozen=True)
class AdminPassword:
    """One admin password slot and its value (hidden from ``repr``)."""

    name: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class RegistryCredentials:
    """Admin account credentials; never logged (``repr`` hides the passwords)."""

    username: str
    passwords: tuple[AdminPassword, ...]

    def __repr__(self) -> str:
        slots = ", ".join(p.name for p in self.passwords)
        return f"RegistryCredentials(username={self.username!r}, passwords=<{slots} hidden>)"

    def slot_of(self, password: str) -> str | None:
        """The slot (``password`` or ``password2``) holding this value now, compared in
        constant time; None when neither does (it was regenerated, or never was one)."""
        for slot in self.passwords:
            if hmac.compare_digest(password.encode(), slot.value.encode()):
                return slot.name
        return None

    def value_of(self, slot: str) -> str | None:
        return next((p.value for p in self.passwords if p.name == slot), None)


# Read operations per minute by SKU, as documented for Azure Container Registry service tiers
# (https://aka.ms/acr/skus). A pull costs several: the manifest, the config and each layer.
READ_OPS_PER_MINUTE = {"basic": 1_000, "standard": 3_000, "premium": 10_000}


@dataclass(frozen=True)
class PullMinute:
    at: str  # ISO 8601 start of the minute
    total: int
    successful: int


@dataclass(frozen=True)
class RegistryPullMetrics:
    """Azure Monitor ``TotalPullCount`` / ``SuccessfulPullCount`` per minute over a window."""

    window_minutes: int
    minutes: tuple[PullMinute, ...]

    @property
    def total(self) -> int:
        return sum(m.total for m in self.minutes)

    @property
    def successful(self) -> int:
        return sum(m.successful for m in self.minutes)

    @property
    def failed(self) -> int:
        return max(0, self.total - self.successful)

    @property
    def peak(self) -> PullMinute | None:
        return max(self.minutes, key=lambda m: m.total, default=None)


class RegistryPort(Protocol):
    def get_registry(self, registry_id: str) -> Registry: ...

    def list_registries(self, subscription_id: str) -> list[Registry]: ...

    def find_registry(self, name_or_id: str, *, subscription_ids: tuple[str, ...]) -> Registry: ...

    def list_registry_credentials(self, registry_id: str) -> RegistryCredentials | None:
        """The admin credentials, or None when the admin user is disabled."""
        ...

    def get_registry_pull_metrics(self, registry_id: str, *, minutes: int) -> RegistryPullMetrics:
        """Pull counts per minute over the last ``minutes`` (Azure Monitor platform metrics)."""
        ...

    # -- writes (remediations) ------------------------------------------------------------------

    def update_registry_network_rules(
        self,
        registry_id: str,
        *,
        default_action: str,
        ip_rules: tuple[IpRule, ...],
        timeout: float,
    ) -> OperationResult:
        """PATCH the registry's whole ``networkRuleSet`` (as ``az acr network-rule add`` does).

        Returns ``Succeeded``, ``InProgress`` (still running after ``timeout`` seconds) or
        ``Failed`` (the operation ran and failed; ``detail`` holds its error code). ARM refusing
        the change (400/409, e.g. IP rules on a non-Premium registry) raises
        :class:`~shared.errors.WriteRejected` carrying the ARM error code.
        """
        ...
