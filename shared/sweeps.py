"""Timer sweeps, the alert webhook's work, and the hand-over of what a run could not finish.

- **drift**: :meth:`Engine.verify_pending` first, then every check for every (cluster, registry)
  pair in scope (a cluster with no registry gets its cluster-only checks). The safety net for
  events that were lost.
- **pull failures**: pods waiting in ``ErrImagePull``/``ImagePullBackOff`` -> classify the
  kubelet's message (:mod:`shared.classify`) -> run the checks of the message's candidate
  families for (cluster, the registry of the image's host, the image) -> respond. A message with
  no signal (a bare "Back-off pulling image") is looked up in the pod's ``Failed`` events; still
  nothing: every check runs.
- **expiry**: the service principals in use (clusters' ``servicePrincipalProfile.clientId``,
  GUID usernames of image pull secrets) -> days left of each app's newest secret -> at each
  policy window (``expiryWindows``, and "expired") one ticket per app, with a comment each time
  the app crosses into the next window, and ``rotate-sp-secret`` where the policy says ``auto``
  (through the responder, as for any finding). Likewise the registries' repository-scoped tokens
  that pull secrets are built from: one ticket per token at each window of its first password to
  expire (:mod:`shared.token_expiry`). Crossing a window is claimed once in the state
  store (``Engine.once``), keyed by app, newest secret and window, so a daily sweep does not
  comment the same window twice.

**Budget.** A run starts no new task once its budget is spent: the remaining tasks become
hand-over messages (JSON, one task each) for the ``sweep_handover`` queue function, so no run
is killed by the host's ``functionTimeout`` in the middle of a change. A task that fails with a
:class:`TransientError` is handed over too, and the run goes on.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from shared.alerts import Alert
from shared.checks import CHECKS, Finding, Status, Target
from shared.checks.pull_secret_token_invalid import maybe_token, token_secrets
from shared.classify import classify
from shared.engine import Engine, RetryLater
from shared.errors import Forbidden, NotFound, ReadError, TransientError
from shared.images import InvalidImageReference, parse_image
from shared.models import Cluster
from shared.outcome import Outcome, Verdict
from shared.pairs import PairFinder
from shared.policy import Policy
from shared.ports.kubernetes import PullSecret, image_registry_host
from shared.ports.rbac import Application, PasswordCredential
from shared.ports.registries import Registry
from shared.registry_hosts import look_alike
from shared.remediations import REMEDIATIONS
from shared.resource_id import ResourceId
from shared.rotation_mark import rotation_started, unfinished_summary
from shared.signals import MAX_FIELD_LENGTH, BadSignal
from shared.token_expiry import TokenUse, all_expired, expiry_finding, first_to_expire

log = logging.getLogger(__name__)

SWEEPS = ("drift", "pull-failures", "expiry", "alert")
HANDOVER_VERSION = 1
CAUSE = "sp-secret-expired"
ROTATE = "rotate-sp-secret"
# Checks that need no registry: what a cluster that pulls from no registry in scope gets.
CLUSTER_ONLY = ("kubelet-identity-detached", "sp-secret-expired")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
MAX_LISTED = 100  # clusters and pull secrets carried in one expiry hand-over message


def _utcnow() -> datetime:
    return datetime.now(UTC)


def causes_for(families: Iterable[str]) -> tuple[str, ...]:
    """The cause ids of the guide's families (``CHECKS[..].meta.family``); every cause if none."""
    wanted = set(families)
    causes = tuple(cid for cid, check in CHECKS.items() if check.meta.family in wanted)
    return causes or tuple(CHECKS)


def application_resource_id(app_id: str) -> str:
    """The Microsoft Graph path of an application by appId: the expiry ticket's resource."""
    return f"/applications(appId='{app_id.lower()}')"


class Budget:
    """Wall-clock seconds a run may spend starting work."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._deadline = clock() + seconds

    def spent(self) -> bool:
        return self._clock() >= self._deadline


# -- tasks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairTask:
    """Run some checks for one target and respond."""

    sweep: str
    target: Target
    causes: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, str, tuple[str, ...]]:
        t = self.target
        return (t.cluster.id.lower(), (t.registry_id or "").lower(), t.image or "", self.causes)

    def message(self, signal_id: str) -> dict[str, Any]:
        return {
            "v": HANDOVER_VERSION,
            "sweep": self.sweep,
            "signal": signal_id,
            "cluster": self.target.cluster.id,
            "registry": self.target.registry_id,
            "image": self.target.image,
            "causes": list(self.causes),
        }


@dataclass(frozen=True)
class AppUse:
    """A service principal application and where it is used."""

    app_id: str
    sp_clusters: tuple[Cluster, ...] = ()  # clusters whose servicePrincipalProfile it is
    pull_secrets: tuple[tuple[Cluster, str], ...] = ()  # (cluster, "namespace/name (host)")

    @property
    def sweep(self) -> str:
        return "expiry"

    @property
    def home(self) -> Cluster:
        """The cluster the policy scope, the lease and the rotation are decided for."""
        return self.sp_clusters[0] if self.sp_clusters else self.pull_secrets[0][0]

    def message(self, signal_id: str) -> dict[str, Any]:
        return {
            "v": HANDOVER_VERSION,
            "sweep": "expiry",
            "signal": signal_id,
            "app": self.app_id,
            "clusters": [c.id for c in self.sp_clusters][:MAX_LISTED],
            "pullSecrets": [{"cluster": c.id, "ref": ref} for c, ref in self.pull_secrets][
                :MAX_LISTED
            ],
        }


Task = PairTask | AppUse | TokenUse


@dataclass
class SweepReport:
    sweep: str
    signal_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    handed_over: list[str] = field(default_factory=list)  # queue messages
    planned: int = 0  # tasks this run knew of (checked + handed over): coverage's denominator
    notes: list[str] = field(default_factory=list)  # what was left out, and why

    def summary(self) -> dict[str, Any]:
        return {
            "sweep": self.sweep,
            "signal": self.signal_id,
            "processed": len(self.outcomes),
            "handedOver": len(self.handed_over),
            "verdicts": dict(Counter(o.verdict.value for o in self.outcomes)),
            "notes": self.notes[:20],
        }


# -- the sweeps ----------------------------------------------------------------------------------


class Sweeps:
    def __init__(
        self,
        engine: Engine,
        policy: Policy,
        *,
        budget: Budget,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.engine = engine
        self.estate = engine.estate
        self.policy = policy
        self.budget = budget
        self.clock = clock
        self.subscriptions = tuple(sorted(engine.settings.subscriptions))

    @cached_property
    def finder(self) -> PairFinder:
        """One per run: the remembered pairs are read from the store once."""
        return self.engine.pairs()

    # drift ------------------------------------------------------------------------------------

    def drift(self, signal_id: str) -> SweepReport:
        report = SweepReport("drift", signal_id)
        report.outcomes.extend(self.engine.verify_pending())
        tasks: list[Task] = []
        for cluster in self._clusters(report):
            tasks += self.drift_tasks(cluster)
        self._run(tasks, report)
        return report

    def drift_tasks(self, cluster: Cluster) -> list[Task]:
        """Every check of every pair of one cluster (its cluster-only checks when it has none)."""
        pairs = self.finder.registries_of(cluster)
        tasks: list[Task] = [
            PairTask("drift", Target(cluster, p.registry.id, p.image), tuple(CHECKS)) for p in pairs
        ] or [PairTask("drift", Target(cluster), CLUSTER_ONLY)]
        # Each image on a mistyped login server: image-not-found names the typo.
        tasks += [
            PairTask("drift", Target(cluster, p.registry.id, image), ("image-not-found",))
            for p in pairs
            for image in p.mistyped
        ]
        return tasks

    # pull failures ----------------------------------------------------------------------------

    def pull_failures(self, signal_id: str) -> SweepReport:
        report = SweepReport("pull-failures", signal_id)
        registries = self._registries_by_host(report)
        tasks: list[Task] = []
        for cluster in self._clusters(report):
            tasks += self._cluster_failures(cluster, registries, report, "pull-failures")
        self._run(_unique(tasks), report)
        return report

    def alert(self, alert: Alert, signal_id: str) -> SweepReport:
        """The pods an alert names (their messages), and the failing pods of clusters it names."""
        report = SweepReport("alert", signal_id)
        report.notes.extend(alert.skipped)
        registries = self._registries_by_host(report)
        tasks: list[Task] = []
        by_cluster: dict[str, list[Any]] = {}
        for pod in alert.pods:
            by_cluster.setdefault(pod.cluster_id.lower(), []).append(pod)
        for pods in by_cluster.values():
            cluster = self._cluster_in_scope(pods[0].cluster_id, report)
            if cluster is None:
                continue
            for pod in pods:
                where = f"{cluster.name}/{pod.namespace}/{pod.pod}"
                task = self._failure_task(
                    cluster,
                    None,
                    messages=[pod.message],
                    registries=registries,
                    report=report,
                    sweep="alert",
                    where=where,
                )
                if task is not None:
                    tasks.append(task)
        for cluster_id in alert.clusters:
            cluster = self._cluster_in_scope(cluster_id, report)
            if cluster is not None:
                tasks += self._cluster_failures(cluster, registries, report, "alert")
        self._run(_unique(tasks), report)
        return report

    def _cluster_failures(
        self, cluster: Cluster, registries: Mapping[str, Registry], report: SweepReport, sweep: str
    ) -> list[Task]:
        try:
            failures = self.estate.list_pull_failures(cluster)
        except ReadError as exc:
            report.notes.append(f"{cluster.name}: pods not readable ({exc.reason})")
            return []
        events: list[Any] | None = None
        tasks: list[Task] = []
        for failure in failures:
            messages = [failure.message]
            if classify(failure.message).cause == "unknown":
                if events is None:
                    events = self._pull_events(cluster)
                messages += [
                    e.message
                    for e in events
                    if e.namespace == failure.namespace and e.involved_name == failure.pod
                ]
            where = f"{cluster.name}/{failure.namespace}/{failure.pod}"
            task = self._failure_task(
                cluster,
                failure.image,
                messages=messages,
                registries=registries,
                report=report,
                sweep=sweep,
                where=where,
            )
            if task is not None:
                tasks.append(task)
        return tasks

    def _failure_task(
        self,
        cluster: Cluster,
        image: str | None,
        *,
        messages: list[str],
        registries: Mapping[str, Registry],
        report: SweepReport,
        sweep: str,
        where: str,
    ) -> PairTask | None:
        """Classify the first message that says something; the pair is the image's registry."""
        results = [classify(m) for m in messages if m]
        decided = next((c for c in results if c.cause != "unknown"), None)
        image = image or next((c.image for c in results if c.image), None)
        if not image:
            report.notes.append(f"{where}: the message names no image")
            return None
        try:
            ref = parse_image(image)
        except InvalidImageReference:
            # kubelet's InvalidImageName: image-not-found says why; no registry to pair with.
            return PairTask(sweep, Target(cluster, None, image), ("image-not-found",))
        registry = registries.get(image_registry_host(str(ref)))
        if registry is None:
            meant = look_alike(ref.registry, registries)
            if meant is None:
                report.notes.append(f"{where}: {ref.registry} is not a registry in scope")
                return None
            # A mistyped login server (azureacr.io): the pull of that registry cannot work, and
            # image-not-found names the typo; nothing else is worth checking until it is fixed.
            target = Target(cluster, registries[meant].id, str(ref))
            return PairTask(sweep, target, ("image-not-found",))
        causes = causes_for(decided.candidates if decided else ())
        self.finder.remember(cluster, registry.id)  # a failing pull is a pair too
        return PairTask(sweep, Target(cluster, registry.id, str(ref)), causes)

    def _pull_events(self, cluster: Cluster) -> list[Any]:
        try:
            return list(self.estate.list_pull_events(cluster))
        except ReadError:
            return []

    # expiry -----------------------------------------------------------------------------------

    def expiry(self, signal_id: str) -> SweepReport:
        report = SweepReport("expiry", signal_id)
        self._run(self.expiry_tasks(report, self._clusters(report)), report)
        return report

    def expiry_tasks(self, report: SweepReport, clusters: list[Cluster]) -> list[Task]:
        """The service principals and registry tokens these clusters use, and where."""
        in_clusters = self._pull_secrets(report, clusters)
        return [*self._app_uses(in_clusters), *self._token_uses(in_clusters, report)]

    def _pull_secrets(
        self, report: SweepReport, clusters: list[Cluster]
    ) -> list[tuple[Cluster, list[PullSecret]]]:
        found: list[tuple[Cluster, list[PullSecret]]] = []
        for cluster in clusters:
            try:
                found.append((cluster, self.estate.list_pull_secrets(cluster)))
            except ReadError as exc:
                report.notes.append(f"{cluster.name}: pull secrets not readable ({exc.reason})")
                found.append((cluster, []))
        return found

    def _app_uses(self, in_clusters: list[tuple[Cluster, list[PullSecret]]]) -> list[AppUse]:
        sp: dict[str, list[Cluster]] = {}
        secrets: dict[str, list[tuple[Cluster, str]]] = {}
        for cluster, entries in in_clusters:
            client = cluster.service_principal_client_id
            if client and GUID.match(client):
                sp.setdefault(client.lower(), []).append(cluster)
            for entry in entries:
                if GUID.match(entry.username):
                    where = f"{entry.ref} ({entry.registry_host})"
                    secrets.setdefault(entry.username.lower(), []).append((cluster, where))
        return [
            AppUse(app, tuple(sp.get(app, ())), tuple(secrets.get(app, ())))
            for app in sorted(set(sp) | set(secrets))
        ]

    def _token_uses(
        self, in_clusters: list[tuple[Cluster, list[PullSecret]]], report: SweepReport
    ) -> list[TokenUse]:
        """Tokens that pull secrets are built from; a registry's tokens are listed only when a
        secret for it could be a token's (not its admin user, not a service principal)."""
        if not any(GUID.match(e.username) is None for _, entries in in_clusters for e in entries):
            return []
        registries = self._registries_by_host(report)
        uses: dict[str, TokenUse] = {}
        listed: dict[str, list[Any]] = {}
        for cluster, entries in in_clusters:
            for entry in entries:
                registry = registries.get(entry.registry_host)
                if registry is None or not maybe_token(entry, registry):
                    continue
                if registry.id.lower() not in listed:
                    try:
                        listed[registry.id.lower()] = self.estate.list_registry_tokens(registry.id)
                    except ReadError as exc:
                        report.notes.append(f"tokens of {registry.name}: {exc.reason}")
                        listed[registry.id.lower()] = []
                for _, token in token_secrets([entry], registry, listed[registry.id.lower()]):
                    use = uses.get(token.id.lower()) or TokenUse(registry, token.id, token.name, ())
                    uses[token.id.lower()] = TokenUse(
                        registry,
                        token.id,
                        token.name,
                        (*use.pull_secrets, (cluster, entry.ref)),
                    )
        return [uses[key] for key in sorted(uses)]

    def _token_expiry(self, use: TokenUse, signal_id: str) -> Outcome:
        home = use.home
        try:
            tokens = self.estate.list_registry_tokens(use.registry.id)
        except (NotFound, Forbidden) as exc:
            reason = f"tokens of {use.registry.name} cannot be read: {exc.reason}"
            return Outcome(signal_id, Verdict.UNKNOWN, reason, home.id)
        token = next((t for t in tokens if t.id.lower() == use.token_id.lower()), None)
        if token is None:
            reason = f"token {use.token_name} of {use.registry.name} no longer exists"
            return Outcome(signal_id, Verdict.IGNORED, reason, home.id)
        now = self.clock()
        scope = self.policy.scope_for(home)
        slot = first_to_expire(token, now)
        days = slot.days_left(now) if slot else None
        if all_expired(token, now):
            window: int | None = 0
        else:
            window = scope.expiry_window(days) if days is not None else None
        label = window_label(window)
        finding = expiry_finding(
            use, token, now=now, window=window, windows=scope.expiry_windows, label=label
        )
        target = Target(home, use.registry.id)
        if finding.status is not Status.FAIL:
            return self.engine.respond(signal_id, target, (finding,))  # closes an open ticket
        expiry = slot.expiry.isoformat() if slot and slot.expiry else "none"
        crossing = f"expiry:{use.token_id.lower()}:{slot.name if slot else 'all'}:{expiry}:{label}"
        outcomes = self.engine.once(
            crossing, lambda: [self.engine.respond(signal_id, target, (finding,))]
        )
        if outcomes[0].verdict is Verdict.IGNORED:
            reason = f"token {use.token_name} was already notified for the {label} window"
            return Outcome(signal_id, Verdict.IGNORED, reason, home.id, (finding,))
        return outcomes[0]

    def _expiry(self, use: AppUse, signal_id: str) -> Outcome:
        home = use.home
        try:
            app = self.estate.get_application(use.app_id)
        except (NotFound, Forbidden) as exc:
            reason = f"application {use.app_id} cannot be read: {exc.reason}"
            return Outcome(signal_id, Verdict.UNKNOWN, reason, home.id)
        now = self.clock()
        newest, days, expired = newest_secret(app, now)
        scope = self.policy.scope_for(home)
        window = 0 if expired else (scope.expiry_window(days) if days is not None else None)
        finding = self._expiry_finding(
            use,
            app,
            now=now,
            newest=newest,
            days=days,
            window=window,
            windows=scope.expiry_windows,
        )
        started = rotation_started(app.tags)
        if started is not None:
            finding = _unfinished_rotation(finding, started)
        target = Target(home)
        if finding.status is not Status.FAIL:
            return self.engine.respond(signal_id, target, (finding,))  # closes an open ticket
        label = window_label(window) if started is None else f"rotation of {started.isoformat()}"
        crossing = f"expiry:{use.app_id}:{newest.key_id if newest else 'none'}:{label}"
        outcomes = self.engine.once(
            crossing, lambda: [self.engine.respond(signal_id, target, (finding,))]
        )
        if outcomes[0].verdict is Verdict.IGNORED:
            reason = f"{use.app_id} was already notified for the {label} window"
            return Outcome(signal_id, Verdict.IGNORED, reason, home.id, (finding,))
        return outcomes[0]

    def _expiry_finding(
        self,
        use: AppUse,
        app: Application,
        *,
        now: datetime,
        newest: PasswordCredential | None,
        days: float | None,
        window: int | None,
        windows: tuple[int, ...],
    ) -> Finding:
        app_id, name = use.app_id, app.display_name or use.app_id
        users = [f"cluster {c.name}" for c in use.sp_clusters] + [
            f"pull secret {ref} in {c.name}" for c, ref in use.pull_secrets
        ]
        used = f"; used by {', '.join(users[:10])}" + (" and more" if len(users) > 10 else "")
        label = window_label(window)
        evidence: dict[str, Any] = {
            "appId": app_id,
            "displayName": app.display_name,
            "window": label,
            "daysLeft": None if days is None else round(days, 1),
            "newestKeyId": newest.key_id if newest else None,
            "expiryWindows": list(windows),
            "credentials": [
                {
                    "keyId": c.key_id,
                    "displayName": c.display_name,
                    "endDateTime": c.end.isoformat() if c.end else None,
                    "daysLeft": None if (left := c.days_left(now)) is None else round(left, 1),
                }
                for c in sorted(app.password_credentials, key=lambda c: c.end or now)
            ],
            "clusters": [c.id for c in use.sp_clusters],
            "pullSecrets": [f"{c.name}/{ref}" for c, ref in use.pull_secrets],
        }
        if window is None:
            validity = "never expires" if days is None else f"is valid for {days:.0f} more days"
            summary = f"The newest secret of service principal {name} ({app_id}) {validity}{used}."
            status = Status.PASS
        elif window == 0:
            ended = f"ended {abs(days):.0f} days ago" if days is not None else "does not exist"
            summary = (
                f"Every secret of service principal {name} ({app_id}) has expired (the newest "
                f"{ended}): the expired window{used}. Pulls and node tokens that use it fail."
            )
            status = Status.FAIL
        else:
            summary = (
                f"The newest secret of service principal {name} ({app_id}) expires in "
                f"{days or 0:.0f} days, inside the {label} window{used}."
            )
            status = Status.FAIL
        rotatable = bool(use.sp_clusters) and ROTATE in REMEDIATIONS
        return Finding(
            cause_id=CAUSE,
            status=status,
            summary=summary,
            resource_id=application_resource_id(app_id),
            action_id=ROTATE if status is Status.FAIL and rotatable else None,
            evidence=evidence,
            commands=_expiry_commands(use),
        )

    # hand-over --------------------------------------------------------------------------------

    def handover(self, message: Mapping[str, Any]) -> Outcome:
        """One task of an earlier run, re-read from scratch (the estate may have changed)."""
        task = self._task_of(message)
        if isinstance(task, str):
            return Outcome(str(message.get("signal", "")), Verdict.IGNORED, task)
        outcome = self._one(task, str(message["signal"]))
        if outcome.verdict is Verdict.DEFERRED:
            # Fail the message: the queue makes it visible again after its visibility timeout.
            raise RetryLater(outcome.reason, [outcome])
        return outcome

    def _task_of(self, message: Mapping[str, Any]) -> Task | str:
        try:
            if message["sweep"] == "expiry" and "token" in message:
                return self._token_task(message)
            if message["sweep"] == "expiry":
                clusters = tuple(self.estate.get_cluster(c) for c in message["clusters"])
                homes = {c.id.lower(): c for c in clusters}
                secrets = []
                for entry in message["pullSecrets"]:
                    cluster_id = str(entry["cluster"])
                    cluster = homes.get(cluster_id.lower()) or self.estate.get_cluster(cluster_id)
                    homes[cluster.id.lower()] = cluster
                    secrets.append((cluster, str(entry["ref"])))
                if not clusters and not secrets:
                    return f"application {message['app']} is used nowhere"
                return AppUse(str(message["app"]), clusters, tuple(secrets))
            cluster = self.estate.get_cluster(str(message["cluster"]))
        except NotFound as exc:
            return f"nothing to do: {exc.reason}"
        target = Target(cluster, message.get("registry"), message.get("image"))
        return PairTask(str(message["sweep"]), target, tuple(message["causes"]))

    def _token_task(self, message: Mapping[str, Any]) -> Task | str:
        token_id = str(message["token"])
        registry = self.estate.get_registry(token_id[: token_id.lower().rfind("/tokens/")])
        homes: dict[str, Cluster] = {}
        secrets = []
        for entry in message["pullSecrets"]:
            cluster_id = str(entry["cluster"])
            cluster = homes.get(cluster_id.lower()) or self.estate.get_cluster(cluster_id)
            homes[cluster.id.lower()] = cluster
            secrets.append((cluster, str(entry["ref"])))
        if not secrets:
            return f"token {token_id} is used nowhere"
        name = token_id.rsplit("/", 1)[-1]
        return TokenUse(registry, token_id, name, tuple(secrets))

    # running ----------------------------------------------------------------------------------

    def run(self, tasks: Sequence[Task], report: SweepReport) -> None:
        """Run tasks within the budget; what is left, failed transiently or deferred is handed
        over (``report.handed_over``)."""
        self._run(tasks, report)

    def _run(self, tasks: Sequence[Task], report: SweepReport) -> None:
        report.planned += len(tasks)
        for index, task in enumerate(tasks):
            if self.budget.spent():
                rest = tasks[index:]
                report.handed_over += [json.dumps(t.message(report.signal_id)) for t in rest]
                log.warning(
                    "%s sweep: budget of %.0f s spent after %d of %d tasks; %d handed over",
                    report.sweep,
                    self.budget.seconds,
                    index,
                    len(tasks),
                    len(rest),
                )
                return
            try:
                outcome = self._one(task, report.signal_id)
            except TransientError as exc:
                log.warning("%s sweep: handing a task over after %s", report.sweep, exc)
                report.handed_over.append(json.dumps(task.message(report.signal_id)))
                continue
            report.outcomes.append(outcome)
            if outcome.verdict is Verdict.DEFERRED:
                # Someone else holds the cluster, or it is busy: the queue retries it later.
                report.handed_over.append(json.dumps(task.message(report.signal_id)))

    def _one(self, task: Task, signal_id: str) -> Outcome:
        if isinstance(task, AppUse):
            return self._expiry(task, signal_id)
        if isinstance(task, TokenUse):
            return self._token_expiry(task, signal_id)
        return self.engine.diagnose_and_respond(signal_id, task.target, task.causes)

    def _clusters(self, report: SweepReport) -> list[Cluster]:
        if self.engine.settings.inventory:
            # Discovery from Resource Graph's inventory; on its failure ARM, as before.
            self.estate.use_inventory(self.subscriptions)
        clusters: list[Cluster] = []
        for subscription_id in self.subscriptions:
            try:
                clusters += self.estate.list_clusters(subscription_id)
            except ReadError as exc:
                report.notes.append(f"subscription {subscription_id}: {exc.reason}")
        return sorted(clusters, key=lambda c: c.id.lower())

    def _cluster_in_scope(self, cluster_id: str, report: SweepReport) -> Cluster | None:
        subscription_id = ResourceId.parse(cluster_id).subscription_id
        if not self.engine.settings.in_scope(subscription_id):
            report.notes.append(f"{cluster_id}: subscription outside the configured scope")
            return None
        try:
            return self.estate.get_cluster(cluster_id)
        except (NotFound, Forbidden) as exc:
            report.notes.append(f"{cluster_id}: {exc.reason}")
            return None

    def _registries_by_host(self, report: SweepReport) -> dict[str, Registry]:
        found: dict[str, Registry] = {}
        for subscription_id in self.subscriptions:
            try:
                for registry in self.estate.list_registries(subscription_id):
                    found[registry.login_server.lower()] = registry
            except ReadError as exc:
                report.notes.append(f"registries of {subscription_id}: {exc.reason}")
        return found


# -- helpers -------------------------------------------------------------------------------------


def _unfinished_rotation(finding: Finding, started: datetime) -> Finding:
    """The application carries the mark of a rotation that never ended (its worker died): the
    clusters may hold different secrets whatever the newest one's date says (see
    :mod:`shared.rotation_mark`)."""
    return replace(
        finding,
        status=Status.FAIL,
        summary=unfinished_summary(str(finding.evidence.get("appId")), started),
        action_id=finding.action_id or (ROTATE if finding.evidence.get("clusters") else None),
        evidence={**finding.evidence, "rotationStartedAt": started.isoformat()},
    )


def newest_secret(
    app: Application, now: datetime
) -> tuple[PasswordCredential | None, float | None, bool]:
    """(newest credential, its days left, whether every credential has expired).

    The newest valid credential counts; with none valid, the one that ended last (days < 0).
    An application without any password credential counts as expired.
    """
    credentials = app.password_credentials
    if not credentials:
        return None, None, True
    never = datetime.max.replace(tzinfo=UTC)
    valid = [c for c in credentials if not c.expired(now)]
    if valid:
        newest = max(valid, key=lambda c: c.end or never)
        return newest, newest.days_left(now), False
    newest = max(credentials, key=lambda c: c.end or never)
    return newest, newest.days_left(now), True


def window_label(window: int | None) -> str:
    if window is None:
        return "none"
    return "expired" if window == 0 else f"{window}-day"


def _expiry_commands(use: AppUse) -> tuple[str, ...]:
    app = use.app_id
    commands = [
        f'az ad app credential list --id {app} --query "[].{{keyId:keyId, end:endDateTime}}" '
        "-o table",
        f"SP_SECRET=$(az ad app credential reset --id {app} --append --years 1 "
        "--query password -o tsv)",
    ]
    for cluster in use.sp_clusters[:10]:
        rg = cluster.resource.resource_group
        commands.append(
            f"az aks update-credentials -g {rg} -n {cluster.name} --reset-service-principal "
            f'--service-principal {app} --client-secret "$SP_SECRET"'
        )
    for cluster, ref in use.pull_secrets[:10]:
        namespace, _, rest = ref.partition("/")
        name, _, host = rest.partition(" (")
        commands.append(
            f"kubectl create secret docker-registry {name} -n {namespace} "
            f"--docker-server={host.rstrip(')')} --docker-username={app} "
            '--docker-password="$SP_SECRET" --dry-run=client -o yaml | kubectl apply -f -'
            f"  # in {cluster.name}"
        )
    return tuple(commands)


def _unique(tasks: list[Task]) -> list[Task]:
    seen: dict[object, Task] = {}
    for task in tasks:
        if isinstance(task, TokenUse):
            key: object = ("token", task.token_id.lower())
        else:
            key = task.key if isinstance(task, PairTask) else ("app", task.app_id)
        seen.setdefault(key, task)
    return list(seen.values())


# -- hand-over messages --------------------------------------------------------------------------


def parse_handover(body: str | bytes, *, in_scope: Callable[[str], bool]) -> dict[str, Any]:
    """Validate one hand-over message (it came from a queue: trust nothing); BadSignal if bad."""
    if len(body) > 64 * 1024:
        raise BadSignal("the hand-over message is larger than 64 KB")
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadSignal("the hand-over message is not JSON") from None
    if not isinstance(message, dict):
        raise BadSignal("the hand-over message is not a JSON object")
    if message.get("v") != HANDOVER_VERSION or message.get("sweep") not in SWEEPS:
        raise BadSignal("the hand-over message has an unknown version or sweep")
    _short(message.get("signal"), "signal", 256)
    if message["sweep"] == "expiry":
        _check_expiry_message(message, in_scope)
    else:
        _check_pair_message(message, in_scope)
    return message


def _check_token_message(message: Mapping[str, Any], in_scope: Callable[[str], bool]) -> None:
    token = _resource(message.get("token"), "token")
    if token.full_type.lower() != "microsoft.containerregistry/registries" or (
        "/tokens/" not in str(message["token"]).lower()
    ):
        raise BadSignal("the hand-over message's token is not a registry token id")
    if not in_scope(token.subscription_id):
        raise BadSignal(f"subscription {token.subscription_id} is outside the configured scope")
    _check_secret_entries(message.get("pullSecrets"), in_scope)


def _check_secret_entries(secrets: Any, in_scope: Callable[[str], bool]) -> None:
    if not isinstance(secrets, list) or len(secrets) > MAX_LISTED:
        raise BadSignal("the hand-over message needs a pullSecrets list (at most 100)")
    for entry in secrets:
        if not isinstance(entry, dict):
            raise BadSignal("a pull secret entry is not an object")
        _cluster_id(entry.get("cluster"), in_scope)
        _short(entry.get("ref"), "pull secret ref", 600)


def _check_expiry_message(message: Mapping[str, Any], in_scope: Callable[[str], bool]) -> None:
    if "token" in message:
        _check_token_message(message, in_scope)
        return
    app = message.get("app")
    if not isinstance(app, str) or not GUID.match(app):
        raise BadSignal("the hand-over message's app is not an appId")
    clusters, secrets = message.get("clusters"), message.get("pullSecrets")
    if not isinstance(clusters, list) or not isinstance(secrets, list):
        raise BadSignal("the hand-over message needs clusters and pullSecrets lists")
    if len(clusters) > MAX_LISTED or len(secrets) > MAX_LISTED:
        raise BadSignal("the hand-over message lists too many clusters or secrets")
    for cluster_id in clusters:
        _cluster_id(cluster_id, in_scope)
    for entry in secrets:
        if not isinstance(entry, dict):
            raise BadSignal("a pull secret entry is not an object")
        _cluster_id(entry.get("cluster"), in_scope)
        _short(entry.get("ref"), "pull secret ref", 600)


def _check_pair_message(message: Mapping[str, Any], in_scope: Callable[[str], bool]) -> None:
    _cluster_id(message.get("cluster"), in_scope)
    registry = message.get("registry")
    if registry is not None:
        resource = _resource(registry, "registry")
        if resource.full_type.lower() != "microsoft.containerregistry/registries":
            raise BadSignal("the hand-over message's registry is not a registry id")
    image = message.get("image")
    if image is not None:
        _short(image, "image", MAX_FIELD_LENGTH)
    causes = message.get("causes")
    if not isinstance(causes, list) or not causes or any(c not in CHECKS for c in causes):
        raise BadSignal("the hand-over message's causes are not known cause ids")


def _short(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise BadSignal(f"the hand-over message's {name} is missing or not a short plain string")
    return value


def _resource(value: Any, name: str) -> ResourceId:
    try:
        return ResourceId.parse(_short(value, name, MAX_FIELD_LENGTH))
    except ValueError:
        raise BadSignal(f"the hand-over message's {name} is not a resource id") from None


def _cluster_id(value: Any, in_scope: Callable[[str], bool]) -> None:
    resource = _resource(value, "cluster")
    if resource.full_type.lower() != "microsoft.containerservice/managedclusters":
        raise BadSignal("the hand-over message's cluster is not a managed cluster id")
    if not in_scope(resource.subscription_id):
        raise BadSignal(f"subscription {resource.subscription_id} is outside the configured scope")
