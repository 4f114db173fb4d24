"""The estate's inventory from Azure Resource Graph: a few paged queries, not a read per resource.

**Public API** (what the sweeps, and the fleet planner of issue 12, use; nothing else here is):

- :func:`load_inventory` ``(factory, subscription_ids) -> Inventory``: runs the queries below
  over the subscriptions, following ``$skipToken`` pages, and raises :class:`InventoryUnavailable`
  (a :class:`~shared.errors.ReadError`) when Resource Graph fails, throttles beyond the SDK's
  retries, or answers a truncated result: callers fall back to ARM.
- :class:`Inventory`: typed, the same objects the ARM readers return (:class:`Cluster`,
  :class:`Registry`, :class:`ScaleSet`, :class:`NodeVm`, :class:`RoleAssignment`), built by the
  same converters from the same ARM shapes, so a check cannot tell where they came from.
- :class:`InventoryReader` (a mixin of :class:`~shared.azure.estate.ArmEstate`):
  ``use_inventory(subscription_ids)`` seeds the estate's per-run read cache with the inventory
  (True when it did; a failure is logged and ARM answers as before) and
  ``forget_inventory(cluster_id)`` drops what was seeded for one cluster, so that a failure seen
  in Resource Graph's copy is confirmed from ARM before anything acts on it
  (:meth:`shared.engine.Engine.diagnose`).

**Queries** (each paged at 1000 rows; every one projects ``id``, without which Resource Graph
cannot page and truncates): the visible subscriptions with their management-group chains
(``resourcecontainers``); clusters, registries, user-assigned identities and the network resources
the checks read (virtual networks, route tables, public IPs, private DNS zones and their links;
``resources``); the
node scale sets and VMs of every cluster's node resource group, joined to their cluster in the
query; and every role assignment (``authorizationresources``).

**Quota.** Resource Graph allows each principal a number of queries per window and says how many
are left in ``x-ms-user-quota-remaining`` and when the window resets in
``x-ms-user-quota-resets-after`` (``hh:mm:ss``). When none are left, the next query waits for the
reset instead of earning a 429 (a 429 itself is retried by the SDK, honouring ``Retry-After``).

**What comes from Resource Graph and what still needs ARM**, per read (and so per check):

=============================================  ================================================
read                                           source in a sweep
=============================================  ================================================
``list_clusters``, ``get_cluster``             Resource Graph (discovery; every check's target)
``list_registries``, ``get_registry``          Resource Graph (pairs; acrpull-missing, sp-mismatch,
                                               image-not-found, firewall and private-link checks)
``list_node_pool_scale_sets``,                 Resource Graph (kubelet-identity-detached)
``list_node_vms``, ``identity_exists`` (True)
``list_role_assignments_for_principal``        Resource Graph (pairs by ``--attach-acr``)
``list_role_assignments_for_scope``            Resource Graph (sp-mismatch; a fleet batch's
                                               slice: ARM, as it holds only its principals')
``list_role_assignments_applying_to``          Resource Graph, also in a batch (acrpull-missing)
deny assignments, role definitions             ARM (not in ``authorizationresources`` here)
``get_cluster_network``, virtual networks      Resource Graph (firewall-*, private-dns-link-
(and their subnets, peerings), route tables,   missing, vnet-peering-missing)
public IPs, private DNS zones and their links
private endpoints, NAT gateways, public IP     ARM (a private endpoint's DNS zone groups are
prefixes, AKS's load balancer                  not in Resource Graph)
Monitor metrics, registry credentials,         ARM / data planes: Resource Graph does not hold
kubeconfig, Kubernetes, ACR data, Graph        them
=============================================  ================================================

**Stale data.** Resource Graph lags ARM by seconds to minutes. So the inventory is only ever a
*first* answer: an identity that Resource Graph does not list yet is not reported missing (only
"exists" is seeded), a failure found with seeded data is diagnosed again from ARM, and any write
clears the cache, so verification after a fix reads ARM, the source of truth. A resource created
since Resource Graph last saw the estate is found by the next sweep, as events find it sooner.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.azure import sdk_models
from shared.azure.cache import RunCache
from shared.azure.clusters import ClusterReader, _cluster, _identities_of, _scale_set
from shared.azure.errors import translated
from shared.azure.factory import ClientFactory
from shared.azure.network import (
    NetworkReader,
    _vnet,
    cluster_network_of,
    dns_zone_of,
    public_ip_of,
    route_table_of,
)
from shared.azure.rbac import RbacReader, _assignment
from shared.azure.registries import RegistryReader, _registry
from shared.errors import ReadError, TransientError
from shared.models import Cluster, NodeVm, ScaleSet
from shared.ports.network import (
    ClusterNetwork,
    PrivateDnsZone,
    PublicIp,
    RouteTable,
    VirtualNetwork,
)
from shared.ports.rbac import RoleAssignment
from shared.ports.registries import Registry

if TYPE_CHECKING:
    from azure.mgmt.resourcegraph import ResourceGraphClient

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # Resource Graph's largest page
MAX_SUBSCRIPTIONS = 1000  # subscriptions one query may name
CLUSTER = "microsoft.containerservice/managedclusters"
REGISTRY = "microsoft.containerregistry/registries"
IDENTITY = "microsoft.managedidentity/userassignedidentities"
VMSS = "microsoft.compute/virtualmachinescalesets"
VM = "microsoft.compute/virtualmachines"
VNET = "microsoft.network/virtualnetworks"
ROUTE_TABLE = "microsoft.network/routetables"
PUBLIC_IP = "microsoft.network/publicipaddresses"
DNS_ZONE = "microsoft.network/privatednszones"
DNS_LINK = "microsoft.network/privatednszones/virtualnetworklinks"
INVENTORIED = (CLUSTER, REGISTRY, IDENTITY, VNET, ROUTE_TABLE, PUBLIC_IP, DNS_ZONE, DNS_LINK)
POOL_TAG = "aks-managed-poolName"

SUBSCRIPTIONS_QUERY = (
    "resourcecontainers | where type =~ 'microsoft.resources/subscriptions' "
    "| project id, subscriptionId, chain = properties.managementGroupAncestorsChain"
)
RESOURCES_QUERY = (
    f"resources | where type in~ ({', '.join(repr(t) for t in INVENTORIED)}) "
    "| project id, name, type, location, resourceGroup, subscriptionId, sku, tags, "
    "identity, properties"
)
# Node scale sets and VMs, each with the cluster whose node resource group holds it.
NODES_QUERY = (
    f"resources | where type =~ '{CLUSTER}' "
    "| project cluster = id, subscriptionId, nodeGroup = tolower(tostring(properties.nodeResourceGroup)) "
    f"| join kind=inner (resources | where type in~ ('{VMSS}', '{VM}') "
    f"| where isnotempty(tostring(tags['{POOL_TAG}'])) "
    "| extend nodeGroup = tolower(resourceGroup) "
    "| project id, name, type, tags, identity, subscriptionId, nodeGroup) "
    "on subscriptionId, nodeGroup "
    "| project id, name, type, tags, identity, cluster"
)
ASSIGNMENTS_QUERY = (
    "authorizationresources | where type =~ 'microsoft.authorization/roleassignments' "
    "| project id, name, type, properties"
)


class InventoryUnavailable(ReadError):
    """Resource Graph could not give the whole inventory: use ARM."""


@dataclass(frozen=True)
class Inventory:
    """What Resource Graph knows of the subscriptions in scope, in the ARM readers' types."""

    # Visible subscription (lower) -> the scopes above it: its management groups, nearest first,
    # then the root "/". A subscription in scope but missing here is not readable: ARM answers.
    subscriptions: Mapping[str, tuple[str, ...]]
    clusters: tuple[Cluster, ...] = ()
    registries: tuple[Registry, ...] = ()
    # Cluster id (lower) -> its node pool scale sets / VMs (those carrying the pool tag).
    scale_sets: Mapping[str, tuple[ScaleSet, ...]] = field(default_factory=dict)
    vms: Mapping[str, tuple[NodeVm, ...]] = field(default_factory=dict)
    role_assignments: tuple[RoleAssignment, ...] = ()
    identities: frozenset[str] = frozenset()  # user-assigned identity ids (lower)
    networks: Mapping[str, ClusterNetwork] = field(default_factory=dict)  # by cluster id (lower)
    vnets: tuple[VirtualNetwork, ...] = ()
    route_tables: tuple[RouteTable, ...] = ()
    public_ips: tuple[PublicIp, ...] = ()
    dns_zones: tuple[PrivateDnsZone, ...] = ()
    requests: int = 0  # Resource Graph queries and pages it took

    def clusters_in(self, subscription_id: str) -> list[Cluster]:
        return [c for c in self.clusters if _subscription(c.id) == subscription_id.lower()]

    def registries_in(self, subscription_id: str) -> list[Registry]:
        return [r for r in self.registries if _subscription(r.id) == subscription_id.lower()]

    def assignments_for_principal(
        self, subscription_id: str, principal_id: str
    ) -> list[RoleAssignment]:
        """As ARM lists a principal's assignments for a subscription: at it, under it, above it."""
        sub = subscription_id.lower()
        above = set(self.subscriptions.get(sub, ()))
        return [
            a
            for a in self.role_assignments
            if a.principal_id.lower() == principal_id.lower()
            and (_subscription(a.scope) == sub or _scope(a.scope) in above)
        ]

    def assignments_at(self, scope: str) -> list[RoleAssignment]:
        """As ARM's ``atScope()`` lists them: at ``scope`` and inherited from the scopes above."""
        wanted = _scope(scope)
        above = set(self.subscriptions.get(_subscription(scope), ()))
        return [
            a
            for a in self.role_assignments
            if _scope(a.scope) in above
            or wanted == _scope(a.scope)
            or wanted.startswith(_scope(a.scope).rstrip("/") + "/")
        ]


def load_inventory(
    factory: ClientFactory,
    subscription_ids: Iterable[str],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Inventory:
    """The inventory of ``subscription_ids``; :class:`InventoryUnavailable` if it cannot be had."""
    runner = _Runner(factory.resource_graph(), sorted({s.lower() for s in subscription_ids}), sleep)
    subscriptions = {
        str(row["subscriptionId"]).lower(): tuple(
            [
                f"/providers/microsoft.management/managementgroups/{g['name'].lower()}"
                for g in row.get("chain") or ()
            ]
            + ["/"]
        )
        for row in runner.rows(SUBSCRIPTIONS_QUERY)
    }
    visible = sorted(subscriptions)
    runner.subscriptions = visible
    if not visible:
        return Inventory(subscriptions={}, requests=runner.requests)
    found = _resources(runner.rows(RESOURCES_QUERY))
    scale_sets, vms = _nodes(runner.rows(NODES_QUERY))
    assignments = tuple(_role_assignment(row) for row in runner.rows(ASSIGNMENTS_QUERY))
    return Inventory(
        subscriptions=subscriptions,
        clusters=found.clusters,
        registries=found.registries,
        scale_sets=scale_sets,
        vms=vms,
        role_assignments=assignments,
        identities=found.identities,
        networks=found.networks,
        vnets=found.vnets,
        route_tables=found.route_tables,
        public_ips=found.public_ips,
        dns_zones=found.dns_zones,
        requests=runner.requests,
    )


class _Runner:
    """Runs one query to its last page, within Resource Graph's quota."""

    def __init__(
        self, client: ResourceGraphClient, subscriptions: list[str], sleep: Callable[[float], None]
    ) -> None:
        self.client = client
        self.subscriptions = subscriptions
        self.sleep = sleep
        self.requests = 0
        self._wait = 0.0  # until the quota resets, when none is left

    def rows(self, query: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(self.subscriptions), MAX_SUBSCRIPTIONS):
            chunk = self.subscriptions[start : start + MAX_SUBSCRIPTIONS]
            token: str | None = None
            while True:
                data, token = self._page(query, chunk, token)
                found.extend(data)
                if not token:
                    break
        return found

    def _page(
        self, query: str, subscriptions: list[str], token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        from azure.core.exceptions import AzureError
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        if self._wait > 0:
            log.info("Resource Graph quota spent: waiting %.0f s for it to reset", self._wait)
            self.sleep(self._wait)
            self._wait = 0.0
        request = QueryRequest(
            subscriptions=subscriptions,
            query=query,
            options=QueryRequestOptions(
                top=PAGE_SIZE, skip_token=token, result_format="objectArray"
            ),
        )
        self.requests += 1
        try:
            with translated("/providers/Microsoft.ResourceGraph", doing="query Resource Graph at"):
                answer: Any = self.client.resources(
                    request, cls=lambda pipeline, body, _: (body, pipeline.http_response.headers)
                )
                response, headers = answer
        except (ReadError, TransientError) as exc:
            raise InventoryUnavailable(f"Resource Graph failed: {exc}") from exc
        except AzureError as exc:  # a 400: the query was refused
            code = getattr(getattr(exc, "error", None), "code", None) or type(exc).__name__
            raise InventoryUnavailable(f"Resource Graph refused a query ({code})") from exc
        self._pace(headers)
        data = response.data if isinstance(response.data, list) else []
        next_token = response.skip_token or None
        if _truthy(response.result_truncated) and not next_token:
            # Every query here projects id, so this is a result Resource Graph cut short.
            raise InventoryUnavailable("Resource Graph truncated the result")
        return [row for row in data if isinstance(row, dict)], next_token

    def _pace(self, headers: Mapping[str, str]) -> None:
        remaining = headers.get("x-ms-user-quota-remaining")
        resets = headers.get("x-ms-user-quota-resets-after")
        if remaining is not None and resets and remaining.strip() == "0":
            self._wait = _seconds(resets)


# -- rows to the readers' types ------------------------------------------------------------------


@dataclass(frozen=True)
class _Resources:
    clusters: tuple[Cluster, ...]
    registries: tuple[Registry, ...]
    identities: frozenset[str]
    networks: dict[str, ClusterNetwork]
    vnets: tuple[VirtualNetwork, ...]
    route_tables: tuple[RouteTable, ...]
    public_ips: tuple[PublicIp, ...]
    dns_zones: tuple[PrivateDnsZone, ...]


# The SDKs whose models _resources builds from rows.
ROW_PACKAGES = (
    "azure.mgmt.containerregistry",
    "azure.mgmt.containerservice",
    "azure.mgmt.network",
    "azure.mgmt.privatedns",
)


def _resources(rows: list[dict[str, Any]]) -> _Resources:
    """The rows of RESOURCES_QUERY in the readers' types, by the readers' own converters."""
    from azure.mgmt.containerregistry.models import Registry as RegistryModel
    from azure.mgmt.containerservice.models import ManagedCluster
    from azure.mgmt.network.models import PublicIPAddress
    from azure.mgmt.network.models import RouteTable as RouteTableModel
    from azure.mgmt.network.models import VirtualNetwork as VirtualNetworkModel
    from azure.mgmt.privatedns.models import PrivateZone, VirtualNetworkLink

    for package in ROW_PACKAGES:
        sdk_models.ready(package)  # a handed-over inventory runs beside other batches' threads
    by_type: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: str(r.get("id", "")).lower()):  # ARM lists in id order
        by_type.setdefault(str(row.get("type", "")).lower(), []).append(row)
    vnets = tuple(_vnet(VirtualNetworkModel(r)) for r in by_type.get(VNET, ()))
    in_group: dict[tuple[str, str], list[VirtualNetwork]] = {}
    for vnet in vnets:
        in_group.setdefault(_group(vnet.id), []).append(vnet)
    clusters, networks = [], {}
    for row in by_type.get(CLUSTER, ()):
        model = ManagedCluster(row)
        cluster = _cluster(model)
        group = (_subscription(cluster.id), cluster.node_resource_group.lower())
        clusters.append(cluster)
        networks[cluster.id.lower()] = cluster_network_of(
            cluster, model, functools.partial(_vnets_in, in_group, group)
        )
    links: dict[str, list[Any]] = {}
    for row in by_type.get(DNS_LINK, ()):
        zone_id = str(row["id"]).lower().split("/virtualnetworklinks/", 1)[0]
        links.setdefault(zone_id, []).append(VirtualNetworkLink(row))
    return _Resources(
        clusters=tuple(clusters),
        registries=tuple(_registry(RegistryModel(r)) for r in by_type.get(REGISTRY, ())),
        identities=frozenset(str(r["id"]).lower() for r in by_type.get(IDENTITY, ())),
        networks=networks,
        vnets=vnets,
        route_tables=tuple(
            route_table_of(RouteTableModel(r), r["id"]) for r in by_type.get(ROUTE_TABLE, ())
        ),
        public_ips=tuple(
            public_ip_of(PublicIPAddress(r), r["id"]) for r in by_type.get(PUBLIC_IP, ())
        ),
        dns_zones=tuple(
            dns_zone_of(PrivateZone(r), links.get(str(r["id"]).lower(), []), r["id"])
            for r in by_type.get(DNS_ZONE, ())
        ),
    )


def _vnets_in(
    in_group: dict[tuple[str, str], list[VirtualNetwork]], group: tuple[str, str]
) -> list[VirtualNetwork]:
    return list(in_group.get(group, ()))


def _group(resource_id: str) -> tuple[str, str]:
    parts = resource_id.lower().split("/")
    return (parts[2], parts[4]) if len(parts) > 4 else ("", "")


def _nodes(
    rows: list[dict[str, Any]],
) -> tuple[dict[str, tuple[ScaleSet, ...]], dict[str, tuple[NodeVm, ...]]]:
    from azure.mgmt.compute.models import VirtualMachine, VirtualMachineScaleSet

    sdk_models.ready("azure.mgmt.compute")
    scale_sets: dict[str, list[ScaleSet]] = {}
    vms: dict[str, list[NodeVm]] = {}
    for row in sorted(rows, key=lambda r: str(r.get("id", "")).lower()):
        cluster = str(row.get("cluster", "")).lower()
        body = {k: v for k, v in row.items() if k != "cluster"}
        if str(row.get("type", "")).lower() == VMSS:
            scale_sets.setdefault(cluster, []).append(_scale_set(VirtualMachineScaleSet(body)))
        else:
            vms.setdefault(cluster, []).append(NodeVm(**_identities_of(VirtualMachine(body))))
    return (
        {k: tuple(v) for k, v in scale_sets.items()},
        {k: tuple(v) for k, v in vms.items()},
    )


def _role_assignment(row: dict[str, Any]) -> RoleAssignment:
    from azure.mgmt.authorization.v2022_04_01.models import RoleAssignment as Model

    return _assignment(Model.deserialize(row))


def _subscription(resource_id: str) -> str:
    parts = resource_id.lower().split("/")
    return parts[2] if len(parts) > 2 and parts[1] == "subscriptions" else ""


def _scope(scope: str) -> str:
    return scope.lower().rstrip("/") or "/"


def _truthy(value: Any) -> bool:
    """``resultTruncated`` is a string ("true"/"false") on the wire; some versions send a bool."""
    return str(value).strip().lower() == "true"


def _seconds(timespan: str) -> float:
    """``hh:mm:ss`` (Resource Graph's resets-after) in seconds; 1 s when it cannot be read."""
    try:
        hours, minutes, seconds = (float(p) for p in timespan.strip().split(":"))
    except ValueError:
        return 1.0
    return hours * 3600 + minutes * 60 + seconds


# -- seeding the estate's reads ------------------------------------------------------------------


class InventoryReader:
    """Serves a sweep's discovery reads from the inventory (see the module docstring)."""

    factory: ClientFactory
    cache: RunCache

    def use_inventory(self, subscription_ids: Iterable[str]) -> bool:
        wanted = sorted({s.lower() for s in subscription_ids})
        try:
            inventory = load_inventory(self.factory, wanted)
        except ReadError as exc:
            log.warning(
                "Resource Graph inventory unavailable, discovering through ARM: %s", exc.reason
            )
            return False
        seed(self.cache, inventory, wanted)
        log.info(
            "inventory from Resource Graph: %d clusters, %d registries, %d role assignments in "
            "%d requests",
            len(inventory.clusters),
            len(inventory.registries),
            len(inventory.role_assignments),
            inventory.requests,
        )
        return True

    def seed_inventory(self, piece: Inventory) -> None:
        from shared.graph_clusters import seed_slice

        seed_slice(self.cache, piece)

    def forget_inventory(self, cluster_id: str) -> bool:
        return self.cache.forget(cluster_id)


def seed(cache: RunCache, inventory: Inventory, subscription_ids: Iterable[str]) -> None:
    """Answer the readers' discovery reads from ``inventory`` for the visible subscriptions."""
    everyone = frozenset(c.id.lower() for c in inventory.clusters)
    for sub in subscription_ids:
        if sub not in inventory.subscriptions:
            continue  # not readable through Resource Graph: ARM answers, and says why
        cache.seed(ClusterReader.list_clusters, sub, value=inventory.clusters_in(sub))
        cache.seed(RegistryReader.list_registries, sub, value=inventory.registries_in(sub))
    _seed_network(cache, inventory, subscription_ids, everyone)
    for registry in inventory.registries:
        cache.seed(RegistryReader.get_registry, registry.id, value=registry, tags=everyone)
        assignments = inventory.assignments_at(registry.id)
        cache.seed(
            RbacReader.list_role_assignments_for_scope,
            registry.id,
            value=assignments,
            tags=everyone,
        )
    for cluster in inventory.clusters:
        _seed_cluster(cache, inventory, cluster)


def _seed_network(
    cache: RunCache, inventory: Inventory, subscription_ids: Iterable[str], everyone: frozenset[str]
) -> None:
    for vnet in inventory.vnets:
        cache.seed(NetworkReader.get_virtual_network, vnet.id, value=vnet, tags=everyone)
    for table in inventory.route_tables:
        cache.seed(NetworkReader.get_route_table, table.id, value=table, tags=everyone)
    for address in inventory.public_ips:
        cache.seed(NetworkReader.get_public_ip, address.id, value=address, tags=everyone)
    for zone in inventory.dns_zones:
        cache.seed(NetworkReader.get_private_dns_zone, zone.id, value=zone, tags=everyone)
    for sub in subscription_ids:
        if sub in inventory.subscriptions:
            zones = [(z.id, z.name) for z in inventory.dns_zones if _subscription(z.id) == sub]
            cache.seed(NetworkReader.list_private_dns_zone_ids, sub, value=zones, tags=everyone)


def _seed_cluster(cache: RunCache, inventory: Inventory, cluster: Cluster) -> None:
    """The reads about one cluster, tagged with it (forgotten when it is found failing)."""
    mine = frozenset({cluster.id})
    key = cluster.id.lower()
    cache.seed(ClusterReader.get_cluster, cluster.id, value=cluster, tags=mine)
    if key in inventory.networks:
        network = inventory.networks[key]
        cache.seed(NetworkReader.get_cluster_network, cluster, value=network, tags=mine)
        if network.managed_vnet:
            sub, group = _subscription(cluster.id), cluster.node_resource_group
            vnets = [v for v in inventory.vnets if _group(v.id) == (sub, group.lower())]
            cache.seed(NetworkReader.list_virtual_networks, sub, group, value=vnets, tags=mine)
    cache.seed(
        ClusterReader.list_node_pool_scale_sets,
        cluster,
        value=list(inventory.scale_sets.get(key, ())),
        tags=mine,
    )
    cache.seed(
        ClusterReader.list_node_vms, cluster, value=list(inventory.vms.get(key, ())), tags=mine
    )
    for identity in _identities(cluster, inventory):
        cache.seed(ClusterReader.identity_exists, identity, value=True, tags=mine)
    principal = cluster.kubelet_identity.object_id if cluster.kubelet_identity else ""
    if principal:
        sub = _subscription(cluster.id)
        cache.seed(
            RbacReader.list_role_assignments_for_principal,
            sub,
            principal,
            value=inventory.assignments_for_principal(sub, principal),
            tags=mine,
        )


def _identities(cluster: Cluster, inventory: Inventory) -> list[str]:
    """User-assigned identities of the cluster that Resource Graph lists (only "exists" is
    seeded: one it does not list yet may be new, and ARM says whether it is gone)."""
    key = cluster.id.lower()
    ids = {cluster.kubelet_identity.resource_id} if cluster.kubelet_identity else set()
    for host in (*inventory.scale_sets.get(key, ()), *inventory.vms.get(key, ())):
        ids.update(host.user_assigned_identities)
    return [i for i in sorted(ids) if i and i.lower() in inventory.identities]
