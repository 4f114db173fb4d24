"""rotate-sp-secret: give a cluster's service principal a new secret and hand it to its users.

What ``az ad app credential reset --append`` plus ``az aks update-credentials
--reset-service-principal`` do by hand (learn.microsoft.com/azure/aks/update-credentials):

1. Graph ``addPassword`` on the service principal's application: display name
   ``acr-pull-remediator <UTC date>``, valid for :data:`LIFETIME` (one year, what
   ``az ad app credential reset --years 1`` gives and what AKS expects of a cluster credential;
   tenant policies that cap secret lifetimes make Graph refuse, which fails the action cleanly).
2. ``resetServicePrincipalProfile`` on EVERY cluster in the subscriptions in scope whose
   ``servicePrincipalProfile.clientId`` is that appId, all started at once and waited for up to the
   run's ``timeout``. AKS reimages the nodes to apply the new credentials (a node image upgrade):
   this takes minutes to hours, so a reset that outlives the timeout is reported ``in-progress``
   with the clusters still running, for the engine to record as a pending operation.
3. Pull secrets (dockerconfigjson/dockercfg) on those clusters whose username is the appId get
   the new secret.
4. The old passwords are NOT removed in the same run: the record carries their keyIds and the
   time after which :func:`remove_expired_passwords` (called by a later run) may remove them, so
   anything still holding an old secret keeps working while the resets finish.

The new secret lives only in local variables between Graph's answer and the writes that need it:
it is never logged, returned, stored, or put in an exception. Graph hands a secret out once, so a
failed run cannot be resumed with the same secret; a retry mints a new one.

Graph permissions (not Azure RBAC): ``Application.ReadWrite.OwnedBy`` with the app's identity an
owner of each cluster application it may rotate (or ``Application.ReadWrite.All``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.checks.base import Finding, Target
from shared.errors import Busy, ReadError, RemediatorError, TransientError, WriteRejected
from shared.models import Cluster, OperationResult
from shared.permissions import GRAPH_WRITE_OWNED
from shared.ports import Estate
from shared.ports.kubernetes import SECRETS_READ
from shared.ports.rbac import PasswordCredential
from shared.remediations.base import ActionRecord, Plan, Remediation
from shared.rotation_mark import MARKER, rotation_started

log = logging.getLogger(__name__)

ACTION_ID = "rotate-sp-secret"
DISPLAY_NAME = "acr-pull-remediator"
# One year: `az ad app credential reset --years 1`, and the lifetime AKS gives a cluster's SP.
LIFETIME = timedelta(days=365)
# How long the old passwords stay after a rotation: long enough for the resets (node reimages)
# to finish and a later run to verify them, short enough not to keep a leaked secret alive.
GRACE = timedelta(hours=24)
_MC = "Microsoft.ContainerService/managedClusters"
UPDATE_CREDENTIALS_DOC = "https://learn.microsoft.com/azure/aks/update-credentials"


# Graph stamps a password's start in whole seconds by its own clock; the mark carries ours.
CLOCK_SKEW = timedelta(minutes=2)

# AKS's answer while Entra ID does not (yet) accept the secret.
NOT_YET_VALID = "ServicePrincipalValidationClientError"


def _status(exc: RemediatorError) -> str:
    """Busy: worth retrying later (a busy cluster, a secret Entra ID has not accepted yet)."""
    if isinstance(exc, Busy) or (isinstance(exc, WriteRejected) and exc.code == NOT_YET_VALID):
        return "Busy"
    return "Failed"


def service_principal_key(app_id: str) -> str:
    """The lease key of a service principal (a Graph path: it is not an ARM resource)."""
    return f"/servicePrincipals/{app_id.lower()}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RotationRecord(ActionRecord):
    """An :class:`ActionRecord` with what a later run needs; never the secret.

    ``remove_after`` is set only when every reset was started without failure and every pull
    secret was refreshed: then ``old_key_ids`` may be removed with :func:`remove_expired_passwords`
    once that time has passed and ``pending_clusters`` have finished.
    """

    app_id: str = ""
    new_key_id: str = ""
    old_key_ids: tuple[str, ...] = ()
    remove_after: datetime | None = None
    pending_clusters: tuple[str, ...] = ()
    failed_clusters: tuple[str, ...] = ()
    pull_secrets_updated: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "appId": self.app_id,
            "newKeyId": self.new_key_id,
            "oldKeyIds": list(self.old_key_ids),
            "removeAfter": self.remove_after.isoformat() if self.remove_after else None,
            "pendingClusters": list(self.pending_clusters),
            "failedClusters": list(self.failed_clusters),
            "pullSecretsUpdated": list(self.pull_secrets_updated),
        }

    @property
    def pending_removal(self) -> dict[str, Any] | None:
        """The arguments of the later :func:`remove_expired_passwords` call, if one is due."""
        if self.remove_after is None or not self.old_key_ids:
            return None
        return {
            "appId": self.app_id,
            "keyIds": list(self.old_key_ids),
            "notBefore": self.remove_after.isoformat(),
            "clusters": list(self.pending_clusters),
        }


def _newest_valid(
    credentials: Iterable[PasswordCredential], now: datetime
) -> PasswordCredential | None:
    valid = [c for c in credentials if not c.expired(now)]
    never = datetime.max.replace(tzinfo=UTC)
    return max(valid, key=lambda c: c.end or never, default=None)


class RotateSpSecret(Remediation):
    id = ACTION_ID
    permissions = (
        f"{_MC}/read",
        f"{_MC}/resetServicePrincipalProfile/action",
        # Pull secrets: the cluster user kubeconfig, and (Azure RBAC clusters) the secret data actions.
        f"{_MC}/listClusterUserCredential/action",
        SECRETS_READ,
        f"{_MC}/secrets/write",
    )
    graph = (GRAPH_WRITE_OWNED,)

    def __init__(
        self,
        *,
        subscription_ids: Iterable[str] = (),
        renew_within_days: float = 30,
        lifetime: timedelta = LIFETIME,
        grace: timedelta = GRACE,
        max_parallel: int = 8,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """``subscription_ids``: where to look for other clusters using the same service
        principal (the target's subscription is always included). ``renew_within_days`` makes
        ``apply`` a no-op while the newest secret has more days left than that: keep it at least
        the sp-secret-expired check's warning window."""
        self.subscription_ids = tuple(subscription_ids)
        self.renew_within_days = renew_within_days
        self.lifetime = lifetime
        self.grace = grace
        self.max_parallel = max(1, max_parallel)
        self.clock = clock

    def display_name(self, now: datetime) -> str:
        return f"{DISPLAY_NAME} {now:%Y-%m-%d}"

    # -- plan ------------------------------------------------------------------------------

    def plan(self, finding: Finding, target: Target) -> Plan:
        cluster = target.cluster
        rg = cluster.resource.resource_group
        app = cluster.service_principal_client_id or str(finding.evidence.get("appId") or "<appId>")
        years = max(1, round(self.lifetime.days / 365))
        old = [
            str(c.get("keyId")) for c in finding.evidence.get("credentials", ()) if c.get("keyId")
        ]
        commands = [
            f"SP_SECRET=$(az ad app credential reset --id {app} --append "
            f'--display-name "{self.display_name(self.clock())}" --years {years} '
            "--query password -o tsv)",
            f"az aks list --query \"[?servicePrincipalProfile.clientId=='{app}'].[resourceGroup,name]\" "
            "-o tsv",
            f"az aks update-credentials -g {rg} -n {cluster.name} --reset-service-principal "
            f'--service-principal {app} --client-secret "$SP_SECRET"',
            "kubectl get secrets -A --field-selector type=kubernetes.io/dockerconfigjson",
            f"kubectl create secret docker-registry <name> -n <namespace> "
            f"--docker-server=<registry>.azurecr.io --docker-username={app} "
            '--docker-password="$SP_SECRET" --dry-run=client -o yaml | kubectl apply -f -',
            *(f"az ad app credential delete --id {app} --key-id {key}" for key in old),
        ]
        hours = self.grace.total_seconds() / 3600
        return Plan(
            action_id=self.id,
            summary=(
                f"Add a new secret (valid {self.lifetime.days} days) to service principal {app}, "
                f"reset the service principal profile of {cluster.name} and of every other "
                "cluster in scope that uses it, refresh the pull secrets built from it, and "
                f"remove the old secret(s) {hours:.0f} hours later."
            ),
            commands=tuple(commands),
            warnings=(
                "Resetting a cluster's service principal credentials makes AKS reimage its nodes "
                "(a node image upgrade of every node pool): pods are evicted and rescheduled, and "
                f"large clusters take a long time ({UPDATE_CREDENTIALS_DOC}).",
                f"Every cluster in scope whose servicePrincipalProfile.clientId is {app} is reset, "
                f"not only {cluster.name}.",
                "The old secret(s) stay valid until a later run removes them after the grace "
                "period; anything else that uses them must switch to the new secret by then.",
                "The new secret is never shown, logged or stored: the commands read it into "
                "$SP_SECRET.",
            ),
        )

    # -- apply -----------------------------------------------------------------------------

    def apply(
        self, finding: Finding, target: Target, estate: Estate, *, timeout: float
    ) -> ActionRecord:
        cluster = target.cluster
        app_id = cluster.service_principal_client_id
        if not app_id:
            return RotationRecord(
                self.id, "failed", f"{cluster.name} uses managed identities: no secret to rotate"
            )
        now = self.clock()
        try:
            app = estate.get_application(app_id)
            users = self._clusters_using(app_id, cluster, estate)
        except ReadError as exc:
            return RotationRecord(self.id, "failed", f"nothing changed: {exc}", app_id=app_id)
        newest = _newest_valid(app.password_credentials, now)
        left = newest.days_left(now) if newest else None
        unfinished = rotation_started(app.tags)
        if (
            unfinished is None
            and newest is not None
            and (left is None or left > self.renew_within_days)
        ):
            until = newest.end.isoformat() if newest.end else "never expires"
            return RotationRecord(
                self.id,
                "applied",
                f"nothing to rotate: secret {newest.key_id} of {app_id} is valid until {until}",
                app_id=app_id,
            )
        # What an unfinished run added went to no one but the clusters this run resets again.
        leftover = tuple(
            c.key_id
            for c in app.password_credentials
            if unfinished is not None
            and (c.display_name or "").startswith(DISPLAY_NAME)
            and c.start is not None
            and c.start >= unfinished - CLOCK_SKEW
        )
        tags = tuple(t for t in app.tags if not t.startswith(MARKER))
        try:
            estate.set_application_tags(app_id, (*tags, f"{MARKER}{now.isoformat()}"))
        except RemediatorError as exc:
            if isinstance(exc, TransientError):
                raise Busy(f"Graph did not answer; nothing changed: {exc}") from None
            return RotationRecord(
                self.id,
                "failed",
                f"could not mark the rotation, nothing changed: {exc}",
                app_id=app_id,
            )
        try:
            old = tuple(c.key_id for c in app.password_credentials)
            return self._rotate(
                app_id,
                users,
                old=old,
                leftover=leftover,
                now=now,
                estate=estate,
                timeout=timeout,
            )
        finally:
            self._unmark(app_id, tags, estate)

    def _unmark(self, app_id: str, tags: tuple[str, ...], estate: Estate) -> None:
        try:
            estate.set_application_tags(app_id, tags)
        except RemediatorError as exc:
            # The next run sees the mark and rotates again: safe, only more work.
            log.warning("rotate-sp-secret: could not unmark %s: %s", app_id, exc)

    def _rotate(
        self,
        app_id: str,
        users: list[Cluster],
        *,
        old: tuple[str, ...],
        leftover: tuple[str, ...],
        now: datetime,
        estate: Estate,
        timeout: float,
    ) -> RotationRecord:
        name = self.display_name(now)
        try:
            new = estate.add_application_password(
                app_id, display_name=name, end=now + self.lifetime
            )
        except RemediatorError as exc:
            # Graph may have added it and lost the answer: nobody holds that secret, remove it.
            self._remove_strays(app_id, name, old, keep=None, estate=estate)
            if isinstance(exc, TransientError):
                raise Busy(f"Graph did not answer addPassword; nothing changed: {exc}") from None
            return RotationRecord(
                self.id, "failed", f"Graph added no password, nothing changed: {exc}", app_id=app_id
            )
        # A retried request whose first answer was lost adds a second password: remove it too.
        self._remove_strays(app_id, name, old, keep=new.key_id, estate=estate)
        log.info(
            "rotate-sp-secret: added password %s to %s; resetting %d cluster(s)",
            new.key_id,
            app_id,
            len(users),
        )
        resets = self._reset(users, app_id, new.secret_text, estate, timeout)
        if not any(r.succeeded or r.status == "InProgress" for _, r in resets.values()):
            self._discard(app_id, new.key_id, resets, estate)
        updated, secret_errors = self._refresh_pull_secrets(users, app_id, new.secret_text, estate)
        new_key_id, new_end = new.key_id, new.end
        del new  # the only reference to the secret text
        if leftover and all(r.succeeded for _, r in resets.values()) and not secret_errors:
            # Every holder of the unfinished run's secret has the new one now: no grace needed.
            removed = self._remove_passwords(app_id, leftover, "unfinished run's", estate)
            old = tuple(k for k in old if k not in removed)
        return self._record(
            app_id=app_id,
            new_key_id=new_key_id,
            new_end=new_end,
            old=old,
            now=now,
            resets=resets,
            updated=updated,
            secret_errors=secret_errors,
        )

    def blast_radius(self, finding: Finding, target: Target, estate: Estate) -> tuple[str, ...]:
        """The service principal and every cluster whose credentials a rotation resets."""
        app_id = target.cluster.service_principal_client_id
        if not app_id:
            return ()
        try:
            users = self._clusters_using(app_id, target.cluster, estate)
        except ReadError:
            users = []  # apply reads them again and fails cleanly, changing nothing
        return (service_principal_key(app_id), *(c.id for c in users))

    def _clusters_using(self, app_id: str, target: Cluster, estate: Estate) -> list[Cluster]:
        subscriptions = dict.fromkeys(
            s.lower() for s in (target.resource.subscription_id, *self.subscription_ids)
        )
        found = {target.id.lower(): target}
        for subscription_id in subscriptions:
            for cluster in estate.list_clusters(subscription_id):
                client = cluster.service_principal_client_id
                if client and client.lower() == app_id.lower():
                    found.setdefault(cluster.id.lower(), cluster)
        return sorted(found.values(), key=lambda c: c.id.lower())

    def _reset(
        self, users: list[Cluster], app_id: str, secret: str, estate: Estate, timeout: float
    ) -> dict[str, tuple[Cluster, OperationResult]]:
        """Start every reset at once (the secret cannot be kept for a later run), wait together."""
        deadline = time.monotonic() + max(0.0, timeout)

        def reset(cluster: Cluster) -> tuple[Cluster, OperationResult]:
            wait = 1.0
            while True:
                remaining = max(0.0, deadline - time.monotonic())
                try:
                    result = estate.reset_service_principal_profile(
                        cluster.id, client_id=app_id, secret=secret, timeout=remaining
                    )
                except WriteRejected as exc:
                    # Entra ID accepts a new secret seconds to minutes after addPassword: until
                    # then AKS's check of it fails as for a wrong one. Wait and try again.
                    if exc.code != NOT_YET_VALID or remaining <= wait:
                        return cluster, OperationResult(_status(exc), str(exc))
                    time.sleep(wait)
                    wait = min(wait * 2, 15.0)
                    continue
                except RemediatorError as exc:
                    return cluster, OperationResult(_status(exc), str(exc))
                return cluster, result

        workers = min(len(users), self.max_parallel)
        with ThreadPoolExecutor(workers, thread_name_prefix="sp-reset") as pool:
            return {c.id: (c, r) for c, r in pool.map(reset, users)}

    def _remove_strays(
        self, app_id: str, name: str, old: tuple[str, ...], *, keep: str | None, estate: Estate
    ) -> None:
        """Remove passwords this run added whose secret it never received (a lost response)."""
        try:
            current = estate.get_application(app_id).password_credentials
        except ReadError as exc:
            log.warning(
                "rotate-sp-secret: could not look for stray passwords of %s: %s", app_id, exc
            )
            return
        known = {k.lower() for k in (*old, keep or "")}
        strays = tuple(
            c.key_id for c in current if c.display_name == name and c.key_id.lower() not in known
        )
        self._remove_passwords(app_id, strays, "stray", estate)

    def _remove_passwords(
        self, app_id: str, key_ids: tuple[str, ...], what: str, estate: Estate
    ) -> tuple[str, ...]:
        """Remove passwords no one holds (``what`` names them in the log); the ones removed."""
        removed = []
        for key_id in key_ids:
            try:
                estate.remove_application_password(app_id, key_id)
            except RemediatorError as exc:
                log.warning("rotate-sp-secret: kept %s password %s: %s", what, key_id, exc)
                continue
            log.info("rotate-sp-secret: removed %s password %s of %s", what, key_id, app_id)
            removed.append(key_id)
        return tuple(removed)

    def _discard(
        self,
        app_id: str,
        key_id: str,
        resets: dict[str, tuple[Cluster, OperationResult]],
        estate: Estate,
    ) -> None:
        """No cluster took the new secret: remove it (no run leaves an orphaned credential), and
        when the clusters were only busy or Entra ID had not accepted it yet, retry later."""
        try:
            estate.remove_application_password(app_id, key_id)
        except (ReadError, WriteRejected) as exc:
            log.warning("rotate-sp-secret: could not remove unused password %s: %s", key_id, exc)
            return
        log.info("rotate-sp-secret: removed unused password %s of %s", key_id, app_id)
        if resets and all(r.status == "Busy" for _, r in resets.values()):
            details = "; ".join(r.detail for _, r in resets.values())
            raise Busy(f"nothing changed (the new password was removed unused): {details}")

    def _refresh_pull_secrets(
        self, users: list[Cluster], app_id: str, secret: str, estate: Estate
    ) -> tuple[list[str], list[str]]:
        updated: list[str] = []
        errors: list[str] = []
        for cluster in users:
            try:
                entries = estate.list_pull_secrets(cluster)
            except ReadError as exc:
                errors.append(f"{cluster.name}: could not list pull secrets ({exc})")
                continue
            for entry in entries:
                if entry.username.lower() != app_id.lower():
                    continue
                where = f"{cluster.name}/{entry.ref} ({entry.registry_host})"
                try:
                    estate.update_pull_secret(
                        cluster,
                        entry.namespace,
                        entry.name,
                        registry_host=entry.registry_host,
                        username=entry.username,
                        password=secret,
                    )
                except (ReadError, WriteRejected) as exc:
                    errors.append(f"{where}: {exc}")
                    continue
                updated.append(where)
        return updated, errors

    def _record(
        self,
        *,
        app_id: str,
        new_key_id: str,
        new_end: datetime | None,
        old: tuple[str, ...],
        now: datetime,
        resets: dict[str, tuple[Cluster, OperationResult]],
        updated: list[str],
        secret_errors: list[str],
    ) -> RotationRecord:
        done = sorted(c.name for c, r in resets.values() if r.succeeded)
        pending = sorted(cid for cid, (_, r) in resets.items() if r.status == "InProgress")
        failed = {
            cid: f"{c.name}: {r.status} {r.detail}".strip()
            for cid, (c, r) in resets.items()
            if not r.succeeded and r.status != "InProgress"
        }
        parts = [
            f"added password {new_key_id} to {app_id}"
            + (f" (valid until {new_end.isoformat()})" if new_end else "")
        ]
        if done:
            parts.append(f"reset the service principal profile of {', '.join(done)}")
        if pending:
            names = ", ".join(sorted(resets[cid][0].name for cid in pending))
            parts.append(f"reset still running on {names}: verify later")
        if failed:
            parts.append(f"reset FAILED on {'; '.join(failed.values())}")
        parts.append(
            f"updated pull secrets {', '.join(updated)}" if updated else "no pull secret uses it"
        )
        if secret_errors:
            parts.append(f"pull secrets NOT updated: {'; '.join(secret_errors)}")
        clean = not failed and not secret_errors
        remove_after = now + self.grace if clean and old else None
        if remove_after is not None:
            parts.append(
                f"old password(s) {', '.join(old)} may be removed after {remove_after.isoformat()}"
            )
        elif old:
            parts.append(f"keep old password(s) {', '.join(old)} until this is resolved")
        status = "failed" if not clean else "in-progress" if pending else "applied"
        return RotationRecord(
            self.id,
            status,
            "; ".join(parts),
            app_id=app_id,
            new_key_id=new_key_id,
            old_key_ids=old,
            remove_after=remove_after,
            pending_clusters=tuple(pending),
            failed_clusters=tuple(sorted(failed)),
            pull_secrets_updated=tuple(updated),
        )


def remove_expired_passwords(
    estate: Estate,
    app_id: str,
    key_ids: Iterable[str],
    *,
    not_before: datetime | None = None,
    now: datetime | None = None,
) -> ActionRecord:
    """The deferred last step of a rotation: remove the old passwords, by keyId.

    Called by a later run once ``not_before`` (the record's ``remove_after``) has passed and the
    rotation's pending resets have finished. Idempotent: keys already gone are skipped. Refuses to
    leave the application without a valid password.
    """
    now = now or _utcnow()
    wanted = {k.lower(): k for k in key_ids}
    if not_before is not None and now < not_before:
        return ActionRecord(
            ACTION_ID, "in-progress", f"the grace period runs until {not_before.isoformat()}"
        )
    try:
        app = estate.get_application(app_id)
    except ReadError as exc:
        return ActionRecord(ACTION_ID, "failed", f"nothing removed: {exc}")
    present = [c for c in app.password_credentials if c.key_id.lower() in wanted]
    kept = [c for c in app.password_credentials if c.key_id.lower() not in wanted]
    if present and _newest_valid(kept, now) is None:
        return ActionRecord(
            ACTION_ID,
            "failed",
            f"refusing to remove {', '.join(c.key_id for c in present)}: {app_id} would have no "
            "valid password left",
        )
    removed: list[str] = []
    for credential in present:
        try:
            estate.remove_application_password(app_id, credential.key_id)
        except (ReadError, WriteRejected) as exc:
            done = f"removed {', '.join(removed)}; " if removed else ""
            return ActionRecord(
                ACTION_ID, "failed", f"{done}could not remove {credential.key_id}: {exc}"
            )
        removed.append(credential.key_id)
    gone = sorted(set(wanted) - {c.key_id.lower() for c in present})
    parts = [f"removed old password(s) {', '.join(removed)} of {app_id}" if removed else ""]
    if gone:
        parts.append(f"already gone: {', '.join(gone)}")
    return ActionRecord(
        ACTION_ID, "applied", "; ".join(p for p in parts if p) or "nothing to remove"
    )
