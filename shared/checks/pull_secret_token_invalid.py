"""Cause 1a, beyond the guide: a pull secret built from an ACR repository-scoped token fails.

The guide knows two kinds of pull secret (a service principal, the admin user); a token is the
third (``az acr token create``): username = the token's name, password = one of its two slots.
Its pulls get 401 when the token is disabled, when the slot's password expired or was generated
again, and when its scope map has no ``content/read`` on the image's repository. ARM shows the
token's status, scope map and each slot's creation time and expiry, never the values: whether
the secret's password is current is asked of the registry's token service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.checks.pull_secret_sp_invalid import GUID
from shared.errors import ReadError
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
from shared.ports.registries import Registry
from shared.ports.registry_tokens import RegistryToken, ScopeMap
from shared.resource_id import ResourceId

CAUSE = "pull-secret-token-invalid"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def token_secrets(
    secrets: list[PullSecret], registry: Registry, tokens: list[RegistryToken]
) -> list[tuple[PullSecret, RegistryToken]]:
    """The registry's entries whose username is one of its tokens (not admin, not an appId)."""
    by_name = {t.name.lower(): t for t in tokens}
    host = registry.login_server.lower()
    return [
        (s, by_name[s.username.lower()])
        for s in secrets
        if s.registry_host == host and s.username.lower() in by_name
    ]


def maybe_token(secret: PullSecret, registry: Registry) -> bool:
    """Could this entry be a token's? Saves listing tokens when no secret could be one."""
    return (
        secret.registry_host == registry.login_server.lower()
        and secret.username.lower() != registry.name.lower()
        and not GUID.match(secret.username)
    )


def slot_used(token: RegistryToken, now: datetime) -> tuple[str | None, str]:
    """(the slot a secret the registry rejects held, how that is told).

    ARM never says which slot a secret holds. A rejected secret held a slot that expired, or one
    generated again after the secret was written: with one expired slot, that one; else with the
    slots generated at different times, the newer (``password2`` regenerated after ``password1``
    breaks the secrets that held ``password2``); a token with one slot, that one."""
    expired = [p for p in token.passwords if p.expired(now)]
    if len(expired) == 1:
        [slot] = expired
        return slot.name, f"{slot.name} expired on {_when(slot.expiry)}"
    if len(token.passwords) == 1:
        return token.passwords[0].name, f"the token has only {token.passwords[0].name}"
    created = [p for p in token.passwords if p.created is not None]
    if len(created) == 2 and created[0].created != created[1].created:
        newer = max(created, key=lambda p: p.created or now)
        return newer.name, f"{newer.name} was generated last ({_when(newer.created)})"
    return None, "which slot it held cannot be told (both generated together)"


class PullSecretTokenInvalid(Check):
    meta = CheckMeta(
        id=CAUSE,
        family="1a",
        title="Image pull secrets built from repository-scoped ACR tokens can pull their images",
        guide_section="Beyond the guide (cause 1a): pull secrets built from an ACR token "
        "(az acr token create) need an enabled token, a current password and a scope map with "
        "content/read on the repository",
        severity="high",
        reads=(
            USER_CREDENTIAL,
            SECRETS_READ,
            *WORKLOAD_READS,
            "Microsoft.ContainerRegistry/registries/read",
            "Microsoft.ContainerRegistry/registries/tokens/read",
            "Microsoft.ContainerRegistry/registries/scopeMaps/read",
        ),
        action_id="refresh-pull-secret",
    )

    def __init__(self, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.clock = clock

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
        secrets = [s for s in estate.list_pull_secrets(cluster) if maybe_token(s, registry)]
        pairs = (
            token_secrets(secrets, registry, estate.list_registry_tokens(registry.id))
            if secrets
            else []
        )
        if not pairs:
            return self.finding(
                Status.PASS,
                f"Not applicable: no image pull secret in {cluster.name} signs in to "
                f"{registry.login_server} with a repository-scoped token.",
                target,
                {"registry": registry.id, "secrets": []},
            )
        workloads = estate.list_workloads(cluster)
        maps: dict[str, ScopeMap] = {}
        rows = [
            self._row(s, t, estate, workloads=workloads, target=target, maps=maps) for s, t in pairs
        ]
        evidence = {"registry": registry.id, "secrets": rows}
        bad = [(s, r) for (s, _), r in zip(pairs, rows, strict=True) if r["problems"]]
        commands = self._fix_commands(target, registry, pairs, rows)
        if not bad:
            unknown = [
                s for (s, _), r in zip(pairs, rows, strict=True) if r["credentialsAccepted"] is None
            ]
            if unknown:
                return replace(
                    self.finding(
                        Status.UNKNOWN,
                        "Could not tell whether the registry accepts the token credentials in "
                        f"{', '.join(s.ref for s in unknown)}.",
                        target,
                        evidence,
                    ),
                    commands=commands,
                )
            finding = self.finding(
                Status.PASS,
                f"All {len(rows)} token pull secret(s) of {cluster.name} sign in to "
                f"{registry.name} and may pull the repositories their pods use.",
                target,
                evidence,
            )
            return replace(finding, commands=commands)
        why = "; ".join(f"{s.ref}: {', '.join(r['problems'])}" for s, r in bad)
        fixable = any(r["regenerate"] for _, r in bad)
        finding = self.finding(
            Status.FAIL,
            f"Pulls with token pull secret(s) of {registry.name} get 401 Unauthorized: {why}.",
            target,
            evidence,
            fixable=fixable,
        )
        return replace(finding, commands=commands)

    def _row(
        self,
        secret: PullSecret,
        token: RegistryToken,
        estate: Estate,
        *,
        workloads: list[Workload],
        target: Target,
        maps: dict[str, ScopeMap],
    ) -> dict[str, Any]:
        now = self.clock()
        repositories = _repositories(secret, workloads, target.image)
        key = token.scope_map_id.lower()
        if key not in maps:
            maps[key] = estate.get_scope_map(token.scope_map_id)
        scope_map = maps[key]
        missing = [r for r in repositories if not scope_map.allows(r)]
        try:
            accepted: bool | None = estate.registry_token_ok(
                secret.registry_host,
                secret.username,
                secret.password,
                repositories[0] if repositories else "acr-pull-remediator/probe",
            )
        except ReadError:
            accepted = None
        problems: list[str] = []
        slot, how = None, "the registry accepts the password"
        if not token.enabled:
            problems.append(f"token {token.name} is disabled")
        elif accepted is False:
            slot, how = slot_used(token, now)
            held = token.password(slot) if slot else None
            if held is not None and held.expired(now):
                problems.append(f"its {slot} of token {token.name} expired on {_when(held.expiry)}")
            else:
                problems.append(
                    f"its password is no longer a current password of token {token.name} "
                    f"(regenerated; {how})"
                )
        if missing:
            problems.append(
                f"scope map {scope_map.name} has no content/read on {', '.join(missing)}"
            )
        return {
            "namespace": secret.namespace,
            "name": secret.name,
            "registry": secret.registry_host,
            "token": token.name,
            "tokenId": token.id,
            "status": token.status,
            "scopeMap": scope_map.id,
            "scopeMapActions": list(scope_map.actions),
            "repositories": repositories,
            "repositoriesWithoutRead": missing,
            "passwords": [
                {
                    "name": p.name,
                    "creationTime": _when(p.created),
                    "expiry": _when(p.expiry),
                    "expired": p.expired(now),
                }
                for p in token.passwords
            ],
            "credentialsAccepted": accepted,
            "slotUsed": slot,
            "slotEvidence": how,
            "problems": problems,
            # What generateCredentials can fix: a rejected password of an enabled token.
            "regenerate": token.enabled and accepted is False and not missing,
            "usedBy": workloads_using(workloads, secret),
        }

    def commands(self, target: Target) -> tuple[str, ...]:
        name = ResourceId.parse(target.registry_id).name if target.registry_id else "<registry>"
        return (
            f"az acr token list -r {name} -o table",
            f"az acr token show -n <token> -r {name}",
            f"az acr scope-map show -n <scope-map> -r {name}",
        )

    def _fix_commands(
        self,
        target: Target,
        registry: Registry,
        pairs: list[tuple[PullSecret, RegistryToken]],
        rows: list[dict[str, Any]],
    ) -> tuple[str, ...]:
        cluster = target.cluster
        acr = registry.name
        commands = [
            f"az aks get-credentials -g {cluster.resource.resource_group} -n {cluster.name}"
        ]
        for (secret, token), row in zip(pairs, rows, strict=True):
            map_name = token.scope_map_id.rsplit("/", 1)[-1]
            commands += [
                f"az acr token show -n {token.name} -r {acr}",
                f"az acr scope-map show -n {map_name} -r {acr}",
            ]
            if not token.enabled:
                commands.append(f"az acr token update -n {token.name} -r {acr} --status enabled")
            for repository in row["repositoriesWithoutRead"]:
                commands.append(
                    f"az acr scope-map update -n {map_name} -r {acr} --add-repository "
                    f"{repository} content/read metadata/read"
                )
            if row["problems"] and row["regenerate"]:
                slot = row["slotUsed"] or "password1"
                commands += [
                    f"TOKEN_PASSWORD=$(az acr token credential generate -n {token.name} -r {acr} "
                    f'--{slot} --query "passwords[0].value" -o tsv)',
                    f"kubectl create secret docker-registry {secret.name} -n {secret.namespace} "
                    f"--docker-server={registry.login_server} --docker-username={token.name} "
                    '--docker-password="$TOKEN_PASSWORD" --dry-run=client -o yaml | kubectl apply -f -',
                ]
        return tuple(dict.fromkeys(commands))


def _repositories(secret: PullSecret, workloads: list[Workload], image: str | None) -> list[str]:
    """The repositories of the registry the secret's pods pull (and the image diagnosed)."""
    images = [i for w in workloads if w.uses_secret(secret) for i in w.images]
    images += [image] if image else []
    found = [image_repository(i) for i in images if image_registry_host(i) == secret.registry_host]
    return sorted(set(found))


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
