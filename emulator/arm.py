"""Azure Resource Manager: routing by resource id, errors, paging, long-running operations.

Resource providers register a :class:`ResourceKind` per resource type; this module does what ARM
itself does for all of them (case-insensitive ids, the error envelope, ``nextLink`` paging,
``Azure-AsyncOperation`` polling) so the provider modules only describe their own resources.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jsonschema
from werkzeug.wrappers import Request, Response

from emulator.state import Json, Operation, State

API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")

PutHook = Callable[[State, str, Json, Json | None], Json]
CompleteHook = Callable[[State, str], None]
ActionHook = Callable[[State, "ArmRequest"], Response]
ListHook = Callable[[State, "ArmRequest"], list[Json]]
# Reads a resource that is not stored at its own id (a built-in role definition, seen at any scope).
GetHook = Callable[[State, "ArmRequest"], Json]
# A route outside the providers' resource ids (/subscriptions, /tenants, .../resources).
PathHandler = Callable[[Request], Response]


class ArmError(Exception):
    """An ARM error envelope ``{"error": {"code", "message"}}`` with its HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = {}

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return json_response(
            {"error": {"code": self.code, "message": self.message}},
            self.status,
            {**self.headers, **(headers or {})},
        )

    def throttled(self, kind: str, seconds: float) -> ArmError:
        """This error as ARM's 429: Retry-After and an empty bucket's remaining count."""
        from emulator.throttling import retry_after

        self.headers["Retry-After"] = retry_after(seconds)
        self.headers[f"x-ms-ratelimit-remaining-subscription-{kind}"] = "0"
        return self


@dataclass
class ResourceKind:
    """What the emulator knows about one ARM resource type."""

    type: str
    schema: Json | None = None
    long_running: bool = False
    on_put: PutHook | None = None
    on_complete: CompleteHook | None = None
    list_children: ListHook | None = None
    actions: dict[str, ActionHook] = field(default_factory=dict)
    read_only: bool = False
    get: GetHook | None = None
    # PATCH (``begin_update``): validated against this schema, then merged like a PUT.
    patch_schema: Json | None = None
    # A collection GET answered with its own body, not ARM's {"value", "nextLink"} pages
    # (Azure Monitor metrics: a scope's ``providers/Microsoft.Insights/metrics``).
    get_collection: GetHook | None = None
    # Served at management-group and root (``/``) scope too, as Microsoft.Authorization is.
    any_scope: bool = False


@dataclass(frozen=True)
class ArmRequest:
    """A parsed ARM request path."""

    request: Request
    scope: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]
    action: str | None

    @property
    def type_name(self) -> str:
        return "/".join((self.namespace, *self.types))

    @property
    def subscription_id(self) -> str:
        """The subscription of the scope; empty at management-group and root scope."""
        parts = self.scope.split("/")
        return parts[2] if len(parts) > 2 and parts[1].lower() == "subscriptions" else ""

    @property
    def above_subscriptions(self) -> bool:
        """At the root scope or a management group: no subscription in the path."""
        return not self.scope.lower().startswith("/subscriptions/")

    @property
    def resource_group(self) -> str | None:
        parts = self.scope.split("/")
        return parts[4] if len(parts) > 4 and parts[3].lower() == "resourcegroups" else None

    @property
    def resource_id(self) -> str:
        pairs = [f"{t}/{n}" for t, n in zip(self.types, self.names, strict=False)]
        return f"{self.scope}/providers/{self.namespace}/" + "/".join(pairs)

    @property
    def is_collection(self) -> bool:
        return len(self.names) < len(self.types)

    def body(self) -> Json:
        try:
            parsed = json.loads(self.request.get_data(as_text=True) or "null")
        except json.JSONDecodeError as exc:
            raise ArmError(
                400, "InvalidRequestContent", f"The request content was invalid: {exc}"
            ) from exc
        if not isinstance(parsed, dict):
            raise ArmError(
                400, "InvalidRequestContent", "The request content must be a JSON object."
            )
        return parsed


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    response.headers["x-ms-request-id"] = str(uuid.uuid4())
    return response


def parse(request: Request) -> ArmRequest:
    path = request.path.rstrip("/")
    marker = path.lower().rfind("/providers/")
    if marker < 0:
        raise ArmError(400, "InvalidResourceType", f"The resource path '{path}' is not supported.")
    scope, rest = path[:marker], path[marker + len("/providers/") :]
    segments = rest.split("/")
    namespace, tail = segments[0], segments[1:]
    types, names = list(tail[0::2]), list(tail[1::2])
    action = None
    if request.method == "POST" and len(types) > len(names) and names:
        action = types.pop()
    return ArmRequest(request, scope, namespace, tuple(types), tuple(names), action)


class Arm:
    """Dispatches ARM requests to the registered resource kinds."""

    def __init__(self, state: State, base_url: Callable[[], str]) -> None:
        self.state = state
        self.base_url = base_url
        self.kinds: dict[str, ResourceKind] = {}
        self.paths: list[tuple[re.Pattern[str], PathHandler]] = []

    def register(self, kind: ResourceKind) -> None:
        self.kinds[kind.type.lower()] = kind

    def register_path(self, pattern: str, handler: PathHandler) -> None:
        """Serve ARM paths matching ``pattern`` (full match, case-insensitive) with ``handler``."""
        self.paths.append((re.compile(pattern, re.IGNORECASE), handler))

    def handle(self, request: Request) -> Response:
        api_version = request.args.get("api-version")
        if not api_version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if not API_VERSION.match(api_version):
            raise ArmError(
                400, "InvalidApiVersionParameter", f"The api-version '{api_version}' is invalid."
            )
        self.finish_due_operations()
        for pattern, handler in self.paths:
            if pattern.fullmatch(request.path.rstrip("/")):
                return handler(request)
        if re.fullmatch(r"/subscriptions/[^/]+/resourcegroups/[^/]+/?", request.path, re.I):
            return self._resource_group(request)
        arm = parse(request)
        self._check_scope_exists(arm)
        if arm.types[-2:] in (("locations", "operations"), ("locations", "operationresults")):
            return self._operation(arm)
        kind = self.kinds.get(self._kind_key(arm))
        if kind is None or (arm.above_subscriptions and not kind.any_scope):
            raise ArmError(
                400,
                "InvalidResourceType",
                f"The resource type '{arm.type_name}' could not be found in the namespace "
                f"'{arm.namespace}' for api version '{api_version}'.",
            )
        self._authorize(arm, request.method)
        if arm.action:
            return self._action(kind, arm)
        if arm.is_collection:
            if request.method != "GET":
                raise ArmError(405, "MethodNotAllowed", f"{request.method} is not allowed here.")
            if kind.get_collection is not None:
                return json_response(kind.get_collection(self.state, arm))
            return self._list(kind, arm)
        if request.method == "GET":
            return json_response(kind.get(self.state, arm) if kind.get else self._get(arm))
        if request.method == "PUT":
            return self._put(kind, arm)
        if request.method == "PATCH" and kind.patch_schema is not None:
            return self._patch(kind, arm)
        if request.method == "DELETE":
            return self._delete(arm)
        raise ArmError(405, "MethodNotAllowed", f"{request.method} is not allowed here.")

    # -- helpers ---------------------------------------------------------------------------

    def _kind_key(self, arm: ArmRequest) -> str:
        return arm.type_name.lower()

    def _check_scope_exists(self, arm: ArmRequest) -> None:
        if arm.above_subscriptions:
            if arm.scope and self.state.get(arm.scope) is None:
                # A management group that does not exist (or a scope ARM does not know).
                raise ArmError(
                    404,
                    "ManagementGroupNotFound",
                    f"The scope '{arm.scope}' does not exist or you may not have access to it.",
                )
            return
        if arm.subscription_id.lower() not in self.state.subscriptions:
            raise ArmError(
                404,
                "SubscriptionNotFound",
                f"The subscription '{arm.subscription_id}' could not be found.",
            )
        rg = arm.resource_group
        if rg and self.state.resource_group(arm.subscription_id, rg) is None:
            raise ArmError(
                404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
            )

    def _authorize(self, arm: ArmRequest, method: str) -> None:
        target = arm.resource_id if not arm.is_collection else arm.scope
        if self.state.is_denied(target) or self.state.is_denied(arm.request.path):
            verb = {"GET": "read", "PUT": "write", "DELETE": "delete"}.get(method, "action")
            # ARM names POST actions ".../<action>/action", as in role definitions.
            operation = (
                f"{arm.type_name}/{arm.action}/action" if arm.action else f"{arm.type_name}/{verb}"
            )
            raise ArmError(
                403,
                "AuthorizationFailed",
                f"The client '{self.state.app_principal_id}' with object id "
                f"'{self.state.app_principal_id}' does not have authorization to perform action "
                f"'{operation}' over scope '{target}' or the scope is invalid. If access was "
                "recently granted, please refresh your credentials.",
            )

    def _get(self, arm: ArmRequest) -> Json:
        found = self.state.get(arm.resource_id)
        if found is None:
            raise self.not_found(arm)
        return found

    def not_found(self, arm: ArmRequest) -> ArmError:
        rg = arm.resource_group
        where = f" under resource group '{rg}'" if rg else ""
        return ArmError(
            404,
            "ResourceNotFound",
            f"The Resource '{arm.type_name}/{'/'.join(arm.names)}'{where} was not found. For more "
            "details please go to https://aka.ms/ARMResourceNotFoundFix",
        )

    def _list(self, kind: ResourceKind, arm: ArmRequest) -> Response:
        if kind.list_children is not None:
            items = kind.list_children(self.state, arm)
        elif arm.names:
            parent = arm.resource_id
            if self.state.get(parent) is None:
                raise self.not_found(arm)
            items = self.state.children(parent, arm.type_name, copy=False)
        else:
            # Serialized, never changed: no copy of a long list for each of its pages.
            items = self.state.children(arm.scope, arm.type_name, copy=False)
        return self.page(arm.request, items)

    def page(self, request: Request, items: list[Json]) -> Response:
        """One page of ``items`` with a ``nextLink`` to the rest, as every ARM list answers."""
        skip = int(request.args.get("$skiptoken", "0") or 0)
        size = self.state.page_size
        page: Json = {"value": items[skip : skip + size]}
        if skip + size < len(items):
            query = dict(request.args)
            query["$skiptoken"] = str(skip + size)
            page["nextLink"] = f"{self.base_url()}{request.path}?{urlencode(query)}"
        return json_response(page)

    def _put(self, kind: ResourceKind, arm: ArmRequest) -> Response:
        if kind.read_only:
            raise ArmError(405, "MethodNotAllowed", f"PUT is not supported for {arm.type_name}.")
        body = arm.body()
        if kind.schema is not None:
            _validate(kind.schema, body)
        existing = self.state.get(arm.resource_id)
        _check_if_match(arm, existing)
        stored = kind.on_put(self.state, arm.resource_id, body, existing) if kind.on_put else body
        stored.setdefault("id", arm.resource_id)
        stored.setdefault("name", arm.names[-1])
        stored.setdefault("type", arm.type_name)
        status = 200 if existing else 201
        if not kind.long_running:
            return json_response(self.state.put(stored), status)
        fault = self.state.take_fault("LRO", arm.request.path)
        stored.setdefault("properties", {})["provisioningState"] = (
            "Updating" if existing else "Creating"
        )
        self.state.put(stored)
        operation = Operation(
            id=str(uuid.uuid4()),
            resource_id=arm.resource_id,
            polls_left=self.state.lro_polls,
            fails=bool(fault and fault.lro_fails),
        )
        with self.state.lock:
            self.state.operations[operation.id] = operation
        location = stored.get("location", "global")
        status_url = (
            f"{self.base_url()}/subscriptions/{arm.subscription_id}/providers/{arm.namespace}"
            f"/locations/{location}/operations/{operation.id}?api-version={arm.request.args['api-version']}"
        )
        return json_response(
            stored,
            status,
            {"Azure-AsyncOperation": status_url, "Retry-After": str(self.state.retry_after)},
        )

    def _patch(self, kind: ResourceKind, arm: ArmRequest) -> Response:
        """A synchronous update: the body is merged into the resource as a PUT would be."""
        existing = self._get(arm)
        body = arm.body()
        _validate(kind.patch_schema or {}, body)
        merged = kind.on_put(self.state, arm.resource_id, body, existing) if kind.on_put else body
        return json_response(self.state.put(merged))

    def _delete(self, arm: ArmRequest) -> Response:
        if not self.state.delete(arm.resource_id):
            return Response(status=204)
        return Response(status=200)

    def _action(self, kind: ResourceKind, arm: ArmRequest) -> Response:
        handler = kind.actions.get(arm.action.lower() if arm.action else "")
        if handler is None:
            raise ArmError(
                404,
                "InvalidResourceType",
                f"The action '{arm.action}' is not supported on {arm.type_name}.",
            )
        self._get(arm)
        return handler(self.state, arm)

    def _operation(self, arm: ArmRequest) -> Response:
        with self.state.lock:
            operation = self.state.operations.get(arm.names[-1])
            if operation is None:
                raise ArmError(404, "NotFound", f"Operation '{arm.names[-1]}' was not found.")
            if operation.status == "InProgress":
                operation.polls_left -= 1
                if operation.polls_left < 0:
                    self._finish(operation)
        body: Json = {
            "name": operation.id,
            "status": operation.status,
            "startTime": _iso(operation.started),
        }
        if operation.status != "InProgress":
            body["endTime"] = _iso(time.time())
        if operation.status == "Failed":
            body["error"] = {
                "code": "ReconcileVMSSAgentPoolFailed",
                "message": "Agent pool reconciliation failed: the operation was injected to fail.",
            }
        return json_response(body, 200, {"Retry-After": str(self.state.retry_after)})

    def finish_due_operations(self) -> None:
        """Operations run on their own in Azure: one nobody polls (its client died, or lost the
        response) still ends after ``state.operation_seconds``, seen by the next request."""
        seconds = self.state.operation_seconds
        if seconds is None:
            return
        now = time.time()
        with self.state.lock:
            for operation in list(self.state.operations.values()):
                if operation.status == "InProgress" and now >= operation.started + seconds:
                    self._finish(operation)

    def _finish(self, operation: Operation) -> None:
        resource = self.state.get(operation.resource_id)
        operation.status = "Failed" if operation.fails else "Succeeded"
        if resource is None:
            return
        resource.setdefault("properties", {})["provisioningState"] = operation.status
        self.state.put(resource)
        if operation.fails:
            return
        kind = self.kinds.get(resource["type"].lower())
        if kind and kind.on_complete:
            kind.on_complete(self.state, operation.resource_id)

    def _resource_group(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        subscription, name = parts[1], parts[3]
        if subscription.lower() not in self.state.subscriptions:
            raise ArmError(
                404,
                "SubscriptionNotFound",
                f"The subscription '{subscription}' could not be found.",
            )
        group = self.state.resource_group(subscription, name)
        if group is None or request.method != "GET":
            raise ArmError(
                404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found."
            )
        return json_response(group)


def _check_if_match(arm: ArmRequest, existing: Json | None) -> None:
    """Optimistic concurrency: a PUT with a stale If-Match changes nothing (412)."""
    wanted = arm.request.headers.get("If-Match")
    if wanted is None:
        return
    current = (existing or {}).get("eTag") or (existing or {}).get("etag")
    if wanted.strip() == "*" and existing is not None:
        return
    if existing is None or wanted.strip().strip('"') != str(current):
        raise ArmError(
            412,
            "PreconditionFailed",
            f"The eTag '{wanted}' in the If-Match header does not match the current eTag of "
            f"'{arm.resource_id}'; the resource changed since it was read.",
        )


def _validate(schema: Json, body: Json) -> None:
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.path)
    )
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(root)"
        raise ArmError(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: "
            f"'{where}': {errors[0].message}.",
        )


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime(epoch))
