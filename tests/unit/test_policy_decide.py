"""decide(): scopes, modes, per-action settings, limits, and the sentence that explains each decision."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from shared.models import Cluster
from shared.policy import Counters, Decision, DecisionKind, Policy, decide, parse_policy

PROD_SUB = "9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c"
SANDBOX_SUB = "4e5f6a7b-8c9d-4a0b-9c1d-2e3f4a5b6c7d"
NOW = datetime(2025, 11, 27, 23, 0, tzinfo=UTC)  # Thursday


def cluster(
    name: str = "aks-prod-weu",
    *,
    sub: str = PROD_SUB,
    rg: str = "rg-prod-weu",
    tags: dict[str, str] | None = None,
) -> Cluster:
    return Cluster(
        id=f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}",
        name=name,
        location="westeurope",
        node_resource_group=f"MC_{rg}_{name}_westeurope",
        node_pools=(),
        kubelet_identity=None,
        service_principal_client_id=None,
        provisioning_state="Succeeded",
        tags=tags or {},
    )


@dataclass
class History:
    """Past actions as the state store would report them."""

    actions: list[tuple[str, str, datetime]] = field(default_factory=list)

    def actions_since(self, cluster_id: str, since: datetime) -> int:
        return sum(1 for c, _, at in self.actions if c == cluster_id and at >= since)

    def last_action(self, cluster_id: str, action_id: str) -> datetime | None:
        times = [at for c, a, at in self.actions if c == cluster_id and a == action_id]
        return max(times, default=None)


def policy(text: str) -> Policy:
    return parse_policy(textwrap.dedent(text))


def run(
    p: Policy,
    action_id: str | None = "attach-acr",
    *,
    target: Cluster | None = None,
    cause_id: str = "acrpull-missing",
    fixable: bool = True,
    now: datetime = NOW,
    counters: Counters | None = None,
) -> Decision:
    return decide(
        p,
        action_id=action_id,
        cause_id=cause_id,
        cluster=target or cluster(),
        fixable=fixable,
        now=now,
        counters=counters or History(),
    )


SCOPED = policy(
    f"""\
    mode: dry-run
    actions: {{attach-acr: ticket}}
    tickets: {{provider: github, route: {{repo: contoso/platform}}, labels: [acr]}}
    scopes:
      - name: prod
        match:
          subscriptions: ["{PROD_SUB.upper()}"]
          resourceGroups: [rg-prod-*]
        mode: enforce
        actions: {{attach-acr: auto, rotate-sp-secret: ticket, refresh-pull-secret: off}}
        tickets: {{provider: azure-devops, route: {{organization: contoso, project: Platform}}}}
      - name: sandbox
        match:
          tags: {{Environment: sandbox*}}
        actions: {{attach-acr: auto}}
      - name: all-of-prod-sub
        match:
          subscriptions: ["{PROD_SUB}"]
        mode: enforce
        actions: {{attach-acr: auto}}
    """
)


def test_auto_in_enforce_runs_with_a_reason_naming_the_scope() -> None:
    decision = run(SCOPED)
    assert decision == Decision(
        DecisionKind.AUTO,
        "auto: attach-acr is `auto` in scope prod (enforce)",
        "prod",
        SCOPED.scopes[0].tickets,
        "attach-acr",
    )
    assert decision.kind == "auto"
    assert decision.ticket_route is not None
    assert decision.ticket_route.provider == "azure-devops"


def test_ticket_and_off_settings() -> None:
    ticket = run(SCOPED, "rotate-sp-secret", cause_id="sp-secret-expired")
    assert (ticket.kind, ticket.reason) == (
        "ticket",
        "ticket: rotate-sp-secret is `ticket` in scope prod",
    )
    off = run(SCOPED, "refresh-pull-secret", cause_id="pull-secret-admin-stale")
    assert (off.kind, off.reason) == ("off", "off: refresh-pull-secret is `off` in scope prod")
    default_off = run(SCOPED, "set-os-node-selector", cause_id="os-mismatch")
    assert default_off.reason == "off: set-os-node-selector is `off` in scope prod"


def test_resource_group_globs_and_subscriptions_compare_case_insensitively() -> None:
    assert run(SCOPED, target=cluster(rg="RG-PROD-NEU")).scope == "prod"
    # Same subscription, other group: the first scope fails, the third matches.
    assert run(SCOPED, target=cluster(rg="rg-shared")).scope == "all-of-prod-sub"


def test_tags_match_with_case_insensitive_names_and_value_globs() -> None:
    sandbox = cluster("aks-sbx", sub=SANDBOX_SUB, rg="rg-sbx", tags={"ENVIRONMENT": "sandbox-01"})
    decision = run(SCOPED, target=sandbox)
    assert (decision.scope, decision.kind) == ("sandbox", "plan")
    assert decision.reason == "plan: dry-run mode in scope sandbox would run attach-acr"
    assert decision.ticket_route == SCOPED.default.tickets  # inherited from the top level
    other = cluster("aks-sbx", sub=SANDBOX_SUB, rg="rg-sbx", tags={"environment": "Sandbox"})
    assert run(SCOPED, target=other).scope == "default"


def test_the_first_matching_scope_wins() -> None:
    tagged_prod = cluster(tags={"environment": "sandbox"})  # matches prod, sandbox, all-of-prod-sub
    assert run(SCOPED, target=tagged_prod).scope == "prod"


def test_no_scope_matches_the_default_applies() -> None:
    stray = cluster("aks-x", sub=SANDBOX_SUB, rg="rg-x")
    decision = run(SCOPED, target=stray)
    assert (decision.kind, decision.scope) == ("ticket", "default")
    assert decision.reason == "ticket: attach-acr is `ticket` in scope default"


def test_a_fresh_deployment_never_changes_anything() -> None:
    safe = parse_policy("")
    for action in ("attach-acr", "reconcile-cluster", "rotate-sp-secret", "allow-egress-ip"):
        assert run(safe, action).kind == "ticket"
    everything_auto = policy(
        """\
        actions: {attach-acr: auto, reconcile-cluster: auto}
        """
    )
    decision = run(everything_auto, "reconcile-cluster")
    assert decision.kind == "plan"
    assert decision.reason == "plan: dry-run mode in scope default would run reconcile-cluster"


def test_causes_without_a_safe_fix_always_get_a_ticket() -> None:
    no_action = run(SCOPED, None, cause_id="arch-mismatch")
    assert (no_action.kind, no_action.reason) == (
        "ticket",
        "ticket: no safe automatic fix for arch-mismatch",
    )
    deleted_identity = run(
        SCOPED, "reconcile-cluster", cause_id="kubelet-identity-detached", fixable=False
    )
    assert deleted_identity.reason == "ticket: no safe automatic fix for kubelet-identity-detached"
    off_but_unfixable = run(SCOPED, "refresh-pull-secret", fixable=False)
    assert off_but_unfixable.kind == "ticket"


def test_the_hourly_rate_limit_turns_auto_into_a_ticket() -> None:
    c = cluster()
    history = History(
        [(c.id, "reconcile-cluster", NOW - timedelta(minutes=m)) for m in (50, 40, 35)]
    )
    limited = run(SCOPED, counters=history)
    assert (limited.kind, limited.reason) == (
        "ticket",
        "ticket: rate limit of 3 actions per hour reached for aks-prod-weu",
    )
    history.actions[0] = (c.id, "reconcile-cluster", NOW - timedelta(minutes=61))
    assert run(SCOPED, counters=history).kind == "auto"
    one = policy(
        f"""\
        scopes:
          - name: prod
            match: {{subscriptions: ["{PROD_SUB}"]}}
            mode: enforce
            actions: {{attach-acr: auto}}
            rateLimit: {{perClusterPerHour: 1}}
        """
    )
    single = History([(c.id, "attach-acr", NOW - timedelta(minutes=59))])
    assert (
        run(one, counters=single).reason
        == "ticket: rate limit of 1 action per hour reached for aks-prod-weu"
    )


def test_a_cooldown_blocks_the_same_action_on_the_same_cluster() -> None:
    c = cluster()
    history = History([(c.id, "attach-acr", NOW - timedelta(minutes=12, seconds=30))])
    cooling = run(SCOPED, counters=history)
    assert cooling.kind == "ticket"
    assert (
        cooling.reason
        == "ticket: cooldown of 30 min for attach-acr on aks-prod-weu (last run 12 min ago)"
    )
    assert cooling.retry_after == NOW + timedelta(minutes=17, seconds=30)
    # Another action, or the same one on another cluster, is not cooling down.
    assert (
        run(SCOPED, "attach-acr", target=cluster(rg="rg-prod-neu"), counters=history).kind == "auto"
    )
    history.actions[0] = (c.id, "attach-acr", NOW - timedelta(minutes=30))
    assert run(SCOPED, counters=history).kind == "auto"


def test_cooldown_zero_disables_it() -> None:
    p = policy("mode: enforce\ncooldown: {minutes: 0}\nactions: {attach-acr: auto}\n")
    c = cluster()
    assert (
        run(p, counters=History([(c.id, "attach-acr", NOW - timedelta(seconds=5))])).kind == "auto"
    )


def test_unknown_action_ids_and_naive_times_are_programming_errors() -> None:
    with pytest.raises(
        ValueError, match="unknown action 'attach-registry'; valid actions: attach-acr, "
    ):
        run(SCOPED, "attach-registry")
    with pytest.raises(ValueError, match="timezone-aware"):
        run(SCOPED, now=datetime(2025, 11, 27, 23, 0))


def test_decisions_serialise_for_the_audit_record() -> None:
    c = cluster()
    decision = run(SCOPED, counters=History([(c.id, "attach-acr", NOW - timedelta(minutes=10))]))
    assert decision.to_dict() == {
        "kind": "ticket",
        "reason": "ticket: cooldown of 30 min for attach-acr on aks-prod-weu (last run 10 min ago)",
        "scope": "prod",
        "action": "attach-acr",
        "retryAfter": "2025-11-27T23:20:00+00:00",
    }
