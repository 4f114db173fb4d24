"""refresh-pull-secret: write the registry's current credentials into the pull secrets that use it.

Fixes pull-secret-admin-stale and pull-secret-sp-invalid (guide, cause 1a, solutions 5 and 6),
and pull-secret-token-invalid (beyond the guide; :mod:`shared.remediations.token_passwords`).
Every dockerconfigjson (and legacy dockercfg) secret in every namespace with an entry for the
registry's login server is looked at; only that entry changes, the secret's other registries are
kept, and ``auth`` is rewritten as base64(user:pass):

- an admin-account entry (username = registry name) gets the registry name and the current value
  of the password slot it used (``password`` or ``password2``: see
  :func:`shared.checks.pull_secret_admin_stale.slot_used`), so a rotation that moved users to one
  slot is not undone; ``password`` when the slot cannot be told, and the record says so; an entry
  holding either current password is left alone;
- a service principal entry (username = appId) can only get a NEW secret of that application,
  which this action cannot mint: the caller hands it over through :class:`SpPasswords` (as
  rotate-sp-secret, which issues the secret, can). Without one, an entry the registry rejects
  makes the action fail with "needs rotate-sp-secret"; an entry the registry accepts is kept;
- a repository-scoped token entry (username = one of the registry's tokens) that the registry
  rejects gets a new password of the slot it held, from ``generateCredentials``, written into every
  secret of that token in the clusters in scope that the registry no longer accepts.

A finding of one cause only touches entries of its kind. Secrets already current are not
written (no PATCH). After writing, a token request to the registry with the written credentials
verifies them. Passwords and dockerconfigjson content never reach a log line, the plan, the
action record or an exception.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from shared.checks.base import Finding, Target
from shared.checks.pull_secret_admin_stale import slot_used
from shared.checks.pull_secret_sp_invalid import GUID, PROBE_REPOSITORY
from shared.checks.pull_secret_token_invalid import maybe_token, token_secrets
from shared.errors import ReadError, WriteRejected
from shared.models import Cluster
from shared.ports import Estate
from shared.ports.kubernetes import SECRETS_READ, USER_CREDENTIAL, PullSecret
from shared.ports.rbac import NewPassword
from shared.ports.registries import Registry, RegistryCredentials
from shared.ports.registry_tokens import RegistryToken
from shared.remediations.base import ActionRecord, Plan, Remediation
from shared.remediations.token_passwords import TokenRefresh, token_plan_parts
from shared.resource_id import ResourceId

log = logging.getLogger(__name__)

ACTION_ID = "refresh-pull-secret"
NEEDS_ROTATION = "needs rotate-sp-secret"
_ADMIN, _SP, _TOKEN = "admin", "sp", "token"
_KINDS_BY_CAUSE = {
    "pull-secret-admin-stale": {_ADMIN},
    "pull-secret-sp-invalid": {_SP},
    "pull-secret-token-invalid": {_TOKEN},
}


class SpPasswords(Protocol):
    """Where new service principal secrets come from (rotate-sp-secret issues them).

    ``password_for`` returns a secret of application ``app_id`` that Entra ID accepts now, or None
    when the caller has none. Implementations must not show secrets in ``repr``.
    """

    def password_for(self, app_id: str) -> str | None: ...


@dataclass(frozen=True)
class IssuedPasswords:
    """:class:`SpPasswords` from secrets just added with Graph ``addPassword``: appId -> password."""

    passwords: Mapping[str, NewPassword] = field(repr=False)

    def password_for(self, app_id: str) -> str | None:
        for key, issued in self.passwords.items():
            if key.lower() == app_id.lower():
                return issued.secret_text
        return None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(repr=False)  # holds credentials: never shown
class _Run:
    """One apply: what it works with, and what happened to each secret (refs only)."""

    cluster: Cluster
    registry: Registry
    kinds: set[str]
    credentials: RegistryCredentials | None
    sp_passwords: SpPasswords | None
    estate: Estate
    written: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Every admin entry for the registry in the cluster: which slot a stale one held.
    admin_entries: list[PullSecret] = field(default_factory=list)
    slots: dict[str, str] = field(default_factory=dict)

    def refresh(self, entries: list[PullSecret]) -> None:
        """One secret: write the credentials its entry for the registry should hold, if they
        differ from what it holds, then verify them with a token request."""
        wanted = self._wanted(entries)
        if wanted is None:
            return
        entry, (username, password) = entries[0], wanted
        try:
            self.estate.update_pull_secret(
                self.cluster,
                entry.namespace,
                entry.name,
                registry_host=entry.registry_host,
                username=username,
                password=password,
            )
        except (ReadError, WriteRejected) as exc:
            self.problems.append(f"could not update {entry.ref}: {exc}")
            return
        log.info(
            "refresh-pull-secret: updated the %s entry of %s in %s",
            self.registry.name,
            entry.ref,
            self.cluster.name,
        )
        self.written.append(
            f"{entry.ref} ({self.slots[entry.ref]})" if entry.ref in self.slots else entry.ref
        )
        if self._accepted(entry, username, password, doing="verify it") is False:
            self.problems.append(
                f"updated {entry.ref} but the registry rejects the credentials written (a new "
                "service principal secret can take a few minutes to be accepted)"
            )

    def _wanted(self, entries: list[PullSecret]) -> tuple[str, str] | None:
        """(username, password) to write, or None when there is nothing to write."""
        entry = entries[0]
        if _is_admin(entry, self.registry) and _ADMIN in self.kinds:
            credentials = self.credentials
            if credentials is None or not credentials.passwords:
                self.problems.append(
                    f"{entry.ref}: the admin user of {self.registry.name} is disabled (enable "
                    "it, or pull with the kubelet identity instead)"
                )
                return None
            if all(credentials.slot_of(e.password) is not None for e in entries):
                self.current.append(entry.ref)
                return None
            others = [o for o in self.admin_entries if o.ref != entry.ref]
            slot, _ = slot_used(entry, credentials, others)
            self.slots[entry.ref] = slot or "password (the slot it held cannot be told)"
            value = credentials.value_of(slot or "password") or credentials.passwords[0].value
            return self.registry.name, value
        if GUID.match(entry.username) and _SP in self.kinds:
            sp = self.sp_passwords
            new = sp.password_for(entry.username) if sp is not None else None
            if new is not None and not all(_same(e.password, new) for e in entries):
                return entry.username, new
            accepted = new is not None or self._accepted(
                entry, entry.username, entry.password, doing="test its credentials"
            )
            if accepted:
                self.current.append(entry.ref)
            elif accepted is False:
                self.problems.append(
                    f"{entry.ref}: the registry rejects service principal {entry.username} and "
                    f"no new secret was provided ({NEEDS_ROTATION})"
                )
        return None  # other credentials (a token, another cause's entry) are not ours

    def _accepted(
        self, entry: PullSecret, username: str, password: str, *, doing: str
    ) -> bool | None:
        """Does the registry give a token for these credentials? None (noted) if unknown."""
        try:
            return self.estate.registry_token_ok(
                entry.registry_host, username, password, PROBE_REPOSITORY
            )
        except ReadError as exc:
            self.problems.append(f"{entry.ref}: could not {doing}: {exc.reason}")
            return None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RefreshPullSecret(Remediation):
    id = ACTION_ID
    permissions = (
        "Microsoft.ContainerRegistry/registries/read",
        "Microsoft.ContainerRegistry/registries/listCredentials/action",
        "Microsoft.ContainerRegistry/registries/tokens/read",
        "Microsoft.ContainerRegistry/registries/generateCredentials/action",
        USER_CREDENTIAL,
        SECRETS_READ,
        "Microsoft.ContainerService/managedClusters/secrets/write",
    )

    def __init__(
        self, *, subscription_ids: Iterable[str] = (), clock: Callable[[], datetime] = _utcnow
    ) -> None:
        """``subscription_ids``: where else to look for pull secrets of a token whose password
        this action generates again (the target's subscription is always included)."""
        self.subscription_ids = tuple(subscription_ids)
        self.clock = clock

    def blast_radius(self, finding: Finding, target: Target, estate: Estate) -> tuple[str, ...]:
        """The tokens whose password this run may generate again: one instance at a time may,
        or two clusters' runs could each invalidate the other's new value."""
        if finding.cause_id != "pull-secret-token-invalid":
            return ()
        rows = [r for r in finding.evidence.get("secrets") or () if isinstance(r, Mapping)]
        return tuple(sorted({str(r["tokenId"]) for r in rows if r.get("regenerate")}))

    # -- plan ------------------------------------------------------------------------------

    def plan(self, finding: Finding, target: Target) -> Plan:
        cluster = target.cluster
        acr = ResourceId.parse(target.registry_id).name if target.registry_id else "<acr>"
        rows = [r for r in finding.evidence.get("secrets") or () if isinstance(r, Mapping)]
        if finding.cause_id == "pull-secret-token-invalid":
            login = [
                f"az aks get-credentials -g {cluster.resource.resource_group} -n {cluster.name}"
            ]
            commands, summary, warnings = token_plan_parts(rows, acr)
            return Plan(self.id, summary, (*login, *commands), tuple(warnings))
        bad = [r for r in rows if not r.get("passwordMatchesCurrent", r.get("tokenAccepted", True))]
        rows = bad or rows
        admin = [r for r in rows if "appId" not in r]
        sp = [r for r in rows if "appId" in r]
        commands = [
            f"az aks get-credentials -g {cluster.resource.resource_group} -n {cluster.name}"
        ]
        if admin or finding.cause_id != "pull-secret-sp-invalid":
            commands.append(f"az acr credential show -n {acr}")
        for row in rows:
            user = row.get("appId") or row.get("username") or acr
            server = row.get("registry") or f"{acr}.azurecr.io"
            commands.append(
                f"kubectl create secret docker-registry {row.get('name')} -n "
                f"{row.get('namespace')} --docker-server={server} --docker-username={user} "
                "--docker-password=<redacted> --dry-run=client -o yaml | kubectl apply -f -"
            )
        if not rows:
            commands.append(
                "kubectl create secret docker-registry <name> -n <namespace> "
                f"--docker-server={acr}.azurecr.io --docker-username=<user> "
                "--docker-password=<redacted> --dry-run=client -o yaml | kubectl apply -f -"
            )
        names = (
            ", ".join(f"{r.get('namespace')}/{r.get('name')}" for r in rows) or "the pull secrets"
        )
        summary = f"Write the current credentials of {acr} into {names} in {cluster.name}"
        summary += (
            " (the registry's admin password; service principal secrets only when "
            "rotate-sp-secret provides a new secret), then check that the registry accepts them."
        )
        warnings = [
            "The kubectl commands rewrite the whole secret; the remediation changes only the "
            f"{acr} entry and keeps the secret's other registries.",
            "Pods in ImagePullBackOff pick up the new credentials at their next pull retry "
            "(back-off up to 5 minutes); running pods are not restarted.",
        ]
        for app_id in sorted({str(r["appId"]) for r in sp}):
            warnings.append(
                f"Service principal {app_id}: a new secret comes from rotate-sp-secret "
                f'(az ad sp credential reset --id "{app_id}" --append); without one this action '
                f"fails ({NEEDS_ROTATION})."
            )
        return Plan(self.id, summary, tuple(commands), tuple(warnings))

    # -- apply -----------------------------------------------------------------------------

    def apply(
        self,
        finding: Finding,
        target: Target,
        estate: Estate,
        *,
        timeout: float,
        sp_passwords: SpPasswords | None = None,
    ) -> ActionRecord:
        """``sp_passwords``: new service principal secrets; without them SP entries are only
        checked, never written."""
        cluster = target.cluster
        if target.registry_id is None:
            return ActionRecord(self.id, "failed", "no registry was given to refresh secrets for")
        kinds = _KINDS_BY_CAUSE.get(finding.cause_id, {_ADMIN, _SP})
        try:
            registry = estate.get_registry(target.registry_id)
            host = registry.login_server.lower()
            by_secret: dict[str, list[PullSecret]] = {}
            for entry in estate.list_pull_secrets(cluster):
                if entry.registry_host == host:
                    by_secret.setdefault(entry.ref, []).append(entry)
            admin = _ADMIN in kinds and any(
                _is_admin(e, registry) for entries in by_secret.values() for e in entries
            )
            credentials = estate.list_registry_credentials(registry.id) if admin else None
        except ReadError as exc:
            return ActionRecord(self.id, "failed", f"nothing changed: {exc.reason}")
        run = _Run(cluster, registry, kinds, credentials, sp_passwords, estate)
        run.admin_entries = [
            e for entries in by_secret.values() for e in entries if _is_admin(e, registry)
        ]
        for entries in by_secret.values():
            run.refresh(entries)
        if _TOKEN in kinds:
            self._refresh_tokens(run, [e for es in by_secret.values() for e in es], timeout)
        return self._record(registry, cluster, run)

    def _refresh_tokens(self, run: _Run, entries: list[PullSecret], timeout: float) -> None:
        candidates = [e for e in entries if maybe_token(e, run.registry)]
        if not candidates:
            return
        try:
            tokens = run.estate.list_registry_tokens(run.registry.id)
        except ReadError as exc:
            run.problems.append(f"could not list the tokens of {run.registry.name}: {exc.reason}")
            return
        by_token: dict[str, tuple[RegistryToken, list[PullSecret]]] = {}
        for entry, token in token_secrets(candidates, run.registry, tokens):
            by_token.setdefault(token.id.lower(), (token, []))[1].append(entry)
        refresh = TokenRefresh(
            run.registry,
            run.estate,
            lambda: self._clusters(run.cluster, run.estate),
            timeout,
            self.clock,
        )
        for token, token_entries in by_token.values():
            refresh.refresh(token, token_entries)
        run.written += refresh.written
        run.current += refresh.current
        run.problems += refresh.problems

    def _clusters(self, target: Cluster, estate: Estate) -> list[Cluster]:
        """The target, then every other cluster in the subscriptions in scope."""
        subscriptions = dict.fromkeys(
            s.lower() for s in (target.resource.subscription_id, *self.subscription_ids)
        )
        found = {target.id.lower(): target}
        for subscription_id in subscriptions:
            for cluster in estate.list_clusters(subscription_id):
                found.setdefault(cluster.id.lower(), cluster)
        return list(found.values())

    def _record(self, registry: Registry, cluster: Cluster, outcome: _Run) -> ActionRecord:
        parts: list[str] = []
        if outcome.written:
            parts.append(
                f"updated {', '.join(outcome.written)} with current credentials of {registry.name}"
            )
        if outcome.current:
            parts.append(f"already current: {', '.join(outcome.current)}")
        if outcome.problems:
            parts.append("; ".join(outcome.problems))
            return ActionRecord(self.id, "failed", "; ".join(parts))
        if not parts:
            return ActionRecord(
                self.id,
                "applied",
                f"no pull secret in {cluster.name} signs in to {registry.login_server} with "
                "credentials this action manages",
            )
        if outcome.written:
            parts.append("the registry accepts them")
        return ActionRecord(self.id, "applied", "; ".join(parts))


def _is_admin(entry: PullSecret, registry: Registry) -> bool:
    return entry.username.lower() == registry.name.lower()
