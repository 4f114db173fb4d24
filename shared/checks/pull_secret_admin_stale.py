"""Cause 1a, solution 6: an image pull secret holds an ACR admin password that was regenerated."""

from __future__ import annotations

import hmac
from dataclasses import replace

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.ports import Estate
from shared.ports.kubernetes import (
    SECRETS_READ,
    USER_CREDENTIAL,
    WORKLOAD_READS,
    PullSecret,
    workloads_using,
)
from shared.ports.registries import Registry
from shared.resource_id import ResourceId


class PullSecretAdminStale(Check):
    meta = CheckMeta(
        id="pull-secret-admin-stale",
        family="1a",
        title="Image pull secrets hold the registry's current admin password",
        guide_section="Cause 1a, Solution 6: Make sure the Kubernetes secret has the correct "
        "values of the container registry admin account",
        severity="high",
        reads=(
            USER_CREDENTIAL,
            SECRETS_READ,
            *WORKLOAD_READS,
            "Microsoft.ContainerRegistry/registries/read",
            "Microsoft.ContainerRegistry/registries/listCredentials/action",
        ),
        action_id="refresh-pull-secret",
    )

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        cluster = target.cluster
        if target.registry_id is None:
            return self.finding(
                Status.UNKNOWN,
                "Could not tell: no registry was given to compare the pull secrets with.",
                target,
                {},
            )
        registry = estate.get_registry(target.registry_id)
        secrets = [
            s
            for s in estate.list_pull_secrets(cluster)
            if s.registry_host == registry.login_server.lower()
            and s.username.lower() == registry.name.lower()
        ]
        if not secrets:
            return self.finding(
                Status.PASS,
                f"Not applicable: no image pull secret in {cluster.name} signs in to "
                f"{registry.login_server} as its admin user.",
                target,
                {"registry": registry.id, "secrets": []},
            )
        credentials = estate.list_registry_credentials(registry.id)
        current = credentials.passwords if credentials else ()
        workloads = estate.list_workloads(cluster)
        rows = [
            {
                "namespace": s.namespace,
                "name": s.name,
                "registry": s.registry_host,
                "username": s.username,
                "passwordMatchesCurrent": _matches(s.password, current),
                "usedBy": workloads_using(workloads, s),
            }
            for s in secrets
        ]
        evidence = {
            "registry": registry.id,
            "adminUserEnabled": credentials is not None,
            "secrets": rows,
        }
        stale = [
            s for s, row in zip(secrets, rows, strict=True) if not row["passwordMatchesCurrent"]
        ]
        names = ", ".join(s.ref for s in stale)
        if credentials is None:
            finding = self.finding(
                Status.FAIL,
                f"Pull secret(s) {names} sign in as the admin user of {registry.name}, which is "
                "disabled, so their pulls get 401 Unauthorized; enable the admin user or pull with "
                "the kubelet identity instead.",
                target,
                evidence,
                fixable=False,
            )
        elif stale:
            finding = self.finding(
                Status.FAIL,
                f"Pull secret(s) {names} hold an admin password of {registry.name} that is no "
                "longer current (it was regenerated), so their pulls get 401 Unauthorized.",
                target,
                evidence,
            )
        else:
            finding = self.finding(
                Status.PASS,
                f"All {len(secrets)} pull secret(s) that sign in to {registry.name} as its admin "
                "user hold a current admin password.",
                target,
                evidence,
            )
        return replace(finding, commands=self._commands(target, registry, stale or secrets))

    def commands(self, target: Target) -> tuple[str, ...]:
        name = ResourceId.parse(target.registry_id).name if target.registry_id else "<registry>"
        return (
            f"az aks get-credentials -g {target.cluster.resource.resource_group} -n {target.cluster.name}",
            'kubectl get secret <secret-name> -n <namespace> --output="jsonpath={.data.\\.dockerconfigjson}" '
            "| base64 --decode",
            f"az acr credential show -n {name}",
        )

    def _commands(
        self, target: Target, registry: Registry, secrets: list[PullSecret]
    ) -> tuple[str, ...]:
        cluster = target.cluster
        commands = [
            f"az aks get-credentials -g {cluster.resource.resource_group} -n {cluster.name}"
        ]
        for s in secrets:
            commands.append(
                f'kubectl get secret {s.name} -n {s.namespace} --output="jsonpath={{.data.\\.dockerconfigjson}}" '
                "| base64 --decode"
            )
        commands.append(f"az acr credential show -n {registry.name}")
        for s in secrets:
            commands.append(
                f"kubectl create secret docker-registry {s.name} -n {s.namespace} "
                f"--docker-server={registry.login_server} --docker-username={registry.name} "
                f"--docker-password=\"$(az acr credential show -n {registry.name} --query 'passwords[0].value' -o tsv)\" "
                "--dry-run=client -o yaml | kubectl apply -f -"
            )
        return tuple(commands)


def _matches(password: str, current: tuple[str, ...]) -> bool:
    return any(hmac.compare_digest(password.encode(), c.encode()) for c in current)
