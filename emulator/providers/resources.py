"""Microsoft.Resources: subscriptions, tenants, resource groups and the generic resource list.

The product never calls these; people's tools do: ``az login`` lists subscriptions and tenants,
``az group list`` lists resource groups, and ``az aks update --attach-acr <name>`` or
``az resource list`` find a resource by name through ``GET /subscriptions/{id}/resources`` with an
OData ``$filter`` (``resourceType eq '...'``, ``name eq '...'``, ``resourceGroup eq '...'``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from emulator.arm import ArmError, json_response
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

_CLAUSE = re.compile(
    r"^(?P<field>resourceType|name|resourceGroup)\s+eq\s+'(?P<value>[^']*)'$", re.IGNORECASE
)
# Resources ARM's generic list does not show: extension resources and children of resources.
_HIDDEN = ("microsoft.authorization/",)


def subscription(state: State, key: str) -> Json:
    with state.lock:
        found = dict(state.subscriptions.get(key.lower()) or {})
    if not found:
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{key}' could not be found.")
    sub_id = found["subscriptionId"]
    return {
        "id": f"/subscriptions/{sub_id}",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": sub_id,
        "tenantId": state.tenant_id,
        "displayName": found.get("displayName", sub_id),
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    }


def _filter(raw: str | None) -> dict[str, str]:
    wanted: dict[str, str] = {}
    if not raw:
        return wanted
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(clause.strip())
        if match is None:
            raise ArmError(
                400, "InvalidFilterInQueryString", f"The $filter '{raw}' is not supported."
            )
        wanted[match["field"].lower()] = match["value"].lower()
    return wanted


def generic(resource: Json) -> Json:
    """The GenericResourceExpanded shape: identity and top-level fields, no properties."""
    shown: Json = {k: resource[k] for k in ("id", "name", "type", "location") if k in resource}
    for key in ("kind", "sku", "identity", "managedBy"):
        if resource.get(key) is not None:
            shown[key] = resource[key]
    shown["tags"] = resource.get("tags") or {}
    return shown


def list_resources(state: State, scope: str, raw_filter: str | None) -> list[Json]:
    wanted = _filter(raw_filter)
    prefix = scope.lower().rstrip("/") + "/"
    found = []
    for resource in state.scan():
        rid, rtype = resource["id"].lower(), resource.get("type", "").lower()
        if not rid.startswith(prefix) or rtype.startswith(_HIDDEN) or rtype.count("/") != 1:
            continue
        group = rid.split("/")[4]
        if wanted.get("resourcetype", rtype) != rtype:
            continue
        if wanted.get("name", resource["name"].lower()) != resource["name"].lower():
            continue
        if wanted.get("resourcegroup", group) != group:
            continue
        found.append(generic(resource))
    return sorted(found, key=lambda r: r["id"].lower())


def cloud_metadata(base_url: str) -> Json:
    """``GET /metadata/endpoints``: this emulator as a cloud, in ARM's metadata shape.

    ``az cloud register --endpoint-resource-manager <url>`` reads it; every endpoint is the
    emulator's own (loopback), the registry suffix is the public cloud's so login servers keep
    their real names (the registry proxy brings them here).
    """
    base = base_url.rstrip("/")
    return {
        "name": "AzureEmulator",
        "portal": f"{base}/portal",
        "resourceManager": f"{base}/",
        "authentication": {
            "loginEndpoint": f"{base}/aad",
            "audiences": [f"{base}/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "graph": f"{base}/graph/",
        "graphAudience": f"{base}/graph/",
        "microsoftGraphResourceId": f"{base}/graph/",
        "suffixes": {"acrLoginServer": "azurecr.io", "keyVaultDns": "vault.azure.net"},
    }


def register(emulator: Emulator) -> None:
    state, arm = emulator.state, emulator.arm

    emulator.mount(
        "/metadata/endpoints",
        "arm-metadata",
        lambda request: json_response(cloud_metadata(emulator.base_url)),
        ["GET"],
    )

    def subscriptions(request: Request) -> Response:
        with state.lock:
            keys = sorted(state.subscriptions)
        return arm.page(request, [subscription(state, key) for key in keys])

    def one_subscription(request: Request) -> Response:
        return json_response(subscription(state, request.path.strip("/").split("/")[1]))

    def tenants(request: Request) -> Response:
        tenant = {
            "id": f"/tenants/{state.tenant_id}",
            "tenantId": state.tenant_id,
            "tenantCategory": "Home",
            "displayName": "Emulated tenant",
            "defaultDomain": "emulated.onmicrosoft.com",
            "tenantType": "AAD",
        }
        return json_response({"value": [tenant]})

    def resource_groups(request: Request) -> Response:
        sub_id = subscription(state, request.path.strip("/").split("/")[1])["subscriptionId"]
        prefix = f"/subscriptions/{sub_id}/resourcegroups/".lower()
        with state.lock:
            groups = [dict(g) for rid, g in sorted(state.resource_groups.items())]
        return arm.page(request, [g for g in groups if g["id"].lower().startswith(prefix)])

    def resources(request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        sub_id = subscription(state, parts[1])["subscriptionId"]
        scope = f"/subscriptions/{sub_id}"
        if len(parts) > 3:
            if state.resource_group(sub_id, parts[3]) is None:
                raise ArmError(
                    404, "ResourceGroupNotFound", f"Resource group '{parts[3]}' could not be found."
                )
            scope += f"/resourceGroups/{parts[3]}"
        return arm.page(request, list_resources(state, scope, request.args.get("$filter")))

    arm.register_path(r"/subscriptions", subscriptions)
    arm.register_path(r"/subscriptions/[^/]+", one_subscription)
    arm.register_path(r"/tenants", tenants)
    arm.register_path(r"/subscriptions/[^/]+/resourcegroups", resource_groups)
    arm.register_path(r"/subscriptions/[^/]+/(resourcegroups/[^/]+/)?resources", resources)
