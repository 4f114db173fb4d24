"""Build a :class:`FleetReport` from a fresh diagnosis or from the state store's audit log.

Expiry dates come from the checks' own evidence (Graph ``passwordCredentials`` under an
``appId``; a registry token's passwords under its token name), so the report makes no read of
its own: whatever a check learns about a credential's end date shows on the timeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from shared.checks import Finding, Status
from shared.fleet import PairReport
from shared.report.model import (
    DIAGNOSIS,
    STORE,
    ActionTaken,
    ClusterSummary,
    Credential,
    FleetReport,
    PairFindings,
)
from shared.store import AuditRecord
from shared.tickets.redact import redact, redact_text

SP_SECRET, TOKEN_PASSWORD = "service principal secret", "registry token password"
END_KEYS = ("endDateTime", "expiry")  # Graph passwordCredentials; ACR token passwords
TOKEN_KEYS = ("token", "tokenName")


def from_diagnosis(
    reports: Sequence[PairReport],
    *,
    now: datetime,
    audit: Sequence[AuditRecord] = (),
    scope: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> FleetReport:
    grouped: dict[str, list[PairReport]] = {}
    for report in reports:
        grouped.setdefault(report.cluster_id.lower(), []).append(report)
    raw = [
        ClusterSummary(
            cluster_id=group[0].cluster_id,
            name=group[0].cluster_name,
            pairs=tuple(PairFindings(r.registry_id, r.image, r.findings) for r in group),
        )
        for group in sorted(grouped.values(), key=lambda g: g[0].cluster_name)
    ]
    return FleetReport(
        generated_at=now,
        source=DIAGNOSIS,
        clusters=tuple(_cleaned(c) for c in raw),
        credentials=credentials_of(raw),
        actions=actions_of(audit),
        notes=tuple(notes),
        scope=tuple(scope),
    )


def from_store(
    audit: Sequence[AuditRecord], *, now: datetime, scope: Sequence[str] = ()
) -> FleetReport:
    """The last word of the audit log on each (cluster, cause): open problems and what was done.

    A record whose verification passed, or that closed a resolved problem, means the cause is
    fine now; any other last record leaves it failing as its finding said.
    """
    latest: dict[tuple[str, str], AuditRecord] = {}
    for record in sorted(audit, key=lambda r: r.when):
        latest[(record.cluster_id.lower(), record.cause_id)] = record
    per_cluster: dict[str, dict[str, list[Finding]]] = {}
    ids: dict[str, str] = {}
    for (cluster_key, _), record in sorted(latest.items()):
        ids[cluster_key] = record.cluster_id
        finding = _finding_of(record)
        if finding is None:
            continue
        registry = str(record.before.get("registry") or _registry_of(finding) or "")
        per_cluster.setdefault(cluster_key, {}).setdefault(registry, []).append(finding)
    clusters = tuple(
        ClusterSummary(
            cluster_id=ids[key],
            name=ids[key].rsplit("/", 1)[-1],
            pairs=tuple(
                PairFindings(registry, None, tuple(findings))
                for registry, findings in sorted(per_cluster.get(key, {}).items())
            ),
        )
        for key in sorted(ids, key=lambda k: ids[k].rsplit("/", 1)[-1])
    )
    return FleetReport(
        generated_at=now,
        source=STORE,
        clusters=clusters,
        credentials=credentials_of(clusters),
        actions=actions_of(audit),
        scope=tuple(scope),
    )


def actions_of(audit: Iterable[AuditRecord]) -> tuple[ActionTaken, ...]:
    """Every decision that did something (acted, planned, ticketed, resolved), newest first."""
    return tuple(
        ActionTaken(
            when=r.when,
            cluster=r.cluster_id.rsplit("/", 1)[-1],
            cause=r.cause_id,
            action=r.action_id,
            decision=r.decision,
            reason=str(redact(r.reason)),
            result=r.result,
            correlation_id=r.correlation_id,
        )
        for r in sorted(audit, key=lambda r: r.when, reverse=True)
        if r.result != "recorded" or r.decision != "resolve"
    )


def credentials_of(clusters: Iterable[ClusterSummary]) -> tuple[Credential, ...]:
    """Each credential with an end date once, with the clusters whose findings named it."""
    found: dict[tuple[str, str, str], tuple[Credential, set[str]]] = {}
    for cluster in clusters:
        for pair in cluster.pairs:
            for finding in pair.findings:
                for credential in credentials_in(finding.evidence):
                    key = (credential.owner.lower(), credential.name, str(credential.expires))
                    entry = found.setdefault(key, (credential, set()))
                    entry[1].add(cluster.name)
    return tuple(
        sorted(
            (
                Credential(c.kind, c.owner, c.name, c.expires, tuple(sorted(names)))
                for c, names in found.values()
            ),
            key=lambda c: (c.expires is None, c.expires or datetime.max, c.owner),
        )
    )


def credentials_in(evidence: Mapping[str, Any]) -> Iterator[Credential]:
    """The credentials with an end date that one finding's evidence names."""
    return _credentials(evidence, owner=None, kind=SP_SECRET)


def _credentials(value: Any, *, owner: str | None, kind: str) -> Iterator[Credential]:
    """Walk evidence: a mapping with an end date is a credential of the nearest owner above."""
    if isinstance(value, Mapping):
        if any(k in value for k in TOKEN_KEYS):
            owner, kind = str(next(value[k] for k in TOKEN_KEYS if k in value)), TOKEN_PASSWORD
        elif "appId" in value:
            owner = str(value["appId"])
        end_key = next((k for k in END_KEYS if k in value), None)
        if end_key is not None and owner is not None:
            name = value.get("displayName") or value.get("name") or value.get("keyId") or ""
            yield Credential(
                kind=kind,
                owner=redact_text(owner),
                name=redact_text(str(name)),
                expires=_parse_time(value.get(end_key)),
                clusters=(),
            )
            return
        for item in value.values():
            yield from _credentials(item, owner=owner, kind=kind)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _credentials(item, owner=owner, kind=kind)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _finding_of(record: AuditRecord) -> Finding | None:
    """The audit record's finding, or None when its last word is that the cause is fixed."""
    if record.decision == "resolve" or record.result.endswith("verification PASS"):
        return None
    before = record.before
    try:
        status = Status(str(before.get("status", "FAIL")))
    except ValueError:
        status = Status.FAIL
    if status is Status.PASS:
        return None
    return Finding(
        cause_id=record.cause_id,
        status=status,
        summary=str(redact(before.get("summary") or record.reason)),
        resource_id=str(before.get("resource") or record.cluster_id),
        action_id=record.action_id,
        evidence=redact(dict(before.get("evidence") or {})),
        commands=tuple(str(c) for c in before.get("commands") or ()),
    )


def _registry_of(finding: Finding) -> str | None:
    resource = finding.resource_id
    return resource if "/microsoft.containerregistry/registries/" in resource.lower() else None


def _cleaned(cluster: ClusterSummary) -> ClusterSummary:
    """Evidence and sentences as a ticket shows them: secrets redacted by key and by shape."""
    pairs = tuple(replace(p, findings=tuple(_clean(f) for f in p.findings)) for p in cluster.pairs)
    return replace(cluster, pairs=pairs)


def _clean(finding: Finding) -> Finding:
    return replace(
        finding,
        summary=redact_text(finding.summary),
        evidence=redact(dict(finding.evidence)),
        commands=tuple(redact_text(c) for c in finding.commands),
    )
