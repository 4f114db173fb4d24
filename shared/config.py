"""App settings, read once per invocation into a frozen, validated :class:`Settings`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from shared.azure.clouds import PUBLIC_CLOUDS, Cloud
from shared.errors import ConfigurationError

MODES = ("dry-run", "enforce")
T = TypeVar("T", int, float)


@dataclass(frozen=True)
class Settings:
    cloud: Cloud
    subscriptions: frozenset[str]
    tenant_id: str | None = None
    ca_bundle: str | None = None
    managed_identity_client_id: str | None = None
    mode: str = "dry-run"
    # CREDENTIAL_READS: "auto" reads credentials (cluster kubeconfig, registry admin passwords)
    # only in enforce, as infra/ grants them (infra/PERMISSIONS.md); "on" in any mode (the CLI,
    # signed in as a person with their own rights); "off" never.
    credential_reads: str = "auto"
    retry_total: int = 4
    retry_backoff: float = 0.8
    operation_timeout: float = 240.0
    polling_interval: float = 15.0
    max_concurrency: int = 8
    # Sweeps discover clusters, registries, node scale sets and role assignments through Azure
    # Resource Graph (shared.azure.inventory), falling back to ARM when it fails.
    inventory: bool = True
    # How long a delivery's claim on an event holds: longer than host.json's functionTimeout
    # (10 min), so only a delivery whose invocation died loses it.
    event_lease_seconds: float = 900.0
    # How long a worker's lease on a cluster holds if it dies before releasing it; None: the
    # longest a remediation may run (operation_timeout) plus a minute.
    cluster_lease_seconds: float | None = None
    # Where a registry's data plane (/v2/, /oauth2/) is served; "{login_server}" is substituted.
    acr_data_endpoint_template: str = "https://{login_server}"
    # Policy file (shared.policy); "" = the bundled policies/default.yaml.
    policy_path: str = ""
    # State store (shared.store): a connection string (local, Azurite) or, in Azure, the table
    # endpoint reached with the app's identity. Never printed: the string may hold an account key.
    state_connection_string: str | None = dataclasses.field(default=None, repr=False)
    state_table_service_uri: str | None = None
    state_table_prefix: str = "remediator"
    # The Functions host's own queues (AzureWebJobsStorage): a planner writes each batch there
    # as soon as it is planned. None of either: the timer's output binding writes them.
    host_queue_connection_string: str | None = dataclasses.field(default=None, repr=False)
    host_queue_service_uri: str | None = None
    # Tickets (shared.tickets) and outcome events (shared.outcome_events). Credentials are plain
    # app settings (in Azure, Key Vault references the platform resolves); never printed.
    github_api_url: str = "https://api.github.com"
    github_token: str | None = dataclasses.field(default=None, repr=False)
    azure_devops_url: str = "https://dev.azure.com"
    azure_devops_pat: str | None = dataclasses.field(default=None, repr=False)
    ticket_webhook_url: str | None = dataclasses.field(default=None, repr=False)
    outcome_topic_endpoint: str | None = None
    outcome_topic_key: str | None = dataclasses.field(default=None, repr=False)
    # Kubernetes transport (shared/azure/kube_transport.py): auto / direct / run-command, and how
    # long a failed direct connection sends a cluster's reads through Run Command.
    kubernetes_transport: str = "auto"
    kubernetes_transport_memory_seconds: float = 3600.0

    @property
    def cluster_lease(self) -> float:
        if self.cluster_lease_seconds is not None:
            return self.cluster_lease_seconds
        return self.operation_timeout + 60

    @property
    def access_mode(self) -> str:
        """The mode whose grants the identity holds for credential reads (shared.permissions)."""
        if self.credential_reads == "auto":
            return self.mode
        return "enforce" if self.credential_reads == "on" else "dry-run"

    def in_scope(self, subscription_id: str) -> bool:
        return subscription_id.lower() in self.subscriptions

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            cloud=_cloud(env),
            subscriptions=frozenset(
                s.strip().lower()
                for s in env.get("SCOPE_SUBSCRIPTION_IDS", "").split(",")
                if s.strip()
            ),
            tenant_id=(env.get("AZURE_TENANT_ID") or "").lower() or None,
            ca_bundle=env.get("AZURE_CA_BUNDLE") or None,
            managed_identity_client_id=env.get("AZURE_CLIENT_ID") or None,
            mode=_choice(env, "REMEDIATION_MODE", MODES, "dry-run"),
            credential_reads=_choice(env, "CREDENTIAL_READS", ("auto", "on", "off"), "auto"),
            retry_total=_number(env, "ARM_RETRY_TOTAL", 4, int),
            retry_backoff=_number(env, "ARM_RETRY_BACKOFF_SECONDS", 0.8, float),
            operation_timeout=_number(env, "OPERATION_TIMEOUT_SECONDS", 240.0, float),
            polling_interval=_number(env, "LRO_POLLING_INTERVAL_SECONDS", 15.0, float),
            max_concurrency=_number(env, "MAX_CONCURRENT_READS", 8, int),
            inventory=_choice(env, "RESOURCE_GRAPH_INVENTORY", ("on", "off"), "on") == "on",
            event_lease_seconds=_number(env, "EVENT_LEASE_SECONDS", 900.0, float),
            cluster_lease_seconds=(
                _number(env, "CLUSTER_LEASE_SECONDS", 0.0, float)
                if env.get("CLUSTER_LEASE_SECONDS")
                else None
            ),
            acr_data_endpoint_template=_endpoint_template(env),
            policy_path=env.get("POLICY_PATH", "").strip(),
            state_connection_string=_state_connection_string(env),
            state_table_service_uri=_state_table_service_uri(env),
            state_table_prefix=_table_prefix(env),
            host_queue_connection_string=_host_queue_connection_string(env),
            host_queue_service_uri=_host_queue_service_uri(env),
            github_api_url=_https_url(env, "GITHUB_API_URL", "https://api.github.com"),
            github_token=env.get("GITHUB_TOKEN") or None,
            azure_devops_url=_https_url(env, "AZURE_DEVOPS_URL", "https://dev.azure.com"),
            azure_devops_pat=env.get("AZURE_DEVOPS_PAT") or None,
            ticket_webhook_url=_https_url(env, "TICKET_WEBHOOK_URL", "", secret=True) or None,
            outcome_topic_endpoint=_https_url(env, "OUTCOME_TOPIC_ENDPOINT", "") or None,
            outcome_topic_key=env.get("OUTCOME_TOPIC_KEY") or None,
            kubernetes_transport=_choice(
                env, "KUBERNETES_TRANSPORT", ("auto", "direct", "run-command"), "auto"
            ),
            kubernetes_transport_memory_seconds=_number(
                env, "KUBERNETES_TRANSPORT_MEMORY_SECONDS", 3600.0, float
            ),
        )


def _cloud(env: Mapping[str, str]) -> Cloud:
    name = env.get("AZURE_CLOUD", "AzureCloud")
    if name in PUBLIC_CLOUDS:
        return PUBLIC_CLOUDS[name]
    if name != "Custom":
        allowed = ", ".join([*PUBLIC_CLOUDS, "Custom"])
        raise ConfigurationError(f"AZURE_CLOUD={name!r} is not one of: {allowed}")
    missing = [key for key in ("ARM_ENDPOINT", "GRAPH_ENDPOINT") if not env.get(key)]
    if missing:
        raise ConfigurationError(f"AZURE_CLOUD=Custom needs {' and '.join(missing)}")
    return Cloud(
        name="Custom",
        resource_manager=env["ARM_ENDPOINT"].rstrip("/"),
        authority_host=env.get("AUTHORITY_HOST", PUBLIC_CLOUDS["AzureCloud"].authority_host),
        microsoft_graph=env["GRAPH_ENDPOINT"].rstrip("/"),
        acr_suffix=env.get("ACR_SUFFIX", "azurecr.io"),
    )


def _choice(env: Mapping[str, str], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = env.get(key, default)
    if value not in allowed:
        raise ConfigurationError(f"{key}={value!r} is not one of: {', '.join(allowed)}")
    return value


def _number(env: Mapping[str, str], key: str, default: T, kind: type[T]) -> T:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{key}={raw!r} is not a {kind.__name__}") from None
    if value < 0:
        raise ConfigurationError(f"{key}={raw!r} must not be negative")
    return value


def _endpoint_template(env: Mapping[str, str]) -> str:
    key, default = "ACR_DATA_ENDPOINT_TEMPLATE", "https://{login_server}"
    value = env.get(key) or default
    if not value.startswith("https://") or value.count("{login_server}") != 1:
        raise ConfigurationError(f"{key}={value!r} must be an https URL with one {{login_server}}")
    try:
        value.format(login_server="x")
    except (KeyError, IndexError, ValueError):
        raise ConfigurationError(f"{key}={value!r} may only contain {{login_server}}") from None
    return value.rstrip("/")


# The Azurite account every Azure Storage SDK knows (public, documented): UseDevelopmentStorage=true.
AZURITE_DEV_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)
_STORAGE_SUFFIXES = {
    "AzureCloud": "core.windows.net",
    "AzureChinaCloud": "core.chinacloudapi.cn",
    "AzureUSGovernment": "core.usgovcloudapi.net",
}


def _state_connection_string(env: Mapping[str, str]) -> str | None:
    """STATE_STORAGE_CONNECTION_STRING, else a key-based AzureWebJobsStorage (unless identity-based)."""
    value = env.get("STATE_STORAGE_CONNECTION_STRING", "").strip()
    if not value and not _state_table_service_uri(env):
        value = env.get("AzureWebJobsStorage", "").strip()
    return _development_storage(value) or None


def _development_storage(value: str) -> str:
    """``UseDevelopmentStorage=true`` spelled out as Azurite's connection string."""
    if value.replace(" ", "").lower().rstrip(";") == "usedevelopmentstorage=true":
        return AZURITE_DEV_CONNECTION_STRING
    return value


def _account_service_uri(env: Mapping[str, str], service: str, setting: str) -> str | None:
    """``https://<AzureWebJobsStorage__accountName>.<service>.<suffix>``, or None without an
    account name; ``setting`` is what to set instead in a custom cloud."""
    account = env.get("AzureWebJobsStorage__accountName", "").strip()
    if not account:
        return None
    suffix = env.get("STORAGE_ENDPOINT_SUFFIX") or _STORAGE_SUFFIXES.get(
        env.get("AZURE_CLOUD", "AzureCloud"), ""
    )
    if not suffix:
        raise ConfigurationError(
            f"AzureWebJobsStorage__accountName needs STORAGE_ENDPOINT_SUFFIX or {setting} in a "
            "custom cloud"
        )
    return f"https://{account}.{service}.{suffix}"


def _state_table_service_uri(env: Mapping[str, str]) -> str | None:
    """STATE_TABLE_SERVICE_URI, else the Functions host's identity-based AzureWebJobsStorage__*."""
    uri = (
        env.get("STATE_TABLE_SERVICE_URI")
        or env.get("AzureWebJobsStorage__tableServiceUri")
        or _account_service_uri(env, "table", "STATE_TABLE_SERVICE_URI")
    )
    if uri and not uri.startswith("https://"):
        raise ConfigurationError(f"STATE_TABLE_SERVICE_URI={uri!r} must be an https URL")
    return uri.rstrip("/") if uri else None


def _host_queue_connection_string(env: Mapping[str, str]) -> str | None:
    """A key-based AzureWebJobsStorage (``UseDevelopmentStorage=true``: Azurite)."""
    return _development_storage(env.get("AzureWebJobsStorage", "").strip()) or None


def _host_queue_service_uri(env: Mapping[str, str]) -> str | None:
    """The identity-based AzureWebJobsStorage__queueServiceUri (or __accountName)."""
    uri = env.get("AzureWebJobsStorage__queueServiceUri", "").strip() or _account_service_uri(
        env, "queue", "AzureWebJobsStorage__queueServiceUri"
    )
    if uri and not uri.startswith("https://"):
        raise ConfigurationError(
            f"AzureWebJobsStorage__queueServiceUri={uri!r} must be an https URL"
        )
    return uri.rstrip("/") if uri else None


def _table_prefix(env: Mapping[str, str]) -> str:
    value = env.get("STATE_TABLE_PREFIX") or "remediator"
    if not value.isascii() or not value.isalnum() or not value[0].isalpha() or len(value) > 40:
        raise ConfigurationError(
            f"STATE_TABLE_PREFIX={value!r} must be 1-40 letters and digits, starting with a letter"
        )
    return value


def _https_url(env: Mapping[str, str], key: str, default: str, *, secret: bool = False) -> str:
    value = (env.get(key) or default).strip()
    if value and not value.startswith("https://"):
        shown = "the value" if secret else repr(value)
        raise ConfigurationError(f"{key}: {shown} must be an https URL")
    return value.rstrip("/") if not secret else value
