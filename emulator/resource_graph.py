"""Azure Resource Graph: ``POST /providers/Microsoft.ResourceGraph/resources``, evaluated for real.

The query text is KQL, and it is *evaluated* against the emulator's state: ``duckdb-kql`` (an ANTLR
parser built from Microsoft's own Kusto grammar, lowering KQL to DuckDB SQL) translates it, and an
in-memory DuckDB runs it over two tables with Resource Graph's schema:

- ``resources``: every ARM resource Resource Graph indexes (top-level resources and the few child
  types it lists, such as private DNS zone links), with ``type`` and ``resourceGroup`` lower-cased
  as Resource Graph returns them; the ARM body's ``properties``, ``identity``, ``sku`` and ``tags``
  as dynamic (JSON) columns.
- ``authorizationresources``: role assignments at every scope (resource, group, subscription,
  management group, root) and role definitions (the built-in ones ARM serves at every scope, and
  custom ones).
- ``resourcecontainers``: subscriptions (with ``properties.managementGroupAncestorsChain``,
  nearest group first) and resource groups.

Why a library and not a hand-written subset: duckdb-kql covers ``where``/``project``/``extend``/
``mv-expand``/``join``/``summarize``/``order``/``take`` and the string and dynamic functions with
Kusto's semantics (``=~``, ``in~``, ``has``, ``tostring``, ``parse_json``...), and refuses loudly what
it does not translate; a construct it refuses is a 400 here (Azure would accept it), never a
plausible wrong answer.

The index is built once per change of the emulator's state (``State.version``), not per request:
a sweep's queries and pages read the same DuckDB tables. Each request sees only the rows of the
subscriptions it names (and, for role assignments, the management groups above them and the root).

Paging follows Resource Graph: ``$top`` (default 100, at most 1000) rows per page, a ``$skipToken``
when more rows remain, but only when the result has an ``id`` column (without one, Resource Graph
cannot page stably: the first page comes back with ``resultTruncated: "true"``). Every answer carries
the per-principal quota headers ``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after``;
past the quota, 429 ``RateLimiting``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from werkzeug.wrappers import Request, Response

from emulator.arm import ArmError, json_response
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

PATH = r"/providers/Microsoft\.ResourceGraph/resources"
API_VERSIONS = (
    "2018-09-01-preview",
    "2019-04-01",
    "2020-04-01-preview",
    "2020-09-01-preview",
    "2021-03-01",
    "2021-06-01-preview",
    "2022-10-01",
    "2024-04-01",
)
# Before 2021-03-01 the default result format was a table; since then an array of objects.
TABLE_DEFAULT_BEFORE = "2021-03-01"
MAX_TOP = 1000
# Resource Graph's columns, in its order; the dynamic ones hold JSON.
COLUMNS: dict[str, str] = {
    "id": "VARCHAR",
    "name": "VARCHAR",
    "type": "VARCHAR",
    "tenantId": "VARCHAR",
    "kind": "VARCHAR",
    "location": "VARCHAR",
    "resourceGroup": "VARCHAR",
    "subscriptionId": "VARCHAR",
    "managedBy": "VARCHAR",
    "sku": "JSON",
    "plan": "JSON",
    "properties": "JSON",
    "tags": "JSON",
    "identity": "JSON",
    "zones": "JSON",
    "extendedLocation": "JSON",
}
TABLES = ("resources", "authorizationresources", "resourcecontainers")
# Child resource types Resource Graph lists as rows of their own (others live in their parent's
# properties, as subnets and peerings do in a virtual network's, or not at all, as DNS records).
INDEXED_CHILDREN = frozenset({"microsoft.network/privatednszones/virtualnetworklinks"})
NOT_INDEXED = ("microsoft.authorization/", "microsoft.management/")
AUTHORIZATION_TYPES = frozenset(
    {"microsoft.authorization/roleassignments", "microsoft.authorization/roledefinitions"}
)
_SORTED = re.compile(r"\|\s*(order|sort)\s+by\b", re.IGNORECASE)
_SUBSCRIPTION = re.compile(r"^[0-9a-zA-Z-]{1,64}$")


class GraphIndex:
    """Resource Graph's tables in one in-memory DuckDB, rebuilt when the state has changed."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._con: Any = None
        self._built = -1

    def query(
        self, kql: str, subscriptions: list[str], groups: list[str]
    ) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
        """(column names, column types, rows) of ``kql`` over the rows of these scopes."""
        import duckdb_kql

        with self._lock:
            self._refresh()
            schema = {
                name: list(COLUMNS) for table in TABLES for name in (table, table.capitalize())
            }
            schema["AuthorizationResources"] = list(COLUMNS)
            schema["ResourceContainers"] = list(COLUMNS)
            sql = duckdb_kql.to_sql(kql, schema=schema, allow_write=False)
            if sql.parameters:
                raise _query_error("UnsupportedQueryParameters", "declare query_parameters")
            # Each table is seen through the request's scopes: a CTE per table, named as the table.
            # The scopes are bound parameters; the query itself is SQL duckdb-kql generated.
            columns = ", ".join(f'"{c}"' for c in COLUMNS)
            wrapped = (
                f"WITH resources AS (SELECT {columns} FROM _resources "  # noqa: S608
                f"WHERE list_contains($subs, _sub)), authorizationresources AS (SELECT {columns} "
                f"FROM _authorization WHERE list_contains($subs, _sub) "
                f"OR list_contains($scopes, _scope)), resourcecontainers AS (SELECT {columns} "
                f"FROM _containers WHERE list_contains($subs, _sub)) SELECT * FROM ({sql})"
            )
            relation = self._con.sql(wrapped, params={"subs": subscriptions, "scopes": groups})
            return relation.columns, [str(t) for t in relation.types], relation.fetchall()

    def _refresh(self) -> None:
        with self.state.lock:
            version = self.state.version
            if version == self._built or (self.state.graph_frozen and self._con is not None):
                return
            resources, authorization = _rows(self.state)
            containers = _containers(self.state)
        import duckdb_kql

        if self._con is None:
            self._con = duckdb_kql.connect()
        tables = (
            ("_resources", resources),
            ("_authorization", authorization),
            ("_containers", containers),
        )
        for table, rows in tables:
            self._load(table, rows)
        self._built = version

    def _load(self, table: str, rows: list[str]) -> None:
        columns = {**COLUMNS, "_sub": "VARCHAR", "_scope": "VARCHAR"}
        spec = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
        handle, path = tempfile.mkstemp(prefix="resource-graph-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write("\n".join(rows))
            if not rows:
                names = ", ".join(f'"{n}" {k}' for n, k in columns.items())
                self._con.execute(f"CREATE OR REPLACE TABLE {table} ({names})")
                return
            self._con.execute(
                f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM read_json(?, "  # noqa: S608
                f"format='newline_delimited', columns={{{spec}}})",
                [path],
            )
        finally:
            os.unlink(path)


def _rows(state: State) -> tuple[list[str], list[str]]:
    """Resource Graph rows (as JSON lines) of every indexed resource, read under the state lock.

    The stored bodies are serialized, not copied: the state replaces a body on every write."""
    from emulator.providers.authorization import BUILT_IN_ROLES, tenant_definition_id

    resources: list[str] = []
    authorization: list[str] = []
    for rid, body in state.resources.items():
        kind = str(body.get("type", "")).lower()
        if kind in AUTHORIZATION_TYPES:
            authorization.append(json.dumps(_row(state, rid, body)))
        elif _indexed(kind):
            resources.append(json.dumps(_row(state, rid, body)))
    for guid, role in BUILT_IN_ROLES.items():
        body = {**role, "id": tenant_definition_id(guid)}
        authorization.append(json.dumps(_row(state, body["id"].lower(), body)))
    return resources, authorization


def _containers(state: State) -> list[str]:
    """Subscriptions (with their management-group chain) and resource groups, as JSON lines."""
    from emulator.providers import management

    rows = []
    for key, subscription in state.subscriptions.items():
        sub_id = str(subscription.get("subscriptionId", key))
        chain = [
            {"name": scope.rsplit("/", 1)[-1], "displayName": scope.rsplit("/", 1)[-1]}
            for scope in management.ancestors(state, f"/subscriptions/{sub_id}")
            if scope != "/"
        ]
        body = {
            "id": f"/subscriptions/{sub_id}",
            "name": subscription.get("displayName", sub_id),
            "type": "microsoft.resources/subscriptions",
            "properties": {"state": "Enabled", "managementGroupAncestorsChain": chain},
        }
        rows.append(json.dumps(_row(state, body["id"].lower(), body)))
    for rid, group in state.resource_groups.items():
        body = {**group, "type": "microsoft.resources/subscriptions/resourcegroups"}
        rows.append(json.dumps(_row(state, rid, body)))
    return rows


def _indexed(kind: str) -> bool:
    if kind.startswith(NOT_INDEXED):
        return False
    return kind.count("/") == 1 or kind in INDEXED_CHILDREN


def _row(state: State, rid: str, body: Json) -> Json:
    parts = rid.split("/")
    subscription = parts[2] if len(parts) > 2 and parts[1] == "subscriptions" else ""
    group = parts[4] if len(parts) > 4 and parts[3] == "resourcegroups" else ""
    scope = rid.split("/providers/microsoft.authorization/", maxsplit=1)[0] or "/"
    return {
        "id": body.get("id", rid),
        "name": body.get("name", parts[-1]),
        "type": str(body.get("type", "")).lower(),
        "tenantId": state.tenant_id,
        "kind": body.get("kind") or "",
        "location": str(body.get("location") or "").lower(),
        "resourceGroup": group,
        "subscriptionId": subscription,
        "managedBy": body.get("managedBy") or "",
        "sku": body.get("sku"),
        "plan": body.get("plan"),
        "properties": body.get("properties") or {},
        "tags": body.get("tags"),
        "identity": body.get("identity"),
        "zones": body.get("zones"),
        "extendedLocation": body.get("extendedLocation"),
        "_sub": subscription,
        "_scope": scope,
    }


# -- the endpoint ----------------------------------------------------------------------------------


class ResourceGraph:
    def __init__(self, state: State) -> None:
        self.state = state
        self.index = GraphIndex(state)

    def handle(self, request: Request) -> Response:
        api_version = request.args.get("api-version", "")
        if api_version not in API_VERSIONS:
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location 'global' and API version "
                f"'{api_version}' for type 'resources'. The supported api-versions are "
                f"'{', '.join(API_VERSIONS)}'.",
            )
        if request.method != "POST":
            raise ArmError(405, "MethodNotAllowed", f"{request.method} is not allowed here.")
        remaining, resets = self._spend_quota()
        headers = {
            "x-ms-user-quota-remaining": str(remaining),
            "x-ms-user-quota-resets-after": resets,
        }
        if remaining < 0:
            headers["x-ms-user-quota-remaining"] = "0"
            headers["Retry-After"] = str(max(1, round(_seconds(resets))))
            return _error(
                429,
                "RateLimiting",
                "Client application has been throttled and should not attempt to repeat the "
                "request until an amount of time has elapsed.",
                [],
                headers,
            )
        try:
            body = _body(request)
            return json_response(self._answer(body, api_version), 200, headers)
        except _BadQuery as exc:
            return _error(400, "BadRequest", _support(), exc.details, headers)

    def _spend_quota(self) -> tuple[int, str]:
        """Count this query in the quota window: (remaining after it, -1 if over; resets after)."""
        now = time.monotonic()
        with self.state.lock:
            window = self.state.graph_quota_window
            calls = [t for t in self.state.graph_calls if now - t < window]
            over = len(calls) >= self.state.graph_quota
            if not over:
                calls.append(now)
            self.state.graph_calls = calls
            remaining = -1 if over else self.state.graph_quota - len(calls)
            resets = (calls[0] + window - now) if calls else window
        return remaining, _timespan(resets)

    def _answer(self, body: Json, api_version: str) -> Json:
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise _BadQuery([_detail("InvalidQuery", "The query is missing or empty.")])
        subscriptions, groups = self._scopes(body)
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise _BadQuery([_detail("InvalidOptions", "options must be an object.")])
        top, skip = _paging(options, query, subscriptions, self.state.graph_page_size)
        default = "table" if api_version < TABLE_DEFAULT_BEFORE else "objectArray"
        result_format = str(options.get("resultFormat") or default)
        if result_format.lower() not in ("table", "objectarray"):
            raise _BadQuery([_detail("InvalidResultFormat", f"'{result_format}' is not known.")])
        names, kinds, rows = self._evaluate(query, subscriptions, groups)
        if "id" in names and not _SORTED.search(query):
            at = names.index("id")
            rows.sort(key=lambda r: str(r[at] or "").lower())  # stable pages, as Azure sorts by id
        total = len(rows)
        page = rows[skip : skip + top]
        answer: Json = {"totalRecords": total, "count": len(page), "resultTruncated": "false"}
        if skip + top < total:
            if "id" in names:
                answer["$skipToken"] = _token(skip + top, query, subscriptions)
            else:
                answer["resultTruncated"] = "true"  # no id to page by: the first page only
        values = [[_value(v, k) for v, k in zip(row, kinds, strict=True)] for row in page]
        if result_format.lower() == "table":
            answer["data"] = {
                "columns": [
                    {"name": n, "type": _column_type(k)} for n, k in zip(names, kinds, strict=True)
                ],
                "rows": values,
            }
        else:
            answer["data"] = [dict(zip(names, row, strict=True)) for row in values]
        answer["facets"] = [
            self._facet(f, query, subscriptions, groups) for f in body.get("facets") or []
        ]
        return answer

    def _scopes(self, body: Json) -> tuple[list[str], list[str]]:
        """The subscriptions a query reads, and the management groups (and root) above them."""
        from emulator.providers import management

        subscriptions = body.get("subscriptions")
        groups = body.get("managementGroups")
        with self.state.lock:
            known = list(self.state.subscriptions)
        if groups:
            if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
                raise _BadQuery(
                    [_detail("InvalidManagementGroups", "managementGroups must be strings.")]
                )
            chosen: set[str] = set()
            for group in groups:
                chosen |= management.subscriptions_under(self.state, management.group_id(group))
            subscriptions = sorted(chosen)
        elif subscriptions is None:
            subscriptions = known  # a tenant-scope query: every subscription the caller sees
        if not isinstance(subscriptions, list) or not all(
            isinstance(s, str) and _SUBSCRIPTION.match(s) for s in subscriptions
        ):
            raise _BadQuery(
                [_detail("InvalidSubscriptions", "subscriptions must be subscription ids.")]
            )
        # Resource Graph shows only what the caller may read: a denied subscription has no rows.
        visible = [
            s.lower()
            for s in subscriptions
            if s.lower() in known and not self.state.is_denied(f"/subscriptions/{s}")
        ]
        above = {
            a.lower()
            for s in visible
            for a in management.ancestors(self.state, f"/subscriptions/{s}")
        }
        return visible, sorted(above)

    def _evaluate(
        self, query: str, subscriptions: list[str], groups: list[str]
    ) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
        import duckdb
        from duckdb_kql import KqlError, KqlSyntaxError

        try:
            names, kinds, rows = self.index.query(query, subscriptions, groups)
        except KqlSyntaxError as exc:
            raise _BadQuery([_invalid(), *_parser_failures(exc, query)]) from None
        except KqlError as exc:
            raise _BadQuery([_invalid(), _detail("InvalidQueryLanguage", str(exc))]) from None
        except duckdb.Error as exc:
            # An unknown column, table or function: Kusto's semantic errors, found by DuckDB here.
            message = str(exc).split("\n")[0]
            raise _BadQuery([_invalid(), _detail("FailedToResolveQuery", message)]) from None
        return list(names), kinds, list(rows)

    def _facet(self, facet: Any, query: str, subscriptions: list[str], groups: list[str]) -> Json:
        """A facet: the query's rows counted by ``expression``, as Resource Graph's facets are."""
        expression = str((facet or {}).get("expression", "")) if isinstance(facet, dict) else ""
        options = (facet or {}).get("options") or {} if isinstance(facet, dict) else {}
        top = options.get("$top", 10)
        if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= MAX_TOP:
            error = _detail("InvalidFacetOptions", f"$top must be between 1 and {MAX_TOP}.")
            return {"expression": expression, "resultType": "FacetError", "errors": [error]}
        order = "asc" if str(options.get("sortOrder", "desc")).lower() == "asc" else "desc"
        try:
            names, kinds, rows = self._evaluate(
                f"{query} | summarize ['count'] = count() by {expression} "
                f"| order by ['count'] {order} | take {top}",
                subscriptions,
                groups,
            )
        except _BadQuery as exc:
            return {"expression": expression, "resultType": "FacetError", "errors": exc.details[1:]}
        values = [[_value(v, k) for v, k in zip(row, kinds, strict=True)] for row in rows]
        return {
            "expression": expression,
            "resultType": "FacetResult",
            "totalRecords": len(rows),
            "count": len(rows),
            "data": [dict(zip(names, row, strict=True)) for row in values],
        }


class _BadQuery(Exception):
    def __init__(self, details: list[Json]) -> None:
        super().__init__(details[0]["message"] if details else "bad query")
        self.details = details


def _query_error(code: str, what: str) -> _BadQuery:
    return _BadQuery([_invalid(), _detail(code, f"{what} is not supported by Resource Graph.")])


def _invalid() -> Json:
    return _detail(
        "InvalidQuery",
        "Query is invalid. Please refer to the documentation for the Azure Resource Graph "
        "service and fix the error before retrying.",
    )


def _detail(code: str, message: str, **extra: Any) -> Json:
    return {"code": code, "message": message, **extra}


def _parser_failures(exc: Any, query: str) -> list[Json]:
    """Resource Graph's ParserFailure details: line, character position and the token there."""
    found = []
    lines = query.splitlines() or [""]
    for diagnostic in exc.diagnostics or []:
        line, column = diagnostic.span.line, diagnostic.span.column
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        token = text[column:].split(" ")[0] if column < len(text) else "<EOF>"
        found.append(
            _detail(
                "ParserFailure",
                "ParserFailure",
                line=line,
                characterPositionInLine=column,
                token=token,
            )
        )
    return found or [_detail("ParserFailure", "ParserFailure", line=-1, characterPositionInLine=-1)]


def _support() -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    return (
        f"Please provide below info when asking for support: timestamp = {stamp}, "
        f"correlationId = {uuid4()}."
    )


def _error(
    status: int, code: str, message: str, details: list[Json], headers: dict[str, str]
) -> Response:
    error: Json = {"code": code, "message": message}
    if details:
        error["details"] = details
    return json_response({"error": error}, status, headers)


def _body(request: Request) -> Json:
    try:
        parsed = json.loads(request.get_data(as_text=True) or "null")
    except json.JSONDecodeError as exc:
        raise _BadQuery(
            [_detail("InvalidRequestContent", f"The request content was invalid: {exc}")]
        ) from None
    if not isinstance(parsed, dict):
        raise _BadQuery(
            [_detail("InvalidRequestContent", "The request content must be a JSON object.")]
        )
    return parsed


def _fingerprint(query: str, subscriptions: list[str]) -> str:
    return hashlib.sha256(f"{query}\n{','.join(subscriptions)}".encode()).hexdigest()[:16]


def _token(offset: int, query: str, subscriptions: list[str]) -> str:
    raw = json.dumps({"$skip": offset, "query": _fingerprint(query, subscriptions)})
    return base64.b64encode(raw.encode()).decode()


def _paging(
    options: Json, query: str, subscriptions: list[str], default_top: int
) -> tuple[int, int]:
    """($top, $skip) of a request: a $skipToken sets the offset; $top and $skip override it."""
    skip = 0
    token = options.get("$skipToken")
    if token:
        try:
            decoded = json.loads(base64.b64decode(str(token), validate=True))
            skip = int(decoded["$skip"])
            same = decoded["query"] == _fingerprint(query, subscriptions)
        except (ValueError, KeyError, TypeError):
            same = False
        if not same:
            raise _BadQuery(
                [_detail("InvalidSkipToken", "The $skipToken is invalid for this query.")]
            )
    top = options.get("$top")
    explicit_skip = options.get("$skip")
    for name, value in (("$top", top), ("$skip", explicit_skip)):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise _BadQuery([_detail("InvalidQueryOptions", f"{name} must be a whole number.")])
    if top is not None and not 1 <= top <= MAX_TOP:
        raise _BadQuery([_detail("InvalidQueryOptions", f"$top must be between 1 and {MAX_TOP}.")])
    if explicit_skip is not None:
        skip = explicit_skip
    return top or default_top, skip


def _value(value: Any, kind: str) -> Any:
    """A DuckDB value as Resource Graph's JSON: dynamic columns parsed, dates in ISO 8601."""
    if value is None:
        return None
    if kind == "JSON":
        return json.loads(value)
    if kind.endswith("[]") and isinstance(value, list):
        return [_value(v, kind[:-2]) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _column_type(kind: str) -> str:
    if kind in ("BIGINT", "INTEGER", "HUGEINT", "SMALLINT", "TINYINT", "UBIGINT"):
        return "integer"
    if kind in ("DOUBLE", "FLOAT") or kind.startswith("DECIMAL"):
        return "number"
    if kind == "BOOLEAN":
        return "boolean"
    if kind.startswith("TIMESTAMP"):
        return "datetime"
    if kind == "JSON" or kind.endswith("[]"):
        return "object"
    return "string"


def _timespan(seconds: float) -> str:
    whole = max(0, int(seconds + 0.999))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _seconds(timespan: str) -> float:
    hours, minutes, seconds = (int(p) for p in timespan.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def register(emulator: Emulator) -> None:
    graph = ResourceGraph(emulator.state)
    emulator.arm.register_path(PATH, graph.handle)
