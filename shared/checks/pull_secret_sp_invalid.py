"""Cause 1a, solution 5: an image pull secret holds a service principal secret that no longer works."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.errors import NotFound, ReadError
from shared.permissions import GRAPH_READ
from shared.ports import Estate
from shared.ports.kubernetes import (
    SECRETS_READ,
    USER_CREDENTIAL,
    WORKLOAD_READS,
    PullSecret,
    Workload,
    image_registry_host,
    image_repository,
    workloads_using,
)

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
# Any repository name will do: the token service checks the credentials before the scope.
PROBE_REPOSITORY = "acr-pull-remediator/probe"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PullSecretSpInvalid(Check):
    meta = CheckMeta(
        id="pull-secret-sp-invalid",
        family="1a",
        title="Image pull secrets built from a service principal can still sign in to the registry",
        guide_section="Cause 1a, Solution 5: Make sure the service principal is correct and the "
        "secret is valid",
        severity="high",
        reads=(
            USER_CREDENTIAL,
            SECRETS_READ,
            *WORKLOAD_READS,
            "Microsoft.ContainerRegistry/registries/read",
        ),
        action_id="refresh-pull-secret",
        graph=(GRAPH_READ,),
    )

    def __init__(self, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.clock = clock

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        cluster = target.cluster
        host = (
            estate.get_registry(target.registry_id).login_server.lower()
            if target.registry_id
            else None
        )
        secrets = [
            s
            for s in estate.list_pull_secrets(cluster)
            if GUID.match(s.username) and host in (None, s.registry_host)
        ]
        where = host or "any registry"
        if not secrets:
            return self.finding(
                Status.PASS,
                f"Not applicable: no image pull secret in {cluster.name} signs in to {where} "
                "with a service principal.",
                target,
                {"registry": host, "secrets": []},
            )
        workloads = estate.list_workloads(cluster)
        rows = [self._row(s, estate, workloads, target) for s in secrets]
        evidence = {"registry": host, "secrets": rows}
        bad = [(s, r) for s, r in zip(secrets, rows, strict=True) if not r["tokenAccepted"]]
        if not bad:
            finding = self.finding(
                Status.PASS,
                f"The registry accepts the service principal credentials in all {len(secrets)} "
                f"pull secret(s) of {cluster.name}.",
                target,
                evidence,
            )
        else:
            why = "; ".join(f"{s.ref} ({_why(r)})" for s, r in bad)
            finding = self.finding(
                Status.FAIL,
                f"The registry rejects the service principal credentials in pull secret(s) {why}, "
                "so pulls with them get 401 Unauthorized.",
                target,
                evidence,
            )
        return replace(finding, commands=self._commands([s for s, _ in bad] or secrets))

    def _row(
        self, secret: PullSecret, estate: Estate, workloads: list[Workload], target: Target
    ) -> dict[str, Any]:
        accepted = estate.registry_token_ok(
            secret.registry_host,
            secret.username,
            secret.password,
            _repository(secret, workloads, target.image),
        )
        row: dict[str, Any] = {
            "namespace": secret.namespace,
            "name": secret.name,
            "registry": secret.registry_host,
            "appId": secret.username,
            "tokenAccepted": accepted,
            "usedBy": workloads_using(workloads, secret),
        }
        row.update(self._graph(secret, estate))
        return row

    def _graph(self, secret: PullSecret, estate: Estate) -> dict[str, Any]:
        """What Entra ID says about the secret's credential; optional (Graph may be unreadable)."""
        try:
            app = estate.get_application(secret.username)
        except ReadError as exc:
            return {"applicationFound": False if isinstance(exc, NotFound) else None}
        now = self.clock()
        # Graph shows the first characters of each secret as its hint: that finds the credential.
        matching = [
            c for c in app.password_credentials if c.hint and secret.password.startswith(c.hint)
        ]
        return {
            "applicationFound": True,
            "credentials": [
                {
                    "keyId": c.key_id,
                    "endDateTime": c.end.isoformat() if c.end else None,
                    "expired": c.expired(now),
                }
                for c in matching
            ],
        }

    def commands(self, target: Target) -> tuple[str, ...]:
        return self._commands([])

    def _commands(self, secrets: list[PullSecret]) -> tuple[str, ...]:
        if not secrets:
            return (
                'kubectl get secret <secret-name> -n <namespace> --output="jsonpath={.data.\\.dockerconfigjson}" '
                "| base64 --decode",
                'az ad sp credential list --id "<username>" --query "[].endDateTime" --output tsv',
            )
        commands: list[str] = []
        for s in secrets:
            commands += [
                f'kubectl get secret {s.name} -n {s.namespace} --output="jsonpath={{.data.\\.dockerconfigjson}}" '
                "| base64 --decode",
                f'az ad sp credential list --id "{s.username}" --query "[].endDateTime" --output tsv',
            ]
        for app_id in sorted({s.username for s in secrets}):
            commands.append(
                f'SP_PASSWORD=$(az ad sp credential reset --id "{app_id}" --append --query password --output tsv)'
            )
        for s in secrets:
            commands.append(
                f"kubectl create secret docker-registry {s.name} -n {s.namespace} "
                f'--docker-server={s.registry_host} --docker-username={s.username} --docker-password="$SP_PASSWORD" '
                "--dry-run=client -o yaml | kubectl apply -f -"
            )
        return tuple(commands)


def _repository(secret: PullSecret, workloads: list[Workload], image: str | None) -> str:
    """A repository the secret is used for, so the token request is the one kubelet makes."""
    candidates = [i for w in workloads if w.uses_secret(secret) for i in w.images]
    candidates += [image] if image else []
    for candidate in candidates:
        if image_registry_host(candidate) == secret.registry_host:
            return image_repository(candidate)
    return PROBE_REPOSITORY


def _why(row: dict[str, Any]) -> str:
    if row.get("applicationFound") is False:
        return f"application {row['appId']} no longer exists"
    credentials = row.get("credentials")
    if credentials and all(c["expired"] for c in credentials):
        return f"its secret expired on {max(c['endDateTime'] for c in credentials)}"
    if credentials == []:
        return f"the secret is not one of application {row['appId']}'s current secrets"
    return "the registry refused the token request"
