"""Builds SDK clients from :class:`~shared.config.Settings`; SDK packages are imported on first use.

Cold start is a product feature on Flex Consumption: ``import function_app`` must not pay for
``azure.mgmt.*``, so every import here sits inside the method that needs it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from shared import telemetry
from shared.config import Settings
from shared.errors import ConfigurationError

if TYPE_CHECKING:
    from azure.core import PipelineClient
    from azure.core.credentials import TokenCredential
    from azure.core.rest import HttpRequest, HttpResponse
    from azure.data.tables import TableServiceClient
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.containerservice import ContainerServiceClient
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.privatedns import PrivateDnsManagementClient
    from azure.mgmt.resourcegraph import ResourceGraphClient
    from azure.storage.queue import QueueClient
    from lightkube import Client as LightkubeClient


class ClientFactory:
    """One credential and one client per (service, subscription), built when first asked for."""

    def __init__(self, settings: Settings, *, credential: TokenCredential | None = None) -> None:
        self.settings = settings
        self._credential = credential
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        from shared.azure.kube_transport import TransportMemory

        # Outlives one run (the factory is kept per settings): clusters whose API server the
        # app could not reach directly lately.
        self.transport_memory = TransportMemory(settings.kubernetes_transport_memory_seconds)

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
        # retry_status defaults to 3 in azure-core whatever retry_total says: ARM_RETRY_TOTAL
        # must mean the same number of attempts for a 429 or a 503 as for a dropped connection.
        options: dict[str, Any] = {
            "retry_total": self.settings.retry_total,
            "retry_status": self.settings.retry_total,
            "retry_backoff_factor": self.settings.retry_backoff,
            # CustomHookPolicy sits after the retry policy: every attempt is counted, 429s too.
            "raw_response_hook": telemetry.http_response("arm"),
        }
        if self.settings.ca_bundle:
            options["connection_verify"] = self.settings.ca_bundle
        return options

    def _arm_client(self, cls: type[Any], subscription_id: str) -> Any:
        key = (cls.__name__, subscription_id.lower())
        if key not in self._clients:
            from shared.azure import sdk_models

            sdk_models.ready_for(cls)  # before any thread deserializes the package's models
        credential = self.credential
        retry = self._retry_policy()
        with self._lock:
            if key not in self._clients:
                self._clients[key] = cls(
                    credential,
                    subscription_id,
                    base_url=self.settings.cloud.resource_manager,
                    credential_scopes=[self.settings.cloud.arm_scope],
                    polling_interval=self.settings.polling_interval,
                    per_retry_policies=[self._pacing()],
                    **self._transport_options(),
                    retry_policy=retry,
                )
            return self._clients[key]

    def _retry_policy(self) -> Any:
        from shared.azure.retry import ReadOnlyPostRetryPolicy

        return ReadOnlyPostRetryPolicy(
            retry_total=self.settings.retry_total,
            retry_status=self.settings.retry_total,
            retry_backoff_factor=self.settings.retry_backoff,
        )

    def _pacing(self) -> Any:
        """Every ARM request of this process paced by ARM's limits (shared.azure.pacing)."""
        from shared.azure.pacing import pacing_policy, process_pacer

        return pacing_policy(process_pacer(self.settings.managed_identity_client_id or "app"))

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

    def network(self, subscription_id: str) -> NetworkManagementClient:
        from azure.mgmt.network import NetworkManagementClient

        client: NetworkManagementClient = self._arm_client(NetworkManagementClient, subscription_id)
        return client

    def private_dns(self, subscription_id: str) -> PrivateDnsManagementClient:
        from azure.mgmt.privatedns import PrivateDnsManagementClient

        client: PrivateDnsManagementClient = self._arm_client(
            PrivateDnsManagementClient, subscription_id
        )
        return client

    def authorization(self, subscription_id: str) -> AuthorizationManagementClient:
        from azure.mgmt.authorization import AuthorizationManagementClient

        client: AuthorizationManagementClient = self._arm_client(
            AuthorizationManagementClient, subscription_id
        )
        return client

    def resource_graph(self) -> ResourceGraphClient:
        """Azure Resource Graph: one client for every subscription (queries name their scopes)."""
        from azure.mgmt.resourcegraph import ResourceGraphClient

        key = ("ResourceGraphClient", "")
        credential = self.credential
        with self._lock:
            if key not in self._clients:
                self._clients[key] = ResourceGraphClient(
                    credential,
                    base_url=self.settings.cloud.resource_manager,
                    credential_scopes=[self.settings.cloud.arm_scope],
                    **self._transport_options(),
                )
            client: ResourceGraphClient = self._clients[key]
            return client

    def graph(self) -> PipelineClient[HttpRequest, HttpResponse]:
        """Microsoft Graph over plain azure-core: the msgraph SDK costs too much at cold start."""
        return self._bearer_client(
            "graph", self.settings.cloud.microsoft_graph, self.settings.cloud.graph_scope
        )

    def monitor(self) -> PipelineClient[HttpRequest, HttpResponse]:
        """Azure Monitor metrics (an ARM API) over azure-core: azure-mgmt-monitor is 30 MB of
        models for one GET."""
        return self.resource_manager()

    def resource_manager(self) -> PipelineClient[HttpRequest, HttpResponse]:
        """ARM as plain JSON, for the few calls no SDK here covers (metrics, the deploy hooks'
        Microsoft.Web reads: azure-mgmt-web is not worth its size for three requests)."""
        return self._bearer_client(
            "arm",
            self.settings.cloud.resource_manager,
            self.settings.cloud.arm_scope,
            paced=True,
        )

    def _bearer_client(
        self, name: str, base_url: str, scope: str, *, paced: bool = False
    ) -> PipelineClient[HttpRequest, HttpResponse]:
        """One cached JSON client per service: retries as the SDKs do, a bearer token for scope."""
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            BearerTokenCredentialPolicy,
            CustomHookPolicy,
            HeadersPolicy,
            HttpLoggingPolicy,
            UserAgentPolicy,
        )
        from azure.core.pipeline.transport import RequestsTransport

        key = (name, "")
        credential = self.credential
        with self._lock:
            if key not in self._clients:
                verify = (
                    {"connection_verify": self.settings.ca_bundle}
                    if self.settings.ca_bundle
                    else {}
                )
                self._clients[key] = PipelineClient(
                    base_url=base_url,
                    policies=[
                        HeadersPolicy({"Accept": "application/json"}),
                        UserAgentPolicy(sdk_moniker="acr-pull-remediator"),
                        self._retry_policy(),
                        *([self._pacing()] if paced else []),
                        BearerTokenCredentialPolicy(credential, scope),
                        CustomHookPolicy(
                            raw_response_hook=telemetry.http_response(
                                "graph" if name == "graph" else "arm"
                            )
                        ),
                        HttpLoggingPolicy(),
                    ],
                    transport=RequestsTransport(**verify),
                )
            client: PipelineClient[HttpRequest, HttpResponse] = self._clients[key]
            return client

    def registry_data(self) -> PipelineClient[HttpRequest, HttpResponse]:
        """Registry data planes (/v2/, /oauth2/) over azure-core; requests carry absolute URLs.

        Retries 429/5xx (honouring Retry-After), follows ACR's 307 blob redirects (dropping the
        Authorization header when the host changes) and redacts headers in HTTP logs.
        """
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            HeadersPolicy,
            HttpLoggingPolicy,
            RedirectPolicy,
            UserAgentPolicy,
        )
        from azure.core.pipeline.transport import RequestsTransport

        key = ("registry-data", "")
        with self._lock:
            if key not in self._clients:
                connection: dict[str, Any] = {"connection_timeout": 10, "read_timeout": 30}
                if self.settings.ca_bundle:
                    connection["connection_verify"] = self.settings.ca_bundle
                self._clients[key] = PipelineClient(
                    base_url="",
                    policies=[
                        HeadersPolicy(),
                        UserAgentPolicy(sdk_moniker="acr-pull-remediator"),
                        self._retry_policy(),
                        RedirectPolicy(),
                        HttpLoggingPolicy(),
                    ],
                    transport=RequestsTransport(**connection),
                )
            client: PipelineClient[HttpRequest, HttpResponse] = self._clients[key]
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def kubernetes(self, kubeconfig: dict[str, Any]) -> LightkubeClient:
        """A lightkube client for one cluster's kubeconfig (from ``listClusterUserCredential``).

        Not cached here: kubeconfigs carry credentials, so readers keep one client per cluster per
        run. The server's CA comes from the kubeconfig's ``certificate-authority-data``;
        ``trust_env=False`` keeps proxy and netrc settings of the host out of cluster traffic.
        """
        import httpx2
        from lightkube import Client, KubeConfig

        return Client(
            KubeConfig.from_dict(kubeconfig),
            timeout=httpx2.Timeout(20.0, connect=5.0),
            trust_env=False,
            field_manager="acr-pull-remediator",
        )

    def host_queue(self, name: str) -> QueueClient | None:
        """The Functions host's queue ``name`` (AzureWebJobsStorage), or None where the host's
        storage is not configured here. Messages are base64, as the host's queue trigger reads
        them by default (``messageEncoding``)."""
        from azure.storage.queue import QueueClient, TextBase64EncodePolicy

        settings = self.settings
        options: dict[str, Any] = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "connection_timeout": 10,
            "read_timeout": 30,
        }
        if settings.ca_bundle:
            options["connection_verify"] = settings.ca_bundle
        if settings.host_queue_connection_string:
            return QueueClient.from_connection_string(
                settings.host_queue_connection_string, name, **options
            )
        if settings.host_queue_service_uri:
            return QueueClient(
                settings.host_queue_service_uri, name, credential=self.credential, **options
            )
        return None

    def table_service(self) -> TableServiceClient:
        """The state store's Table service: a connection string, else the app's identity.

        ``settings.state_connection_string`` (Azurite, local) wins; otherwise
        ``settings.state_table_service_uri`` with :attr:`credential` (needs "Storage Table Data
        Contributor" on the account). Without either, :class:`ConfigurationError`.
        """
        from azure.data.tables import TableServiceClient

        settings = self.settings
        if not settings.state_connection_string and not settings.state_table_service_uri:
            raise ConfigurationError(
                "no state store configured: set STATE_STORAGE_CONNECTION_STRING, or "
                "AzureWebJobsStorage__accountName / STATE_TABLE_SERVICE_URI for the app's identity"
            )
        key = ("tables", "")
        credential = None if settings.state_connection_string else self.credential
        with self._lock:
            if key not in self._clients:
                options = {
                    **self._transport_options(),
                    "connection_timeout": 10,
                    "read_timeout": 30,
                }
                if settings.state_connection_string:
                    self._clients[key] = TableServiceClient.from_connection_string(
                        settings.state_connection_string, **options
                    )
                else:
                    self._clients[key] = TableServiceClient(
                        endpoint=str(settings.state_table_service_uri),
                        credential=credential,
                        **options,
                    )
            client: TableServiceClient = self._clients[key]
            return client
