"""Every app setting the product reads: the contract between the code, infra/ and the README.

Contract tests check that the code reads only these, and that infra/ sets exactly the deployed
ones (everything but :data:`LOCAL_ONLY`).
"""

from __future__ import annotations

# Read by shared.config.Settings.
CORE = (
    "SCOPE_SUBSCRIPTION_IDS",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "REMEDIATION_MODE",
    "AZURE_CLOUD",
    "ARM_RETRY_TOTAL",
    "ARM_RETRY_BACKOFF_SECONDS",
    "OPERATION_TIMEOUT_SECONDS",
    "LRO_POLLING_INTERVAL_SECONDS",
    "MAX_CONCURRENT_READS",
    "RESOURCE_GRAPH_INVENTORY",
    "EVENT_LEASE_SECONDS",
    "CLUSTER_LEASE_SECONDS",
    "KUBERNETES_TRANSPORT",
    "KUBERNETES_TRANSPORT_MEMORY_SECONDS",
)

# Policy file and the state store's tables (the account comes from AzureWebJobsStorage__*).
STATE = ("POLICY_PATH", "STATE_TABLE_PREFIX")

# Ticket systems and outcome events; tokens are Key Vault references in Azure.
TICKETS = ("GITHUB_TOKEN", "AZURE_DEVOPS_PAT", "TICKET_WEBHOOK_URL")
OUTCOMES = ("OUTCOME_TOPIC_ENDPOINT",)

# Timer schedules (NCRONTAB, read by the Functions host as %SETTING%) and the sweep budget.
TRIGGERS = (
    "EXPIRY_SWEEP_SCHEDULE",
    "DRIFT_SWEEP_SCHEDULE",
    "PULL_FAILURE_SCAN_SCHEDULE",
    "RETENTION_SCHEDULE",
    "SWEEP_BUDGET_SECONDS",
)

# Fleet sweeps (shared.sweep_batches) and the kubeconfigs an instance keeps in memory.
FLEET = ("FLEET_BATCH_SIZE", "FLEET_CLUSTER_CONCURRENCY", "KUBECONFIG_CACHE_SECONDS")

# How long the state store keeps processed events, action records and audit rows (days).
RETENTION = ("EVENT_RETENTION_DAYS", "ACTION_RETENTION_DAYS", "AUDIT_RETENTION_DAYS")

# The defaults documented in the README and local.settings.example.json, and set by infra/.
TRIGGER_DEFAULTS = {
    "EXPIRY_SWEEP_SCHEDULE": "0 0 6 * * *",
    "DRIFT_SWEEP_SCHEDULE": "0 0 * * * *",
    "PULL_FAILURE_SCAN_SCHEDULE": "0 */10 * * * *",
    "RETENTION_SCHEDULE": "0 30 3 * * *",
    "SWEEP_BUDGET_SECONDS": "300",
}

# Only for the local emulator, a private CA, key-based storage or self-hosted ticket systems;
# infra/ never sets them.
LOCAL_ONLY = (
    "ARM_ENDPOINT",
    "GRAPH_ENDPOINT",
    "AUTHORITY_HOST",
    "ACR_SUFFIX",
    "AZURE_CA_BUNDLE",
    "ACR_DATA_ENDPOINT_TEMPLATE",
    "STATE_STORAGE_CONNECTION_STRING",
    "STATE_TABLE_SERVICE_URI",
    "STORAGE_ENDPOINT_SUFFIX",
    "GITHUB_API_URL",
    "AZURE_DEVOPS_URL",
    "OUTCOME_TOPIC_KEY",
    # Never deployed: the deployment's grants follow REMEDIATION_MODE (infra/PERMISSIONS.md).
    "CREDENTIAL_READS",
)

APP_SETTINGS = CORE + STATE + TICKETS + OUTCOMES + TRIGGERS + FLEET + RETENTION + LOCAL_ONLY
