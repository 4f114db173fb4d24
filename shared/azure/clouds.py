"""Cloud endpoints: the public clouds by name, or custom endpoints (the local emulator)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cloud:
    name: str
    resource_manager: str
    authority_host: str
    microsoft_graph: str
    acr_suffix: str

    @property
    def arm_scope(self) -> str:
        return _scope(self.resource_manager)

    @property
    def graph_scope(self) -> str:
        return _scope(self.microsoft_graph)


def _scope(endpoint: str) -> str:
    return endpoint.rstrip("/") + "/.default"


PUBLIC_CLOUDS = {
    "AzureCloud": Cloud(
        name="AzureCloud",
        resource_manager="https://management.azure.com",
        authority_host="https://login.microsoftonline.com",
        microsoft_graph="https://graph.microsoft.com",
        acr_suffix="azurecr.io",
    ),
    "AzureChinaCloud": Cloud(
        name="AzureChinaCloud",
        resource_manager="https://management.chinacloudapi.cn",
        authority_host="https://login.chinacloudapi.cn",
        microsoft_graph="https://microsoftgraph.chinacloudapi.cn",
        acr_suffix="azurecr.cn",
    ),
    "AzureUSGovernment": Cloud(
        name="AzureUSGovernment",
        resource_manager="https://management.usgovcloudapi.net",
        authority_host="https://login.microsoftonline.us",
        microsoft_graph="https://graph.microsoft.us",
        acr_suffix="azurecr.us",
    ),
}
