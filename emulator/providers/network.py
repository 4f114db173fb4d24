"""Microsoft.Network: VNets (subnets, peerings), private endpoints, private DNS zones and their
virtual network links, public IPs, load balancers, NAT gateways and route tables.

Shapes follow azure-mgmt-network 33.x (api-version 2026-03-01) and azure-mgmt-privatedns 2.0.0
(2024-06-01) and the REST spec examples. Everything but virtual network links is read-only: the
product only reads networks, and links are what its ``link-private-dns-zone`` fix writes.

Child resources (subnets, peerings, routes) are stored as resources of their own, which is what
``GET .../virtualNetworkPeerings/x`` serves, and copied inline into the parent by :func:`sync_vnet`
/ :func:`sync_route_table`, as Azure returns them inline in the parent too. Builders and breaks call
the sync functions after writing children; a DELETE through ARM of a child does not update the
inline copy (the product never deletes network children).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from emulator.arm import ArmError, ResourceKind
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

VNET = "Microsoft.Network/virtualNetworks"
SUBNET = "Microsoft.Network/virtualNetworks/subnets"
PEERING = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings"
PRIVATE_ENDPOINT = "Microsoft.Network/privateEndpoints"
ZONE_GROUP = "Microsoft.Network/privateEndpoints/privateDnsZoneGroups"
ZONE = "Microsoft.Network/privateDnsZones"
LINK = "Microsoft.Network/privateDnsZones/virtualNetworkLinks"
A_RECORD = "Microsoft.Network/privateDnsZones/A"
PUBLIC_IP = "Microsoft.Network/publicIPAddresses"
PUBLIC_IP_PREFIX = "Microsoft.Network/publicIPPrefixes"
LOAD_BALANCER = "Microsoft.Network/loadBalancers"
NAT_GATEWAY = "Microsoft.Network/natGateways"
ROUTE_TABLE = "Microsoft.Network/routeTables"
ROUTE = "Microsoft.Network/routeTables/routes"

READ_ONLY_TYPES = (
    VNET,
    SUBNET,
    PEERING,
    PRIVATE_ENDPOINT,
    ZONE_GROUP,
    ZONE,
    A_RECORD,
    PUBLIC_IP,
    PUBLIC_IP_PREFIX,
    LOAD_BALANCER,
    NAT_GATEWAY,
    ROUTE_TABLE,
    ROUTE,
)

LINK_SCHEMA: Json = {
    "type": "object",
    "required": ["location", "properties"],
    "properties": {
        "location": {"type": "string", "minLength": 1},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "etag": {"type": "string"},
        "properties": {
            "type": "object",
            "required": ["virtualNetwork"],
            "properties": {
                "virtualNetwork": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": {"type": "string", "minLength": 1}},
                },
                "registrationEnabled": {"type": "boolean"},
                "resolutionPolicy": {"enum": ["Default", "NxDomainRedirect"]},
            },
        },
    },
}


def etag() -> str:
    return str(uuid.uuid4())


def parent_of(resource_id: str) -> str:
    """``.../parentType/parent/childType/child`` -> ``.../parentType/parent``."""
    return resource_id.rsplit("/", 2)[0]


def _same(left: str, right: str) -> bool:
    return left.rstrip("/").lower() == right.rstrip("/").lower()


# -- keeping parents' inline copies in step with their children --------------------------------


def sync_vnet(state: State, vnet_id: str) -> None:
    vnet = state.get(vnet_id)
    if vnet is None:
        return
    properties = vnet.setdefault("properties", {})
    properties["subnets"] = state.children(vnet["id"], SUBNET)
    properties["virtualNetworkPeerings"] = state.children(vnet["id"], PEERING)
    state.put(vnet)


def sync_route_table(state: State, route_table_id: str) -> None:
    table = state.get(route_table_id)
    if table is None:
        return
    properties = table.setdefault("properties", {})
    properties["routes"] = state.children(table["id"], ROUTE)
    properties["subnets"] = [
        {"id": s["id"]}
        for s in state.typed(SUBNET)
        if _same(s.get("properties", {}).get("routeTable", {}).get("id", ""), table["id"])
    ]
    state.put(table)


def sync_zone(state: State, zone_id: str) -> None:
    zone = state.get(zone_id)
    if zone is None:
        return
    links = state.children(zone["id"], LINK)
    records = state.children(zone["id"], A_RECORD)
    properties = zone.setdefault("properties", {})
    properties["numberOfVirtualNetworkLinks"] = len(links)
    properties["numberOfVirtualNetworkLinksWithRegistration"] = sum(
        1 for link in links if link["properties"].get("registrationEnabled")
    )
    properties["numberOfRecordSets"] = 1 + len(records)  # the SOA record is always there
    state.put(zone)


# -- virtual network links: the one writable resource ------------------------------------------


def _links_of_vnet(state: State, vnet_id: str) -> list[Json]:
    return [
        r
        for r in state.typed(LINK)
        if _same(r.get("properties", {}).get("virtualNetwork", {}).get("id", ""), vnet_id)
    ]


def _put_link(state: State, resource_id: str, body: Json, existing: Json | None) -> Json:
    zone_id = parent_of(resource_id)
    zone = state.get(zone_id)
    if zone is None:
        raise ArmError(
            404,
            "ParentResourceNotFound",
            f"Can not perform requested operation on nested resource. Parent resource "
            f"'{zone_id.rsplit('/', 1)[-1]}' not found.",
        )
    if body["location"].lower() != "global":
        raise ArmError(
            400,
            "LocationNotAvailableForResourceType",
            f"The provided location '{body['location']}' is not available for resource type "
            f"'{LINK}'. List of available regions for the resource type is 'global'.",
        )
    properties = body["properties"]
    vnet_id = properties["virtualNetwork"]["id"]
    if state.get(vnet_id) is None:
        raise ArmError(400, "BadRequest", f"Virtual network resource not found for '{vnet_id}'")
    registration = bool(properties.get("registrationEnabled", False))
    if existing is not None and not _same(existing["properties"]["virtualNetwork"]["id"], vnet_id):
        raise ArmError(
            400,
            "BadRequest",
            "The virtual network of an existing virtual network link cannot be changed.",
        )
    for other in _links_of_vnet(state, vnet_id):
        if _same(other["id"], resource_id):
            continue
        other_zone = parent_of(other["id"])
        if _same(other_zone, zone_id):
            raise ArmError(
                409,
                "Conflict",
                f"A virtual network link to virtual network '{vnet_id}' already exists in zone "
                f"'{zone['name']}' ('{other['name']}'); a zone can have only one link per "
                "virtual network.",
            )
        if other_zone.rsplit("/", 1)[-1].lower() == zone["name"].lower():
            raise ArmError(
                400,
                "BadRequest",
                "A virtual network cannot be linked to multiple zones with overlapping namespaces. "
                f"You tried to link virtual network with '{zone['name']}' and "
                f"'{zone['name']}' zones.",
            )
        if registration and other["properties"].get("registrationEnabled"):
            raise ArmError(
                400,
                "BadRequest",
                f"Virtual network '{vnet_id}' is already linked to zone "
                f"'{other_zone.rsplit('/', 1)[-1]}' with auto-registration enabled; a virtual "
                "network can have only one registration zone.",
            )
    stored: Json = {
        "id": resource_id,
        "name": resource_id.rsplit("/", 1)[-1],
        "type": LINK,
        "location": "global",
        "etag": etag(),
        "tags": body.get("tags", existing.get("tags", {}) if existing else {}),
        "properties": {
            "virtualNetwork": {"id": vnet_id},
            "registrationEnabled": registration,
            "resolutionPolicy": properties.get("resolutionPolicy", "Default"),
            "virtualNetworkLinkState": "InProgress",
        },
    }
    return stored


def _link_completed(state: State, resource_id: str) -> None:
    link = state.get(resource_id)
    if link is None:
        return
    link["properties"]["virtualNetworkLinkState"] = "Completed"
    state.put(link)
    sync_zone(state, parent_of(resource_id))


def register(emulator: Emulator) -> None:
    for resource_type in READ_ONLY_TYPES:
        emulator.arm.register(ResourceKind(type=resource_type, read_only=True))
    emulator.arm.register(
        ResourceKind(
            type=LINK,
            schema=LINK_SCHEMA,
            long_running=True,
            on_put=_put_link,
            on_complete=_link_completed,
        )
    )
