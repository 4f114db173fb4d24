"""Scenario files cannot lie: every key is known, every node pool a workload names exists.

A typo (``outbond``, ``netwrkRuleSet``) used to build a healthy estate silently, so a test could
pass without testing anything. :func:`validate` runs before anything is built and raises
:class:`ScenarioError` naming the place, the key and the keys allowed there. Unknown breaks are
refused by :func:`emulator.scenario.apply_break`; unresolvable references (a VNet, NAT gateway or
registry that is not in the scenario) by the builders, with the name they could not find.

Each kind lists its keys and which of them hold nested kinds (a list of, or one mapping).
A builder that reads a new key adds it here.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class ScenarioError(ValueError):
    """A scenario that does not describe an estate the emulator can build."""


# kind -> (plain keys, {key: nested kind}); a nested value is a list of mappings or one mapping.
KINDS: dict[str, tuple[frozenset[str], dict[str, str]]] = {
    "scenario": (
        frozenset({"tenantId", "breaks", "healthy", "pairs"}),
        {"subscriptions": "subscription"},
    ),
    "subscription": (frozenset({"id", "name"}), {"resourceGroups": "resourceGroup"}),
    "resourceGroup": (
        frozenset({"name", "location", "servicePrincipals", "customRoles", "roleAssignments"}),
        {
            "clusters": "cluster",
            "registries": "registry",
            "vmss": "vmss",
            "publicIPs": "publicIP",
            "publicIPPrefixes": "publicIPPrefix",
            "natGateways": "natGateway",
            "routeTables": "routeTable",
            "virtualNetworks": "virtualNetwork",
            "privateDnsZones": "privateDnsZone",
        },
    ),
    "cluster": (
        frozenset(
            {
                "name",
                "tags",
                "kubernetesVersion",
                "nodeResourceGroup",
                "provisioningState",
                "controlPlaneIdentity",
                "servicePrincipal",
                "attachedRegistries",
                "namespaces",
                "kubernetesApi",
                "pullSecrets",
                "disableLocalAccounts",
            }
        ),
        {
            "apiServerAccessProfile": "apiServerAccessProfile",
            "aadProfile": "aadProfile",
            "nodePools": "nodePool",
            "workloads": "workload",
            "outbound": "outbound",
            "vnet": "clusterVnet",
        },
    ),
    # A private cluster (privateFQDN only, see ManagedClustersCreate_PrivateClusterFQDNSubdomain)
    # or authorized IP ranges make the API server unreachable from the app unless kubernetesApi
    # says otherwise; disableRunCommand makes Run Command refuse.
    "apiServerAccessProfile": (
        frozenset(
            {
                "enablePrivateCluster",
                "enablePrivateClusterPublicFQDN",
                "privateDNSZone",
                "authorizedIPRanges",
                "disableRunCommand",
            }
        ),
        {},
    ),
    "aadProfile": (frozenset({"managed", "enableAzureRBAC", "adminGroupObjectIDs"}), {}),
    "nodePool": (
        frozenset({"name", "type", "vmSize", "count", "mode", "osType", "osSKU", "subnet"}),
        {},
    ),
    "workload": (
        frozenset(
            {
                "name",
                "namespace",
                "image",
                "containers",
                "replicas",
                "imagePullSecrets",
                "imagePullPolicy",
                "nodeSelector",
                "pool",
                "serviceAccount",
                "status",
                "message",
            }
        ),
        {},
    ),
    "outbound": (frozenset({"type", "ips", "publicIPs", "publicIPPrefixes", "natGateway"}), {}),
    "clusterVnet": (frozenset({"name", "subnet"}), {}),
    "registry": (
        frozenset(
            {
                "name",
                "sku",
                "tags",
                "adminUserEnabled",
                "anonymousPullEnabled",
                "publicNetworkAccess",
                "roleAssignmentMode",
                "repositories",
            }
        ),
        {
            "networkRuleSet": "networkRuleSet",
            "privateEndpoint": "privateEndpoint",
            "tokens": "token",
            "scopeMaps": "scopeMap",
        },
    ),
    "token": (frozenset({"name", "scopeMap", "status", "passwords", "expiryDays"}), {}),
    "scopeMap": (frozenset({"name", "actions", "description"}), {}),
    "networkRuleSet": (frozenset({"defaultAction", "ipRules"}), {}),
    "privateEndpoint": (
        frozenset({"vnet", "subnet", "dnsZone", "name", "zoneGroup", "resourceGroup"}),
        {},
    ),
    "vmss": (frozenset({"name", "vmSize", "count", "osType", "identities", "tags"}), {}),
    "publicIP": (frozenset({"name", "ip"}), {}),
    "publicIPPrefix": (frozenset({"name", "prefix"}), {}),
    "natGateway": (frozenset({"name", "publicIPs", "publicIPPrefixes"}), {}),
    "routeTable": (frozenset({"name"}), {"routes": "route"}),
    "route": (frozenset({"name", "prefix", "nextHopType", "nextHopIpAddress"}), {}),
    "virtualNetwork": (
        frozenset({"name", "addressSpace", "dnsServers"}),
        {"subnets": "subnet", "peerings": "peering"},
    ),
    "subnet": (
        frozenset({"name", "prefix", "routeTable", "natGateway", "privateEndpointNetworkPolicies"}),
        {},
    ),
    "peering": (frozenset({"name", "remote", "reverse", "state", "reverseState"}), {}),
    "privateDnsZone": (frozenset({"name", "links"}), {}),
    # emulator/builders/network_truth.py: what a VNet's network really does (the probe sees it).
    "networkTruth": (frozenset({"vnet", "subnet", "dns", "drop", "refuse", "imds"}), {}),
}


# Every key a break reads (emulator/builders/*, @breaks): a misspelt one ("clutser") would
# break something other than what the test meant, or nothing.
BREAK_KEYS = frozenset(
    {
        "cause",
        "cluster",
        "registry",
        "repository",
        "tag",
        "architecture",
        "os",
        "mode",
        "variant",
        "allow",
        "zone",
        "prefix",
        "nextHopType",
        "nextHopIpAddress",
        "namespace",
        "secret",
        "workload",
        "pool",
        "appId",
        "newAppId",
        "days",
        "daysAgo",
        "principal",
        "role",
        "scope",
        "token",
        "image",
        "pullsPerMinute",
        "minutes",
        "throttledShare",
    }
)


def validate_break(broken: Any) -> None:
    """Raise :class:`ScenarioError` for a break that is not a mapping or has an unknown key."""
    if not isinstance(broken, dict) or "cause" not in broken:
        raise ScenarioError(f"a break must be a mapping with a cause, not {broken!r}")
    for key in broken:
        if key not in BREAK_KEYS:
            near = difflib.get_close_matches(str(key), sorted(BREAK_KEYS), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ScenarioError(f"break {broken['cause']!r}: unknown key {key!r}{hint}")


def validate(
    spec: Any, *, top_sections: Iterable[str] = (), group_sections: Iterable[str] = ()
) -> None:
    """Raise :class:`ScenarioError` for the first unknown key or node pool, naming it.

    ``top_sections`` / ``group_sections`` are the sections builders registered
    (``TOP_SECTIONS`` / ``GROUP_SECTIONS``): allowed there, their contents are theirs to check.
    """
    extra = {"scenario": frozenset(top_sections), "resourceGroup": frozenset(group_sections)}
    _check("scenario", spec, "scenario", extra)
    for broken in spec.get("breaks") or []:
        validate_break(broken)
    for s, subscription in enumerate(spec.get("subscriptions") or []):
        for g, group in enumerate(subscription.get("resourceGroups") or []):
            for c, cluster in enumerate(group.get("clusters") or []):
                _check_pools(cluster, f"subscriptions[{s}].resourceGroups[{g}].clusters[{c}]")


def check(kind: str, value: Any, where: str) -> None:
    """Raise :class:`ScenarioError` for an unknown key of ``value`` (a mapping of ``kind``)."""
    _check(kind, value, where, {})


def _check(kind: str, value: Any, where: str, extra: dict[str, frozenset[str]]) -> None:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected a mapping, got {type(value).__name__}")
    plain, nested = KINDS[kind]
    allowed = plain | set(nested) | extra.get(kind, frozenset())
    for key in value:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ScenarioError(
                f"{where}: unknown key {key!r}{hint}; allowed: {', '.join(sorted(allowed))}"
            )
    for key, child in nested.items():
        if key not in value or value[key] is None:
            continue
        items = value[key]
        if isinstance(items, list):
            for n, item in enumerate(items):
                _check(child, item, f"{where}.{key}[{n}]", extra)
        else:
            _check(child, items, f"{where}.{key}", extra)


def _check_pools(cluster: dict[str, Any], where: str) -> None:
    pools = {str(p.get("name")) for p in cluster.get("nodePools") or [{"name": "nodepool1"}]}
    for n, workload in enumerate(cluster.get("workloads") or []):
        pool = workload.get("pool")
        if pool is not None and str(pool) not in pools:
            raise ScenarioError(
                f"{where}.workloads[{n}]: unknown node pool {pool!r}; the cluster has: "
                f"{', '.join(sorted(pools))}"
            )
