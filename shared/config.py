"""App settings, read once per invocation into a frozen, validated :class:`Settings`."""

from __future__ import annotations

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
    retry_total: int = 4
    retry_backoff: float = 0.8
    operation_timeout: float = 240.0
    polling_interval: float = 15.0
    max_concurrency: int = 8

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
            retry_total=_number(env, "ARM_RETRY_TOTAL", 4, int),
            retry_backoff=_number(env, "ARM_RETRY_BACKOFF_SECONDS", 0.8, float),
            operation_timeout=_number(env, "OPERATION_TIMEOUT_SECONDS", 240.0, float),
            polling_interval=_number(env, "LRO_POLLING_INTERVAL_SECONDS", 15.0, float),
            max_concurrency=_number(env, "MAX_CONCURRENT_READS", 8, int),
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
