"""AKS Run Command: ``POST .../managedClusters/{name}/runCommand`` and ``GET .../commandResults/{id}``.

Shapes as ``rest-examples/containerservice/RunCommandRequest.json`` and
``RunCommandResult{Succeed,Failed}.json``: the POST answers 202 with a ``Location`` at
``commandResults/{id}`` (a bare 32-hex id, not an ARM id; the REST reference says a 200 is never
sent), the result GET answers 202 while the command pod runs and 200 when it ended, with a
lower-case ``provisioningState``: ``succeeded`` with ``exitCode``/``logs``/``startedAt``/
``finishedAt`` (a non-zero exit is still ``succeeded``: the pod ran), or ``failed`` with only a
``reason`` (the command pod could not run, e.g. ``ImagePullBackoff``).

The command runs in :mod:`emulator.kubectl` against the cluster's emulated API server from inside
the cluster. ``state.run_command_latency`` (seconds) is how long the command pod takes; the bench
sets it to a realistic 8 s, tests keep it at 0. A cluster with
``apiServerAccessProfile.disableRunCommand`` refuses with 400; on an Entra ID cluster kubectl
runs with the ``clusterToken`` (a token for the AKS AAD server app) and without one is
Unauthorized, as there. Scenarios (and tests) make a cluster's command pod fail with
:func:`fail_commands`.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import time
import uuid
import weakref
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from emulator import kubernetes as k8s
from emulator.arm import ArmError, ArmRequest, json_response
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

RESULT_PATH = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.ContainerService/managedClusters/(?P<name>[^/]+)/commandResults/(?P<id>[^/]+)",
    re.IGNORECASE,
)
MAX_CONTEXT_BYTES = 5 * 1024 * 1024  # what `az aks command invoke --file` may upload


@dataclass
class Command:
    id: str
    cluster_id: str
    started: float
    ready_at: float
    exit_code: int
    logs: str
    failed_reason: str | None = None


@dataclass
class RunCommands:
    commands: dict[str, Command]
    # cluster id (lower) -> reason its command pods fail with (ImagePullBackoff, ...)
    failing: dict[str, str]
    calls: int = 0


_STATE: weakref.WeakKeyDictionary[State, RunCommands] = weakref.WeakKeyDictionary()


def commands_of(state: State) -> RunCommands:
    with state.lock:
        found = _STATE.get(state)
        if found is None:
            found = _STATE[state] = RunCommands(commands={}, failing={})
        return found


def fail_commands(state: State, cluster_id: str, reason: str = "ImagePullBackoff") -> None:
    """Make this cluster's command pods fail (``provisioningState: failed`` with ``reason``)."""
    commands_of(state).failing[cluster_id.lower()] = reason


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def _context_files(context: object) -> dict[str, bytes]:
    if context in (None, ""):
        return {}
    if not isinstance(context, str):
        raise ArmError(400, "InvalidParameter", "The value of parameter context is invalid.")
    try:
        raw = base64.b64decode(context, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ArmError(
            400, "InvalidParameter", "context must be a base64 encoded zip file."
        ) from exc
    if len(raw) > MAX_CONTEXT_BYTES:
        raise ArmError(400, "InvalidParameter", "context is larger than the 5 MiB allowed.")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist()}
    except zipfile.BadZipFile as exc:
        raise ArmError(
            400, "InvalidParameter", "context must be a base64 encoded zip file."
        ) from exc


def _token_for(state: State, cluster: Json, api: k8s.ClusterApi, cluster_token: str) -> str:
    """Who kubectl runs as: the caller's token on Entra ID clusters, else the cluster admin."""
    aad = (cluster["properties"].get("aadProfile") or {}).get("managed")
    if not aad:
        return api.admin_token
    return cluster_token  # the API server accepts it only if it is an AAD server app token


def run_command(state: State, arm: ArmRequest) -> Response:
    from emulator.kubectl import Shell

    cluster = state.get(arm.resource_id)
    assert cluster is not None  # the ARM router answered 404 otherwise
    body = arm.body()
    command = body.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ArmError(400, "InvalidParameter", "Required parameter command is missing (null).")
    cluster_token = body.get("clusterToken") or ""
    if not isinstance(cluster_token, str):
        raise ArmError(400, "InvalidParameter", "The value of parameter clusterToken is invalid.")
    files = _context_files(body.get("context"))
    properties = cluster["properties"]
    if (properties.get("apiServerAccessProfile") or {}).get("disableRunCommand"):
        raise ArmError(
            400,
            "BadRequest",
            "Run command is disabled for this managed cluster "
            "(apiServerAccessProfile.disableRunCommand). Enable it with "
            "`az aks update --enable-run-command` to use it.",
        )
    if (properties.get("powerState") or {}).get("code") == "Stopped":
        raise ArmError(
            400, "BadRequest", "Run command is not allowed on a stopped managed cluster."
        )
    runs = commands_of(state)
    api = k8s.api_for(state, cluster["id"])
    started = time.time()
    reason = runs.failing.get(cluster["id"].lower())
    exit_code, logs = 0, ""
    if reason is None:
        shell = Shell(state, api, _token_for(state, cluster, api, cluster_token), files)
        exit_code = shell.run(command)
        logs = "".join(shell.out)
    record = Command(
        id=uuid.uuid4().hex,
        cluster_id=cluster["id"],
        started=started,
        ready_at=time.monotonic() + state.run_command_latency,
        exit_code=exit_code,
        logs=logs,
        failed_reason=reason,
    )
    with state.lock:
        runs.commands[record.id] = record
        runs.calls += 1
    response = Response(status=202)
    response.headers["Location"] = _result_url(arm.request, cluster["id"], record.id)
    response.headers["Retry-After"] = str(_retry_after(state, record))
    response.headers["x-ms-request-id"] = str(uuid.uuid4())
    return response


def _retry_after(state: State, record: Command) -> int:
    remaining = record.ready_at - time.monotonic()
    return 0 if remaining <= 0 else min(2, max(1, int(remaining + 0.999)))


def _result_url(request: Request, cluster_id: str, command_id: str) -> str:
    base = request.host_url.rstrip("/")
    return (
        f"{base}{cluster_id}/commandResults/{command_id}?api-version={request.args['api-version']}"
    )


def command_result(state: State, request: Request) -> Response:
    match = RESULT_PATH.fullmatch(request.path.rstrip("/"))
    assert match is not None
    if state.is_denied(request.path):
        raise ArmError(
            403,
            "AuthorizationFailed",
            f"The client '{state.app_principal_id}' with object id '{state.app_principal_id}' "
            "does not have authorization to perform action "
            "'Microsoft.ContainerService/managedClusters/commandResults/read' over scope "
            f"'{request.path.rsplit('/commandResults/', 1)[0]}' or the scope is invalid.",
        )
    cluster_id = request.path.rsplit("/commandResults/", 1)[0]
    cluster = state.get(cluster_id)
    if cluster is None:
        raise ArmError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.ContainerService/managedClusters/{match['name']}' under "
            f"resource group '{match['rg']}' was not found.",
        )
    runs = commands_of(state)
    with state.lock:
        record = runs.commands.get(match["id"])
    if record is None or record.cluster_id.lower() != cluster["id"].lower():
        raise ArmError(404, "NotFound", f"Command result '{match['id']}' was not found.")
    if time.monotonic() < record.ready_at:
        response = json_response(
            {"id": record.id, "properties": {"provisioningState": "running"}}, 202
        )
        response.headers["Location"] = _result_url(request, cluster["id"], record.id)
        response.headers["Retry-After"] = str(_retry_after(state, record))
        return response
    properties: Json
    if record.failed_reason is not None:
        properties = {"provisioningState": "failed", "reason": record.failed_reason}
    else:
        properties = {
            "exitCode": record.exit_code,
            "finishedAt": _iso(record.started + state.run_command_latency),
            "logs": record.logs,
            "provisioningState": "succeeded",
            "startedAt": _iso(record.started),
        }
    return json_response({"id": record.id, "properties": properties})


def register(emulator: Emulator) -> None:
    from emulator.providers.containerservice import CLUSTER

    state = emulator.state
    emulator.arm.kinds[CLUSTER.lower()].actions["runcommand"] = run_command
    emulator.arm.register_path(RESULT_PATH.pattern, lambda request: command_result(state, request))
