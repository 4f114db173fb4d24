"""Cause 1a, solution 2: the cluster's service principal secret has expired (or soon will)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.permissions import GRAPH_READ
from shared.ports import Estate
from shared.rotation_mark import rotation_started, unfinished_summary


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SpSecretExpired(Check):
    meta = CheckMeta(
        id="sp-secret-expired",
        family="1a",
        title="The cluster's service principal has a secret that is not expired",
        guide_section="Cause 1a, Solution 2: Make sure service principal isn't expired",
        severity="high",
        reads=("Microsoft.ContainerService/managedClusters/read",),
        action_id="rotate-sp-secret",
        graph=(GRAPH_READ,),
    )

    def __init__(self, warning_days: int = 30, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.warning_days = warning_days
        self.clock = clock

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        cluster = target.cluster
        client_id = cluster.service_principal_client_id
        if client_id is None:
            return self.finding(
                Status.PASS,
                f"Not applicable: {cluster.name} uses managed identities, which have no secret to expire.",
                target,
                {},
            )
        now = self.clock()
        app = estate.get_application(client_id)
        credentials = sorted(app.password_credentials, key=lambda c: c.end or now)
        evidence = {
            "appId": client_id,
            "credentials": [
                {
                    "keyId": c.key_id,
                    "displayName": c.display_name,
                    "endDateTime": c.end.isoformat() if c.end else None,
                    "daysLeft": round(left, 1) if (left := c.days_left(now)) is not None else None,
                }
                for c in credentials
            ],
        }
        started = rotation_started(app.tags)
        if started is not None:
            return self.finding(
                Status.FAIL,
                unfinished_summary(client_id, started),
                target,
                {**evidence, "severity": "error", "rotationStartedAt": started.isoformat()},
            )
        valid = [c for c in credentials if not c.expired(now)]
        if not valid:
            what = "every secret" if credentials else "no secret at all, so nothing"
            return self.finding(
                Status.FAIL,
                f"The service principal {client_id} of {cluster.name} has {what} expired; nodes cannot "
                "get a token to pull from ACR.",
                target,
                {**evidence, "severity": "error"},
            )
        newest = valid[-1]
        days = newest.days_left(now)
        if days is not None and days <= self.warning_days:
            return self.finding(
                Status.FAIL,
                f"The newest secret of service principal {client_id} ({cluster.name}) expires in "
                f"{days:.0f} days, inside the {self.warning_days}-day warning window.",
                target,
                {
                    **evidence,
                    "severity": "warning",
                    "window": self.warning_days,
                    "daysLeft": round(days, 1),
                },
            )
        validity = "never expires" if days is None else f"is valid for {days:.0f} more days"
        return self.finding(
            Status.PASS,
            f"The newest secret of service principal {client_id} ({cluster.name}) {validity}.",
            target,
            {**evidence, "daysLeft": None if days is None else round(days, 1)},
        )

    def commands(self, target: Target) -> tuple[str, ...]:
        cluster = target.cluster
        rg = cluster.resource.resource_group
        app = cluster.service_principal_client_id or "<appId>"
        return (
            f"az aks show --resource-group {rg} --name {cluster.name} "
            "--query servicePrincipalProfile.clientId -o tsv",
            f'az ad app credential list --id "{app}" --query "[].endDateTime" --output tsv',
        )
