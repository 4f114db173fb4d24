"""Cause 1a, solution 6: an image pull secret holds an ACR admin password that was regenerated."""

from __future__ import annotations

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
from shared.ports.registries import ADMIN_PASSWORD_SLOTS, Registry, RegistryCredentials
from shared.resource_id import ResourceId


def slot_used(
    entry: PullSecret, credentials: RegistryCredentials, others: list[PullSecret]
) -> tuple[str | None, str]:
    """(the admin password slot ``entry`` holds or held, how that is known).

    A current password names its slot. A stale one held the slot that was regenerated, which
    Azure does not tell; when the registry's other admin secrets in the cluster all hold one slot,
    the usual rotation (move users to one slot, regenerate the other) says it held the other."""
    slot = credentials.slot_of(entry.password)
    if slot is not None:
        return slot, "holds its current value"
    held = {credentials.slot_of(o.password) for o in others} - {None}
    if len(held) == 1:
        [current] = held
        [other] = [s for s in ADMIN_PASSWORD_SLOTS if s != current]
        return (
            other,
            f"the registry's other admin pull secrets hold {current}, so {other} was regenerated",
        )
    return None, "regenerated; which slot it held cannot be told"


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
        workloads = estate.list_workloads(cluster)
        rows = [_row(s, credentials, secrets, workloads_using(workloads, s)) for s in secrets]
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
            held = sorted(
                {
                    str(r["slotUsed"])
                    for r in rows
                    if r.get("slotUsed") and not r["passwordMatchesCurrent"]
                }
            )
            which = f" ({' and '.join(held)} regenerated)" if held else " (it was regenerated)"
            finding = self.finding(
                Status.FAIL,
                f"Pull secret(s) {names} hold an admin password of {registry.name} that is no "
                f"longer current{which}, so their pulls get 401 Unauthorized.",
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
        slots = {f"{r['namespace']}/{r['name']}": r.get("slotUsed") for r in rows}
        return replace(finding, commands=self._commands(target, registry, stale or secrets, slots))

    def commands(self, target: Target) -> tuple[str, ...]:
        name = ResourceId.parse(target.registry_id).name if target.registry_id else "<registry>"
        return (
            f"az aks get-credentials -g {target.cluster.resource.resource_group} -n {target.cluster.name}",
            'kubectl get secret <secret-name> -n <namespace> --output="jsonpath={.data.\\.dockerconfigjson}" '
            "| base64 --decode",
            f"az acr credential show -n {name}",
        )

    def _commands(
        self,
        target: Target,
        registry: Registry,
        secrets: list[PullSecret],
        slots: dict[str, object],
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
            slot = slots.get(s.ref) or "password"
            commands.append(
                f"kubectl create secret docker-registry {s.name} -n {s.namespace} "
                f"--docker-server={registry.login_server} --docker-username={registry.name} "
                f'--docker-password="$(az acr credential show -n {registry.name} --query '
                f'"passwords[?name==\'{slot}\'].value | [0]" -o tsv)" '
                "--dry-run=client -o yaml | kubectl apply -f -"
            )
        return tuple(commands)


def _row(
    secret: PullSecret,
    credentials: RegistryCredentials | None,
    secrets: list[PullSecret],
    used_by: object,
) -> dict[str, object]:
    """Evidence for one secret: which admin password slot it holds, or held before it was
    regenerated (``slotUsed``), never the value."""
    row: dict[str, object] = {
        "namespace": secret.namespace,
        "name": secret.name,
        "registry": secret.registry_host,
        "username": secret.username,
        "passwordMatchesCurrent": False,
        "passwordSlot": None,
        "usedBy": used_by,
    }
    if credentials is not None:
        others = [o for o in secrets if o.ref != secret.ref]
        slot, how = slot_used(secret, credentials, others)
        current = credentials.slot_of(secret.password)
        row.update(
            passwordMatchesCurrent=current is not None,
            passwordSlot=current,
            slotUsed=slot,
            slotEvidence=how,
        )
    return row
