"""Networks between clusters and registries: VNets, peerings, private endpoints, private DNS,
route tables, NAT gateways, public IPs, and each cluster's outbound path.

Resource-group sections (names refer to resources anywhere in the scenario; ``rg/name`` or a
full id pins one)::

    publicIPs:        [{name: pip-egress, ip: 20.61.10.4}]
    publicIPPrefixes: [{name: ippre-egress, prefix: 20.61.12.0/30}]
    natGateways:      [{name: ng-spoke, publicIPs: [pip-egress], publicIPPrefixes: [ippre-egress]}]
    routeTables:
      - name: rt-aks
        routes: [{name: to-fw, prefix: 0.0.0.0/0, nextHopType: VirtualAppliance, nextHopIpAddress: 10.0.1.4}]
    virtualNetworks:
      - name: vnet-spoke
        addressSpace: [10.1.0.0/16]            # a string is accepted too
        dnsServers: []                         # custom DNS servers (dhcpOptions), optional
        subnets:
          - {name: aks, prefix: 10.1.0.0/22, routeTable: rt-aks, natGateway: ng-spoke}
          - {name: pe, prefix: 10.1.8.0/24, privateEndpointNetworkPolicies: Disabled}
        peerings:
          # one direction per entry; ``reverse`` also creates the way back under that name.
          # state defaults to Connected when both directions exist, else Initiated.
          - {name: spoke-to-hub, remote: vnet-hub, reverse: hub-to-spoke, state: Connected}
    privateDnsZones:
      - name: privatelink.azurecr.io
        links: [vnet-hub, {vnet: vnet-spoke, name: spoke-link, registrationEnabled: false}]

Cluster keys::

    vnet: {name: vnet-spoke, subnet: aks}       # vnetSubnetID of every node pool (a pool's own
                                                # ``subnet:`` of that VNet overrides); without it
                                                # AKS's own aks-vnet-* is made in the node RG
    outbound: {type: loadBalancer, ips: [20.61.10.4]}
    # type: loadBalancer (default: the ``kubernetes`` LB in the node RG, one outbound IP per
    #       entry of ``ips``, effectiveOutboundIPs on the cluster; or your own ``publicIPs: [names]``
    #       / ``publicIPPrefixes: [names]``, listed in effectiveOutboundIPs) | managedNATGateway (alias
    #       natGateway; natGatewayProfile.effectiveOutboundIPs) | userAssignedNATGateway
    #       (``natGateway: <name>`` is attached to the node subnet) | userDefinedRouting

Registry key (REGISTRY_HOOKS), a mapping or a list of them::

    privateEndpoint: {vnet: vnet-hub, subnet: pe, dnsZone: privatelink.azurecr.io,
                      name: pe-acr, zoneGroup: true}
    # creates the endpoint (two IPs: registry and data endpoint) in the VNet's resource group, the
    # approved connection on the registry, the A records and a privateDnsZoneGroup. ``dnsZone``
    # defaults to privatelink.azurecr.io; a zone not in the scenario is made in the endpoint's
    # RG and linked to the endpoint's VNet, as the portal does; ``dnsZone: null`` skips DNS.

Breaks: ``private-dns-link-missing`` {cluster, zone?}: the cluster VNet's links are deleted from
the zone(s). ``firewall-ip-not-allowed`` {registry, cluster?, variant: deny|disabled, allow?}:
defaultAction Deny with no rule covering the cluster's egress IPs (``allow`` adds other rules),
or publicNetworkAccess Disabled. ``vnet-peering-missing`` {cluster, registry, mode:
deleted|disconnected|none}: the endpoint-VNet side is deleted and the cluster side shows
Disconnected (as Azure does), both sides Disconnected, or both deleted.
``firewall-egress-blocked`` {cluster, registry?, prefix?, nextHopIpAddress?, nextHopType?}: a
route table on the cluster subnets sends the endpoint IP (/32, or ``prefix``; 0.0.0.0/0 without
a registry) to a virtual appliance.
"""

from __future__ import annotations

import hashlib
import ipaddress
import weakref
from collections.abc import Callable
from typing import Any

from emulator.providers.network import (
    A_RECORD,
    LINK,
    LOAD_BALANCER,
    NAT_GATEWAY,
    PEERING,
    PRIVATE_ENDPOINT,
    PUBLIC_IP,
    PUBLIC_IP_PREFIX,
    ROUTE,
    ROUTE_TABLE,
    SUBNET,
    VNET,
    ZONE,
    ZONE_GROUP,
    etag,
    parent_of,
    sync_route_table,
    sync_vnet,
    sync_zone,
)
from emulator.scenario import (
    CLUSTER_HOOKS,
    GROUP_SECTIONS,
    REGISTRY_HOOKS,
    breaks,
    find_cluster,
    find_registry,
    guid,
    resource_id,
)
from emulator.state import Json, State

REGISTRY_ZONE = "privatelink.azurecr.io"
AKS_LOAD_BALANCER = "kubernetes"

# References to resources a later resource group defines wait here until they can be resolved.
Pending = Callable[[], bool]
_PENDING: weakref.WeakKeyDictionary[State, list[tuple[str, Pending]]] = weakref.WeakKeyDictionary()
# Peerings whose state the scenario set explicitly (the rest is derived from both directions).
_EXPLICIT: weakref.WeakKeyDictionary[State, set[str]] = weakref.WeakKeyDictionary()


# -- lookups -------------------------------------------------------------------------------------


def find(
    state: State, rtype: str, ref: str, sub_id: str | None = None, group: str | None = None
) -> Json | None:
    """A resource by id, ``rg/name`` or name (its own resource group first)."""
    if ref.startswith("/"):
        return state.get(ref)
    if "/" in ref and sub_id:
        rg, name = ref.split("/", 1)
        return state.get(resource_id(sub_id, rg, rtype, name))
    if sub_id and group:
        local = state.get(resource_id(sub_id, group, rtype, ref))
        if local is not None:
            return local
    return next(
        (
            r
            for r in state.typed(rtype)
            if r.get("type") == rtype and r["name"].lower() == ref.lower()
        ),
        None,
    )


def _require(
    state: State, rtype: str, ref: str, sub_id: str | None = None, group: str | None = None
) -> Json:
    found = find(state, rtype, ref, sub_id, group)
    if found is None:
        raise KeyError(f"no {rtype.rsplit('/', 1)[-1]} {ref!r} in the scenario")
    return found


def _later(state: State, what: str, attempt: Pending) -> None:
    if not attempt():
        _PENDING.setdefault(state, []).append((what, attempt))


def settle(state: State, *, final: bool = False) -> None:
    """Retry references that waited for later resource groups; at the end, none may be left."""
    waiting = _PENDING.get(state, [])
    remaining = [(what, attempt) for what, attempt in waiting if not attempt()]
    _PENDING[state] = remaining
    _refresh_peering_states(state)
    if final and remaining:
        raise KeyError("unresolved network references: " + "; ".join(w for w, _ in remaining))


def cluster_subnet_ids(cluster: Json) -> list[str]:
    return list(
        dict.fromkeys(
            p["vnetSubnetID"]
            for p in cluster["properties"]["agentPoolProfiles"]
            if p.get("vnetSubnetID")
        )
    )


def cluster_vnet_ids(state: State, cluster: Json) -> list[str]:
    subnets = cluster_subnet_ids(cluster)
    if subnets:
        return list(dict.fromkeys(parent_of(s) for s in subnets))
    sub_id = cluster["id"].split("/")[2]
    node_rg = f"/subscriptions/{sub_id}/resourceGroups/{cluster['properties']['nodeResourceGroup']}"
    return [v["id"] for v in state.children(node_rg, VNET)]


def registry_endpoints(state: State, registry: Json) -> list[Json]:
    found = []
    for connection in registry["properties"].get("privateEndpointConnections") or []:
        endpoint = state.get(connection["properties"]["privateEndpoint"]["id"])
        if endpoint is not None:
            found.append(endpoint)
    return found


def endpoint_vnet_id(endpoint: Json) -> str:
    return parent_of(endpoint["properties"]["subnet"]["id"])


def endpoint_ips(endpoint: Json) -> list[str]:
    return [
        ip for c in endpoint["properties"].get("customDnsConfigs", []) for ip in c["ipAddresses"]
    ]


def _address(seed: str, index: int = 0) -> str:
    digest = hashlib.sha256(f"{seed}/{index}".encode()).digest()
    return f"20.{50 + digest[0] % 100}.{digest[1]}.{1 + digest[2] % 250}"


# -- resource shapes -------------------------------------------------------------------------------


def put_public_ip(
    state: State,
    sub_id: str,
    group: str,
    location: str,
    name: str,
    *,
    address: str,
    tags: dict[str, str] | None = None,
) -> Json:
    rid = resource_id(sub_id, group, PUBLIC_IP, name)
    return state.put(
        {
            "id": rid,
            "name": name,
            "type": PUBLIC_IP,
            "location": location,
            "etag": etag(),
            "tags": tags or {},
            "sku": {"name": "Standard", "tier": "Regional"},
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": guid(rid, "guid"),
                "ipAddress": address,
                "publicIPAddressVersion": "IPv4",
                "publicIPAllocationMethod": "Static",
                "idleTimeoutInMinutes": 4,
                "ipTags": [],
            },
        }
    )


def _public_ips(
    state: State, sub_id: str, group: str, location: str, specs: list[dict[str, Any]]
) -> None:
    for spec in specs:
        put_public_ip(
            state,
            sub_id,
            group,
            location,
            spec["name"],
            address=spec.get("ip") or _address(f"{sub_id}/{group}/{spec['name']}"),
        )
    settle(state)


def _public_ip_prefixes(
    state: State, sub_id: str, group: str, location: str, specs: list[dict[str, Any]]
) -> None:
    for spec in specs:
        rid = resource_id(sub_id, group, PUBLIC_IP_PREFIX, spec["name"])
        prefix = ipaddress.ip_network(spec["prefix"], strict=False)
        state.put(
            {
                "id": rid,
                "name": spec["name"],
                "type": PUBLIC_IP_PREFIX,
                "location": location,
                "etag": etag(),
                "tags": {},
                "sku": {"name": "Standard", "tier": "Regional"},
                "properties": {
                    "provisioningState": "Succeeded",
                    "resourceGuid": guid(rid, "guid"),
                    "ipPrefix": str(prefix),
                    "prefixLength": prefix.prefixlen,
                    "publicIPAddressVersion": "IPv4",
                    "ipTags": [],
                    "publicIPAddresses": [],
                },
            }
        )
    settle(state)


def put_nat_gateway(
    state: State,
    sub_id: str,
    group: str,
    location: str,
    name: str,
    *,
    ip_ids: list[str],
    prefix_ids: list[str],
) -> Json:
    rid = resource_id(sub_id, group, NAT_GATEWAY, name)
    gateway = state.put(
        {
            "id": rid,
            "name": name,
            "type": NAT_GATEWAY,
            "location": location,
            "etag": etag(),
            "tags": {},
            "sku": {"name": "Standard"},
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": guid(rid, "guid"),
                "idleTimeoutInMinutes": 4,
                "publicIpAddresses": [{"id": i} for i in ip_ids],
                "publicIpPrefixes": [{"id": i} for i in prefix_ids],
                "subnets": [],
            },
        }
    )
    for ip_id in ip_ids:
        ip = state.get(ip_id)
        if ip is not None:
            ip["properties"]["natGateway"] = {"id": rid}
            state.put(ip)
    return gateway


def _nat_gateways(
    state: State, sub_id: str, group: str, location: str, specs: list[dict[str, Any]]
) -> None:
    for spec in specs:
        ips = [
            _require(state, PUBLIC_IP, n, sub_id, group)["id"] for n in spec.get("publicIPs", [])
        ]
        prefixes = [
            _require(state, PUBLIC_IP_PREFIX, n, sub_id, group)["id"]
            for n in spec.get("publicIPPrefixes", [])
        ]
        put_nat_gateway(
            state, sub_id, group, location, spec["name"], ip_ids=ips, prefix_ids=prefixes
        )
    settle(state)


def put_route_table(
    state: State, sub_id: str, group: str, location: str, name: str, *, routes: list[dict[str, Any]]
) -> Json:
    rid = resource_id(sub_id, group, ROUTE_TABLE, name)
    state.put(
        {
            "id": rid,
            "name": name,
            "type": ROUTE_TABLE,
            "location": location,
            "etag": etag(),
            "tags": {},
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": guid(rid, "guid"),
                "disableBgpRoutePropagation": False,
                "routes": [],
                "subnets": [],
            },
        }
    )
    for route in routes:
        properties: Json = {
            "provisioningState": "Succeeded",
            "addressPrefix": route["prefix"],
            "nextHopType": route.get("nextHopType", "VirtualAppliance"),
            "hasBgpOverride": False,
        }
        if route.get("nextHopIpAddress"):
            properties["nextHopIpAddress"] = route["nextHopIpAddress"]
        state.put(
            {
                "id": f"{rid}/routes/{route['name']}",
                "name": route["name"],
                "type": ROUTE,
                "etag": etag(),
                "properties": properties,
            }
        )
    sync_route_table(state, rid)
    return state.get(rid) or {}


def _route_tables(
    state: State, sub_id: str, group: str, location: str, specs: list[dict[str, Any]]
) -> None:
    for spec in specs:
        put_route_table(state, sub_id, group, location, spec["name"], routes=spec.get("routes", []))
    settle(state)


def put_subnet(state: State, vnet_id: str, name: str, prefix: str, **extra: Any) -> Json:
    subnet: Json = {
        "id": f"{vnet_id}/subnets/{name}",
        "name": name,
        "type": SUBNET,
        "etag": etag(),
        "properties": {
            "provisioningState": "Succeeded",
            "addressPrefix": prefix,
            "delegations": [],
            "privateEndpointNetworkPolicies": extra.pop(
                "privateEndpointNetworkPolicies", "Disabled"
            ),
            "privateLinkServiceNetworkPolicies": "Enabled",
            **extra,
        },
    }
    state.put(subnet)
    sync_vnet(state, vnet_id)
    return subnet


def attach_to_subnet(state: State, subnet_id: str, key: str, target_id: str) -> None:
    """Set ``routeTable`` / ``natGateway`` on a subnet and keep both sides' references in step."""
    subnet = state.get(subnet_id)
    if subnet is None:
        raise KeyError(f"no subnet {subnet_id}")
    previous = subnet["properties"].get(key, {}).get("id")
    subnet["properties"][key] = {"id": target_id}
    state.put(subnet)
    sync_vnet(state, parent_of(subnet_id))
    if key == "routeTable":
        for table in {previous, target_id} - {None}:
            sync_route_table(state, str(table))
    elif key == "natGateway":
        gateway = state.get(target_id)
        if gateway is not None and subnet_id.lower() not in {
            s["id"].lower() for s in gateway["properties"]["subnets"]
        }:
            gateway["properties"]["subnets"].append({"id": subnet["id"]})
            state.put(gateway)


def put_vnet(
    state: State,
    sub_id: str,
    group: str,
    location: str,
    name: str,
    *,
    prefixes: list[str],
    dns_servers: list[str] | None = None,
) -> Json:
    rid = resource_id(sub_id, group, VNET, name)
    return state.put(
        {
            "id": rid,
            "name": name,
            "type": VNET,
            "location": location,
            "etag": etag(),
            "tags": {},
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": guid(rid, "guid"),
                "addressSpace": {"addressPrefixes": prefixes},
                "dhcpOptions": {"dnsServers": dns_servers or []},
                "subnets": [],
                "virtualNetworkPeerings": [],
                "enableDdosProtection": False,
                "privateEndpointVNetPolicies": "Disabled",
            },
        }
    )


def put_peering(
    state: State, vnet: Json, name: str, remote: Json, peering_state: str | None
) -> Json:
    rid = f"{vnet['id']}/virtualNetworkPeerings/{name}"
    space = remote["properties"]["addressSpace"]
    peering = state.put(
        {
            "id": rid,
            "name": name,
            "type": PEERING,
            "etag": etag(),
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": guid(rid, "guid"),
                "peeringState": peering_state or "Initiated",
                "peeringSyncLevel": "FullyInSync",
                "remoteVirtualNetwork": {"id": remote["id"]},
                "allowVirtualNetworkAccess": True,
                "allowForwardedTraffic": False,
                "allowGatewayTransit": False,
                "useRemoteGateways": False,
                "remoteAddressSpace": dict(space),
                "remoteVirtualNetworkAddressSpace": dict(space),
            },
        }
    )
    if peering_state:
        _EXPLICIT.setdefault(state, set()).add(rid.lower())
    sync_vnet(state, vnet["id"])
    return peering


def _refresh_peering_states(state: State) -> None:
    """Connected when both directions exist, Initiated otherwise, unless the scenario said."""
    explicit = _EXPLICIT.get(state, set())
    peerings = [r for r in state.typed(PEERING) if r.get("type") == PEERING]
    for peering in peerings:
        if peering["id"].lower() in explicit:
            continue
        local = parent_of(peering["id"]).lower()
        remote = peering["properties"]["remoteVirtualNetwork"]["id"].lower()
        back = any(
            parent_of(p["id"]).lower() == remote
            and p["properties"]["remoteVirtualNetwork"]["id"].lower() == local
            for p in peerings
        )
        wanted = "Connected" if back else "Initiated"
        if peering["properties"]["peeringState"] != wanted:
            peering["properties"]["peeringState"] = wanted
            state.put(peering)
            sync_vnet(state, parent_of(peering["id"]))


def _virtual_networks(
    state: State, sub_id: str, group: str, location: str, specs: list[dict[str, Any]]
) -> None:
    for spec in specs:
        space = spec.get("addressSpace", ["10.0.0.0/16"])
        vnet = put_vnet(
            state,
            sub_id,
            group,
            location,
            spec["name"],
            prefixes=[space] if isinstance(space, str) else list(space),
            dns_servers=spec.get("dnsServers"),
        )
        for sub in spec.get("subnets", []):
            extra = {}
            if sub.get("privateEndpointNetworkPolicies"):
                extra["privateEndpointNetworkPolicies"] = sub["privateEndpointNetworkPolicies"]
            subnet = put_subnet(state, vnet["id"], sub["name"], sub["prefix"], **extra)
            for key, rtype in (("routeTable", ROUTE_TABLE), ("natGateway", NAT_GATEWAY)):
                if sub.get(key):
                    _later(
                        state,
                        f"{key} {sub[key]!r} of subnet {subnet['id']}",
                        _attach_later(
                            state, subnet["id"], key, rtype, sub[key], sub_id=sub_id, group=group
                        ),
                    )
        for peer in spec.get("peerings", []):
            _later(
                state,
                f"peering {peer['name']!r} of {vnet['name']} to {peer['remote']!r}",
                _peer_later(state, vnet["id"], peer, sub_id, group),
            )
    settle(state)


def _attach_later(
    state: State, subnet_id: str, key: str, rtype: str, ref: str, *, sub_id: str, group: str
) -> Pending:
    def attempt() -> bool:
        target = find(state, rtype, ref, sub_id, group)
        if target is None:
            return False
        attach_to_subnet(state, subnet_id, key, target["id"])
        return True

    return attempt


def _peer_later(
    state: State, vnet_id: str, spec: dict[str, Any], sub_id: str, group: str
) -> Pending:
    def attempt() -> bool:
        remote = find(state, VNET, spec["remote"], sub_id, group)
        vnet = state.get(vnet_id)
        if remote is None or vnet is None:
            return False
        put_peering(state, vnet, spec["name"], remote, spec.get("state"))
        if spec.get("reverse"):
            put_peering(
                state, remote, spec["reverse"], vnet, spec.get("reverseState", spec.get("state"))
            )
        return True

    return attempt


def put_zone(state: State, sub_id: str, group: str, name: str) -> Json:
    rid = resource_id(sub_id, group, ZONE, name)
    state.put(
        {
            "id": rid,
            "name": name,
            "type": ZONE,
            "location": "global",
            "etag": etag(),
            "tags": {},
            "properties": {
                "maxNumberOfRecordSets": 25000,
                "numberOfRecordSets": 1,
                "maxNumberOfVirtualNetworkLinks": 1000,
                "numberOfVirtualNetworkLinks": 0,
                "maxNumberOfVirtualNetworkLinksWithRegistration": 100,
                "numberOfVirtualNetworkLinksWithRegistration": 0,
                "provisioningState": "Succeeded",
            },
        }
    )
    sync_zone(state, rid)
    return state.get(rid) or {}


def put_link(
    state: State, zone_id: str, name: str, vnet_id: str, *, registration: bool = False
) -> Json:
    link = state.put(
        {
            "id": f"{zone_id}/virtualNetworkLinks/{name}",
            "name": name,
            "type": LINK,
            "location": "global",
            "etag": etag(),
            "tags": {},
            "properties": {
                "virtualNetwork": {"id": vnet_id},
                "registrationEnabled": registration,
                "resolutionPolicy": "Default",
                "virtualNetworkLinkState": "Completed",
                "provisioningState": "Succeeded",
            },
        }
    )
    sync_zone(state, zone_id)
    return link


def _zones(
    state: State, sub_id: str, group: str, location: str, specs: list[dict[str, Any]]
) -> None:
    for spec in specs:
        zone = put_zone(state, sub_id, group, spec["name"])
        for link in spec.get("links", []):
            link_spec = {"vnet": link} if isinstance(link, str) else dict(link)
            _later(
                state,
                f"link of zone {spec['name']} to {link_spec['vnet']!r}",
                _link_later(state, zone["id"], link_spec, sub_id, group),
            )
    settle(state)


def _link_later(
    state: State, zone_id: str, spec: dict[str, Any], sub_id: str, group: str
) -> Pending:
    def attempt() -> bool:
        vnet = find(state, VNET, spec["vnet"], sub_id, group)
        if vnet is None:
            return False
        put_link(
            state,
            zone_id,
            spec.get("name", f"{vnet['name']}-link"),
            vnet["id"],
            registration=bool(spec.get("registrationEnabled", False)),
        )
        return True

    return attempt


GROUP_SECTIONS["publicIPs"] = _public_ips
GROUP_SECTIONS["publicIPPrefixes"] = _public_ip_prefixes
GROUP_SECTIONS["natGateways"] = _nat_gateways
GROUP_SECTIONS["routeTables"] = _route_tables
GROUP_SECTIONS["virtualNetworks"] = _virtual_networks
GROUP_SECTIONS["privateDnsZones"] = _zones


# -- clusters: node subnets and the outbound path -------------------------------------------------


def _cluster_network(state: State, built: Json, spec: dict[str, Any]) -> None:
    settle(state, final=True)
    cluster = state.get(built["id"]) or built
    sub_id = cluster["id"].split("/")[2]
    properties = cluster["properties"]
    node_rg = properties["nodeResourceGroup"]
    location = cluster["location"]
    if spec.get("vnet"):
        vnet = _require(state, VNET, spec["vnet"]["name"], sub_id, cluster["id"].split("/")[4])
        subnet_id = f"{vnet['id']}/subnets/{spec['vnet'].get('subnet', 'default')}"
        if state.get(subnet_id) is None:
            raise KeyError(f"no subnet {subnet_id}")
    else:
        digest = str(int(hashlib.sha256(cluster["id"].lower().encode()).hexdigest(), 16))[:8]
        vnet = put_vnet(
            state, sub_id, node_rg, location, f"aks-vnet-{digest}", prefixes=["10.224.0.0/12"]
        )
        subnet_id = put_subnet(state, vnet["id"], "aks-subnet", "10.224.0.0/16")["id"]
    own_subnets = {str(p.get("name")): p.get("subnet") for p in spec.get("nodePools") or []}
    for pool in properties["agentPoolProfiles"]:
        if spec.get("vnet"):
            pool["vnetSubnetID"] = subnet_id
            if own_subnets.get(pool["name"]):  # a pool on its own subnet of the cluster's VNet
                pool["vnetSubnetID"] = f"{vnet['id']}/subnets/{own_subnets[pool['name']]}"
                if state.get(pool["vnetSubnetID"]) is None:
                    raise KeyError(f"no subnet {pool['vnetSubnetID']}")
    outbound = dict(spec.get("outbound") or {})
    kind = {"natGateway": "managedNATGateway"}.get(
        outbound.get("type", "loadBalancer"), outbound.get("type", "loadBalancer")
    )
    network = properties["networkProfile"]
    network["outboundType"] = kind
    ips = list(outbound.get("ips") or [_address(cluster["id"])])
    if kind == "loadBalancer":
        network["loadBalancerProfile"] = _load_balancer_profile(
            state, cluster, outbound=outbound, ips=ips
        )
    elif kind == "managedNATGateway":
        ip_ids = [
            put_public_ip(
                state,
                sub_id,
                node_rg,
                location,
                guid(cluster["id"], "natip", str(n)),
                address=address,
                tags={"aks-managed-type": "managedNATGateway"},
            )["id"]
            for n, address in enumerate(ips)
        ]
        gateway = put_nat_gateway(
            state, sub_id, node_rg, location, "aks-natgw", ip_ids=ip_ids, prefix_ids=[]
        )
        attach_to_subnet(state, subnet_id, "natGateway", gateway["id"])
        network.pop("loadBalancerProfile", None)
        network["natGatewayProfile"] = {
            "managedOutboundIPProfile": {"count": len(ip_ids)},
            "effectiveOutboundIPs": [{"id": i} for i in ip_ids],
            "idleTimeoutInMinutes": 4,
        }
    elif kind == "userAssignedNATGateway":
        if outbound.get("natGateway"):
            gateway = _require(state, NAT_GATEWAY, outbound["natGateway"], sub_id)
            attach_to_subnet(state, subnet_id, "natGateway", gateway["id"])
        network.pop("loadBalancerProfile", None)
    elif kind == "userDefinedRouting":
        network.pop("loadBalancerProfile", None)
    else:
        raise ValueError(
            f"unknown outbound type {kind!r}; known: loadBalancer, managedNATGateway, userAssignedNATGateway, userDefinedRouting"
        )
    state.put(cluster)


def _load_balancer_profile(
    state: State, cluster: Json, *, outbound: dict[str, Any], ips: list[str]
) -> Json:
    cluster_id, location = cluster["id"], cluster["location"]
    sub_id, node_rg = cluster_id.split("/")[2], cluster["properties"]["nodeResourceGroup"]
    if not (outbound.get("publicIPs") or outbound.get("publicIPPrefixes")):
        ip_ids = _aks_load_balancer(state, sub_id, node_rg, location, cluster_id, addresses=ips)
        return {
            "managedOutboundIPs": {"count": len(ip_ids)},
            "effectiveOutboundIPs": [{"id": i} for i in ip_ids],
            "backendPoolType": "NodeIPConfiguration",
        }
    # Your own IPs / prefixes (``--load-balancer-outbound-ips`` / ``-ip-prefixes``): AKS lists
    # the *prefix* ids in effectiveOutboundIPs too, as Azure does.
    own_ips = [_require(state, PUBLIC_IP, n, sub_id)["id"] for n in outbound.get("publicIPs", [])]
    own_prefixes = [
        _require(state, PUBLIC_IP_PREFIX, n, sub_id)["id"]
        for n in outbound.get("publicIPPrefixes", [])
    ]
    _aks_load_balancer(
        state,
        sub_id,
        node_rg,
        location,
        cluster_id,
        addresses=[],
        own=(
            *(("publicIPAddress", i) for i in own_ips),
            *(("publicIPPrefix", i) for i in own_prefixes),
        ),
    )
    profile: Json = {"backendPoolType": "NodeIPConfiguration"}
    if own_ips:
        profile["outboundIPs"] = {"publicIPs": [{"id": i} for i in own_ips]}
    if own_prefixes:
        profile["outboundIPPrefixes"] = {"publicIPPrefixes": [{"id": i} for i in own_prefixes]}
    profile["effectiveOutboundIPs"] = [{"id": i} for i in own_ips + own_prefixes]
    return profile


def _aks_load_balancer(
    state: State,
    sub_id: str,
    node_rg: str,
    location: str,
    cluster_id: str,
    *,
    addresses: list[str],
    own: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    """The ``kubernetes`` LB: one frontend per managed IP made from ``addresses``, or per
    ``own`` (``publicIPAddress`` | ``publicIPPrefix``, id) the cluster brought."""
    lb_id = resource_id(sub_id, node_rg, LOAD_BALANCER, AKS_LOAD_BALANCER)
    pool_id = f"{lb_id}/backendAddressPools/kubernetes"
    rule_id = f"{lb_id}/outboundRules/aksOutboundRule"
    ip_ids: list[str] = []
    frontends: list[Json] = []
    for n, (key, own_id) in enumerate(own):
        name = guid(cluster_id, "outbound-own", str(n))
        frontends.append(
            {
                "id": f"{lb_id}/frontendIPConfigurations/{name}",
                "name": name,
                "etag": etag(),
                "type": "Microsoft.Network/loadBalancers/frontendIPConfigurations",
                "properties": {
                    "provisioningState": "Succeeded",
                    "privateIPAllocationMethod": "Dynamic",
                    key: {"id": own_id},
                    "outboundRules": [{"id": rule_id}],
                },
            }
        )
    for n, address in enumerate(addresses):
        name = guid(cluster_id, "outbound-ip", str(n))
        frontend_id = f"{lb_id}/frontendIPConfigurations/{name}"
        ip = put_public_ip(
            state,
            sub_id,
            node_rg,
            location,
            name,
            address=address,
            tags={"aks-managed-type": "aks-slb-managed-outbound-ip"},
        )
        ip["properties"]["ipConfiguration"] = {"id": frontend_id}
        state.put(ip)
        ip_ids.append(ip["id"])
        frontends.append(
            {
                "id": frontend_id,
                "name": name,
                "etag": etag(),
                "type": "Microsoft.Network/loadBalancers/frontendIPConfigurations",
                "properties": {
                    "provisioningState": "Succeeded",
                    "privateIPAllocationMethod": "Dynamic",
                    "publicIPAddress": {"id": ip["id"]},
                    "outboundRules": [{"id": rule_id}],
                },
            }
        )
    state.put(
        {
            "id": lb_id,
            "name": AKS_LOAD_BALANCER,
            "type": LOAD_BALANCER,
            "location": location,
            "etag": etag(),
            "tags": {"aks-managed-cluster-name": cluster_id.rsplit("/", 1)[-1]},
            "sku": {"name": "Standard", "tier": "Regional"},
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": guid(lb_id, "guid"),
                "frontendIPConfigurations": frontends,
                "backendAddressPools": [
                    {
                        "id": pool_id,
                        "name": "kubernetes",
                        "etag": etag(),
                        "type": "Microsoft.Network/loadBalancers/backendAddressPools",
                        "properties": {
                            "provisioningState": "Succeeded",
                            "outboundRules": [{"id": rule_id}],
                        },
                    }
                ],
                "loadBalancingRules": [],
                "probes": [],
                "inboundNatRules": [],
                "inboundNatPools": [],
                "outboundRules": [
                    {
                        "id": rule_id,
                        "name": "aksOutboundRule",
                        "etag": etag(),
                        "type": "Microsoft.Network/loadBalancers/outboundRules",
                        "properties": {
                            "provisioningState": "Succeeded",
                            "allocatedOutboundPorts": 0,
                            "protocol": "All",
                            "enableTcpReset": True,
                            "idleTimeoutInMinutes": 30,
                            "backendAddressPool": {"id": pool_id},
                            "frontendIPConfigurations": [{"id": f["id"]} for f in frontends],
                        },
                    }
                ],
            },
        }
    )
    return ip_ids


CLUSTER_HOOKS.append(_cluster_network)


# -- registries: private endpoints ---------------------------------------------------------------


def _registry_endpoints(state: State, built: Json, spec: dict[str, Any]) -> None:
    settle(state, final=True)
    wanted = spec.get("privateEndpoint")
    if not wanted:
        return
    for endpoint_spec in wanted if isinstance(wanted, list) else [wanted]:
        add_private_endpoint(state, built["id"], endpoint_spec)


def _free_ips(state: State, subnet: Json, count: int) -> list[str]:
    """The next addresses after Azure's five reserved ones that no endpoint in the subnet holds."""
    taken = {
        ip
        for r in state.typed(PRIVATE_ENDPOINT)
        if r.get("type") == PRIVATE_ENDPOINT
        and r["properties"]["subnet"]["id"].lower() == subnet["id"].lower()
        for ip in endpoint_ips(r)
    }
    hosts = ipaddress.ip_network(subnet["properties"]["addressPrefix"], strict=False).hosts()
    free = [str(h) for n, h in enumerate(hosts) if n >= 3 and str(h) not in taken]
    return free[:count]


def add_private_endpoint(state: State, registry_id: str, spec: dict[str, Any]) -> Json:
    registry = state.get(registry_id)
    if registry is None:
        raise KeyError(f"no registry {registry_id}")
    sub_id = registry_id.split("/")[2]
    vnet = _require(state, VNET, spec["vnet"], sub_id)
    subnet = state.get(f"{vnet['id']}/subnets/{spec.get('subnet', 'default')}")
    if subnet is None:
        raise KeyError(f"no subnet {spec.get('subnet', 'default')!r} in {vnet['name']}")
    vnet_sub, vnet_rg = vnet["id"].split("/")[2], vnet["id"].split("/")[4]
    name = spec.get("name", f"pe-{registry['name']}")
    pe_id = resource_id(vnet_sub, spec.get("resourceGroup", vnet_rg), PRIVATE_ENDPOINT, name)
    acr, region = registry["name"].lower(), registry["location"].lower()
    ips = spec.get("ips") or _free_ips(state, subnet, 2)
    records = {acr: ips[0], f"{acr}.{region}.data": ips[1]}
    connection_name = f"{name}-{guid(pe_id, 'connection')[:8]}"
    state.put(
        {
            "id": pe_id,
            "name": name,
            "type": PRIVATE_ENDPOINT,
            "location": vnet["location"],
            "etag": etag(),
            "tags": {},
            "properties": {
                "provisioningState": "Succeeded",
                "subnet": {"id": subnet["id"]},
                "networkInterfaces": [
                    {
                        "id": resource_id(
                            vnet_sub,
                            vnet_rg,
                            "Microsoft.Network/networkInterfaces",
                            f"{name}.nic.{guid(pe_id, 'nic')}",
                        )
                    }
                ],
                "privateLinkServiceConnections": [
                    {
                        "id": f"{pe_id}/privateLinkServiceConnections/{connection_name}",
                        "name": connection_name,
                        "type": "Microsoft.Network/privateEndpoints/privateLinkServiceConnections",
                        "etag": etag(),
                        "properties": {
                            "provisioningState": "Succeeded",
                            "privateLinkServiceId": registry["id"],
                            "groupIds": ["registry"],
                            "privateLinkServiceConnectionState": {
                                "status": "Approved",
                                "description": "Auto-Approved",
                                "actionsRequired": "None",
                            },
                        },
                    }
                ],
                "manualPrivateLinkServiceConnections": [],
                "customDnsConfigs": [
                    {"fqdn": f"{host}.azurecr.io", "ipAddresses": [ip]}
                    for host, ip in records.items()
                ],
                "ipConfigurations": [],
                "applicationSecurityGroups": [],
                "customNetworkInterfaceName": "",
            },
        }
    )
    subnet["properties"].setdefault("privateEndpoints", []).append({"id": pe_id})
    state.put(subnet)
    sync_vnet(state, vnet["id"])
    connections = registry["properties"].get("privateEndpointConnections") or []
    connections.append(
        {
            "id": f"{registry['id']}/privateEndpointConnections/{connection_name}",
            "name": connection_name,
            "type": "Microsoft.ContainerRegistry/registries/privateEndpointConnections",
            "properties": {
                "privateEndpoint": {"id": pe_id},
                "privateLinkServiceConnectionState": {
                    "status": "Approved",
                    "description": "Auto-Approved",
                    "actionsRequired": "None",
                },
                "provisioningState": "Succeeded",
            },
        }
    )
    registry["properties"]["privateEndpointConnections"] = connections
    state.put(registry)
    zone_name = spec.get("dnsZone", REGISTRY_ZONE)
    if zone_name:
        zone = find(state, ZONE, zone_name, vnet_sub)
        if zone is None:
            zone = put_zone(state, vnet_sub, spec.get("resourceGroup", vnet_rg), zone_name)
            put_link(state, zone["id"], f"{vnet['name']}-link", vnet["id"])
        for host, ip in records.items():
            state.put(
                {
                    "id": f"{zone['id']}/A/{host}",
                    "name": host,
                    "type": A_RECORD,
                    "etag": etag(),
                    "properties": {
                        "ttl": 10,
                        "fqdn": f"{host}.{zone['name']}.",
                        "isAutoRegistered": False,
                        "aRecords": [{"ipv4Address": ip}],
                    },
                }
            )
        sync_zone(state, zone["id"])
        if spec.get("zoneGroup", True):
            state.put(
                {
                    "id": f"{pe_id}/privateDnsZoneGroups/default",
                    "name": "default",
                    "type": ZONE_GROUP,
                    "etag": etag(),
                    "properties": {
                        "provisioningState": "Succeeded",
                        "privateDnsZoneConfigs": [
                            {
                                "name": zone["name"].replace(".", "-"),
                                "properties": {
                                    "privateDnsZoneId": zone["id"],
                                    "recordSets": [
                                        {
                                            "recordType": "A",
                                            "recordSetName": host,
                                            "fqdn": f"{host}.{zone['name']}",
                                            "ttl": 10,
                                            "ipAddresses": [ip],
                                            "provisioningState": "Succeeded",
                                        }
                                        for host, ip in records.items()
                                    ],
                                },
                            }
                        ],
                    },
                }
            )
    return state.get(pe_id) or {}


REGISTRY_HOOKS.append(_registry_endpoints)


# -- breaks ------------------------------------------------------------------------------------


def _cluster_and_endpoints(
    state: State, spec: dict[str, Any]
) -> tuple[Json, list[str], list[Json]]:
    cluster = find_cluster(state, spec["cluster"])
    endpoints = (
        registry_endpoints(state, find_registry(state, spec["registry"]))
        if spec.get("registry")
        else []
    )
    return cluster, cluster_vnet_ids(state, cluster), endpoints


@breaks("private-dns-link-missing")
def unlink_cluster_vnet(state: State, spec: dict[str, Any]) -> None:
    """Someone deleted the registry zone's link to the cluster VNet."""
    cluster = find_cluster(state, spec["cluster"])
    vnets = {v.lower() for v in cluster_vnet_ids(state, cluster)}
    zone_name = spec.get("zone", REGISTRY_ZONE).lower()
    for link in [r for r in state.typed(LINK) if r.get("type") == LINK]:
        zone_id = parent_of(link["id"])
        if (
            zone_id.rsplit("/", 1)[-1].lower() == zone_name
            and link["properties"]["virtualNetwork"]["id"].lower() in vnets
        ):
            state.delete(link["id"])
            sync_zone(state, zone_id)


@breaks("firewall-ip-not-allowed")
def block_cluster_egress(state: State, spec: dict[str, Any]) -> None:
    """The registry's firewall no longer lets the cluster's outbound IPs in."""
    registry = find_registry(state, spec["registry"])
    properties = registry["properties"]
    if spec.get("variant", "deny") == "disabled":
        properties["publicNetworkAccess"] = "Disabled"
    else:
        egress: list[str] = []
        if spec.get("cluster"):
            cluster = find_cluster(state, spec["cluster"])
            egress = cluster_egress_addresses(state, cluster)
        kept = [
            r
            for r in (properties.get("networkRuleSet") or {}).get("ipRules", [])
            if not any(_covers(r["value"], ip) for ip in egress)
        ]
        kept += [{"action": "Allow", "value": v} for v in spec.get("allow", [])]
        properties["networkRuleSet"] = {"defaultAction": "Deny", "ipRules": kept}
    state.put(registry)


def cluster_egress_addresses(state: State, cluster: Json) -> list[str]:
    """The public IPs and prefixes the cluster's outbound traffic leaves from (LB or NAT)."""
    network = cluster["properties"]["networkProfile"]
    refs = [
        ref["id"]
        for profile in ("loadBalancerProfile", "natGatewayProfile")
        for ref in (network.get(profile) or {}).get("effectiveOutboundIPs", [])
    ]
    if network.get("outboundType") == "userAssignedNATGateway":
        for subnet_id in cluster_subnet_ids(cluster):
            gateway_id = (state.get(subnet_id) or {}).get("properties", {}).get("natGateway", {})
            gateway = state.get(gateway_id["id"]) if gateway_id else None
            if gateway is not None:
                refs += [r["id"] for r in gateway["properties"]["publicIpAddresses"]]
                refs += [r["id"] for r in gateway["properties"]["publicIpPrefixes"]]
    addresses = []
    for ref in refs:
        found = (state.get(ref) or {}).get("properties", {})
        if found.get("ipAddress") or found.get("ipPrefix"):
            addresses.append(found.get("ipAddress") or found["ipPrefix"])
    return addresses


def _covers(rule: str, address: str) -> bool:
    try:
        inner, outer = (
            ipaddress.ip_network(address, strict=False),
            ipaddress.ip_network(rule, strict=False),
        )
        return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False


@breaks("vnet-peering-missing")
def drop_peering(state: State, spec: dict[str, Any]) -> None:
    """The peering between the cluster VNet and the private endpoint's VNet is gone or broken."""
    _, cluster_vnets, endpoints = _cluster_and_endpoints(state, spec)
    remote_vnets = {endpoint_vnet_id(e).lower() for e in endpoints} - {
        v.lower() for v in cluster_vnets
    }
    mode = spec.get("mode", "deleted")
    explicit = _EXPLICIT.setdefault(state, set())
    for peering in [r for r in state.typed(PEERING) if r.get("type") == PEERING]:
        local = parent_of(peering["id"]).lower()
        remote = peering["properties"]["remoteVirtualNetwork"]["id"].lower()
        pair = (local in remote_vnets and remote in {v.lower() for v in cluster_vnets}) or (
            remote in remote_vnets and local in {v.lower() for v in cluster_vnets}
        )
        if not pair:
            continue
        on_endpoint_side = local in remote_vnets
        if mode == "none" or (mode == "deleted" and on_endpoint_side):
            state.delete(peering["id"])
        else:
            peering["properties"]["peeringState"] = "Disconnected"
            state.put(peering)
        explicit.add(peering["id"].lower())
        sync_vnet(state, parent_of(peering["id"]))


@breaks("firewall-egress-blocked")
def route_through_appliance(state: State, spec: dict[str, Any]) -> None:
    """A route table on the cluster subnets sends registry traffic to a (hub) firewall."""
    cluster, _, endpoints = _cluster_and_endpoints(state, spec)
    subnets = cluster_subnet_ids(cluster) or [
        s["id"] for v in cluster_vnet_ids(state, cluster) for s in state.children(v, SUBNET)
    ]
    ips = [ip for e in endpoints for ip in endpoint_ips(e)]
    prefixes = (
        [spec["prefix"]] if spec.get("prefix") else [f"{ip}/32" for ip in ips] or ["0.0.0.0/0"]
    )
    first = subnets[0]
    sub_id, group = first.split("/")[2], first.split("/")[4]
    location = str((state.get(parent_of(first)) or {}).get("location", cluster["location"]))
    routes = [
        {
            "name": f"to-firewall-{n}",
            "prefix": prefix,
            "nextHopType": spec.get("nextHopType", "VirtualAppliance"),
            "nextHopIpAddress": spec.get("nextHopIpAddress", "10.100.1.4"),
        }
        for n, prefix in enumerate(prefixes)
    ]
    table = put_route_table(
        state, sub_id, group, location, f"rt-{cluster['name']}-egress", routes=routes
    )
    for subnet_id in subnets:
        attach_to_subnet(state, subnet_id, "routeTable", table["id"])
