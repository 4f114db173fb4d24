"""The Kubernetes API of each AKS cluster through lightkube, with the kubeconfig from ARM.

``managedClusters/listClusterUserCredential`` returns the user kubeconfig: server URL (any path
prefix is kept), the cluster CA as ``certificate-authority-data`` and, on clusters with local
accounts, a static token. On Entra ID (AAD) clusters the kubeconfig asks for ``kubelogin``,
which a Function App does not have; the app then signs in as itself, asking its credential for
a token for the AKS AAD server application, as ``kubelogin -l msi`` would (the identity needs
an Azure RBAC role or a Kubernetes binding on the cluster to read). One client per cluster per
run; nothing here logs a secret's content or a token.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from shared.azure.cache import RunCache, cache_key, cached
from shared.azure.errors import translated
from shared.azure.factory import ClientFactory
from shared.azure.kubeconfigs import KUBECONFIGS
from shared.errors import (
    Forbidden,
    NotConnected,
    NotFound,
    Throttled,
    TransientError,
    Unreachable,
)
from shared.models import Cluster
from shared.permissions import withheld
from shared.ports.kubernetes import (
    PULL_FAILURE_REASONS,
    USER_CREDENTIAL,
    KubeEvent,
    Node,
    PodPullFailure,
    PullSecret,
    Workload,
)
from shared.resource_id import ResourceId

if TYPE_CHECKING:
    from shared.azure.kube_snapshot import Snapshot
    from shared.azure.run_command import CommandOutput

log = logging.getLogger(__name__)
T = TypeVar("T")

AKS_AAD_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"
DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
DOCKER_CFG = "kubernetes.io/dockercfg"
CHUNK = 500


class KubernetesReader:
    factory: ClientFactory
    cache: RunCache

    # -- reads -----------------------------------------------------------------------------

    @cached
    def list_nodes(self, cluster: Cluster) -> list[Node]:
        from lightkube.resources.core_v1 import Node as NodeResource

        return [_node(n) for n in self._list(cluster, NodeResource, "nodes", namespaced=False)]

    @cached
    def list_pull_failures(self, cluster: Cluster) -> list[PodPullFailure]:
        return [failure for pod in self._pods(cluster) for failure in _pull_failures(pod)]

    @cached
    def list_pull_secrets(self, cluster: Cluster) -> list[PullSecret]:
        from lightkube.resources.core_v1 import Secret

        found: list[PullSecret] = []
        for secret_type in (DOCKER_CONFIG_JSON, DOCKER_CFG):
            secrets = self._list(cluster, Secret, "secrets", fields={"type": secret_type})
            for secret in secrets:
                entries = _pull_secret_entries(secret)
                if entries is None:
                    log.info(
                        "skipped pull secret %s/%s in %s: its registry config is not valid JSON",
                        secret.metadata.namespace,
                        secret.metadata.name,
                        cluster.name,
                    )
                    continue
                found.extend(entries)
        return found

    @cached
    def list_workloads(self, cluster: Cluster) -> list[Workload]:
        from lightkube.resources.apps_v1 import DaemonSet, Deployment, StatefulSet
        from lightkube.resources.batch_v1 import CronJob, Job
        from lightkube.resources.core_v1 import ServiceAccount

        accounts = {
            (a.metadata.namespace, a.metadata.name): tuple(
                ref.name for ref in a.imagePullSecrets or () if ref.name
            )
            for a in self._list(cluster, ServiceAccount, "serviceaccounts")
        }
        workloads: list[Workload] = []
        for resource, plural in (
            (Deployment, "deployments"),
            (StatefulSet, "statefulsets"),
            (DaemonSet, "daemonsets"),
            (Job, "jobs"),
            (CronJob, "cronjobs"),
        ):
            for obj in self._list(cluster, resource, plural):
                workloads.append(_workload(obj, resource.__name__, accounts))
        return workloads

    @cached
    def list_pull_events(self, cluster: Cluster) -> list[KubeEvent]:
        from lightkube.resources.core_v1 import Event

        pods = self._pods(cluster)
        uids = {p.metadata.uid for p in pods}
        names = {(p.metadata.namespace, p.metadata.name) for p in pods}
        events = self._list(
            cluster, Event, "events", fields={"reason": "Failed", "involvedObject.kind": "Pod"}
        )
        return [
            _event(e)
            for e in events
            if (e.involvedObject.uid in uids if e.involvedObject.uid else False)
            or (
                not e.involvedObject.uid
                and (e.involvedObject.namespace, e.involvedObject.name) in names
            )
        ]

    # -- writes (remediations) --------------------------------------------------------------

    def update_pull_secret(
        self,
        cluster: Cluster,
        namespace: str,
        name: str,
        *,
        registry_host: str,
        username: str,
        password: str,
    ) -> None:
        """Read the secret, rewrite the entry for ``registry_host``, merge-PATCH it back.

        The PATCH carries the resourceVersion it read, so a concurrent writer makes it fail with
        409 instead of being overwritten. Nothing raised here keeps the request (it holds the
        password) as its cause or context.
        """
        from lightkube import ApiError
        from lightkube.resources.core_v1 import Secret
        from lightkube.types import PatchType

        from shared.errors import WriteRejected

        ref = f"{namespace}/{name}"

        def read_direct() -> Any:
            with kube_errors(cluster, doing=f"read secret {ref} in"):
                return self._kube_client(cluster.id).get(Secret, name=name, namespace=namespace)

        secret = self._through(
            cluster, read_direct, lambda: self._snapshot_secret(cluster, namespace, name)
        )
        key = ".dockerconfigjson" if secret.type == DOCKER_CONFIG_JSON else ".dockercfg"
        if secret.type not in (DOCKER_CONFIG_JSON, DOCKER_CFG):
            raise WriteRejected(
                f"secret {ref} in {cluster.name} is of type {secret.type}, not a pull secret",
                resource_id=cluster.id,
            )
        encoded = _with_credentials(secret, key, registry_host, username, password)
        if encoded is None:
            raise WriteRejected(
                f"secret {ref} in {cluster.name} has no readable entry for {registry_host}",
                resource_id=cluster.id,
            )
        patch = {
            "metadata": {"resourceVersion": secret.metadata.resourceVersion},
            "data": {key: encoded},
        }
        if self._uses_run_command(cluster):
            command = (
                f"kubectl patch secret {shlex.quote(name)} -n {shlex.quote(namespace)} "
                "--type=merge --patch-file patch.json"
            )
            self._run_write(cluster, command, patch, doing=f"update secret {ref}")
            return
        client = self._kube_client(cluster.id)
        rejected: WriteRejected | None = None
        try:
            with kube_errors(cluster, doing=f"update secret {ref} in"):
                try:
                    client.patch(
                        Secret, name, patch, namespace=namespace, patch_type=PatchType.MERGE
                    )
                except ApiError as exc:
                    status = int(exc.status.code or 0)
                    if status not in (400, 409, 422):
                        raise
                    rejected = WriteRejected(
                        f"the Kubernetes API of {cluster.name} refused to update secret {ref} "
                        f"({status} {exc.status.reason or ''})".rstrip(),
                        resource_id=cluster.id,
                        code=str(exc.status.reason or status),
                    )
        finally:
            self.cache.clear()
        if rejected is not None:
            raise rejected

    def set_image_pull_policy(
        self, cluster: Cluster, workload: Workload, containers: tuple[str, ...], *, policy: str
    ) -> None:
        from shared.ports.kubernetes import pull_policy_patch

        patch = pull_policy_patch(workload, containers, policy)
        self._patch_workload(cluster, workload, patch, doing="set the image pull policy of")

    def set_node_selector(
        self, cluster: Cluster, workload: Workload, selector: dict[str, str]
    ) -> None:
        from shared.ports.kubernetes import node_selector_patch

        patch = node_selector_patch(selector)
        self._patch_workload(cluster, workload, patch, doing="set the nodeSelector of")

    def _patch_workload(
        self, cluster: Cluster, workload: Workload, patch: dict[str, object], *, doing: str
    ) -> None:
        """Strategic merge PATCH of a pod controller; 400/409/422 become :class:`WriteRejected`
        with the API server's message (workload specs hold no secrets), 403 ``Forbidden``."""
        from lightkube import ApiError
        from lightkube.resources.apps_v1 import DaemonSet, Deployment, StatefulSet
        from lightkube.types import PatchType

        from shared.errors import WriteRejected

        resources: dict[str, Any] = {
            "Deployment": Deployment,
            "StatefulSet": StatefulSet,
            "DaemonSet": DaemonSet,
        }
        resource = resources.get(workload.kind)
        if resource is None:
            raise WriteRejected(
                f"{workload.ref} in {cluster.name}: a {workload.kind}'s pod template cannot be "
                "patched in place",
                resource_id=cluster.id,
            )
        if self._uses_run_command(cluster):
            command = (
                f"kubectl patch {workload.kind.lower()} {shlex.quote(workload.name)} "
                f"-n {shlex.quote(workload.namespace)} --type=strategic --patch-file patch.json"
            )
            self._run_write(cluster, command, patch, doing=f"{doing} {workload.ref}")
            return
        client = self._kube_client(cluster.id)
        rejected: WriteRejected | None = None
        try:
            with kube_errors(cluster, doing=f"{doing} {workload.ref} in"):
                try:
                    client.patch(
                        resource,
                        workload.name,
                        patch,
                        namespace=workload.namespace,
                        patch_type=PatchType.STRATEGIC,
                    )
                except ApiError as exc:
                    status = int(exc.status.code or 0)
                    if status not in (400, 409, 422):
                        raise
                    message = (exc.status.message or "")[:300]
                    rejected = WriteRejected(
                        f"the Kubernetes API of {cluster.name} refused to {doing} "
                        f"{workload.ref} ({status} {exc.status.reason or ''}: {message})",
                        resource_id=cluster.id,
                        code=str(exc.status.reason or status),
                    )
        finally:
            self.cache.clear()
        if rejected is not None:
            raise rejected

    # -- plumbing --------------------------------------------------------------------------

    def _uses_run_command(self, cluster: Cluster) -> bool:
        """Writes follow the reads: the transport the reads of this cluster chose."""
        from shared.azure import kube_transport

        setting = self.factory.settings.kubernetes_transport
        chosen = kube_transport.choose(setting, cluster, self.factory.transport_memory)
        return chosen == kube_transport.RUN_COMMAND

    def _snapshot_secret(self, cluster: Cluster, namespace: str, name: str) -> Any:
        """The pull secret as this diagnosis read it: its resourceVersion makes the PATCH fail
        (409) if someone changed it since, as the direct path's fresh GET does."""
        for secret_type in (DOCKER_CONFIG_JSON, DOCKER_CFG):
            snapshot = self._snapshot(cluster)
            for secret in snapshot.objects("secrets", {"type": secret_type}):
                if (secret.metadata.namespace, secret.metadata.name) == (namespace, name):
                    return secret
        raise NotFound(
            f"the Kubernetes API of {cluster.name} has no pull secret {namespace}/{name}",
            resource_id=cluster.id,
        )

    @cached
    def _pods(self, cluster: Cluster) -> list[Any]:
        from lightkube.resources.core_v1 import Pod

        return self._list(cluster, Pod, "pods")

    def _list(
        self,
        cluster: Cluster,
        resource: type[Any],
        plural: str,
        *,
        namespaced: bool = True,
        fields: dict[str, str] | None = None,
    ) -> list[Any]:
        def direct() -> list[Any]:
            where: dict[str, Any] = {"namespace": "*"} if namespaced else {}
            while True:
                client, remembered = self._kube_connection(cluster.id)
                try:
                    with kube_errors(cluster, doing=f"list {plural} in"):
                        return list(client.list(resource, chunk_size=CHUNK, fields=fields, **where))
                except (Forbidden, Unreachable):
                    if not remembered:
                        raise
                    # The kept kubeconfig may be stale (rotated credentials, a moved API
                    # server): fetch a fresh one once before believing the answer.
                    KUBECONFIGS.drop(cluster.id)
                    self.cache.discard(cache_key("_kube_connection", (cluster.id,)))

        return self._through(
            cluster, direct, lambda: self._snapshot(cluster).objects(plural, fields)
        )

    def _through(self, cluster: Cluster, direct: Callable[[], T], run: Callable[[], T]) -> T:
        """Call ``direct`` or, where the cluster's transport is Run Command, ``run``; a direct
        connection that fails sends this and later calls (for a while) through Run Command."""
        from shared.azure import kube_transport

        setting = self.factory.settings.kubernetes_transport
        memory = self.factory.transport_memory
        if kube_transport.choose(setting, cluster, memory) == kube_transport.RUN_COMMAND:
            return run()
        try:
            return direct()
        except NotConnected as exc:
            if not kube_transport.may_fall_back(setting):
                raise
            log.info(
                "the Kubernetes API of %s is not reachable directly (%s): using Run Command",
                cluster.name,
                exc.reason,
            )
            memory.remember(cluster.id)
        return run()

    @cached
    def _snapshot(self, cluster: Cluster) -> Snapshot:
        """All reads of this diagnosis of ``cluster`` in one Run Command (the run cache shares
        it between checks; a write clears it, so verification reads afresh)."""
        from shared.azure import kube_snapshot

        output = self._run_command(cluster, kube_snapshot.command())
        return kube_snapshot.Snapshot(cluster, output.logs)

    def _run_command(
        self, cluster: Cluster, command: str, files: dict[str, bytes] | None = None
    ) -> CommandOutput:
        from shared.azure.run_command import RunCommandClient

        runner = RunCommandClient(self.factory, timeout=self.factory.settings.operation_timeout)
        return runner.run(cluster, command, files=files)

    def _run_write(
        self, cluster: Cluster, command: str, patch: Mapping[str, Any], *, doing: str
    ) -> None:
        """A ``kubectl patch --patch-file`` through Run Command (the patch travels in the
        request's context, not its command line); kubectl's error becomes ours."""
        from shared.errors import WriteRejected

        try:
            output = self._run_command(cluster, command, {"patch.json": json.dumps(patch).encode()})
        finally:
            self.cache.clear()
        if output.exit_code == 0:
            return
        reason = _kubectl_reason(output.logs)
        where = f"the Kubernetes API of {cluster.name} (through Run Command)"
        if reason in ("Conflict", "Invalid", "BadRequest", "UnprocessableEntity"):
            raise WriteRejected(
                f"{where} refused to {doing} ({reason})", resource_id=cluster.id, code=reason
            )
        if reason in ("Forbidden", "Unauthorized"):
            raise Forbidden(f"{where} refused to {doing} ({reason})", resource_id=cluster.id)
        if reason == "NotFound":
            raise NotFound(f"{where} has no such resource to {doing}", resource_id=cluster.id)
        raise TransientError(f"{where} failed to {doing} (kubectl exit {output.exit_code})")

    def release_cluster(self, cluster: Cluster) -> None:
        connection = self.cache.take(cache_key("_kube_connection", (cluster.id,)))
        if connection is not None:
            connection[0].close()  # its pooled TLS connection; the kubeconfig stays kept

    def _kube_client(self, cluster_id: str) -> Any:
        return self._kube_connection(cluster_id)[0]

    @cached
    def _kube_connection(self, cluster_id: str) -> tuple[Any, bool]:
        """(client, whether its kubeconfig was kept from an earlier invocation)."""
        # Dry-run holds no credential-listing action (shared.permissions): say so, ask nothing,
        # and use no kubeconfig kept from before.
        reason = withheld(self.factory.settings.access_mode, USER_CREDENTIAL)
        if reason:
            raise Forbidden(reason, resource_id=cluster_id)
        config = KUBECONFIGS.get(cluster_id)
        remembered = config is not None
        if config is None:
            config = self._fetch_kubeconfig(cluster_id)
            KUBECONFIGS.put(cluster_id, config)
        from lightkube import ConfigError

        try:
            return self.factory.kubernetes(config), remembered
        except (ConfigError, KeyError, TypeError, ValueError) as exc:
            KUBECONFIGS.drop(cluster_id)
            raise Unreachable(
                f"the kubeconfig ARM returned for {ResourceId.parse(cluster_id).name} is not "
                f"usable ({type(exc).__name__})",
                resource_id=cluster_id,
            ) from exc

    def _fetch_kubeconfig(self, cluster_id: str) -> dict[str, Any]:
        rid = ResourceId.parse(cluster_id)
        client = self.factory.container_service(rid.subscription_id)
        with translated(cluster_id, doing="list the user credentials of"):
            result = client.managed_clusters.list_cluster_user_credentials(
                rid.resource_group, rid.name
            )
        config = _kubeconfig(result, cluster_id)
        if _needs_entra_token(config):
            token = self.factory.credential.get_token(f"{AKS_AAD_SERVER_APP}/.default").token
            config = _with_token(config, token)
        return config


@contextmanager
def kube_errors(cluster: Cluster, *, doing: str) -> Iterator[None]:
    """Map lightkube/httpx failures to the product's read errors (no response bodies kept)."""
    import httpx2
    from lightkube import ApiError

    try:
        yield
    except ApiError as exc:
        _raise_status(cluster, doing, int(exc.status.code or 0), exc.status.reason or "", exc)
    except httpx2.HTTPStatusError as exc:
        _raise_status(cluster, doing, exc.response.status_code, exc.response.reason_phrase, exc)
    except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.ProxyError) as exc:
        raise NotConnected(
            f"could not reach the Kubernetes API of {cluster.name} to {doing} it "
            f"({type(exc).__name__})",
            resource_id=cluster.id,
        ) from exc
    except httpx2.TransportError as exc:
        # Reached, then the exchange broke (connection dropped, read timed out): not a cluster
        # we cannot reach, but a failure to retry. Read as "unreachable", a role-assignment
        # event found no pair and was marked done without its work (tests/chaos).
        raise TransientError(
            f"the Kubernetes API of {cluster.name} failed to {doing} it ({type(exc).__name__})"
        ) from exc


def _raise_status(
    cluster: Cluster, doing: str, status: int, reason: str, exc: Exception
) -> NoReturn:
    where = f"the Kubernetes API of {cluster.name}"
    if status in (401, 403):
        raise Forbidden(
            f"{where} refused to {doing} it ({status} {reason})", resource_id=cluster.id
        ) from exc
    if status == 404:
        raise NotFound(
            f"{where} has no such resource to {doing} it", resource_id=cluster.id
        ) from exc
    if status in (502, 503, 504):
        raise Unreachable(
            f"{where} is not serving ({status} {reason})", resource_id=cluster.id
        ) from exc
    if status == 429:
        raise Throttled(f"{where} throttled the request to {doing} it") from exc
    if status >= 500:
        raise TransientError(f"{where} failed to {doing} it with {status} {reason}") from exc
    raise exc


def _kubeconfig(result: Any, cluster_id: str) -> dict[str, Any]:
    import yaml

    kubeconfigs = result.kubeconfigs or []
    if not kubeconfigs or not kubeconfigs[0].value:
        raise Unreachable("ARM returned no kubeconfig for the cluster", resource_id=cluster_id)
    try:
        # libyaml's safe loader where PyYAML has it (its wheels do): the pure-Python one cost a
        # sixth of a fleet worker's CPU. Same safe constructors, same result.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        config = yaml.load(bytes(kubeconfigs[0].value), Loader=loader)  # noqa: S506 (safe)
    except yaml.YAMLError as exc:
        raise Unreachable(
            "ARM returned a kubeconfig that is not YAML", resource_id=cluster_id
        ) from exc
    if not isinstance(config, dict):
        raise Unreachable("ARM returned a kubeconfig that is not a mapping", resource_id=cluster_id)
    return config


def _current_user(config: dict[str, Any]) -> dict[str, Any]:
    contexts = {c.get("name"): c.get("context", {}) for c in config.get("contexts") or []}
    user_name = contexts.get(config.get("current-context"), {}).get("user")
    for user in config.get("users") or []:
        if user.get("name") == user_name:
            entry: dict[str, Any] = user.setdefault("user", {})
            return entry
    return {}


def _needs_entra_token(config: dict[str, Any]) -> bool:
    user = _current_user(config)
    return not user.get("token") and bool(user.get("exec") or user.get("auth-provider"))


def _with_token(config: dict[str, Any], token: str) -> dict[str, Any]:
    """The kubeconfig with its kubelogin/auth-provider user replaced by a bearer token."""
    user = _current_user(config)
    user.pop("exec", None)
    user.pop("auth-provider", None)
    user["token"] = token
    return config


# -- mapping ----------------------------------------------------------------------------------


def _node(obj: Any) -> Node:
    labels = obj.metadata.labels or {}
    info = obj.status.nodeInfo if obj.status else None
    return Node(
        name=obj.metadata.name,
        pool=labels.get("kubernetes.azure.com/agentpool") or labels.get("agentpool", ""),
        os=labels.get("kubernetes.io/os") or (info.operatingSystem if info else ""),
        arch=labels.get("kubernetes.io/arch") or (info.architecture if info else ""),
        instance_type=labels.get("node.kubernetes.io/instance-type", ""),
    )


def _pull_failures(pod: Any) -> Iterator[PodPullFailure]:
    status = pod.status
    if status is None:
        return
    owner = next(
        (f"{ref.kind}/{ref.name}" for ref in pod.metadata.ownerReferences or () if ref.controller),
        None,
    )
    for container in [*(status.initContainerStatuses or ()), *(status.containerStatuses or ())]:
        waiting = container.state.waiting if container.state else None
        if waiting is None or waiting.reason not in PULL_FAILURE_REASONS:
            continue
        yield PodPullFailure(
            namespace=pod.metadata.namespace,
            pod=pod.metadata.name,
            container=container.name,
            image=container.image,
            reason=waiting.reason,
            message=waiting.message or "",
            node=pod.spec.nodeName if pod.spec else None,
            owner=owner,
        )


def _pull_secret_entries(secret: Any) -> list[PullSecret] | None:
    """The registry credentials in a dockerconfigjson/dockercfg secret; None when malformed."""
    data = secret.data or {}
    key = ".dockerconfigjson" if secret.type == DOCKER_CONFIG_JSON else ".dockercfg"
    try:
        document = json.loads(base64.b64decode(data.get(key, ""), validate=True) or b"{}")
        auths = document.get("auths", {}) if secret.type == DOCKER_CONFIG_JSON else document
        if not isinstance(auths, dict):
            return None
        entries = []
        for host, entry in auths.items():
            if not isinstance(entry, dict):
                continue
            username, password = entry.get("username"), entry.get("password")
            if (username is None or password is None) and entry.get("auth"):
                decoded = base64.b64decode(entry["auth"], validate=True).decode()
                username, _, password = decoded.partition(":")
            if not username or password is None:
                continue  # identity tokens and empty entries carry no password to compare
            entries.append(
                PullSecret(
                    namespace=secret.metadata.namespace,
                    name=secret.metadata.name,
                    registry_host=_host(str(host)),
                    username=str(username),
                    password=str(password),
                )
            )
    except (ValueError, binascii.Error, UnicodeDecodeError, AttributeError):
        return None
    return entries


def _host(server: str) -> str:
    """``https://myacr.azurecr.io/v1/`` -> ``myacr.azurecr.io`` (docker config keys vary)."""
    return re.sub(r"^[a-z]+://", "", server.strip(), flags=re.I).split("/", 1)[0].lower()


def _workload(obj: Any, kind: str, accounts: dict[tuple[str, str], tuple[str, ...]]) -> Workload:
    spec = obj.spec
    template = spec.jobTemplate.spec.template if kind == "CronJob" else spec.template
    pod_spec = template.spec
    containers = [*(pod_spec.initContainers or ()), *(pod_spec.containers or ())]
    namespace = obj.metadata.namespace
    account = pod_spec.serviceAccountName or "default"
    secrets = [ref.name for ref in pod_spec.imagePullSecrets or () if ref.name]
    secrets += [name for name in accounts.get((namespace, account), ()) if name not in secrets]
    return Workload(
        namespace=namespace,
        name=obj.metadata.name,
        kind=kind,
        images=tuple(c.image or "" for c in containers),
        image_pull_policy=tuple(c.imagePullPolicy or "" for c in containers),
        node_selector=dict(pod_spec.nodeSelector or {}),
        image_pull_secrets=tuple(secrets),
        containers=tuple(c.name for c in containers),
        service_account=account,
        init_containers=tuple(c.name for c in pod_spec.initContainers or ()),
    )


def _event(obj: Any) -> KubeEvent:
    involved = obj.involvedObject
    last = obj.lastTimestamp or obj.eventTime or obj.firstTimestamp
    return KubeEvent(
        namespace=obj.metadata.namespace or "",
        name=obj.metadata.name,
        involved_kind=involved.kind or "",
        involved_name=involved.name or "",
        reason=obj.reason or "",
        message=obj.message or "",
        type=obj.type or "",
        count=int(obj.count or 1),
        last_seen=last.isoformat() if last is not None else None,
        node=obj.source.host if obj.source else None,
    )


def _with_credentials(
    secret: Any, key: str, registry_host: str, username: str, password: str
) -> str | None:
    """The secret's registry config (base64) with new credentials for ``registry_host``'s entries."""
    try:
        document = json.loads(base64.b64decode((secret.data or {}).get(key, ""), validate=True))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    auths = document.get("auths") if key == ".dockerconfigjson" else document
    if not isinstance(auths, dict):
        return None
    found = False
    for server, entry in auths.items():
        if isinstance(entry, dict) and _host(str(server)) == registry_host.lower():
            entry["username"], entry["password"] = username, password
            entry["auth"] = base64.b64encode(f"{username}:{password}".encode()).decode()
            found = True
    if not found:
        return None
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


_KUBECTL_ERROR = re.compile(r"Error from server \((\w+)\)")


def _kubectl_reason(logs: str) -> str:
    """``Conflict`` from ``Error from server (Conflict): ...``; ``Unauthorized`` from kubectl's
    "You must be logged in"; "" for anything else."""
    match = _KUBECTL_ERROR.search(logs)
    if match:
        return match.group(1)
    return "Unauthorized" if "must be logged in" in logs else ""
