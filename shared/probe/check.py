"""Configuration against reality: the node pull probe, and where it contradicts the checks.

Every other check reads configuration. This one asks the nodes (shared/probe/pod.py) and holds
what they see against what the configuration checks concluded for the same pair:

- **dns**: the registry has a private endpoint and ``private-dns-link-missing`` passes (the zone
  is linked), yet a node resolves the login server or data endpoint to a public address, or not
  at all (a custom DNS server that does not forward ``privatelink.azurecr.io``);
- **connect**: the route checks (``vnet-peering-missing``, ``firewall-egress-blocked``) do not
  fail, yet TCP or TLS to the registry times out or is refused (an NSG, a firewall rule);
- **firewall**: ``firewall-ip-not-allowed`` does not fail, yet ``/v2/`` answers 403;
- **token**: ``kubelet-identity-detached`` and ``acrpull-missing`` do not fail, yet the node gets
  no kubelet identity token from IMDS, or the registry refuses to exchange it.

Each contradiction names both sides. A probe that agrees with the configuration (including a
fault a check already reports) passes, and its observations join those checks' findings
(:func:`join`). Off unless the policy scope says ``probe: auto``; it costs one Run Command.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.ports import Estate
from shared.ports.probe import PoolProbe, Reach
from shared.ports.registries import Registry

PROBE_ID = "node-pull-probe"
DNS_CAUSES = ("private-dns-link-missing",)
ROUTE_CAUSES = ("vnet-peering-missing", "firewall-egress-blocked")
FIREWALL_CAUSES = ("firewall-ip-not-allowed",)
TOKEN_CAUSES = ("kubelet-identity-detached", "acrpull-missing")
# Where each cause's findings get the probe's observations (families 1a, 3 and 4).
JOINS: dict[str, str] = {
    **dict.fromkeys(DNS_CAUSES, "dns"),
    **dict.fromkeys(ROUTE_CAUSES, "connect"),
    **dict.fromkeys(FIREWALL_CAUSES, "connect"),
    **dict.fromkeys(TOKEN_CAUSES, "token"),
}


def data_endpoint(registry: Registry) -> str:
    """``<registry>.<region>.data.azurecr.io``: where layers come from (dedicated data
    endpoint or not, a private endpoint has a record for it)."""
    suffix = registry.login_server.split(".", 1)[1] if "." in registry.login_server else ""
    return f"{registry.name.lower()}.{registry.location.lower().replace(' ', '')}.data.{suffix}"


class NodePullProbe(Check):
    meta = CheckMeta(
        id=PROBE_ID,
        family="3",
        title="What the nodes see when they pull agrees with the configuration",
        guide_section="Cause 3 and Cause 4 (and 1a, the kubelet identity): the network path "
        "and the token as a node meets them; az aks check-acr does a part of this by hand",
        severity="high",
        reads=(
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerRegistry/registries/read",
        ),
        action_id=None,
    )

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        if target.registry_id is None:
            return self.finding(Status.PASS, "No registry to probe for.", target, {})
        cluster = target.cluster
        registry = estate.get_registry(target.registry_id)
        client_id = cluster.kubelet_identity.client_id if cluster.kubelet_identity else ""
        pools = estate.probe_pull(
            cluster,
            login_server=registry.login_server,
            data_endpoint=data_endpoint(registry),
            client_id=client_id,
        )
        evidence: dict[str, Any] = {"pools": [p.to_evidence() for p in pools]}
        ran = [p for p in pools if p.ran]
        if not ran:
            reasons = "; ".join(f"{p.pool}: {p.error}" for p in pools) or "no node pool"
            return self.finding(
                Status.UNKNOWN,
                f"Could not tell: no node pool was probed ({reasons}).",
                target,
                evidence,
            )
        from shared.checks import get_check

        config = {
            cause: get_check(cause).run(target, estate)
            for cause in (*DNS_CAUSES, *ROUTE_CAUSES, *FIREWALL_CAUSES, *TOKEN_CAUSES)
        }
        dns = _dns(registry, ran, config)
        # A node sent to the public address meets the public firewall: that 403 is the DNS
        # fault's consequence, not a second contradiction (root cause first).
        misrouted = {
            p.pool
            for p in ran
            if registry.private_endpoint_ids
            and any(r.resolved_private is False for r in _reaches(p))
        }
        contradictions = [
            *dns,
            *_connect(ran, config),
            *_firewall([p for p in ran if p.pool not in misrouted], config),
            *(_token(ran, config) if client_id else []),
        ]
        evidence["contradictions"] = contradictions
        if contradictions:
            aspects = ", ".join(dict.fromkeys(c["aspect"] for c in contradictions))
            pools_hit = ", ".join(dict.fromkeys(c["probe"]["pool"] for c in contradictions))
            return self.finding(
                Status.FAIL,
                f"The nodes of {pools_hit} meet a fault the configuration does not show "
                f"({aspects}): {contradictions[0]['says']}.",
                target,
                evidence,
            )
        return self.finding(
            Status.PASS,
            f"What the nodes of {', '.join(p.pool for p in ran)} see agrees with the configuration.",
            target,
            evidence,
        )

    def commands(self, target: Target) -> tuple[str, ...]:
        cluster = target.cluster
        rid = cluster.resource
        return (
            f"az aks check-acr -g {rid.resource_group} -n {cluster.name} --acr <login server>",
            f"az aks command invoke -g {rid.resource_group} -n {cluster.name} "
            "--command 'kubectl get pods -n kube-system -l app.kubernetes.io/name=acr-pull-probe'",
        )


def _observed(probe: PoolProbe, reach: Reach) -> dict[str, Any]:
    observed: dict[str, Any] = {"pool": probe.pool, "node": probe.node}
    observed.update(reach.to_evidence())
    return observed


def _side(finding: Finding) -> dict[str, Any]:
    return {"cause": finding.cause_id, "status": finding.status.value, "summary": finding.summary}


def _clean(findings: Iterable[Finding]) -> bool:
    return all(f.status is not Status.FAIL for f in findings)


def _reaches(probe: PoolProbe) -> list[Reach]:
    return [r for r in (probe.login, probe.data) if r is not None]


def _dns(
    registry: Registry, pools: Sequence[PoolProbe], config: dict[str, Finding]
) -> list[dict[str, Any]]:
    link = config["private-dns-link-missing"]
    if not registry.private_endpoint_ids or link.status is not Status.PASS:
        return []
    found = []
    for probe in pools:
        for reach in _reaches(probe):
            if reach.resolved_private:
                continue
            seen = ", ".join(reach.answers) or "no answer"
            found.append(
                {
                    "aspect": "dns",
                    "says": f"the zone is linked, but {reach.host} resolves to {seen} on "
                    f"{probe.node or probe.pool}, not the private endpoint",
                    "configuration": [_side(link)],
                    "probe": _observed(probe, reach),
                }
            )
    return found


def _connect(pools: Sequence[PoolProbe], config: dict[str, Finding]) -> list[dict[str, Any]]:
    routes = [config[c] for c in ROUTE_CAUSES]
    if not _clean(routes):
        return []
    found = []
    for probe in pools:
        for reach in _reaches(probe):
            if reach.tcp in ("ok", "unresolved") and reach.tls != "failed":
                continue
            what = f"TCP {reach.tcp}" if reach.tcp != "ok" else "TLS failed"
            found.append(
                {
                    "aspect": "connect",
                    "says": f"the route is open, but {what} to {reach.host}:443 from "
                    f"{probe.node or probe.pool}",
                    "configuration": [_side(f) for f in routes],
                    "probe": _observed(probe, reach),
                }
            )
    return found


def _firewall(pools: Sequence[PoolProbe], config: dict[str, Finding]) -> list[dict[str, Any]]:
    firewall = [config[c] for c in FIREWALL_CAUSES]
    if not _clean(firewall):
        return []
    return [
        {
            "aspect": "firewall",
            "says": f"the registry firewall admits the cluster, but /v2/ answers 403 on "
            f"{probe.node or probe.pool}",
            "configuration": [_side(f) for f in firewall],
            "probe": _observed(probe, probe.login),
        }
        for probe in pools
        if probe.login is not None and probe.login.http_status == 403
    ]


def _token(pools: Sequence[PoolProbe], config: dict[str, Finding]) -> list[dict[str, Any]]:
    identity = [config[c] for c in TOKEN_CAUSES]
    if not _clean(identity):
        return []
    found = []
    for probe in pools:
        if probe.imds == "ok" and probe.exchange in ("ok", "skipped"):
            continue
        reached = probe.login is not None and probe.login.http_status in (200, 401)
        if probe.imds == "ok" and not reached:
            continue  # the exchange never reached the registry: a path fault, reported as such
        what = (
            f"IMDS gives no kubelet identity token ({probe.imds})"
            if probe.imds != "ok"
            else f"the registry refuses to exchange the kubelet identity's token ({probe.exchange_status})"
        )
        found.append(
            {
                "aspect": "token",
                "says": f"the kubelet identity is attached and may pull, but {what} on "
                f"{probe.node or probe.pool}",
                "configuration": [_side(f) for f in identity],
                "probe": {
                    "pool": probe.pool,
                    "imds": probe.imds,
                    "exchange": probe.exchange,
                    "exchangeStatus": probe.exchange_status,
                },
            }
        )
    return found


def join(findings: Sequence[Finding], probe: Finding) -> list[Finding]:
    """The probe's observations added to the findings of the causes it speaks to."""
    pools = probe.evidence.get("pools") or []
    if not pools:
        return list(findings)
    joined = []
    for finding in findings:
        aspect = JOINS.get(finding.cause_id)
        if aspect is None:
            joined.append(finding)
            continue
        seen = [_aspect(p, aspect) for p in pools]
        joined.append(replace(finding, evidence={**finding.evidence, "nodeProbe": seen}))
    return joined


def _aspect(pool: dict[str, Any], aspect: str) -> dict[str, Any]:
    head: dict[str, Any] = {k: pool[k] for k in ("pool", "os", "arch") if k in pool}
    if "error" in pool:
        return {**head, "error": pool["error"]}
    if aspect == "token":
        return {**head, "kubeletToken": pool.get("kubeletToken")}
    keys = (
        ("host", "answers", "private")
        if aspect == "dns"
        else ("host", "tcp", "tcpMs", "tls", "tlsMs", "v2Status")
    )
    return {
        **head,
        **{
            name: {k: v for k, v in (pool.get(name) or {}).items() if k in keys}
            for name in ("loginServer", "dataEndpoint")
        },
    }
