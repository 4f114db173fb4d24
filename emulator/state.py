"""In-memory state of the emulated Azure: resources, journal, faults, tokens.

Resource ids are stored lower-cased because ARM compares them case-insensitively; the resource
body keeps the casing it was created with, as ARM does.
"""

from __future__ import annotations

import copy
import re
import secrets
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class JournalEntry:
    """One request the emulator received."""

    service: str
    method: str
    path: str
    api_version: str | None
    body: Any
    status: int
    if_match: str | None = None  # optimistic concurrency: what the client asserted it read


@dataclass
class Fault:
    """Something that goes wrong on requests matching ``method`` and ``path_pattern``."""

    method: str
    path_pattern: re.Pattern[str]
    status: int | None = None
    retry_after: int = 0
    latency: float = 0.0
    lro_fails: bool = False
    remaining: int | None = None
    code: str = "InternalServerError"
    # Matching requests let through before the fault applies: target the Nth of a repeated call.
    skip: int = 0
    # A lost response: the request is served (its write committed), then the answer is replaced
    # by ``status`` or, with ``drop``, the connection is closed without one.
    after_commit: bool = False
    # A timeout as the client sees it: the connection closes with no response at all.
    drop: bool = False
    # How often it applied, and a way to end its latency early (a test that killed the client).
    hits: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    # The most matching requests that waited out its latency at once: what a client overlapped.
    most_waiting: int = 0
    _waiting: int = field(default=0, init=False, repr=False, compare=False)
    _count: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def matches(self, method: str, path: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.method in ("*", method) and bool(self.path_pattern.search(path))

    def wait(self) -> None:
        """The injected latency, cut short by :meth:`release`."""
        if not self.latency:
            return
        with self._count:
            self._waiting += 1
            self.most_waiting = max(self.most_waiting, self._waiting)
        try:
            self.released.wait(self.latency)
        finally:
            with self._count:
                self._waiting -= 1

    def release(self) -> None:
        self.released.set()


@dataclass
class Operation:
    """A long-running operation, completed after ``polls_left`` status reads."""

    id: str
    resource_id: str
    polls_left: int
    fails: bool
    status: str = "InProgress"
    started: float = field(default_factory=time.time)


def _copy(body: Json) -> Json:
    return copy.deepcopy(body)


class State:
    """Thread-safe store shared by every emulated service."""

    # ARM's request limits (emulator.throttling.Buckets), enforced when set.
    arm_buckets: Any = None
    # Bumped by every change to resources and resource groups: Resource Graph's index
    # (emulator/resource_graph.py) is rebuilt only when this moved, never per request.
    version = 0

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"
        self.subscriptions: dict[str, Json] = {}
        self.resource_groups: dict[str, Json] = {}
        self.resources: dict[str, Json] = {}
        # The same bodies by type (lower) then id (lower): lists and scans of one type must not
        # walk, sort or copy a fleet of 3,000 clusters' resources per request.
        self._by_type: dict[str, dict[str, Json]] = {}
        self.journal: list[JournalEntry] = []
        self.faults: list[Fault] = []
        self.operations: dict[str, Operation] = {}
        self.tokens: dict[str, str] = {}
        self.identity_header = secrets.token_hex(16)
        self.token_key = secrets.token_bytes(32)
        self.app_principal_id = "5b1d9a6e-3c1f-4f0e-9a55-6a3c2b7d4e10"
        self.denied_scopes: list[str] = []
        # Entra ID objects that are neither identities nor service principals of applications
        # (users, groups a scenario names by object id): object id (lower) -> principal type.
        self.directory_objects: dict[str, str] = {}
        # Replication: a principal created at t is unknown to ARM's role assignment writes
        # (400 PrincipalNotFound) until t + replication_delay seconds, as in Azure.
        self.replication_delay = 0.0
        self.principal_created: dict[str, float] = {}
        self.lro_polls = 1
        # A long-running operation ends after lro_polls status reads or, when this is set, this
        # many seconds after it started even if nobody polls it (as in Azure); None: polls only.
        self.operation_seconds: float | None = None
        # The Retry-After of long-running operations: 0 lets the SDKs poll at once (tests);
        # clients that treat 0 as "use my default" (the Azure CLI waits 30 s) need 1.
        self.retry_after = 0
        # Scale sets an AKS reconcile leaves alone (as it would one under a ReadOnly lock).
        self.reconcile_skips: set[str] = set()
        self._init_credentials()
        self.page_size = 50
        # Azure Resource Graph (emulator/resource_graph.py): rows per page when the request names
        # no $top, and the per-principal quota (15 queries per 5-second window, as in Azure) that
        # its x-ms-user-quota-* headers report; a query beyond it gets 429. With graph_frozen the
        # index keeps the rows it has (Resource Graph lags ARM): a test of stale inventory.
        self.graph_page_size = 100
        self.graph_quota = 15
        self.graph_quota_window = 5.0
        self.graph_calls: list[float] = []
        self.graph_frozen = False
        # ACR data plane content by registry id (lower): {repository: {"tags": {tag: digest},
        # "manifests": {digest: {"mediaType", "body": bytes}}, "blobs": {digest: bytes}}}.
        self.registry_repositories: dict[str, dict[str, Json]] = {}
        # Azure Monitor pull metrics by registry id (lower): [{"minutesAgo", "total",
        # "successful"}] (minutes without an entry had no pulls). A registry id in
        # registry_throttled answers every other data plane request with 429 toomanyrequests
        # (the value counts its requests): a throttled registry still serves some reads, and a
        # client that retries gets through, as with ACR under a burst.
        self.registry_pull_metrics: dict[str, list[Json]] = {}
        self.registry_throttled: dict[str, int] = {}
        # Tokens issued by the emulated ACR token service (refresh and access): token -> claims.
        self.acr_tokens: dict[str, Json] = {}
        # The Kubernetes API of each AKS cluster by cluster key (emulator.kubernetes.ClusterApi).
        self.kubernetes: dict[str, Any] = {}
        # The emulator's trustme CA (kubeconfig certificate-authority-data, client certificates)
        # and a loopback port that refuses connections (the server of an unreachable cluster).
        self.kube_ca: Any = None
        self.kube_refusing_port = 0
        # How long an AKS Run Command's pod takes to run (emulator/run_command.py), in seconds.
        self.run_command_latency = 0.0
        # Ticket systems (emulator/tickets.py): the credentials they accept and what they hold.
        # GitHub repositories by "owner/name" (lower): {"full_name", "id", "issues": [issue JSON],
        # "comments": {number: [comment JSON]}}; Azure DevOps projects by "org/project" (lower):
        # {"process", "types": {type: [states]}}, work items by id, comments by work item id.
        alphanumeric = string.ascii_letters + string.digits
        self.github_tokens: set[str] = {
            "ghp_" + "".join(secrets.choice(alphanumeric) for _ in range(36))
        }
        self.github_repositories: dict[str, Json] = {}
        self.ado_pats: set[str] = {
            "".join(secrets.choice(string.ascii_lowercase + "234567") for _ in range(52))
        }
        self.ado_projects: dict[str, Json] = {}
        self.ado_work_items: dict[int, Json] = {}
        self.ado_comments: dict[int, list[Json]] = {}
        # Chat webhooks: the secret part of each URL by format, and every message accepted.
        self.webhook_secrets: dict[str, str] = {
            "teams": secrets.token_urlsafe(32),
            "slack": secrets.token_urlsafe(18),
        }
        self.webhook_messages: list[Json] = []
        # Event Grid custom topics (emulator/eventgrid_topic.py) by name (lower): {"name", "key",
        # "events": [CloudEvent JSON as received]}.
        self.eventgrid_topics: dict[str, Json] = {}
        # Functions hosts of Function Apps (emulator/providers/web.py) by site id (lower): what
        # they have indexed and their keys, which Azure keeps outside the site resource.
        self.function_hosts: dict[str, Any] = {}

    # -- resources -------------------------------------------------------------------------

    def _init_credentials(self) -> None:
        """Credentials and who may use them (kept apart from __init__'s other state)."""
        # Secrets live beside the resources, never inside them, as in Azure.
        self.registry_passwords: dict[str, list[Json]] = {}
        # ACR token passwords by token id (lower): {slot: {"value", "creationTime", "expiry"?}}.
        self.token_passwords: dict[str, dict[str, Json]] = {}
        # Results of long-running POSTs answered through Location (generateCredentials).
        self.operation_results: dict[str, Json] = {}
        # Microsoft Graph applications by appId: the Graph shape plus "_secrets" {keyId: secretText}.
        self.graph_applications: dict[str, Json] = {}
        # Entra ID replication: a new secret is accepted only this many seconds after addPassword.
        self.secret_propagation_seconds = 0.0
        self.secret_ready_at: dict[str, float] = {}  # keyId -> epoch seconds
        # Role assignment lists through a subscription show built-in role ids in that
        # subscription's form (as ARM does); True shows the tenant form instead, as the REST
        # examples do, so tests can serve both forms the product must read.
        self.role_ids_listed_in_tenant_form = False

    # Stored bodies are never changed in place (put stores a copy, get returns one), so readers
    # that only serialize or filter may hold them without copying: see children(copy=False).

    def get(self, resource_id: str) -> Json | None:
        with self.lock:
            found = self.resources.get(resource_id.lower())
            return copy.deepcopy(found) if found is not None else None

    def put(self, resource: Json) -> Json:
        key = resource["id"].lower()
        stored = copy.deepcopy(resource)
        with self.lock:
            self._unindex(key)
            self.resources[key] = stored
            self._by_type.setdefault(str(stored.get("type", "")).lower(), {})[key] = stored
            self.version += 1
            return copy.deepcopy(resource)

    def delete(self, resource_id: str) -> bool:
        key = resource_id.lower()
        with self.lock:
            self.version += 1
            self._unindex(key)
            return self.resources.pop(key, None) is not None

    def _unindex(self, key: str) -> None:
        old = self.resources.get(key)
        if old is not None:
            self._by_type.get(str(old.get("type", "")).lower(), {}).pop(key, None)

    def children(self, parent_id: str, resource_type: str, *, copy: bool = True) -> list[Json]:
        """Resources of ``resource_type`` under ``parent_id`` (a RG, sub or resource), by id.

        ``copy=False`` returns the stored bodies themselves, for a reader that only serializes
        (one ARM page of a long list is copied, not the whole list).
        """
        prefix = parent_id.lower().rstrip("/") + "/"
        with self.lock:
            typed = self._by_type.get(resource_type.lower(), {})
            found = sorted((rid, body) for rid, body in typed.items() if rid.startswith(prefix))
        return [_copy(body) if copy else body for _, body in found]

    def of_type(self, resource_type: str, subscription_id: str) -> list[Json]:
        return self.children(f"/subscriptions/{subscription_id}", resource_type)

    def typed(self, resource_type: str, *, copy: bool = True) -> list[Json]:
        """Every resource of one type, anywhere: copies, or (``copy=False``) the stored bodies
        for a reader that only looks."""
        with self.lock:
            found = list(self._by_type.get(resource_type.lower(), {}).values())
        return [_copy(body) for body in found] if copy else found

    def iter_resources(self) -> Iterator[Json]:
        """A copy of every resource (callers may change what they get)."""
        with self.lock:
            items = list(self.resources.values())
        for body in items:
            yield _copy(body)

    def scan(self) -> list[Json]:
        """Every resource's stored body, not a copy: for readers that filter and never change."""
        with self.lock:
            return list(self.resources.values())

    def resource_group(self, subscription_id: str, name: str) -> Json | None:
        with self.lock:
            return self.resource_groups.get(
                f"/subscriptions/{subscription_id}/resourcegroups/{name}".lower()
            )

    def add_resource_group(self, subscription_id: str, name: str, location: str) -> None:
        rid = f"/subscriptions/{subscription_id}/resourceGroups/{name}"
        with self.lock:
            self.version += 1
            self.subscriptions.setdefault(
                subscription_id.lower(), {"subscriptionId": subscription_id}
            )
            self.resource_groups[rid.lower()] = {
                "id": rid,
                "name": name,
                "type": "Microsoft.Resources/resourceGroups",
                "location": location,
                "properties": {"provisioningState": "Succeeded"},
            }

    # -- journal, faults, auth ----------------------------------------------------------------

    def record(self, entry: JournalEntry) -> None:
        with self.lock:
            self.journal.append(entry)

    def inject(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    fault.hits += 1
                    return fault
        return None

    def issue_token(self, resource: str) -> str:
        """An access token for ``resource`` (its ``aud``) issued to the app's managed identity."""
        from emulator import jwt

        now = int(time.time())
        issuer = f"https://sts.windows.net/{self.tenant_id}/"
        token = jwt.encode(
            {
                "aud": resource,
                "iss": issuer,
                "iat": now,
                "nbf": now,
                "exp": now + 3600,
                "appid": self.app_principal_id,
                "appidacr": "2",
                "idp": issuer,
                "idtyp": "app",
                "oid": self.app_principal_id,
                "sub": self.app_principal_id,
                "tid": self.tenant_id,
                "uti": secrets.token_urlsafe(16),
                "ver": "1.0",
            },
            self.token_key,
        )
        with self.lock:
            self.tokens[token] = resource
        return token

    def token_audience(self, token: str) -> str | None:
        """The resource a token issued here was minted for (None: not a token of ours)."""
        with self.lock:
            return self.tokens.get(token)

    def principal_new(self, principal_id: str) -> None:
        """Record that a principal was just created (it replicates for ``replication_delay``)."""
        with self.lock:
            self.principal_created[principal_id.lower()] = time.monotonic()

    def principal_replicated(self, principal_id: str) -> bool:
        with self.lock:
            created = self.principal_created.get(principal_id.lower())
            delay = self.replication_delay
        return created is None or time.monotonic() >= created + delay

    def is_denied(self, path: str) -> bool:
        lowered = path.lower()
        with self.lock:
            return any(lowered.startswith(scope) for scope in self.denied_scopes)
