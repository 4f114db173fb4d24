"""Container registries through azure-mgmt-containerregistry."""

from __future__ import annotations

from typing import Any

from shared.azure.cache import RunCache, cached
from shared.azure.clusters import _text
from shared.azure.errors import translated
from shared.azure.factory import ClientFactory
from shared.azure.operations import wait_for_operation
from shared.errors import Forbidden, NotFound
from shared.models import OperationResult
from shared.permissions import REGISTRY_CREDENTIALS, withheld
from shared.ports.registries import AdminPassword, IpRule, Registry, RegistryCredentials
from shared.resource_id import ResourceId


class RegistryReader:
    factory: ClientFactory
    cache: RunCache

    @cached
    def get_registry(self, registry_id: str) -> Registry:
        rid = ResourceId.parse(registry_id)
        client = self.factory.container_registry(rid.subscription_id)
        with translated(registry_id, doing="read registry"):
            return _registry(client.registries.get(rid.resource_group, rid.name))

    @cached
    def list_registries(self, subscription_id: str) -> list[Registry]:
        client = self.factory.container_registry(subscription_id)
        with translated(f"/subscriptions/{subscription_id}", doing="list registries in"):
            return [_registry(r) for r in client.registries.list()]

    def find_registry(self, name_or_id: str, *, subscription_ids: tuple[str, ...]) -> Registry:
        """A registry by resource id, by name, or by login server (``myacr.azurecr.io``)."""
        if name_or_id.startswith("/"):
            return self.get_registry(name_or_id)
        wanted = name_or_id.lower().split(".", 1)[0]
        for subscription_id in subscription_ids:
            for registry in self.list_registries(subscription_id):
                if (
                    registry.name.lower() == wanted
                    or registry.login_server.lower() == name_or_id.lower()
                ):
                    return registry
        raise NotFound(
            f"no registry named {name_or_id} in the subscriptions in scope", resource_id=name_or_id
        )

    @cached
    def list_registry_credentials(self, registry_id: str) -> RegistryCredentials | None:
        registry = self.get_registry(registry_id)
        if not registry.admin_user_enabled:
            return None
        # Dry-run holds no credential-listing action (shared.permissions): say so, ask nothing.
        reason = withheld(self.factory.settings.access_mode, REGISTRY_CREDENTIALS)
        if reason:
            raise Forbidden(reason, resource_id=registry_id)
        rid = registry.resource
        client = self.factory.container_registry(rid.subscription_id)
        with translated(registry_id, doing="list credentials of"):
            result = client.registries.list_credentials(rid.resource_group, rid.name)
        return RegistryCredentials(
            username=result.username or "",
            passwords=tuple(
                AdminPassword(name=_text(p.name) or "password", value=p.value)
                for p in result.passwords or ()
                if p.value
            ),
        )

    # -- writes (remediations) ---------------------------------------------------------------

    def update_registry_network_rules(
        self,
        registry_id: str,
        *,
        default_action: str,
        ip_rules: tuple[IpRule, ...],
        timeout: float,
    ) -> OperationResult:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.containerregistry.models import (
            IPRule,
            NetworkRuleSet,
            RegistryPropertiesUpdateParameters,
            RegistryUpdateParameters,
        )

        from shared.errors import WriteRejected

        rid = ResourceId.parse(registry_id)
        client = self.factory.container_registry(rid.subscription_id)
        rules = NetworkRuleSet(
            default_action=default_action,
            ip_rules=[IPRule(action=r.action, ip_address_or_range=r.value) for r in ip_rules],
        )
        parameters = RegistryUpdateParameters(
            properties=RegistryPropertiesUpdateParameters(network_rule_set=rules)
        )
        rejected: WriteRejected | None = None
        try:
            with translated(registry_id, doing="update the network rules of"):
                try:
                    poller = client.registries.begin_update(
                        rid.resource_group, rid.name, parameters
                    )
                except HttpResponseError as exc:
                    if exc.status_code not in (400, 409, 422):
                        raise
                    code = getattr(exc.error, "code", None) or exc.reason or ""
                    rejected = WriteRejected(
                        f"ARM refused to update the network rules of {registry_id} "
                        f"({exc.status_code} {code})",
                        resource_id=registry_id,
                        code=code,
                    )
                else:
                    return wait_for_operation(poller, timeout)
        finally:
            self.cache.clear()
        assert rejected is not None
        raise rejected


def _registry(model: Any) -> Registry:
    rules = model.network_rule_set
    return Registry(
        id=str(ResourceId.parse(model.id)),
        name=model.name,
        login_server=model.login_server or "",
        location=model.location,
        sku=_text(model.sku.name) if model.sku else "",
        admin_user_enabled=bool(model.admin_user_enabled),
        public_network_access=_text(model.public_network_access) or "Enabled",
        network_default_action=_text(rules.default_action) if rules else "Allow",
        ip_rules=tuple(
            IpRule(value=r.ip_address_or_range, action=_text(r.action) or "Allow")
            for r in (rules.ip_rules or () if rules else ())
        ),
        private_endpoint_ids=tuple(
            c.private_endpoint.id
            for c in model.private_endpoint_connections or ()
            if c.private_endpoint is not None and c.private_endpoint.id
        ),
        anonymous_pull_enabled=bool(model.anonymous_pull_enabled),
        role_assignment_mode=_text(model.role_assignment_mode) or "LegacyRegistryPermissions",
        data_endpoint_enabled=bool(model.data_endpoint_enabled),
    )
