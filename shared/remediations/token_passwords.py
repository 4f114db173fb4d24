"""refresh-pull-secret for repository-scoped tokens: a new password, written where it is needed.

A token's password cannot be read back, so a secret the registry rejects can only get a NEW
value: ``generateCredentials`` for the slot the secret held (see
:func:`shared.checks.pull_secret_token_invalid.slot_used`; ``password1`` when that cannot be
told), with the lifetime that slot had. Generating a slot invalidates its old value everywhere,
so after it every pull secret of that token in every cluster in scope that the registry no longer
accepts gets the new value (else the clusters would take turns breaking each other). A disabled
token is not fixed by a password: that is reported, and nothing changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.checks.pull_secret_sp_invalid import PROBE_REPOSITORY
from shared.checks.pull_secret_token_invalid import slot_used
from shared.errors import ReadError, TransientError, WriteRejected
from shared.models import Cluster
from shared.ports import Estate
from shared.ports.kubernetes import PullSecret
from shared.ports.registries import Registry
from shared.ports.registry_tokens import RegistryToken, TokenPassword

log = logging.getLogger(__name__)


def new_expiry(old: TokenPassword | None, now: datetime) -> datetime | None:
    """The expiry of a regenerated slot: the lifetime the slot had (none if it had none)."""
    if old is None or old.expiry is None or old.created is None:
        return None
    return now + max(old.expiry - old.created, timedelta(days=1))


@dataclass(repr=False)  # the new value passes through: never shown
class TokenRefresh:
    registry: Registry
    estate: Estate
    # Where the token's secrets may be (the target first); read only when a slot is generated.
    clusters: Callable[[], list[Cluster]]
    timeout: float
    now: Callable[[], datetime]
    written: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def refresh(self, token: RegistryToken, entries: list[PullSecret]) -> None:
        """The target cluster's entries of ``token``: regenerate if any is rejected."""
        refs = sorted({e.ref for e in entries})
        if not token.enabled:
            self.problems.append(
                f"token {token.name} is disabled: a new password would not help (az acr token "
                f"update -n {token.name} -r {self.registry.name} --status enabled)"
            )
            return
        rejected = [e for e in entries if self._accepted(e, e.password) is False]
        if not rejected:
            self.current += refs
            return
        now = self.now()
        slot, how = slot_used(token, now)
        slot = slot or "password1"
        try:
            issued = self.estate.generate_token_password(
                self.registry.id,
                token.id,
                slot=slot,
                expiry=new_expiry(token.password(slot), now),
                timeout=self.timeout,
            )
        except (ReadError, WriteRejected, TransientError) as exc:
            self.problems.append(f"could not generate {slot} of token {token.name}: {exc}")
            return
        log.info(
            "refresh-pull-secret: generated %s of token %s of %s (%s)",
            slot,
            token.name,
            self.registry.name,
            how,
        )
        try:
            clusters = self.clusters()
        except ReadError as exc:
            self.problems.append(f"could not list the clusters that may use {token.name}: {exc}")
            return
        for cluster in clusters:
            self._write(cluster, token, slot, issued.value)

    def _write(self, cluster: Cluster, token: RegistryToken, slot: str, value: str) -> None:
        try:
            entries = [
                e
                for e in self.estate.list_pull_secrets(cluster)
                if e.registry_host == self.registry.login_server.lower()
                and e.username.lower() == token.name.lower()
            ]
        except ReadError as exc:
            self.problems.append(
                f"{cluster.name}: pull secrets not readable after {token.name}'s {slot} was "
                f"generated again; update them by hand ({exc.reason})"
            )
            return
        for entry in entries:
            where = f"{cluster.name}/{entry.ref}"
            if self._accepted(entry, entry.password):
                continue  # it holds the other slot
            try:
                self.estate.update_pull_secret(
                    cluster,
                    entry.namespace,
                    entry.name,
                    registry_host=entry.registry_host,
                    username=token.name,
                    password=value,
                )
            except (ReadError, WriteRejected) as exc:
                self.problems.append(f"could not update {where}: {exc}")
                continue
            self.written.append(f"{where} ({token.name} {slot})")
            if self._accepted(entry, value) is False:
                self.problems.append(f"updated {where} but the registry rejects the new {slot}")

    def _accepted(self, entry: PullSecret, password: str) -> bool | None:
        try:
            return self.estate.registry_token_ok(
                entry.registry_host, entry.username, password, PROBE_REPOSITORY
            )
        except ReadError as exc:
            self.problems.append(f"{entry.ref}: could not test its credentials: {exc.reason}")
            return None


def token_plan_parts(rows: list[Mapping[str, Any]], acr: str) -> tuple[list[str], str, list[str]]:
    """(commands, summary, warnings) of the plan for token pull secrets (evidence rows)."""
    bad = [r for r in rows if r.get("regenerate")]
    commands: list[str] = []
    for row in bad:
        token, slot = row.get("token"), row.get("slotUsed") or "password1"
        commands.append(
            f"TOKEN_PASSWORD=$(az acr token credential generate -n {token} -r {acr} --{slot} "
            '--query "passwords[0].value" -o tsv)'
        )
        commands.append(
            f"kubectl create secret docker-registry {row.get('name')} -n {row.get('namespace')} "
            f"--docker-server={row.get('registry')} --docker-username={token} "
            "--docker-password=<redacted> --dry-run=client -o yaml | kubectl apply -f -"
        )
    tokens = sorted({f"{r.get('token')} ({r.get('slotUsed') or 'password1'})" for r in bad})
    summary = (
        f"Generate a new password of token(s) {', '.join(tokens) or '<none>'} of {acr} "
        "(generateCredentials, the slot each secret held, with that slot's lifetime) and write "
        "it into every pull secret of the token in the clusters in scope that the registry no "
        "longer accepts, then check that the registry accepts them."
    )
    warnings = [
        "Generating a slot again invalidates its old value everywhere: pull secrets and docker "
        "logins outside the clusters in scope that held it must be updated by hand.",
    ]
    if any(r.get("problems") and not r.get("regenerate") for r in rows):
        warnings.append(
            "A disabled token or a scope map without content/read is not fixed by a new "
            "password: see the finding's commands."
        )
    return commands, summary, warnings
