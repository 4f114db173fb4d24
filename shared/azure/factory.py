"""Builds SDK clients from :class:`~shared.config.Settings`; SDK packages are imported on first use.

Cold start is a product feature on Flex Consumption: ``import function_app`` must not pay for
``azure.mgmt.*``, so every import here sits inside the method that needs it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from shared.config import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.containerservice import ContainerServiceClient
    from azure.mgmt.msi import ManagedServiceIdentityClient


class ClientFactory:
    """One credential and one client per (service, subscription), built when first asked for."""

    def __init__(self, settings: Settings, *, credential: TokenCredential | None = None) -> None:
        self.settings = settings
        self._credential = credential
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    @property
    def credential(self) -> TokenCredential:
        with self._lock:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential(
                    authority=self.settings.cloud.authority_host,
                    managed_identity_client_id=self.settings.managed_identity_client_id,
                    **self._transport_options(),
                )
            return self._credential

    def _transport_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "retry_total": self.settings.retry_total,
            "retry_backoff_factor": self.settings.retry_backoff,
        }
        if self.settings.ca_bundle:
            options["connection_verify"] = self.settings.ca_bundle
        return options

    def _arm_client(self, cls: type[Any], subscription_id: str) -> Any:
        key = (cls.__name__, subscription_id.lower())
        credential = self.credential
        with self._lock:
            if key not in self._clients:
                self._clients[key] = cls(
                    credential,
                    subscription_id,
                    base_url=self.settings.cloud.resource_manager,
                    credential_scopes=[self.settings.cloud.arm_scope],
                    polling_interval=self.settings.polling_interval,
                    **self._transport_options(),
                )
            return self._clients[key]

    def container_service(self, subscription_id: str) -> ContainerServiceClient:
        from azure.mgmt.containerservice import ContainerServiceClient

        client: ContainerServiceClient = self._arm_client(ContainerServiceClient, subscription_id)
        return client

    def compute(self, subscription_id: str) -> ComputeManagementClient:
        from azure.mgmt.compute import ComputeManagementClient

        client: ComputeManagementClient = self._arm_client(ComputeManagementClient, subscription_id)
        return client

    def msi(self, subscription_id: str) -> ManagedServiceIdentityClient:
        from azure.mgmt.msi import ManagedServiceIdentityClient

        client: ManagedServiceIdentityClient = self._arm_client(
            ManagedServiceIdentityClient, subscription_id
        )
        return client

    def container_registry(self, subscription_id: str) -> ContainerRegistryManagementClient:
        from azure.mgmt.containerregistry import ContainerRegistryManagementClient

        client: ContainerRegistryManagementClient = self._arm_client(
            ContainerRegistryManagementClient, subscription_id
        )
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
