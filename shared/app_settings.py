"""Every app setting the product reads: the contract between the code, infra/ and the README.

A contract test checks that the code reads only these, and that infra/ sets exactly these.
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
)

# Only for AZURE_CLOUD=Custom (the local emulator) or a private CA; infra/ never sets them.
LOCAL_ONLY = (
    "ARM_ENDPOINT",
    "GRAPH_ENDPOINT",
    "AUTHORITY_HOST",
    "ACR_SUFFIX",
    "AZURE_CA_BUNDLE",
    "ACR_DATA_ENDPOINT_TEMPLATE",
)

APP_SETTINGS = CORE + LOCAL_ONLY
