"""Everything after a finding: decide under policy, act, verify, ticket, audit, publish.

One :class:`Responder` serves one invocation (one correlation id). It never raises for a
remediation that fails or a ticket system that refuses: those become the outcome's record and a
ticket (or an audit line saying why there is none). Storage outages still raise, so the trigger
is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared import telemetry
from shared.checks import Finding, Status, Target, get_check
from shared.config import Settings
from shared.errors import Busy
from shared.open_tickets import OpenTickets
from shared.outcome_events import EventKind, Publisher
from shared.policy import Decision, DecisionKind, Policy, decide
from shared.ports import Estate
from shared.remediations import build_remediations
from shared.remediations.base import ActionRecord, Plan
from shared.remediations.rotate_sp_secret import remove_expired_passwords
from shared.root_cause import CONSEQUENCES, consequence_of
from shared.store import AuditRecord, PendingOperation, StateStore
from shared.store.lease_set import holding
from shared.ticket_routes import TicketRouter
from shared.tickets.errors import TicketError
from shared.tickets.model import TicketRef, fingerprint
from shared.tickets.render import build_ticket
from shared.tickets.service import TicketService

log = logging.getLogger(__name__)

# The deferred last step of rotate-sp-secret, kept as a pending operation of its own.
REMOVE_PASSWORDS = "rotate-sp-secret-remove-old-passwords"


@dataclass(frozen=True)
class Handled:
    """What became of one finding."""

    finding: Finding
    decision: Decision | None = None
    plan: Plan | None = None
    action: ActionRecord | None = None
    verification: Finding | None = None
    ticket: TicketRef | None = None
    note: str = ""
    # The root causes that explain this finding: it joins their ticket and is not acted on.
    consequence_of: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "cause": self.finding.cause_id,
            "status": self.finding.status.value,
            "decision": self.decision.to_dict() if self.decision else None,
            "ticket": self.ticket.to_dict() if self.ticket else None,
            "note": self.note,
        }
        if self.consequence_of:
            found["consequenceOf"] = list(self.consequence_of)
        return found


class Responder:
    def __init__(
        self,
        *,
        settings: Settings,
        estate: Estate,
        policy: Policy,
        store: StateStore,
        tickets: TicketRouter,
        publisher: Publisher,
        correlation_id: str,
        clock: Callable[[], datetime],
        recurrence_comments: bool = True,
        open_tickets: OpenTickets | None = None,
        owner: str = "responder",
    ) -> None:
        self.settings = settings
        self.estate = estate
        self.policy = policy
        self.store = store
        self.tickets = tickets
        self.publisher = publisher
        self.correlation_id = correlation_id
        self.clock = clock
        # The engine's lease owner: leases it already holds are ours, not someone else's.
        self.owner = owner
        self.remediations = build_remediations(settings)
        # Sweeps see every open problem every run: they must not comment on its ticket each time.
        self.recurrence_comments = recurrence_comments
        # Shared by the responders of one invocation: the open tickets, listed once.
        self.open_tickets = open_tickets

    def respond(self, signal_id: str, target: Target, findings: Sequence[Finding]) -> list[Handled]:
        handled = []
        for finding in findings:
            if finding.status is Status.PASS:
                result = self._resolve(Handled(finding), target)
            elif finding.status is Status.UNKNOWN:
                self._publish(EventKind.FINDING, finding)
                result = Handled(finding, note="could not be checked; nothing decided")
            elif roots := consequence_of(finding):
                self._publish(EventKind.FINDING, finding)
                result = Handled(
                    finding,
                    note=f"a consequence of {', '.join(roots)}: reported in its ticket, "
                    "not acted on by itself",
                    consequence_of=roots,
                )
            else:
                self._publish(EventKind.FINDING, finding)
                result = self._failed(finding, target)
            if result.decision is not None or result.ticket is not None:
                self._audit(signal_id, target, result)
            handled.append(result)
        return handled

    # -- a failing check -----------------------------------------------------------------------

    def _failed(self, finding: Finding, target: Target) -> Handled:
        decision = self._decide(finding, target)
        if decision.kind is DecisionKind.OFF:
            return Handled(finding, decision, note="the action is off in this scope")
        if decision.kind is DecisionKind.TICKET:
            return self._ticket(Handled(finding, decision), decision.reason)
        remediation = self.remediations[str(finding.action_id)]
        plan = remediation.plan(finding, target)
        if decision.kind is DecisionKind.PLAN:
            self._publish(EventKind.ACTION_PLANNED, plan, finding.resource_id)
            return self._ticket(Handled(finding, decision, plan), decision.reason)
        action_id, cluster = str(finding.action_id), target.cluster.name
        with telemetry.remediation(action_id, finding.cause_id, cluster) as said:
            acted = self._act(Handled(finding, decision, plan), target)
            said(_remediation_outcome(acted))
        return acted

    def _decide(self, finding: Finding, target: Target) -> Decision:
        decision = decide(
            self.policy,
            action_id=finding.action_id,
            cause_id=finding.cause_id,
            cluster=target.cluster,
            fixable=finding.action_id is not None,
            now=self.clock(),
            counters=self.store,
        )
        if decision.kind is DecisionKind.AUTO and self.settings.mode != "enforce":
            # REMEDIATION_MODE is the operator's master switch above every policy scope.
            reason = (
                f"plan: REMEDIATION_MODE=dry-run holds back {finding.action_id} ({decision.reason})"
            )
            return replace(decision, kind=DecisionKind.PLAN, reason=reason)
        return decision

    def _act(self, handled: Handled, target: Target) -> Handled:
        finding = handled.finding
        check = get_check(finding.cause_id)
        fresh = self._fresh(target)
        recheck = check.run(fresh, self.estate)
        if recheck.status is not Status.FAIL:
            # Someone (or an earlier delivery) fixed it meanwhile: acting now would be a guess.
            result = replace(handled, verification=recheck, note="fixed before we acted")
            return self._resolve(result, target)
        remediation = self.remediations[str(finding.action_id)]
        # The target cluster's lease is the engine's; the rest of the blast radius is leased here.
        others = [
            key
            for key in remediation.blast_radius(recheck, fresh, self.estate)
            if key.lower() != target.cluster.id.lower()
        ]
        try:
            with holding(self.store, others, self.owner, self.settings.cluster_lease) as refused:
                if refused is not None:
                    raise Busy(f"another instance is acting on {refused}; it owns the lease")
                action = remediation.apply(
                    recheck, fresh, self.estate, timeout=self.settings.operation_timeout
                )
        except Busy as exc:
            # Nothing changed: no ticket, no rate-limit count; the signal is delivered again.
            deferred = ActionRecord(remediation.id, "deferred", exc.reason)
            return replace(handled, action=deferred, note="busy elsewhere; retried later")
        self.store.record_action(target.cluster.id, remediation.id, self.clock())
        applied = action.status == "applied"
        self._publish(
            EventKind.ACTION_APPLIED if applied else EventKind.ACTION_FAILED,
            action,
            finding.resource_id,
        )
        handled = replace(handled, action=action)
        if action.status == "in-progress":
            self._pending(target, remediation.id, finding, {})
            return replace(handled, note="still running; verified on a later run")
        removal = getattr(action, "pending_removal", None)
        if applied and removal:
            # Old secrets stay valid for a grace period while nodes and pods pick up the new one.
            self._pending(target, REMOVE_PASSWORDS, finding, removal)
        if not applied:
            return self._ticket(
                handled,
                f"{handled.decision.reason if handled.decision else ''}; {remediation.id} failed: {action.detail}",
            )
        verification = check.run(self._fresh(target), self.estate)
        self._publish(EventKind.VERIFICATION, verification)
        handled = replace(handled, verification=verification)
        if verification.status is Status.PASS:
            return self._resolve(handled, target)
        return self._ticket(
            handled, f"{remediation.id} ran but the check still fails: {verification.summary}"
        )

    def _pending(
        self, target: Target, action_id: str, finding: Finding, extra: Mapping[str, Any]
    ) -> None:
        detail = {
            "cause": finding.cause_id,
            "registry": target.registry_id or "",
            "image": target.image or "",
            **extra,
        }
        self.store.put_pending_operation(
            PendingOperation(
                cluster_id=target.cluster.id,
                action_id=action_id,
                started_at=self.clock(),
                correlation_id=self.correlation_id,
                signal_id=finding.cause_id,
                detail=detail,
            )
        )

    def verify_pending(self, operation: PendingOperation) -> Handled | None:
        """A later run's look at an operation that outlived its function."""
        detail: Mapping[str, Any] = operation.detail
        if operation.action_id == REMOVE_PASSWORDS:
            return self._remove_old_passwords(operation)
        cluster = self.estate.get_cluster(operation.cluster_id)
        target = Target(cluster, detail.get("registry") or None, detail.get("image") or None)
        check = get_check(str(detail.get("cause", "")))
        verification = check.run(target, self.estate)
        if verification.status is Status.FAIL and cluster.provisioning_state.lower() in (
            "updating",
            "creating",
        ):
            return None  # still running
        self.store.remove_pending_operation(operation.cluster_id, operation.action_id)
        self._publish(EventKind.VERIFICATION, verification)
        decision = (
            self._decide(verification, target) if verification.status is Status.FAIL else None
        )
        handled = Handled(verification, decision, verification=verification)
        if verification.status is Status.PASS:
            return self._resolve(handled, target)
        return self._ticket(handled, f"{operation.action_id} finished but the check still fails")

    def _remove_old_passwords(self, operation: PendingOperation) -> Handled | None:
        detail = operation.detail
        not_before = datetime.fromisoformat(str(detail["notBefore"]))
        if self.clock() < not_before:
            return None
        record = remove_expired_passwords(
            self.estate,
            str(detail["appId"]),
            [str(k) for k in detail["keyIds"]],
            not_before=not_before,
            now=self.clock(),
        )
        self.store.remove_pending_operation(operation.cluster_id, operation.action_id)
        kind = EventKind.ACTION_APPLIED if record.status == "applied" else EventKind.ACTION_FAILED
        self._publish(kind, record, operation.cluster_id)
        cluster = self.estate.get_cluster(operation.cluster_id)
        finding = get_check("sp-secret-expired").run(Target(cluster), self.estate)
        return Handled(finding, action=record, verification=finding)

    def _fresh(self, target: Target) -> Target:
        return Target(self.estate.get_cluster(target.cluster.id), target.registry_id, target.image)

    # -- tickets -------------------------------------------------------------------------------

    def _ticket(self, handled: Handled, reason: str) -> Handled:
        finding = handled.finding
        service = self.tickets.service_for(handled.decision)
        if service is None:
            return replace(handled, note="no ticket route is configured in the policy")
        plan_commands = handled.plan.commands if handled.plan else ()
        source = replace(
            finding, commands=tuple(dict.fromkeys((*plan_commands, *finding.commands)))
        )
        explained = [
            f"{c['cause']} ({c['summary']})" for c in finding.evidence.get(CONSEQUENCES) or ()
        ]
        if explained:
            reason = f"{reason}; it also explains {'; '.join(explained)}"
        ticket = build_ticket(source, reason, labels=self.tickets.labels(handled.decision))
        if not self.recurrence_comments:
            existing = self.store.get_ticket(ticket.fingerprint)
            if existing is not None and existing.is_open:
                return replace(handled, ticket=existing, note="already ticketed")
        try:
            ref = service.open_or_update(ticket)
        except TicketError as exc:
            log.warning("could not open a ticket for %s: %s", ticket.fingerprint, exc)
            return replace(handled, note=f"ticket not opened: {exc}")
        if self.open_tickets is not None and ref.is_open:
            self.open_tickets.opened(ticket.fingerprint)
        self._publish(
            EventKind.TICKET_OPENED if ref.is_new else EventKind.TICKET_UPDATED,
            ref,
            finding.resource_id,
        )
        return replace(handled, ticket=ref)

    def _resolve(self, handled: Handled, target: Target) -> Handled:
        """Close the finding's open ticket, if any, now that the check passes."""
        finding = handled.finding
        key = fingerprint(finding.cause_id, finding.resource_id)
        if self.open_tickets is not None and not self.open_tickets.may_be_open(key):
            return handled
        existing = self.store.get_ticket(key)
        if existing is None or not existing.is_open:
            return handled
        service = self.tickets.service(self.policy.scope_for(target.cluster).tickets)
        if service is None:
            return handled
        try:
            ref = service.resolve(key, f"The check passes again: {finding.summary}")
        except TicketError as exc:
            log.warning("could not close ticket %s: %s", key, exc)
            return replace(handled, note=f"ticket not closed: {exc}")
        if ref is None:
            return handled
        self._publish(EventKind.TICKET_CLOSED, ref, finding.resource_id)
        return replace(handled, ticket=ref)

    # -- records -------------------------------------------------------------------------------

    def _audit(self, signal_id: str, target: Target, handled: Handled) -> None:
        decision = handled.decision
        result = (
            handled.action.status
            if handled.action
            else ("ticketed" if handled.ticket else "recorded")
        )
        if handled.verification is not None:
            result += f"; verification {handled.verification.status.value}"
        self.store.append_audit(
            AuditRecord(
                when=self.clock(),
                correlation_id=self.correlation_id,
                signal_id=signal_id,
                cluster_id=target.cluster.id,
                cause_id=handled.finding.cause_id,
                action_id=handled.finding.action_id,
                decision=decision.kind.value if decision else "resolve",
                reason=decision.reason if decision else handled.note or "the check passes",
                before=handled.finding.to_dict(),
                after=handled.verification.to_dict() if handled.verification else {},
                result=result,
            )
        )

    def _publish(self, kind: EventKind, data: Any, subject: str | None = None) -> None:
        resource = subject or str(getattr(data, "resource_id", ""))
        self.publisher.publish(kind, resource, data, correlation_id=self.correlation_id)


def _remediation_outcome(handled: Handled) -> str:
    """How a fix ended, for the time-to-remediate metric: remediated (verified), not-needed
    (the re-check passed), or the action's status (failed, in-progress, deferred, applied)."""
    if handled.action is None:
        return "not-needed"
    verified = handled.verification is not None and handled.verification.status is Status.PASS
    return (
        "remediated" if handled.action.status == "applied" and verified else handled.action.status
    )


__all__ = ["Handled", "Responder", "TicketService"]
