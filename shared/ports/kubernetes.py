"""What runs inside an AKS cluster, read through its Kubernetes API: nodes, pods that cannot
pull, image pull secrets, workloads and the kubelet's pull events.

The adapter reaches the API with the kubeconfig ARM hands out (``listClusterUserCredential``);
an API server it cannot reach (a private cluster seen from outside its VNet) is ``Unreachable``
and a credential the cluster rejects is ``Forbidden``, so checks report UNKNOWN.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from shared.models import Cluster

_MC = "Microsoft.ContainerService/managedClusters"
# Reading a cluster's API takes its user kubeconfig from ARM and, on Azure RBAC clusters, the
# Kubernetes data action of each resource read (``list_workloads`` reads these).
USER_CREDENTIAL = f"{_MC}/listClusterUserCredential/action"
WORKLOAD_READS = tuple(
    f"{_MC}/{r}/read"
    for r in (
        "serviceaccounts",
        "apps/deployments",
        "apps/statefulsets",
        "apps/daemonsets",
        "batch/jobs",
        "batch/cronjobs",
    )
)
SECRETS_READ = f"{_MC}/secrets/read"
PULL_EVENT_READS = (f"{_MC}/pods/read", f"{_MC}/events/read")

PULL_FAILURE_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff"})
_IMAGE_IN_MESSAGE = re.compile(r'(?:Failed to pull image|Back-off pulling image) "([^"]+)"')
_VM_SIZE = re.compile(r"^Standard_[A-Z]+\d+(?:-\d+)?([a-z]*)")


def vm_size_architecture(vm_size: str) -> str:
    """``arm64`` for Azure Ampere sizes (feature letter ``p``: Standard_D4ps_v5), else ``amd64``."""
    match = _VM_SIZE.match(vm_size)
    return "arm64" if match and "p" in match.group(1) else "amd64"


def image_in_message(message: str) -> str | None:
    """The image a kubelet pull message is about (``Failed to pull image "x": ...``)."""
    match = _IMAGE_IN_MESSAGE.search(message)
    return match.group(1) if match else None


def image_registry_host(image: str) -> str:
    """The registry host of an image reference; Docker Hub for ``nginx`` or ``library/nginx``."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return "docker.io"


def image_repository(image: str) -> str:
    """The repository of an image reference, without host, tag or digest."""
    host = image_registry_host(image)
    path = (
        image.split("/", 1)[1] if host != "docker.io" or image.startswith("docker.io/") else image
    )
    path = path.split("@", 1)[0]
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path = path[: len(path) - len(last)] + last.split(":", 1)[0]
    return path


@dataclass(frozen=True)
class Node:
    name: str
    pool: str
    os: str  # "linux" / "windows" (the kubernetes.io/os label)
    arch: str  # "amd64" / "arm64" (the kubernetes.io/arch label)
    instance_type: str = ""


@dataclass(frozen=True)
class PodPullFailure:
    """A container waiting in ``ErrImagePull`` or ``ImagePullBackOff``."""

    namespace: str
    pod: str
    container: str
    image: str
    reason: str
    message: str
    node: str | None = None
    owner: str | None = None  # "ReplicaSet/api-5d8f7c9b4" as the pod's controller reference says


@dataclass(frozen=True)
class PullSecret:
    """One registry entry of a ``kubernetes.io/dockerconfigjson`` (or legacy dockercfg) secret.

    The password never shows in ``repr``/``str``, so a secret cannot leak through a log line.
    """

    namespace: str
    name: str
    registry_host: str
    username: str
    password: str = field(repr=False)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Workload:
    """A pod controller (Deployment, StatefulSet, DaemonSet, Job, CronJob) and how it pulls.

    ``images``, ``containers`` and ``image_pull_policy`` are parallel (init containers first);
    pull policies are as stored, that is with the API server's defaults applied.
    ``image_pull_secrets`` includes those its service account adds to every pod.
    """

    namespace: str
    name: str
    kind: str
    images: tuple[str, ...]
    image_pull_policy: tuple[str, ...]
    node_selector: Mapping[str, str]
    image_pull_secrets: tuple[str, ...]
    containers: tuple[str, ...] = ()
    service_account: str = "default"
    init_containers: tuple[str, ...] = ()  # which of ``containers`` are init containers

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    def pull_policy_of(self, image: str) -> str | None:
        """The pull policy of the first container running ``image``, if any does."""
        for candidate, policy in zip(self.images, self.image_pull_policy, strict=False):
            if candidate == image:
                return policy
        return None

    def uses_secret(self, secret: PullSecret) -> bool:
        return self.namespace == secret.namespace and secret.name in self.image_pull_secrets


def workloads_using(workloads: list[Workload], secret: PullSecret) -> list[str]:
    """``Kind/namespace/name`` of the workloads whose pods pull with ``secret``."""
    return sorted(w.ref for w in workloads if w.uses_secret(secret))


@dataclass(frozen=True)
class KubeEvent:
    """A core/v1 event about a pod (the kubelet's ``Failed`` pull events)."""

    namespace: str
    name: str
    involved_kind: str
    involved_name: str
    reason: str
    message: str
    type: str
    count: int
    last_seen: str | None
    node: str | None = None

    @property
    def image(self) -> str | None:
        return image_in_message(self.message)


class KubernetesPort(Protocol):
    def list_nodes(self, cluster: Cluster) -> list[Node]: ...

    def release_cluster(self, cluster: Cluster) -> None:
        """This run is done with ``cluster``: close its Kubernetes connection now (a fleet
        batch would otherwise hold one open per cluster until the invocation ends)."""
        ...

    def list_pull_failures(self, cluster: Cluster) -> list[PodPullFailure]:
        """Containers of every namespace waiting in ErrImagePull / ImagePullBackOff."""
        ...

    def list_pull_secrets(self, cluster: Cluster) -> list[PullSecret]:
        """Every registry credential in dockerconfigjson/dockercfg secrets, all namespaces."""
        ...

    def list_workloads(self, cluster: Cluster) -> list[Workload]: ...

    def list_pull_events(self, cluster: Cluster) -> list[KubeEvent]:
        """``Failed`` events of pods that still exist (what ``kubectl describe pod`` shows)."""
        ...

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
        """Replace the credentials of one registry entry in a dockerconfigjson/dockercfg secret,
        keeping its other entries (a merge PATCH conditional on the resourceVersion read)."""
        ...

    def set_image_pull_policy(
        self, cluster: Cluster, workload: Workload, containers: tuple[str, ...], *, policy: str
    ) -> None:
        """Strategic-merge-PATCH ``imagePullPolicy`` of the named containers (init or regular) of
        a Deployment, StatefulSet or DaemonSet's pod template; other containers are untouched."""
        ...

    def set_node_selector(
        self, cluster: Cluster, workload: Workload, selector: dict[str, str]
    ) -> None:
        """Strategic-merge-PATCH these labels into the pod template's ``nodeSelector`` of a
        Deployment, StatefulSet or DaemonSet (its other selector labels are kept)."""
        ...


# -- workload writes (remediations) ---------------------------------------------------------------

OS_LABEL = "kubernetes.io/os"
# Pod controllers whose pod template can be patched in place (a Job's template is immutable).
PATCHABLE_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
WORKLOAD_WRITES = tuple(
    f"{_MC}/apps/{plural}/write" for plural in ("deployments", "statefulsets", "daemonsets")
)


def pull_policy_patch(
    workload: Workload, containers: tuple[str, ...], policy: str
) -> dict[str, object]:
    """The strategic merge patch that sets ``imagePullPolicy`` of ``containers`` only."""
    init = [c for c in containers if c in workload.init_containers]
    main = [c for c in containers if c not in workload.init_containers]
    pod: dict[str, object] = {}
    if main:
        pod["containers"] = [{"name": name, "imagePullPolicy": policy} for name in main]
    if init:
        pod["initContainers"] = [{"name": name, "imagePullPolicy": policy} for name in init]
    return {"spec": {"template": {"spec": pod}}}


def node_selector_patch(selector: Mapping[str, str]) -> dict[str, object]:
    """The strategic merge patch that adds ``selector`` to the pod template's nodeSelector."""
    return {"spec": {"template": {"spec": {"nodeSelector": dict(selector)}}}}


def kubectl_patch_command(kind: str, name: str, namespace: str, patch: dict[str, object]) -> str:
    """``kubectl patch <kind> <name> -n <namespace> --type=strategic -p '<json>'``."""
    import json

    body = json.dumps(patch, separators=(",", ":"))
    return f"kubectl patch {kind.lower()} {name} -n {namespace} --type=strategic -p '{body}'"
