"""The state store on Azure Table Storage (Azurite locally): the only module using azure-data-tables.

Settings (shared.config): ``STATE_STORAGE_CONNECTION_STRING`` (local/tests; a key-based
``AzureWebJobsStorage`` or ``UseDevelopmentStorage=true`` is reused when nothing else is set), or
in Azure the Function App's own storage account through its identity:
``AzureWebJobsStorage__tableServiceUri`` / ``AzureWebJobsStorage__accountName`` (or
``STATE_TABLE_SERVICE_URI``), with the "Storage Table Data Contributor" role. Tables are
``<STATE_TABLE_PREFIX><Name>`` (default prefix ``remediator``), created when first used.

Tables and keys (PartitionKey / RowKey):
- Events: sha256(event id)[:2] / sha256(event id) - claims: a lease (State "in-progress",
  ExpiresAt) while the work runs, "done" after it; ETag-guarded;
- Pairs: sha256(lower(cluster id)) / sha256(lower(registry id)) - the pairs ever seen;
- Leases: "lease" / sha256(lower(cluster id)) - ETag-guarded owner and expiry;
- Actions: sha256(lower(cluster id)) / inverted time + uuid - newest first;
- Tickets: "ticket" / sha256(fingerprint);
- Operations: "pending" / sha256(lower(cluster id)) + "-" + action id;
- Audit: UTC date / inverted time + uuid - append-only, newest first.
Readable ids are kept in columns. Storage that cannot be reached, throttles or fails (5xx)
raises TransientError (the trigger retries); 401/403 raises ConfigurationError.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.errors import ConfigurationError, TransientError
from shared.store.keys import (
    clip,
    date_partition,
    from_json,
    inverted_key,
    resource_key,
    text_key,
    to_json,
)
from shared.store.model import (
    AuditRecord,
    ClaimState,
    EventClaim,
    Lease,
    PendingOperation,
    RememberedPair,
    TicketRef,
)

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient

    from shared.azure.factory import ClientFactory

log = logging.getLogger(__name__)

EVENTS, LEASES, ACTIONS = "Events", "Leases", "Actions"
TICKETS, OPERATIONS, AUDIT, PAIRS = "Tickets", "Operations", "Audit", "Pairs"
IN_PROGRESS, DONE = "in-progress", "done"
_BATCH = 100  # a Table transaction holds at most 100 operations of one partition
FILTER_COMPARISONS = 15  # the Table service refuses a filter with more discrete comparisons
_ACTION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _storage(doing: str) -> Iterator[None]:
    """Map azure-core errors from the Table service to the product's own."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise TransientError(f"the state store is unreachable ({doing})") from exc
    except ClientAuthenticationError as exc:
        raise ConfigurationError(f"the app may not {doing} in the state store") from exc
    except HttpResponseError as exc:
        status = exc.status_code or 0
        if status in (401, 403):
            raise ConfigurationError(f"the app may not {doing} in the state store") from exc
        if status in (408, 429) or status >= 500:
            raise TransientError(f"the state store failed to {doing} ({status})") from exc
        raise


class TableStateStore:
    """:class:`shared.store.StateStore` on Table Storage; thread-safe, one per process is enough."""

    def __init__(
        self,
        service: TableServiceClient,
        *,
        prefix: str = "remediator",
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._service = service
        self._prefix = prefix
        self._clock = clock
        self._tables: dict[str, TableClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_factory(cls, factory: ClientFactory) -> TableStateStore:
        return cls(factory.table_service(), prefix=factory.settings.state_table_prefix)

    def _table(self, name: str) -> TableClient:
        with self._lock:
            if name not in self._tables:
                with _storage(f"create table {self._prefix}{name}"):
                    self._tables[name] = self._service.create_table_if_not_exists(
                        self._prefix + name
                    )
            return self._tables[name]

    # -- events ------------------------------------------------------------------------------

    def start_event(self, event_id: str, ttl_seconds: float) -> EventClaim:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        key = text_key(event_id)
        table = self._table(EVENTS)
        for _ in range(3):
            now = self._clock()
            entity = _claim_entity(key, event_id, now, ttl_seconds, attempt=1)
            with _storage("claim an event"):
                try:
                    created = table.create_entity(entity)
                    return _claim(event_id, entity, created)
                except ResourceExistsError:
                    pass
                try:
                    current = table.get_entity(key[:2], key)
                except ResourceNotFoundError:
                    continue  # abandoned in between: claim it again
            # Claims written before leases existed have no State: they were done.
            if current.get("State", DONE) == DONE:
                return EventClaim(event_id, ClaimState.DONE)
            expires = _as_utc(current["ExpiresAt"])
            if expires > now:
                return EventClaim(event_id, ClaimState.BUSY, expires_at=expires)
            attempt = int(current.get("Attempts", 1)) + 1
            entity = _claim_entity(key, event_id, now, ttl_seconds, attempt=attempt)
            taken = self._update_if_unchanged(
                EVENTS, entity, str(current.metadata["etag"]), "take over an event"
            )
            if taken is None:
                return EventClaim(event_id, ClaimState.BUSY, expires_at=expires)
            log.warning(
                "event %s: the claim of an earlier delivery expired unfinished; running it again "
                "(attempt %d)",
                clip(event_id, 200),
                attempt,
            )
            return _claim(event_id, entity, taken)
        return EventClaim(event_id, ClaimState.BUSY)

    def finish_event(self, claim: EventClaim) -> None:
        if claim.state is not ClaimState.CLAIMED:
            return  # not ours to finish
        key = text_key(claim.event_id)
        entity = {
            "PartitionKey": key[:2],
            "RowKey": key,
            "State": DONE,
            "DoneAt": self._clock(),
        }
        if self._update_if_unchanged(EVENTS, entity, claim.etag, "finish an event", merge=True):
            return
        # Our claim expired and another delivery took it over: that one finishes it.
        log.warning("event %s was taken over before it was finished", clip(claim.event_id, 200))

    def abandon_event(self, claim: EventClaim) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        if claim.state is not ClaimState.CLAIMED:
            return
        key = text_key(claim.event_id)
        # Taken over or gone: the other delivery owns it now.
        with (
            _storage("abandon an event"),
            contextlib.suppress(ResourceModifiedError, ResourceNotFoundError),
        ):
            self._table(EVENTS).delete_entity(
                key[:2], key, etag=claim.etag, match_condition=MatchConditions.IfNotModified
            )

    def prune_events(self, before: datetime, *, limit: int) -> int:
        return self._prune(EVENTS, "ClaimedAt lt @before", {"before": _aware(before)}, limit)

    def _update_if_unchanged(
        self, table: str, entity: dict[str, Any], etag: str, doing: str, *, merge: bool = False
    ) -> Mapping[str, Any] | None:
        """The new metadata, or None if the entity changed or vanished since ``etag``."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        with _storage(doing):
            try:
                return self._table(table).update_entity(
                    entity,
                    mode=UpdateMode.MERGE if merge else UpdateMode.REPLACE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                return None

    def _prune(self, table: str, query: str, parameters: dict[str, Any], limit: int) -> int:
        """Delete up to ``limit`` matching entities, one transaction per partition and 100 rows."""
        with _storage(f"prune {table}"):
            rows = self._table(table).query_entities(
                query, parameters=parameters, select=["PartitionKey", "RowKey"]
            )
            by_partition: dict[str, list[str]] = {}
            for count, row in enumerate(rows):
                if count >= limit:
                    break
                by_partition.setdefault(row["PartitionKey"], []).append(row["RowKey"])
            deleted = 0
            for partition, keys in by_partition.items():
                for start in range(0, len(keys), _BATCH):
                    chunk = keys[start : start + _BATCH]
                    self._table(table).submit_transaction(
                        [("delete", {"PartitionKey": partition, "RowKey": k}) for k in chunk]
                    )
                    deleted += len(chunk)
        return deleted

    # -- pairs -------------------------------------------------------------------------------

    def remember_pairs(self, pairs: Sequence[RememberedPair], *, merged: bool = False) -> None:
        from azure.data.tables import UpdateMode

        # Only the partitions written (one per cluster): listing every pair for each write made a
        # fleet's first sweep quadratic in Table traffic. None at all when the caller merged
        # with what it read of those partitions in this run (the pair finder does).
        known = (
            {}
            if merged
            else {
                (p.cluster_id.lower(), p.registry_id.lower()): p
                for cluster in sorted({p.cluster_id.lower() for p in pairs})
                for p in self._pairs_of(cluster)
            }
        )
        for pair in pairs:
            before = known.get((pair.cluster_id.lower(), pair.registry_id.lower()))
            sources = pair.sources | (before.sources if before else frozenset())
            first = min(pair.first_seen, before.first_seen) if before else pair.first_seen
            entity = {
                "PartitionKey": resource_key(pair.cluster_id),
                "RowKey": resource_key(pair.registry_id),
                "ClusterId": clip(pair.cluster_id),
                "RegistryId": clip(pair.registry_id),
                "Sources": ",".join(sorted(sources)),
                "FirstSeen": _aware(first),
                "LastSeen": _aware(pair.last_seen),
            }
            with _storage("remember a pair"):
                self._table(PAIRS).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def list_pairs(self, cluster_ids: Collection[str] | None = None) -> Sequence[RememberedPair]:
        if cluster_ids is None:
            with _storage("list remembered pairs"):
                rows = list(self._table(PAIRS).list_entities())
            return _pairs(rows)
        # A batch reads only its clusters' partitions: listing the whole table in every batch
        # made a fleet sweep quadratic in Table rows. The Table service takes at most 15
        # comparisons in one filter.
        keys = sorted({resource_key(c) for c in cluster_ids})
        rows = []
        for start in range(0, len(keys), FILTER_COMPARISONS):
            chunk = keys[start : start + FILTER_COMPARISONS]
            query = " or ".join(f"PartitionKey eq @k{i}" for i in range(len(chunk)))
            with _storage("read remembered pairs"):
                rows += self._table(PAIRS).query_entities(
                    query, parameters={f"k{i}": key for i, key in enumerate(chunk)}
                )
        return _pairs(rows)

    def _pairs_of(self, cluster_id: str) -> Sequence[RememberedPair]:
        with _storage("read remembered pairs"):
            rows = list(
                self._table(PAIRS).query_entities(
                    "PartitionKey eq @key", parameters={"key": resource_key(cluster_id)}
                )
            )
        return _pairs(rows)

    def forget_pair(self, cluster_id: str, registry_id: str) -> None:
        with _storage("forget a pair"):
            self._table(PAIRS).delete_entity(resource_key(cluster_id), resource_key(registry_id))

    # -- leases ------------------------------------------------------------------------------

    def acquire_lease(self, cluster_id: str, owner: str, ttl_seconds: float) -> Lease | None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        table, key = self._table(LEASES), resource_key(cluster_id)
        for _ in range(3):
            now = self._clock()
            entity = _lease_entity(key, cluster_id, owner, now, ttl_seconds)
            with _storage("acquire a lease"):
                try:
                    created = table.create_entity(entity)
                    return _lease(cluster_id, owner, entity, created)
                except ResourceExistsError:
                    pass
                try:
                    current = table.get_entity("lease", key)
                except ResourceNotFoundError:
                    continue  # released in between: try to create it again
            if current.get("Owner") != owner and _as_utc(current["ExpiresAt"]) > now:
                return None
            return self._replace_lease(cluster_id, owner, entity, str(current.metadata["etag"]))
        return None

    def renew_lease(self, lease: Lease, ttl_seconds: float) -> Lease | None:
        key = resource_key(lease.cluster_id)
        entity = _lease_entity(key, lease.cluster_id, lease.owner, self._clock(), ttl_seconds)
        return self._replace_lease(lease.cluster_id, lease.owner, entity, lease.etag)

    def _replace_lease(
        self, cluster_id: str, owner: str, entity: dict[str, Any], etag: str
    ) -> Lease | None:
        updated = self._update_if_unchanged(LEASES, entity, etag, "take over a lease")
        if updated is None:
            return None  # another instance won the race
        return _lease(cluster_id, owner, entity, updated)

    def release(self, lease: Lease) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        with _storage("release a lease"):
            try:
                self._table(LEASES).delete_entity(
                    "lease",
                    resource_key(lease.cluster_id),
                    etag=lease.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                log.warning("lease on %s was taken over before release", lease.cluster_id)
                return False
        return True

    # -- counters ----------------------------------------------------------------------------

    def record_action(self, cluster_id: str, action_id: str, now: datetime) -> None:
        entity = {
            "PartitionKey": resource_key(cluster_id),
            "RowKey": inverted_key(now),
            "ClusterId": clip(cluster_id),
            "ActionId": clip(action_id, 64),
            "At": _aware(now),
        }
        with _storage("record an action"):
            self._table(ACTIONS).create_entity(entity)

    def actions_since(self, cluster_id: str, since: datetime) -> int:
        query = "PartitionKey eq @pk and At ge @since"
        params = {"pk": resource_key(cluster_id), "since": _aware(since)}
        with _storage("count actions"):
            rows = self._table(ACTIONS).query_entities(query, parameters=params, select="RowKey")
            return sum(1 for _ in rows)

    def last_action(self, cluster_id: str, action_id: str) -> datetime | None:
        query = "PartitionKey eq @pk and ActionId eq @action"
        params = {"pk": resource_key(cluster_id), "action": action_id}
        with _storage("read the last action"):
            rows = self._table(ACTIONS).query_entities(
                query, parameters=params, select="At", results_per_page=1
            )
            newest = next(iter(rows), None)  # RowKeys sort newest first
        return _as_utc(newest["At"]) if newest is not None else None

    def prune_actions(self, before: datetime, *, limit: int) -> int:
        return self._prune(ACTIONS, "At lt @before", {"before": _aware(before)}, limit)

    # -- tickets -----------------------------------------------------------------------------

    def get_ticket(self, fingerprint: str) -> TicketRef | None:
        from azure.core.exceptions import ResourceNotFoundError

        with _storage("read a ticket"):
            try:
                row = self._table(TICKETS).get_entity("ticket", text_key(fingerprint))
            except ResourceNotFoundError:
                return None
        return TicketRef(
            provider=row["Provider"],
            id=row["TicketId"],
            url=row.get("Url", ""),
            fingerprint=row.get("Fingerprint", fingerprint),
            title=row.get("Title", ""),
            state=row["State"],
            occurrences=int(row.get("Occurrences", 1)),
        )

    def list_open_tickets(self) -> frozenset[str]:
        """The fingerprints of every open ticket: one query (a page per 1,000), for a batch."""
        with _storage("list the open tickets"):
            rows = self._table(TICKETS).query_entities(
                "PartitionKey eq 'ticket' and State eq 'open'", select=["Fingerprint"]
            )
            return frozenset(str(row["Fingerprint"]) for row in rows if row.get("Fingerprint"))

    def put_ticket(self, fingerprint: str, ref: TicketRef) -> None:
        from azure.data.tables import UpdateMode

        entity = {
            "PartitionKey": "ticket",
            "RowKey": text_key(fingerprint),
            "Fingerprint": clip(fingerprint, 1024),
            "Provider": ref.provider,
            "TicketId": clip(ref.id, 256),
            "Url": clip(ref.url, 2048),
            "Title": clip(ref.title, 1024),
            "State": ref.state,
            "Occurrences": ref.occurrences,
            "UpdatedAt": self._clock(),
        }
        with _storage("record a ticket"):
            self._table(TICKETS).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def close_ticket(self, fingerprint: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        entity = {
            "PartitionKey": "ticket",
            "RowKey": text_key(fingerprint),
            "State": "closed",
            "UpdatedAt": self._clock(),
        }
        with _storage("close a ticket"):
            try:
                self._table(TICKETS).update_entity(entity, mode=UpdateMode.MERGE)
            except ResourceNotFoundError:
                return False
        return True

    # -- pending operations ------------------------------------------------------------------

    def put_pending_operation(self, operation: PendingOperation) -> None:
        from azure.data.tables import UpdateMode

        entity = {
            "PartitionKey": "pending",
            "RowKey": _operation_key(operation.cluster_id, operation.action_id),
            "ClusterId": clip(operation.cluster_id),
            "ActionId": operation.action_id,
            "StartedAt": _aware(operation.started_at),
            "CorrelationId": clip(operation.correlation_id, 256),
            "SignalId": clip(operation.signal_id, 256),
            "OperationUrl": clip(operation.operation_url, 2048),
            "Detail": to_json(operation.detail),
        }
        with _storage("record a pending operation"):
            self._table(OPERATIONS).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def list_pending_operations(self) -> Sequence[PendingOperation]:
        with _storage("list pending operations"):
            rows = list(
                self._table(OPERATIONS).query_entities(
                    "PartitionKey eq @pk", parameters={"pk": "pending"}
                )
            )
        return [
            PendingOperation(
                cluster_id=row["ClusterId"],
                action_id=row["ActionId"],
                started_at=_as_utc(row["StartedAt"]),
                correlation_id=row.get("CorrelationId", ""),
                signal_id=row.get("SignalId", ""),
                operation_url=row.get("OperationUrl", ""),
                detail=from_json(row.get("Detail")),
            )
            for row in rows
        ]

    def remove_pending_operation(self, cluster_id: str, action_id: str) -> None:
        with _storage("remove a pending operation"):
            self._table(OPERATIONS).delete_entity("pending", _operation_key(cluster_id, action_id))

    # -- audit -------------------------------------------------------------------------------

    def append_audit(self, record: AuditRecord) -> None:
        when = _aware(record.when)
        entity = {
            "PartitionKey": date_partition(when),
            "RowKey": inverted_key(when),
            "When": when,
            "CorrelationId": clip(record.correlation_id, 256),
            "SignalId": clip(record.signal_id, 256),
            "ClusterId": clip(record.cluster_id),
            "CauseId": clip(record.cause_id, 64),
            "ActionId": clip(record.action_id or "", 64),
            "Decision": clip(record.decision, 32),
            "Reason": clip(record.reason),
            "Before": to_json(record.before),
            "After": to_json(record.after),
            "Result": clip(record.result),
        }
        with _storage("append an audit record"):
            self._table(AUDIT).create_entity(entity)  # insert-only: never update or delete

    def list_audit(
        self, since: datetime, *, until: datetime | None = None, limit: int | None = None
    ) -> Sequence[AuditRecord]:
        """Newest first; one query per UTC day between ``since`` and ``until`` (default: now)."""
        since, until = _aware(since), _aware(until or self._clock())
        records: list[AuditRecord] = []
        day = until.astimezone(UTC).date()
        with _storage("list audit records"):
            while day >= since.astimezone(UTC).date():
                rows = self._table(AUDIT).query_entities(
                    "PartitionKey eq @pk and When ge @since and When le @until",
                    parameters={"pk": day.isoformat(), "since": since, "until": until},
                )
                for row in rows:
                    records.append(_audit(row))
                    if limit is not None and len(records) >= limit:
                        return records
                day -= timedelta(days=1)
        return records

    def prune_audit(self, before: datetime, *, limit: int) -> int:
        # Partitions are UTC days: whole days before the cut-off, then the cut-off day by time.
        before = _aware(before)
        query = "PartitionKey lt @day or ( PartitionKey eq @day and When lt @before )"
        return self._prune(AUDIT, query, {"day": date_partition(before), "before": before}, limit)


def _pairs(rows: Iterable[Mapping[str, Any]]) -> list[RememberedPair]:
    return [
        RememberedPair(
            cluster_id=row["ClusterId"],
            registry_id=row["RegistryId"],
            sources=frozenset(s for s in str(row.get("Sources", "")).split(",") if s),
            first_seen=_as_utc(row["FirstSeen"]),
            last_seen=_as_utc(row["LastSeen"]),
        )
        for row in rows
    ]


def _claim_entity(
    key: str, event_id: str, now: datetime, ttl_seconds: float, *, attempt: int
) -> dict[str, Any]:
    return {
        "PartitionKey": key[:2],
        "RowKey": key,
        "EventId": clip(event_id, 1024),
        "ClaimedAt": now,
        "State": IN_PROGRESS,
        "ExpiresAt": now + timedelta(seconds=ttl_seconds),
        "Attempts": attempt,
    }


def _claim(event_id: str, entity: Mapping[str, Any], metadata: Mapping[str, Any]) -> EventClaim:
    return EventClaim(
        event_id,
        ClaimState.CLAIMED,
        expires_at=entity["ExpiresAt"],
        etag=str(metadata["etag"]),
        attempt=int(entity["Attempts"]),
    )


def _lease_entity(
    key: str, cluster_id: str, owner: str, now: datetime, ttl_seconds: float
) -> dict[str, Any]:
    return {
        "PartitionKey": "lease",
        "RowKey": key,
        "ClusterId": clip(cluster_id),
        "Owner": clip(owner, 256),
        "AcquiredAt": now,
        "ExpiresAt": now + timedelta(seconds=ttl_seconds),
    }


def _lease(
    cluster_id: str, owner: str, entity: Mapping[str, Any], metadata: Mapping[str, Any]
) -> Lease:
    return Lease(cluster_id, owner, entity["ExpiresAt"], str(metadata["etag"]))


def _operation_key(cluster_id: str, action_id: str) -> str:
    if not _ACTION_ID.match(action_id):
        raise ValueError(f"not an action id: {action_id[:80]!r}")
    return f"{resource_key(cluster_id)}-{action_id}"


def _audit(row: Mapping[str, Any]) -> AuditRecord:
    return AuditRecord(
        when=_as_utc(row["When"]),
        correlation_id=row.get("CorrelationId", ""),
        signal_id=row.get("SignalId", ""),
        cluster_id=row.get("ClusterId", ""),
        cause_id=row.get("CauseId", ""),
        action_id=row.get("ActionId") or None,
        decision=row.get("Decision", ""),
        reason=row.get("Reason", ""),
        before=from_json(row.get("Before")),
        after=from_json(row.get("After")),
        result=row.get("Result", ""),
    )


def _aware(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError("datetimes given to the state store must be timezone-aware")
    return value.astimezone(UTC)


def _as_utc(value: datetime) -> datetime:
    """A plain aware UTC datetime (the SDK returns its own datetime subclass)."""
    value = value.astimezone(UTC)
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=UTC,
    )
