"""AKS Run Command: run a shell command with kubectl in a pod AKS starts inside the cluster.

``managedClusters.begin_run_command`` POSTs ``runCommand`` (202, ``Location`` at
``commandResults/{id}``) and the poller GETs the result until it is 200. A result is
``succeeded`` with ``exitCode`` and ``logs`` (stdout and stderr together) or ``failed`` with a
``reason`` when the command pod could not run (``ImagePullBackoff``: the cluster cannot pull
AKS's own command image). Entra ID clusters need ``clusterToken``: a token for the AKS AAD server
application, which kubectl in the pod presents, so the app's own Kubernetes RBAC applies.

The request may carry files (``context``: a base64 zip, as ``az aks command invoke --file``);
writes put their patch there rather than in the command line. The request body holds the
cluster token and maybe a credential, so nothing raised here keeps the SDK's request as its
cause or context, and nothing here logs the command's logs.
"""

from __future__ import annotations

import base64
import io
import logging
import zipfile
from dataclasses import dataclass, field

from shared.azure.factory import ClientFactory
from shared.azure.kubernetes import AKS_AAD_SERVER_APP
from shared.errors import Forbidden, NotFound, TransientError, Unreachable
from shared.models import Cluster
from shared.permissions import RUN_COMMAND, withheld
from shared.resource_id import ResourceId

log = logging.getLogger(__name__)

RUN_COMMAND_ACTION, COMMAND_RESULTS_READ = RUN_COMMAND
# What the transport and the probe need (infra grants them only with enableRunCommand).
PERMISSIONS = RUN_COMMAND
DISABLED = (
    "Run Command is disabled on the cluster (apiServerAccessProfile.disableRunCommand), and its "
    "API server is not reachable from the app"
)


@dataclass(frozen=True)
class CommandOutput:
    exit_code: int
    logs: str = field(repr=False)  # may hold pull secret data: never in a repr or a log line


class RunCommandClient:
    """Runs commands on clusters through their ARM ``runCommand`` action."""

    def __init__(self, factory: ClientFactory, *, timeout: float) -> None:
        self.factory = factory
        self.timeout = timeout

    def run(
        self, cluster: Cluster, command: str, *, files: dict[str, bytes] | None = None
    ) -> CommandOutput:
        """Run ``command``; raise a :class:`~shared.errors.ReadError` (or ``TransientError``)
        when it could not run at all. A non-zero exit is an output, for the caller to read."""
        from azure.core.exceptions import HttpResponseError, ServiceRequestError
        from azure.mgmt.containerservice.models import RunCommandRequest

        # Dry-run runs nothing in clusters (shared.permissions): say so, ask nothing. Run Command
        # reads what a kubeconfig would, so it follows CREDENTIAL_READS as the kubeconfig does.
        reason = withheld(self.factory.settings.access_mode, RUN_COMMAND_ACTION)
        if reason:
            raise Forbidden(reason, resource_id=cluster.id)
        if cluster.run_command_disabled:
            raise Unreachable(DISABLED, resource_id=cluster.id)
        rid = ResourceId.parse(cluster.id)
        client = self.factory.container_service(rid.subscription_id)
        token = ""
        if cluster.entra_id:
            token = self.factory.credential.get_token(f"{AKS_AAD_SERVER_APP}/.default").token
        request = RunCommandRequest(
            command=command, cluster_token=token, context=_context(files or {})
        )
        failure: Exception | None = None
        result = None
        try:
            poller = client.managed_clusters.begin_run_command(
                rid.resource_group, rid.name, request
            )
            poller.wait(timeout=self.timeout)
            if not poller.done():
                failure = TransientError(
                    f"the Run Command on {cluster.name} was still running after {self.timeout:.0f}s"
                )
            else:
                result = poller.result()
        except HttpResponseError as exc:
            failure = _refused(cluster, exc.status_code or 0, _code(exc), str(exc.message or ""))
        except ServiceRequestError:
            failure = Unreachable(
                f"could not reach Azure to run a command on {cluster.name}", resource_id=cluster.id
            )
        if failure is not None:
            raise failure
        assert result is not None
        state = str(result.provisioning_state or "").lower()
        if state != "succeeded":
            raise Unreachable(
                f"the Run Command pod on {cluster.name} did not run ({state or 'no state'}: "
                f"{result.reason or 'no reason given'})",
                resource_id=cluster.id,
            )
        return CommandOutput(exit_code=int(result.exit_code or 0), logs=result.logs or "")


def _code(exc: object) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", None) or getattr(exc, "reason", "") or "")


def _refused(cluster: Cluster, status: int, code: str, message: str) -> Exception:
    doing = f"run a command on {cluster.name}"
    if status in (401, 403):
        return Forbidden(
            f"the app's identity may not {doing} ({code}; it needs {RUN_COMMAND_ACTION} and "
            f"{COMMAND_RESULTS_READ})",
            resource_id=cluster.id,
        )
    if status == 404:
        return NotFound(f"{cluster.id} was not found ({code})", resource_id=cluster.id)
    if status == 429 or status >= 500:
        return TransientError(f"{doing} failed with {status} {code}")
    if "disableruncommand" in message.lower() or "run command is disabled" in message.lower():
        return Unreachable(DISABLED, resource_id=cluster.id)
    return Unreachable(f"AKS refused to {doing} ({status} {code})", resource_id=cluster.id)


def _context(files: dict[str, bytes]) -> str:
    if not files:
        return ""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
    return base64.b64encode(buffer.getvalue()).decode()
