"""The Table state store against a real Azurite: dedup, leases with ETags, counters, tickets,
pending operations, the audit trail, and storage outages."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator.azurite import Azurite
from shared.azure.factory import ClientFactory
from shared.azure.tables import TableStateStore
from shared.config import Settings
from shared.errors import TransientError
from shared.store import (
    AuditRecord,
    ClaimState,
    PendingOperation,
    RememberedPair,
    StateStore,
    TicketRef,
)
from shared.store.keys import MAX_JSON_CHARS, resource_key
from tests.fixtures_azurite import AzuriteTables

CLUSTER = (
    "/subscriptions/9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c/resourceGroups/rg-prod-weu"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
)
OTHER = CLUSTER.replace("aks-prod-weu", "aks-prod-neu")
T0 = datetime(2025, 11, 27, 9, 0, tzinfo=UTC)


def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env({**env, "ARM_RETRY_TOTAL": "1", "ARM_RETRY_BACKOFF_SECONDS": "0"})


def store(
    azurite: AzuriteTables, *, clock: Callable[[], datetime] | None = None
) -> TableStateStore:
    """A store with its own SDK client, as a separate Function instance would have."""
    factory = ClientFactory(settings(azurite.environment()))
    if clock is None:
        return TableStateStore.from_factory(factory)
    return TableStateStore(factory.table_service(), prefix=azurite.table_prefix, clock=clock)


def raw_rows(azurite: AzuriteTables, table: str) -> list[dict[str, Any]]:
    """Rows exactly as stored, read with a separate client."""
    factory = ClientFactory(settings(azurite.environment()))
    client = factory.table_service().get_table_client(azurite.table_prefix + table)
    return [dict(row) for row in client.list_entities()]


def race(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run callables at the same instant on separate threads; return their results in order."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = workers[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_the_table_store_satisfies_the_protocol(azurite: AzuriteTables) -> None:
    port: StateStore = store(azurite)
    assert port.start_event("protocol-check", 60).state is ClaimState.CLAIMED


# -- event dedup -------------------------------------------------------------------------


def test_an_event_delivered_five_times_is_claimed_once(azurite: AzuriteTables) -> None:
    first, second = store(azurite), store(azurite)
    event_id = "3f1c2d4e-0000-4000-8000-000000000001"
    claims = race([lambda s=s: s.start_event(event_id, 60) for s in (first, second) * 2])
    claims.append(first.start_event(event_id, 60))
    states = sorted(c.state for c in claims)
    assert states == [ClaimState.BUSY] * 4 + [ClaimState.CLAIMED]
    rows = raw_rows(azurite, "Events")
    assert [(row["EventId"], row["State"]) for row in rows] == [(event_id, "in-progress")]
    winner = next(c for c in claims if c.state is ClaimState.CLAIMED)
    first.finish_event(winner)
    assert second.start_event(event_id, 60).state is ClaimState.DONE
    assert first.start_event("another-event", 60).state is ClaimState.CLAIMED


def test_an_abandoned_event_can_be_claimed_again(azurite: AzuriteTables) -> None:
    s = store(azurite)
    odd = "evt/with#odd?chars\\"
    claim = s.start_event(odd, 60)
    assert claim.state is ClaimState.CLAIMED
    s.abandon_event(claim)
    again = s.start_event(odd, 60)
    assert again.state is ClaimState.CLAIMED
    s.finish_event(again)
    assert s.start_event(odd, 60).state is ClaimState.DONE


def test_the_claim_of_a_delivery_that_died_expires(azurite: AzuriteTables) -> None:
    now = [T0]
    dead, alive = store(azurite, clock=lambda: now[0]), store(azurite, clock=lambda: now[0])
    died = dead.start_event("evt-killed", 900)  # the worker is killed: no finish, no abandon
    assert alive.start_event("evt-killed", 900).state is ClaimState.BUSY
    now[0] = T0 + timedelta(seconds=901)
    retry = alive.start_event("evt-killed", 900)
    assert (retry.state, retry.attempt) == (ClaimState.CLAIMED, 2)
    dead.finish_event(died)  # a late finish of the dead claim must not mark the retry done
    [row] = raw_rows(azurite, "Events")
    assert (row["State"], row["Attempts"]) == ("in-progress", 2)
    alive.finish_event(retry)
    assert dead.start_event("evt-killed", 900).state is ClaimState.DONE


def test_claims_written_before_leases_count_as_done(azurite: AzuriteTables) -> None:
    s = store(azurite)
    from shared.store.keys import text_key

    key = text_key("legacy-event")
    factory = ClientFactory(settings(azurite.environment()))
    table = factory.table_service().create_table_if_not_exists(azurite.table_prefix + "Events")
    table.create_entity({"PartitionKey": key[:2], "RowKey": key, "EventId": "legacy-event"})
    assert s.start_event("legacy-event", 60).state is ClaimState.DONE


# -- pairs -------------------------------------------------------------------------------

REGISTRY = (
    "/subscriptions/9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c/resourceGroups/rg-shared"
    "/providers/Microsoft.ContainerRegistry/registries/shopreg"
)


def test_pairs_are_remembered_with_every_source(azurite: AzuriteTables) -> None:
    s = store(azurite)
    later = T0 + timedelta(days=1)
    s.remember_pairs([RememberedPair(CLUSTER, REGISTRY, frozenset({"role-assignment"}), T0, T0)])
    s.remember_pairs(
        [RememberedPair(CLUSTER.upper(), REGISTRY, frozenset({"workload-image"}), later, later)]
    )
    [pair] = s.list_pairs()
    assert pair.sources == {"role-assignment", "workload-image"}
    assert (pair.first_seen, pair.last_seen) == (T0, later)
    s.forget_pair(CLUSTER, REGISTRY.upper())
    assert s.list_pairs() == []


# -- retention ---------------------------------------------------------------------------


def test_pruning_deletes_only_what_is_older_in_pages(azurite: AzuriteTables) -> None:
    now = [T0]
    s = store(azurite, clock=lambda: now[0])
    for day in range(5):
        now[0] = T0 + timedelta(days=day)
        s.finish_event(s.start_event(f"evt-{day}", 60))
        s.record_action(CLUSTER, "attach-acr", now[0])
        s.append_audit(
            AuditRecord(now[0], "c", f"evt-{day}", CLUSTER, "acrpull-missing", None, "ticket", "r")
        )
    cut = T0 + timedelta(days=3)
    assert s.prune_events(cut, limit=2) == 2
    assert s.prune_events(cut, limit=100) == 1
    assert s.prune_events(cut, limit=100) == 0
    assert sorted(r["EventId"] for r in raw_rows(azurite, "Events")) == ["evt-3", "evt-4"]
    assert s.prune_actions(cut, limit=100) == 3
    assert s.actions_since(CLUSTER, T0) == 2
    assert s.prune_audit(cut, limit=100) == 3
    assert [r.signal_id for r in s.list_audit(T0, until=now[0])] == ["evt-4", "evt-3"]


# -- leases ------------------------------------------------------------------------------


def test_two_instances_racing_for_a_cluster_lease_one_wins(azurite: AzuriteTables) -> None:
    first, second = store(azurite), store(azurite)
    for round_ in range(10):
        cluster = f"{CLUSTER}-{round_}"
        leases = race(
            [
                lambda c=cluster: first.acquire_lease(c, "instance-a", 60),
                lambda c=cluster: second.acquire_lease(c, "instance-b", 60),
            ]
        )
        winners = [lease for lease in leases if lease is not None]
        assert len(winners) == 1, leases
        loser = "instance-b" if winners[0].owner == "instance-a" else "instance-a"
        assert first.acquire_lease(cluster, loser, 60) is None
        assert first.release(winners[0])
        assert second.acquire_lease(cluster, loser, 60) is not None


def test_an_expired_lease_is_taken_over_with_its_etag(azurite: AzuriteTables) -> None:
    now = datetime.now(UTC)
    old = store(azurite, clock=lambda: now)
    later = store(azurite, clock=lambda: now + timedelta(minutes=2))
    held = old.acquire_lease(CLUSTER, "instance-a", 60)
    assert held is not None
    assert held.expires_at == now + timedelta(seconds=60)
    assert old.acquire_lease(CLUSTER, "instance-b", 60) is None  # still valid for b at `now`

    taken = later.acquire_lease(CLUSTER, "instance-b", 60)
    assert taken is not None
    assert taken.owner == "instance-b"
    assert taken.etag != held.etag
    # The old holder's ETag no longer matches: release and renew refuse, the new lease stays.
    assert not old.release(held)
    assert old.renew_lease(held, 60) is None
    [row] = raw_rows(azurite, "Leases")
    assert (row["Owner"], row["ClusterId"], row["RowKey"]) == (
        "instance-b",
        CLUSTER,
        resource_key(CLUSTER),
    )
    assert later.release(taken)
    assert raw_rows(azurite, "Leases") == []


def test_racing_takeovers_of_an_expired_lease_one_wins(azurite: AzuriteTables) -> None:
    now = datetime.now(UTC)
    assert store(azurite, clock=lambda: now).acquire_lease(CLUSTER, "crashed", 30) is not None
    future = [store(azurite, clock=lambda: now + timedelta(minutes=5)) for _ in range(4)]
    leases = race(
        [
            lambda s=s, i=i: s.acquire_lease(CLUSTER, f"instance-{i}", 60)
            for i, s in enumerate(future)
        ]
    )
    winners = [lease for lease in leases if lease is not None]
    assert len(winners) == 1, leases
    [row] = raw_rows(azurite, "Leases")
    assert row["Owner"] == winners[0].owner


def test_the_holder_renews_and_reacquires_its_own_lease(azurite: AzuriteTables) -> None:
    now = datetime.now(UTC)
    s = store(azurite, clock=lambda: now)
    lease = s.acquire_lease(CLUSTER.upper(), "instance-a", 30)
    assert lease is not None
    renewed = s.renew_lease(lease, 300)
    assert renewed is not None
    assert renewed.expires_at == now + timedelta(seconds=300)
    again = s.acquire_lease(CLUSTER, "instance-a", 30)  # ids compare case-insensitively
    assert again is not None
    assert again.etag != renewed.etag
    assert s.acquire_lease(CLUSTER, "instance-b", 30) is None


# -- counters ----------------------------------------------------------------------------


def test_action_counters_for_rate_limits_and_cooldowns(azurite: AzuriteTables) -> None:
    s = store(azurite)
    s.record_action(CLUSTER, "attach-acr", T0 - timedelta(minutes=90))
    s.record_action(CLUSTER, "reconcile-cluster", T0 - timedelta(minutes=30))
    s.record_action(CLUSTER.upper(), "attach-acr", T0 - timedelta(minutes=5))
    s.record_action(OTHER, "attach-acr", T0 - timedelta(minutes=1))

    assert s.actions_since(CLUSTER, T0 - timedelta(hours=1)) == 2
    assert s.actions_since(CLUSTER, T0 - timedelta(hours=2)) == 3
    assert s.actions_since(OTHER, T0 - timedelta(hours=1)) == 1
    assert s.last_action(CLUSTER, "attach-acr") == T0 - timedelta(minutes=5)
    assert s.last_action(CLUSTER, "reconcile-cluster") == T0 - timedelta(minutes=30)
    assert s.last_action(CLUSTER, "rotate-sp-secret") is None
    assert s.last_action(OTHER, "reconcile-cluster") is None


def test_counters_take_any_time_zone_and_refuse_naive_times(azurite: AzuriteTables) -> None:
    from zoneinfo import ZoneInfo

    s = store(azurite)
    local = T0.astimezone(ZoneInfo("Europe/Amsterdam"))
    s.record_action(CLUSTER, "attach-acr", local)
    assert s.last_action(CLUSTER, "attach-acr") == T0
    with pytest.raises(ValueError, match="timezone-aware"):
        s.record_action(CLUSTER, "attach-acr", datetime(2025, 11, 27, 9, 0))


# -- tickets -----------------------------------------------------------------------------


def test_fingerprints_map_to_tickets(azurite: AzuriteTables) -> None:
    s = store(azurite)
    fingerprint = "acrpull-missing/aks-prod-weu#acrprodweu?"
    assert s.get_ticket(fingerprint) is None
    ref = TicketRef(
        "github", "42", "https://github.com/contoso/platform-oncall/issues/42", fingerprint, "t"
    )
    s.put_ticket(fingerprint, ref)
    assert s.get_ticket(fingerprint) == ref
    assert s.get_ticket(fingerprint.upper()) is None  # fingerprints are exact

    moved = TicketRef(
        "azure-devops",
        "1234",
        "https://dev.azure.com/contoso/_workitems/1234",
        fingerprint,
        "t",
        occurrences=3,
    )
    s.put_ticket(fingerprint, moved)
    assert s.get_ticket(fingerprint) == moved
    assert s.close_ticket(fingerprint)
    assert s.get_ticket(fingerprint) == moved.closed()
    assert not s.close_ticket("never-ticketed")
    [row] = raw_rows(azurite, "Tickets")
    assert row["Fingerprint"] == fingerprint


# -- pending operations ------------------------------------------------------------------


def test_pending_operations_are_recorded_listed_and_removed(azurite: AzuriteTables) -> None:
    s = store(azurite)
    assert s.list_pending_operations() == []
    reconcile = PendingOperation(
        CLUSTER,
        "reconcile-cluster",
        T0,
        correlation_id="corr-1",
        signal_id="evt-1",
        operation_url="https://management.azure.com/subscriptions/x/providers/Microsoft.ContainerService/locations/westeurope/operations/abc",
        detail={"node_pools": ["system", "user"], "previous": {"provisioningState": "Succeeded"}},
    )
    rotate = PendingOperation(OTHER, "rotate-sp-secret", T0 + timedelta(minutes=1))
    s.put_pending_operation(reconcile)
    s.put_pending_operation(rotate)
    s.put_pending_operation(reconcile)  # recorded again by a retried run: still one
    pending = sorted(s.list_pending_operations(), key=lambda op: op.action_id)
    assert pending == [reconcile, rotate]

    s.remove_pending_operation(CLUSTER.upper(), "reconcile-cluster")
    assert s.list_pending_operations() == [rotate]
    s.remove_pending_operation(CLUSTER, "reconcile-cluster")  # already gone: no error
    with pytest.raises(ValueError, match="not an action id"):
        s.remove_pending_operation(CLUSTER, "../x")


# -- audit -------------------------------------------------------------------------------


def audit(when: datetime, reason: str, **fields: Any) -> AuditRecord:
    values: dict[str, Any] = {
        "correlation_id": "corr-1",
        "signal_id": "evt-1",
        "cluster_id": CLUSTER,
        "cause_id": "acrpull-missing",
        "action_id": "attach-acr",
        "decision": "ticket",
        "reason": reason,
        "before": {},
        "after": {},
        "result": "ticketed",
        **fields,
    }
    return AuditRecord(when=when, **values)


def test_audit_records_are_appended_and_listed_newest_first(azurite: AzuriteTables) -> None:
    s = store(azurite, clock=lambda: T0 + timedelta(hours=1))
    midnight = datetime(2025, 11, 27, tzinfo=UTC)
    records = [
        audit(midnight - timedelta(minutes=10), "yesterday (UTC)"),
        audit(T0, "this morning", before={"assignees": []}, after={"assignees": ["kubelet"]}),
        audit(midnight - timedelta(days=3), "too old"),
        audit(T0 - timedelta(hours=2), "earlier", action_id=None, decision="plan"),
    ]
    for record in records:
        s.append_audit(record)
    s.append_audit(records[1])  # appending the same record twice keeps both: never an update

    listed = s.list_audit(midnight - timedelta(days=1))
    assert [r.reason for r in listed] == [
        "this morning",
        "this morning",
        "earlier",
        "yesterday (UTC)",
    ]
    assert listed[0] == records[1]
    assert listed[2].action_id is None
    assert [r.reason for r in s.list_audit(midnight - timedelta(days=1), limit=3)] == [
        "this morning",
        "this morning",
        "earlier",
    ]
    assert [r.reason for r in s.list_audit(T0 - timedelta(days=5), until=midnight)] == [
        "yesterday (UTC)",
        "too old",
    ]
    partitions = sorted({row["PartitionKey"] for row in raw_rows(azurite, "Audit")})
    assert partitions == ["2025-11-24", "2025-11-26", "2025-11-27"]


def test_audit_evidence_is_truncated_as_json_and_secrets_are_redacted(
    azurite: AzuriteTables,
) -> None:
    s = store(azurite)
    huge = {
        "manifests": [
            {"digest": f"sha256:{i:064x}", "platform": "linux/arm64"} for i in range(2000)
        ]
    }
    secrets = {"secretText": "s3cr3t-Value~1", "dockerconfigjson": "eyJhdXRocyI6", "keyId": "k-1"}
    s.append_audit(audit(T0, "big", before=huge, after={"credential": secrets}))

    [row] = raw_rows(azurite, "Audit")
    assert len(row["Before"]) <= MAX_JSON_CHARS
    before = json.loads(row["Before"])
    assert before["_truncated"] is True
    assert before["_length"] > MAX_JSON_CHARS
    assert before["preview"].startswith('{"manifests":[')
    stored = json.dumps(row, default=str)
    assert "s3cr3t-Value~1" not in stored
    assert "eyJhdXRocyI6" not in stored
    assert json.loads(row["After"]) == {
        "credential": {"dockerconfigjson": "[redacted]", "keyId": "k-1", "secretText": "[redacted]"}
    }
    [listed] = s.list_audit(T0)
    assert listed.before["_truncated"] is True


# -- outages -----------------------------------------------------------------------------


def test_storage_that_goes_away_raises_transient_errors() -> None:
    with Azurite() as server:
        s = TableStateStore.from_factory(ClientFactory(settings(server.environment())))
        assert s.start_event("before-the-outage", 60).state is ClaimState.CLAIMED
        s.record_action(CLUSTER, "attach-acr", T0)
    assert not server.running
    for call in (
        lambda: s.start_event("during-the-outage", 60),
        lambda: s.actions_since(CLUSTER, T0),
        lambda: s.acquire_lease(CLUSTER, "instance-a", 60),
    ):
        with pytest.raises(TransientError, match="the state store is unreachable"):
            call()


def test_storage_that_never_answered_raises_transient_errors(azurite: AzuriteTables) -> None:
    closed = azurite.environment()
    port = azurite.server.port
    closed["STATE_STORAGE_CONNECTION_STRING"] = closed["STATE_STORAGE_CONNECTION_STRING"].replace(
        f":{port}/", ":9/"
    )
    s = TableStateStore.from_factory(ClientFactory(settings(closed)))
    with pytest.raises(TransientError, match=r"unreachable \(create table t\w+Events\)"):
        s.start_event("nobody-listens", 60)
