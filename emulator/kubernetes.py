"""The Kubernetes API of each AKS cluster, served at ``/k8s/<cluster-key>/`` on the emulator.

A product reaches an AKS API server with the kubeconfig ARM hands out
(``POST .../managedClusters/{name}/listClusterUserCredential``). Here every cluster gets a path
prefix on the emulator's own host, static bearer tokens of its own, and an object store of
namespaces, pods, events, secrets, service accounts and workloads. Nodes are derived from the
cluster's ``agentPoolProfiles`` on every read, as AKS keeps node pools and nodes in step.

Responses have the Kubernetes wire shapes (core/v1, apps/v1 as lightkube-models 1.37 read them):
list items without ``kind``/``apiVersion``, ``Status`` objects for errors, ``limit``/``continue``
paging, label and field selectors. Writes (secrets, service accounts, deployments) are validated
as the API server would, and a deployment whose pod template changes rolls out new pods.

A small kubelet lives here too: a pod container that failed to pull keeps failing while its
cause holds (a pull secret with stale credentials, ``imagePullPolicy: Always`` under pull QPS
pressure, a declared error for an image) and recovers, with a ``Pulled`` event, once it does not.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import copy
import hashlib
import json
import re
import secrets
import socket
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yaml
from werkzeug.wrappers import Request, Response

from emulator.arm import ArmError, ArmRequest
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

CLUSTER = "Microsoft.ContainerService/managedClusters"
REGISTRY = "Microsoft.ContainerRegistry/registries"
VMSS = "Microsoft.Compute/virtualMachineScaleSets"
# The Entra ID application of the AKS AAD server: kubelogin asks for tokens for it.
AAD_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"
AZURE_CLI_CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
DOCKER_CFG = "kubernetes.io/dockercfg"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
# Kubernetes' SafeEncodeString alphabet (no vowels, no look-alikes): pod-template-hash, suffixes.
SAFE = "bcdfghjklmnpqrstvwxz2456789"


# -- objects and stores -------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    plural: str
    namespaced: bool = True
    writable: bool = False
    fields: tuple[str, ...] = ()


KINDS: dict[tuple[str, str], Kind] = {
    (k.api_version, k.plural): k
    for k in (
        Kind("Node", "v1", "nodes", namespaced=False, fields=("spec.unschedulable",)),
        Kind("Namespace", "v1", "namespaces", namespaced=False, fields=("status.phase",)),
        Kind(
            "Pod",
            "v1",
            "pods",
            writable=True,
            fields=(
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            ),
        ),
        Kind(
            "Event",
            "v1",
            "events",
            fields=(
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ),
        ),
        Kind("Secret", "v1", "secrets", writable=True, fields=("type",)),
        Kind("ServiceAccount", "v1", "serviceaccounts", writable=True),
        Kind("Deployment", "apps/v1", "deployments", writable=True),
        Kind("ReplicaSet", "apps/v1", "replicasets"),
        Kind("StatefulSet", "apps/v1", "statefulsets"),
        Kind("DaemonSet", "apps/v1", "daemonsets"),
        Kind("Job", "batch/v1", "jobs"),
        Kind("CronJob", "batch/v1", "cronjobs"),
    )
}


@dataclass
class ClusterApi:
    """One cluster's API server: its tokens, switches for tests, and its objects."""

    cluster_id: str
    key: str
    user_token: str = field(default_factory=lambda: secrets.token_hex(32))
    admin_token: str = field(default_factory=lambda: secrets.token_hex(32))
    reachable: bool = True
    # Resource plurals the cluster user may not read (403), as with a narrow RBAC binding.
    forbidden: set[str] = field(default_factory=set)
    revision: int = 1000
    # plural -> {(namespace, name): object}; nodes are computed, not stored.
    objects: dict[str, dict[tuple[str, str], Json]] = field(default_factory=dict)
    # Why containers fail to pull: (namespace, pod) -> {container: cause}.
    pulls: dict[tuple[str, str], dict[str, Json]] = field(default_factory=dict)
    # Deployments pinned to a node pool by the scenario: (namespace, name) -> pool.
    pins: dict[tuple[str, str], str] = field(default_factory=dict)
    client_certs: dict[str, tuple[str, str]] = field(default_factory=dict)
    node_ips: dict[str, str] = field(default_factory=dict)
    # What the containers of a pod printed (``kubectl logs``): (namespace, name) -> text.
    logs: dict[tuple[str, str], str] = field(default_factory=dict)

    def next_version(self) -> str:
        self.revision += 1
        return str(self.revision)

    def store(self, plural: str) -> dict[tuple[str, str], Json]:
        return self.objects.setdefault(plural, {})

    def get(self, plural: str, namespace: str, name: str) -> Json | None:
        return self.store(plural).get((namespace, name))

    def put(self, plural: str, obj: Json) -> Json:
        meta = obj.setdefault("metadata", {})
        # A client may send these as null (kubectl create does): the server always sets them.
        if not meta.get("uid"):
            meta["uid"] = str(uuid.uuid4())
        if not meta.get("creationTimestamp"):
            meta["creationTimestamp"] = now()
        meta["resourceVersion"] = self.next_version()
        self.store(plural)[(meta.get("namespace", ""), meta["name"])] = obj
        return obj


def cluster_key(cluster_id: str) -> str:
    """The stable path segment of a cluster's API server on the emulator."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"k8s:{cluster_id.lower()}"))


def api_for(state: State, cluster_id: str) -> ClusterApi:
    """The cluster's API server, created (with its system namespaces) on first use."""
    key = cluster_key(cluster_id)
    with state.lock:
        api: ClusterApi | None = state.kubernetes.get(key)
        if api is None:
            api = state.kubernetes[key] = ClusterApi(cluster_id=cluster_id, key=key)
            for namespace in SYSTEM_NAMESPACES:
                ensure_namespace(api, namespace)
        return api


def set_reachable(state: State, cluster_id: str, reachable: bool) -> None:
    """Make a cluster's API server unreachable (a private cluster seen from outside its VNet)."""
    api_for(state, cluster_id).reachable = reachable


def forbid(state: State, cluster_id: str, plural: str) -> None:
    """Let the cluster user no longer read ``plural`` (403 Forbidden)."""
    api_for(state, cluster_id).forbidden.add(plural)


def ensure_namespace(api: ClusterApi, name: str) -> None:
    if api.get("namespaces", "", name) is None:
        api.put(
            "namespaces",
            {
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
        )
    if api.get("serviceaccounts", name, "default") is None:
        api.put("serviceaccounts", {"metadata": {"name": "default", "namespace": name}})


def now(offset: float = 0.0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


def _not_before(created: str | None, offset: float) -> str:
    """``now(offset)``, or the creation time when that is later."""
    stamp = now(offset)
    return max(stamp, created) if created else stamp  # same format: strings compare as times


def stable(*parts: object, length: int = 10, alphabet: str = SAFE) -> str:
    digest = int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest(), 16)
    out = []
    for _ in range(length):
        digest, index = divmod(digest, len(alphabet))
        out.append(alphabet[index])
    return "".join(out)


def b64(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


# -- nodes --------------------------------------------------------------------------------------


def vm_architecture(vm_size: str) -> str:
    """``arm64`` for Ampere sizes (feature letter ``p``: Standard_D4ps_v5), else ``amd64``."""
    match = re.match(r"^Standard_[A-Z]+\d+(?:-\d+)?([a-z]*)", vm_size)
    return "arm64" if match and "p" in match.group(1) else "amd64"


def _vcpus(vm_size: str) -> int:
    match = re.match(r"^Standard_[A-Z]+(\d+)", vm_size)
    return int(match.group(1)) if match else 2


def nodes(state: State, api: ClusterApi) -> list[Json]:
    """The nodes of every node pool, as AKS names and labels them."""
    cluster = state.get(api.cluster_id)
    if cluster is None:
        return []
    properties = cluster["properties"]
    sub_id = cluster["id"].split("/")[2]
    node_rg = properties.get("nodeResourceGroup", "")
    scale_sets = {
        v.get("tags", {}).get("aks-managed-poolName"): v["name"]
        for v in state.children(f"/subscriptions/{sub_id}/resourceGroups/{node_rg}", VMSS)
    }
    version = properties.get("currentKubernetesVersion") or properties.get("kubernetesVersion", "")
    out: list[Json] = []
    for pool_index, pool in enumerate(properties.get("agentPoolProfiles", [])):
        name = pool["name"]
        scale_set = (
            scale_sets.get(name)
            or f"aks-{name}-{stable(cluster['id'], name, length=8, alphabet='0123456789')}-vmss"
        )
        windows = pool.get("osType", "Linux") == "Windows"
        vm_size = pool.get("vmSize", "Standard_D4s_v5")
        arch = vm_architecture(vm_size)
        for index in range(int(pool.get("count", 0))):
            node_name = (
                f"aks{name}{index:06d}"
                if windows
                else f"{scale_set.removesuffix('-vmss')}-vmss{index:06d}"
            )
            node = _node(
                cluster,
                pool,
                place=(pool_index, index),
                name=node_name,
                scale_set=scale_set,
                arch=arch,
                windows=windows,
                version=version,
            )
            api.node_ips[node_name] = node["status"]["addresses"][0]["address"]
            out.append(node)
    return sorted(out, key=lambda n: n["metadata"]["name"])


def _node(
    cluster: Json,
    pool: Json,
    *,
    place: tuple[int, int],
    name: str,
    scale_set: str,
    arch: str,
    windows: bool,
    version: str,
) -> Json:
    pool_index, index = place
    os_name = "windows" if windows else "linux"
    vm_size = pool.get("vmSize", "Standard_D4s_v5")
    cpus = _vcpus(vm_size)
    labels = {
        "agentpool": pool["name"],
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/instance-type": vm_size,
        "beta.kubernetes.io/os": os_name,
        "kubernetes.azure.com/agentpool": pool["name"],
        "kubernetes.azure.com/cluster": cluster["properties"].get("nodeResourceGroup", ""),
        "kubernetes.azure.com/mode": pool.get("mode", "User").lower(),
        "kubernetes.azure.com/role": "agent",
        "kubernetes.io/arch": arch,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": os_name,
        "kubernetes.io/role": "agent",
        "node.kubernetes.io/instance-type": vm_size,
        "topology.kubernetes.io/region": cluster["location"],
        "topology.kubernetes.io/zone": "0",
    }
    if windows:
        labels["node.kubernetes.io/windows-build"] = "10.0.20348"
    ip = f"10.224.{pool_index}.{4 + index}"
    sub_id = cluster["id"].split("/")[2]
    node_rg = cluster["properties"].get("nodeResourceGroup", "").lower()
    capacity = {
        "cpu": str(cpus),
        "ephemeral-storage": "129886128Ki",
        "memory": f"{cpus * 4 * 1024 * 1024}Ki",
        "pods": str(pool.get("maxPods", 110)),
    }
    allocatable = {**capacity, "cpu": f"{cpus * 1000 - 140}m"}
    return {
        "metadata": {
            "name": name,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{cluster['id']}/{name}")),
            "resourceVersion": "1",
            "creationTimestamp": "2024-10-21T08:00:00Z",
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {
            "podCIDR": f"10.244.{pool_index * 16 + index}.0/24",
            "podCIDRs": [f"10.244.{pool_index * 16 + index}.0/24"],
            "providerID": f"azure:///subscriptions/{sub_id}/resourceGroups/{node_rg}/providers/"
            f"Microsoft.Compute/virtualMachineScaleSets/{scale_set}/virtualMachines/{index}",
        },
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastHeartbeatTime": now(-30),
                    "lastTransitionTime": "2024-10-21T08:02:00Z",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": stable(name, "machine", length=32, alphabet="0123456789abcdef"),
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/system")),
                "bootID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/boot")),
                "kernelVersion": "10.0.20348.2762" if windows else "5.15.0-1073-azure",
                "osImage": "Windows Server 2022 Datacenter" if windows else "Ubuntu 22.04.5 LTS",
                "containerRuntimeVersion": "containerd://1.7.22-1",
                "kubeletVersion": f"v{version}",
                "kubeProxyVersion": f"v{version}",
                "operatingSystem": os_name,
                "architecture": arch,
            },
        },
    }


# -- the kubelet: pull outcomes -----------------------------------------------------------------


def image_host(image: str) -> str:
    first = image.split("/", 1)[0]
    return (
        first.lower()
        if "/" in image and ("." in first or ":" in first or first == "localhost")
        else "docker.io"
    )


def default_pull_policy(image: str) -> str:
    """What the API server fills in: ``Always`` for ``:latest`` or untagged images."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def unauthorized_message(image: str, *, with_credentials: bool) -> str:
    """The containerd error for a registry that answered 401 to the token request."""
    host = image_host(image)
    repository = (
        image.split("/", 1)[1].split("@", maxsplit=1)[0].rsplit(":", 1)[0]
        if "/" in image
        else image
    )
    scope = f"repository%3A{repository.replace('/', '%2F')}%3Apull"
    token = "oauth token" if with_credentials else "anonymous token"
    url = f"https://{host}/oauth2/token?scope={scope}&service={host}"
    return (
        f'rpc error: code = Unknown desc = failed to pull and unpack image "{image}": failed to '
        f'resolve reference "{image}": failed to authorize: failed to fetch {token}: unexpected '
        f"status from GET request to {url}: 401 Unauthorized"
    )


def no_such_host_message(image: str) -> str:
    """The containerd error for a registry host DNS does not know (a mistyped login server)."""
    host = image_host(image)
    path = image.split("/", 1)[1] if "/" in image else image
    repository, _, reference = path.partition("@") if "@" in path else path.rpartition(":")
    return (
        f'rpc error: code = Unknown desc = failed to pull and unpack image "{image}": failed to '
        f'resolve reference "{image}": failed to do request: Head '
        f'"https://{host}/v2/{repository}/manifests/{reference}": dial tcp: lookup {host}: '
        "no such host"
    )


def registries_by_host(state: State) -> dict[str, Json]:
    return {r["properties"].get("loginServer", "").lower(): r for r in state.typed(REGISTRY)}


def credentials_valid(
    state: State, host: str, username: str, password: str, repository: str | None = None
) -> bool:
    """Would the registry at ``host`` let these credentials pull (admin user, a token whose
    scope map has ``content/read`` on ``repository``, or an SP secret)?"""
    from emulator.providers.graph import graph_secret_valid
    from emulator.providers.registry_tokens import find_token, token_allows, token_principal

    registry = registries_by_host(state).get(host.lower())
    if registry is None:
        return False
    if username.lower() == registry["name"].lower():
        current = [p["value"] for p in state.registry_passwords.get(registry["id"].lower(), [])]
        return bool(registry["properties"].get("adminUserEnabled")) and password in current
    if find_token(state, registry["id"], username) is not None:
        principal = token_principal(state, registry, username, password)
        if principal is None:
            return False
        return repository is None or "pull" in token_allows(state, principal["token"], repository)
    return graph_secret_valid(state, username, password, datetime.now(UTC))


def docker_auths(secret: Json) -> dict[str, tuple[str, str]]:
    """host -> (username, password) from a dockerconfigjson or dockercfg secret."""
    data = secret.get("data") or {}
    try:
        if secret.get("type") == DOCKER_CONFIG_JSON:
            auths = json.loads(base64.b64decode(data.get(".dockerconfigjson", ""))).get("auths", {})
        elif secret.get("type") == DOCKER_CFG:
            auths = json.loads(base64.b64decode(data.get(".dockercfg", "")))
        else:
            return {}
    except (ValueError, binascii.Error, AttributeError):
        return {}
    out: dict[str, tuple[str, str]] = {}
    for host, entry in auths.items() if isinstance(auths, dict) else ():
        if not isinstance(entry, dict):
            continue
        username, password = entry.get("username"), entry.get("password")
        if (username is None or password is None) and entry.get("auth"):
            username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        clean = re.sub(r"^https?://", "", str(host)).split("/", 1)[0].lower()
        out[clean] = (str(username or ""), str(password or ""))
    return out


def _pod_pulls_with_valid_secret(state: State, api: ClusterApi, pod: Json, image: str) -> bool:
    namespace = pod["metadata"]["namespace"]
    host = image_host(image)
    for ref in pod["spec"].get("imagePullSecrets") or []:
        secret = api.get("secrets", namespace, ref.get("name", ""))
        if secret is None:
            continue
        creds = docker_auths(secret).get(host)
        repository = (
            image.split("/", 1)[1].split("@", 1)[0].rsplit(":", 1)[0] if "/" in image else None
        )
        if creds and credentials_valid(state, host, *creds, repository=repository):
            return True
    return False


def _containers(spec: Json) -> list[Json]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def still_failing(state: State, api: ClusterApi, pod: Json, container: str, cause: Json) -> bool:
    spec = next((c for c in _containers(pod["spec"]) if c["name"] == container), None)
    if spec is None or spec.get("image") != cause["image"]:
        return False
    if cause["kind"] == "qps":
        return spec.get("imagePullPolicy") == "Always"
    if cause["kind"] == "throttled":
        return str(cause["registry"]).lower() in state.registry_throttled
    if cause["kind"] == "secret":
        return not _pod_pulls_with_valid_secret(state, api, pod, cause["image"])
    return True


def fail_pull(api: ClusterApi, pod: Json, container: str, cause: Json) -> None:
    """Make ``container`` of ``pod`` fail to pull, with the kubelet's events."""
    key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
    api.pulls.setdefault(key, {})[container] = cause
    _set_pod_status(api, pod)
    image, message = cause["image"], cause["message"]
    spec_path = _field_path(pod, container)
    attempts = 4
    events = [
        ("Pulling", f'Pulling image "{image}"', "Normal", attempts),
        ("Failed", f'Failed to pull image "{image}": {message}', "Warning", attempts),
        ("Failed", "Error: ErrImagePull", "Warning", attempts),
    ]
    if cause.get("reason", "ImagePullBackOff") == "ImagePullBackOff":
        events += [
            ("BackOff", f'Back-off pulling image "{image}"', "Normal", 9),
            ("Failed", "Error: ImagePullBackOff", "Warning", 9),
        ]
    for reason, text, kind, count in events:
        add_event(api, pod, reason, text, kind=kind, field_path=spec_path, count=count)


def _field_path(pod: Json, container: str) -> str:
    init = any(c["name"] == container for c in pod["spec"].get("initContainers") or [])
    return f"spec.initContainers{{{container}}}" if init else f"spec.containers{{{container}}}"


def recover(state: State, api: ClusterApi) -> None:
    """Pods whose pull cause no longer holds pull on the kubelet's next back-off retry."""
    changed = False
    for key, causes in list(api.pulls.items()):
        pod = api.get("pods", *key)
        if pod is None:
            del api.pulls[key]
            continue
        healed = [c for c, cause in causes.items() if not still_failing(state, api, pod, c, cause)]
        for container in healed:
            image = causes.pop(container)["image"]
            add_event(
                api,
                pod,
                "Pulled",
                f'Successfully pulled image "{image}" in 1.204s (1.204s including waiting). '
                "Image size: 48213571 bytes.",
                field_path=_field_path(pod, container),
            )
        if healed:
            if not causes:
                del api.pulls[key]
            _set_pod_status(api, pod)
            changed = True
    if changed:
        refresh_deployments(api)


def add_event(
    api: ClusterApi,
    pod: Json,
    reason: str,
    message: str,
    *,
    kind: str = "Normal",
    field_path: str | None = None,
    count: int = 1,
    component: str = "kubelet",
) -> Json:
    meta = pod["metadata"]
    node = pod["spec"].get("nodeName")
    involved: Json = {
        "kind": "Pod",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": "v1",
        "resourceVersion": meta["resourceVersion"],
    }
    if field_path:
        involved["fieldPath"] = field_path
    event: Json = {
        "metadata": {
            "name": f"{meta['name']}.{stable(meta['uid'], reason, message, length=16, alphabet='0123456789abcdef')}",
            "namespace": meta["namespace"],
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": {
            "component": component,
            **({"host": node} if node and component == "kubelet" else {}),
        },
        # Never before the pod existed: a kubelet reports only on pods it runs.
        "firstTimestamp": _not_before(meta.get("creationTimestamp"), -60 * count),
        "lastTimestamp": _not_before(meta.get("creationTimestamp"), -5),
        "count": count,
        "type": kind,
        "reportingComponent": component,
        "reportingInstance": node if component == "kubelet" and node else "",
    }
    return api.put("events", event)


def _set_pod_status(api: ClusterApi, pod: Json) -> None:
    meta, spec = pod["metadata"], pod["spec"]
    failing = api.pulls.get((meta["namespace"], meta["name"]), {})
    created = meta["creationTimestamp"]
    node = spec.get("nodeName")
    if node is None:
        return
    old = {s["name"]: s for s in pod.get("status", {}).get("containerStatuses", [])}
    statuses = []
    for container in spec.get("containers", []):
        name, image = container["name"], container["image"]
        status: Json = {
            "name": name,
            "image": image,
            "imageID": "",
            "lastState": {},
            "restartCount": 0,
        }
        if name in failing:
            cause = failing[name]
            reason = cause.get("reason", "ImagePullBackOff")
            message = (
                cause["message"]
                if reason == "ErrImagePull"
                else (f'Back-off pulling image "{image}": ErrImagePull: {cause["message"]}')
            )
            status.update(
                ready=False,
                started=False,
                state={"waiting": {"reason": reason, "message": message}},
            )
        else:
            digest = hashlib.sha256(image.encode()).hexdigest()
            previous = old.get(name, {}).get("state", {}).get("running", {})
            status.update(
                ready=True,
                started=True,
                imageID=f"{image.rsplit(':', 1)[0] if '@' not in image else image.split('@')[0]}@sha256:{digest}",
                containerID=f"containerd://{hashlib.sha256((meta['uid'] + name).encode()).hexdigest()}",
                state={"running": {"startedAt": previous.get("startedAt", now())}},
            )
        statuses.append(status)
    ready = not failing
    not_ready = [s["name"] for s in statuses if not s["ready"]]
    condition_message = f"containers with unready status: [{' '.join(not_ready)}]"

    def condition(kind: str, ok: bool) -> Json:
        out: Json = {
            "type": kind,
            "status": "True" if ok else "False",
            "lastTransitionTime": created,
        }
        if not ok:
            out.update(reason="ContainersNotReady", message=condition_message)
        return out

    host_ip = api.node_ips.get(node, "10.224.0.4")
    digits = "0123456789"
    subnet, host = (
        int(stable(meta["uid"], length=2, alphabet=digits)),
        int(stable(meta["uid"], "ip", length=2, alphabet=digits)),
    )
    pod_ip = f"10.244.{subnet % 16}.{2 + host}"
    pod["status"] = {
        "phase": "Running" if ready else "Pending",
        "conditions": [
            condition("PodReadyToStartContainers", True),
            condition("Initialized", True),
            condition("Ready", ready),
            condition("ContainersReady", ready),
            condition("PodScheduled", True),
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": created,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    }
    pod["metadata"]["resourceVersion"] = api.next_version()


def _unschedulable(api: ClusterApi, pod: Json, total: int) -> None:
    pod["status"] = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastTransitionTime": pod["metadata"]["creationTimestamp"],
                "reason": "Unschedulable",
                "message": f"0/{total} nodes are available: {total} node(s) didn't match Pod's node "
                f"affinity/selector. preemption: 0/{total} nodes are available: {total} Preemption "
                "is not helpful for scheduling.",
            }
        ],
        "qosClass": "BestEffort",
    }
    add_event(
        api,
        pod,
        "FailedScheduling",
        pod["status"]["conditions"][0]["message"],
        kind="Warning",
        component="default-scheduler",
    )


# -- workloads ----------------------------------------------------------------------------------


def default_pod_spec(spec: Json) -> Json:
    """The defaults the API server fills into a pod template's spec."""
    for container in _containers(spec):
        container.setdefault("imagePullPolicy", default_pull_policy(container.get("image", "")))
        container.setdefault("resources", {})
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    return spec


def put_deployment(
    state: State,
    api: ClusterApi,
    deployment: Json,
    *,
    pool: str | None = None,
    failures: dict[str, Json] | None = None,
) -> Json:
    """Store a new deployment and start its pods (as the controllers and scheduler would).

    ``failures``: pull causes by container name that the new pods start with.
    """
    meta = deployment["metadata"]
    ensure_namespace(api, meta["namespace"])
    validate_deployment(deployment, None)
    if pool:
        api.pins[(meta["namespace"], meta["name"])] = pool
    meta.setdefault("generation", 1)
    meta.setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "1"
    api.put("deployments", deployment)
    rollout(state, api, deployment, previous=dict(failures or {}))
    return deployment


def refresh_deployments(api: ClusterApi) -> None:
    """Recompute every deployment's status from its pods."""
    for deployment in api.store("deployments").values():
        _deployment_status(api, deployment)
        deployment["metadata"]["resourceVersion"] = api.next_version()


def rollout(state: State, api: ClusterApi, deployment: Json, previous: dict[str, Json]) -> None:
    """Replace the deployment's pods with pods of its current template.

    ``previous`` carries pull causes by container name from the pods being replaced: a new pod
    pulls the same image for the same reason unless that reason no longer holds.
    """
    meta, spec = deployment["metadata"], deployment["spec"]
    namespace, name = meta["namespace"], meta["name"]
    template = spec["template"]
    template_hash = stable(json.dumps(template, sort_keys=True), length=10)
    for key in [k for k, p in api.store("pods").items() if _owned_by(p, namespace, name)]:
        for container, cause in api.pulls.pop(key, {}).items():
            previous.setdefault(container, cause)
        del api.store("pods")[key]
    candidates = _schedulable_nodes(state, api, template["spec"], api.pins.get((namespace, name)))
    total = len(nodes(state, api))
    replicas = int(spec.get("replicas", 1))
    offset = int(stable(namespace, name, length=4, alphabet="0123456789"))  # spread deployments
    for index in range(replicas):
        pod_name = f"{name}-{template_hash}-{stable(name, template_hash, index, length=5)}"
        pod_spec = copy.deepcopy(template["spec"])
        service_account = pod_spec.get("serviceAccountName") or "default"
        pod_spec["serviceAccountName"] = pod_spec["serviceAccount"] = service_account
        account = api.get("serviceaccounts", namespace, service_account) or {}
        pulls = list(pod_spec.get("imagePullSecrets") or [])
        pulls += [s for s in account.get("imagePullSecrets") or [] if s not in pulls]
        if pulls:
            pod_spec["imagePullSecrets"] = pulls
        pod_spec.update(
            tolerations=[
                {
                    "key": f"node.kubernetes.io/{t}",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
                for t in ("not-ready", "unreachable")
            ],
            priority=0,
            enableServiceLinks=True,
            preemptionPolicy="PreemptLowerPriority",
        )
        if candidates:
            pod_spec["nodeName"] = candidates[(offset + index) % len(candidates)]
        pod: Json = {
            "metadata": {
                "name": pod_name,
                "generateName": f"{name}-{template_hash}-",
                "namespace": namespace,
                "labels": {
                    **template.get("metadata", {}).get("labels", {}),
                    "pod-template-hash": template_hash,
                },
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": f"{name}-{template_hash}",
                        "uid": str(
                            uuid.uuid5(uuid.NAMESPACE_URL, f"{meta['uid']}/{template_hash}")
                        ),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": pod_spec,
        }
        api.put("pods", pod)
        if not candidates:
            _unschedulable(api, pod, total)
            continue
        _set_pod_status(api, pod)
        for container, cause in previous.items():
            if still_failing(state, api, pod, container, cause):
                fail_pull(api, pod, container, cause)
    _deployment_status(api, deployment)


def _owned_by(pod: Json, namespace: str, deployment: str) -> bool:
    if pod["metadata"]["namespace"] != namespace:
        return False
    return any(
        ref.get("kind") == "ReplicaSet" and ref.get("name", "").rsplit("-", 1)[0] == deployment
        for ref in pod["metadata"].get("ownerReferences", [])
    )


def _schedulable_nodes(
    state: State, api: ClusterApi, pod_spec: Json, pool: str | None
) -> list[str]:
    selector = pod_spec.get("nodeSelector") or {}
    chosen = []
    for node in nodes(state, api):
        labels = node["metadata"]["labels"]
        if pool and labels.get("agentpool") != pool:
            continue
        unpinned = not selector and not pool
        if unpinned and (labels.get("kubernetes.io/os"), labels.get("kubernetes.io/arch")) != (
            "linux",
            "amd64",
        ):
            continue  # scenarios place unpinned workloads on Linux amd64 nodes
        if all(labels.get(k) == v for k, v in selector.items()):
            chosen.append(node["metadata"]["name"])
    return chosen


def _deployment_status(api: ClusterApi, deployment: Json) -> None:
    meta = deployment["metadata"]
    pods = [p for p in api.store("pods").values() if _owned_by(p, meta["namespace"], meta["name"])]
    ready = sum(1 for p in pods if p.get("status", {}).get("phase") == "Running")
    replicas = int(deployment["spec"].get("replicas", 1))
    available = ready >= replicas
    created = meta["creationTimestamp"]
    template_hash = stable(json.dumps(deployment["spec"]["template"], sort_keys=True), length=10)
    deployment["status"] = {
        "observedGeneration": meta.get("generation", 1),
        "replicas": len(pods),
        "updatedReplicas": len(pods),
        "conditions": [
            {
                "type": "Available",
                "status": "True" if available else "False",
                "lastUpdateTime": created,
                "lastTransitionTime": created,
                "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "lastUpdateTime": created,
                "lastTransitionTime": created,
                "reason": "NewReplicaSetAvailable" if available else "ReplicaSetUpdated",
                "message": f'ReplicaSet "{meta["name"]}-{template_hash}" '
                + ("has successfully progressed." if available else "is progressing."),
            },
        ],
    }
    if ready:
        deployment["status"].update(readyReplicas=ready, availableReplicas=ready)
    if len(pods) - ready:
        deployment["status"]["unavailableReplicas"] = len(pods) - ready


# -- HTTP: errors, selectors, paging ------------------------------------------------------------


class KubeError(Exception):
    """A Kubernetes ``Status`` failure."""

    def __init__(self, code: int, reason: str, message: str, details: Json | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def response(self) -> Response:
        body: Json = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return kube_response(body, self.code)


def kube_response(body: Json, status: int = 200) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json")
    response.headers["Audit-Id"] = str(uuid.uuid4())
    response.headers["Cache-Control"] = "no-cache, private"
    response.headers["X-Kubernetes-Pf-Flowschema-Uid"] = str(
        uuid.uuid5(uuid.NAMESPACE_URL, "exempt")
    )
    return response


def not_found(plural: str, name: str) -> KubeError:
    group = ""
    for kind in KINDS.values():
        if kind.plural == plural and "/" in kind.api_version:
            group = kind.api_version.split("/")[0]
    resource = f"{plural}.{group}" if group else plural
    return KubeError(
        404,
        "NotFound",
        f'{resource} "{name}" not found',
        {"name": name, "kind": plural, **({"group": group} if group else {})},
    )


Selector = Callable[[Json], bool]


def _split_terms(text: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current.strip())
    return terms


def label_selector(text: str) -> Selector:
    """Equality (``a=b``, ``a!=b``), set (``a in (b,c)``, ``a notin (b)``) and ``a`` / ``!a``."""
    tests: list[Selector] = []
    for term in _split_terms(text):
        set_based = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term)
        equality = re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)", term)
        exists = re.fullmatch(r"(!?)([\w./-]+)", term)
        if set_based:
            values = {v.strip() for v in set_based.group(3).split(",")}
            tests.append(_label_in(set_based.group(1), values, set_based.group(2) == "in"))
        elif equality:
            key, op, value = equality.groups()
            tests.append(_label_in(key, {value}, op != "!="))
        elif exists:
            tests.append(_label_exists(exists.group(2), not exists.group(1)))
        else:
            raise KubeError(
                400,
                "BadRequest",
                f"unable to parse requirement: found '{term}', expected: in, notin, =, ==, !=",
            )
    return lambda o: all(t(o) for t in tests)


def _label_in(key: str, values: set[str], wanted: bool) -> Selector:
    return lambda o: (_labels(o).get(key) in values) == wanted


def _label_exists(key: str, wanted: bool) -> Selector:
    return lambda o: (key in _labels(o)) == wanted


def _labels(obj: Json) -> Json:
    labels: Json = obj.get("metadata", {}).get("labels") or {}
    return labels


def field_selector(text: str, kind: Kind) -> Selector:
    allowed = {"metadata.name", *(("metadata.namespace",) if kind.namespaced else ()), *kind.fields}
    tests: list[Selector] = []
    for term in _split_terms(text):
        match = re.fullmatch(r"([\w.]+)\s*(==|=|!=)\s*(.*)", term)
        if not match:
            raise KubeError(
                400, "BadRequest", f"invalid selector: '{text}'; can't understand '{term}'"
            )
        path, op, value = match.groups()
        if path not in allowed:
            raise KubeError(400, "BadRequest", f"field label not supported: {path}")
        lookup = "source.component" if path == "source" else path
        tests.append(_field_is(lookup, value, op != "!="))
    return lambda o: all(t(o) for t in tests)


def _field_is(path: str, value: str, wanted: bool) -> Selector:
    return lambda o: (_dig(o, path) == value) == wanted


def _dig(obj: Json, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _continue_token(revision: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _start_after(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        parsed = json.loads(base64.urlsafe_b64decode(padded))
        return str(parsed["start"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise KubeError(
            400,
            "BadRequest",
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ) from exc


# -- HTTP: patches ------------------------------------------------------------------------------

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "imagePullSecrets": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "ownerReferences": "uid",
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge_patch(target: Any, patch: Any, key: str = "") -> Any:
    """Kubernetes strategic merge: lists with a patch merge key are merged item by item."""
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        out = copy.deepcopy(target) if isinstance(target, dict) else {}
        for name, value in patch.items():
            if name.startswith("$setElementOrder/") or name in ("$retainKeys", "$patch"):
                continue
            if value is None:
                out.pop(name, None)
            else:
                out[name] = strategic_merge_patch(out.get(name), value, name)
        return out
    if isinstance(patch, list) and key in MERGE_KEYS and isinstance(target, list):
        merge_key = MERGE_KEYS[key]
        out_list = copy.deepcopy(target)
        for item in patch:
            if not isinstance(item, dict) or merge_key not in item:
                raise KubeError(
                    400,
                    "BadRequest",
                    f"map: {item} does not contain declared merge key: {merge_key}",
                )
            index = next(
                (i for i, cur in enumerate(out_list) if cur.get(merge_key) == item[merge_key]), None
            )
            if item.get("$patch") == "delete":
                if index is not None:
                    out_list.pop(index)
            elif index is None:
                out_list.append({k: v for k, v in item.items() if k != "$patch"})
            else:
                out_list[index] = strategic_merge_patch(out_list[index], item)
        return out_list
    return copy.deepcopy(patch)


def json_patch(target: Json, operations: Any) -> Json:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(operations, list):
        raise KubeError(
            400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    doc = copy.deepcopy(target)

    def parts(pointer: str) -> list[str]:
        if pointer == "":
            return []
        if not pointer.startswith("/"):
            raise KubeError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: invalid path {pointer}",
            )
        return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]

    def parent(pointer: str) -> tuple[Any, str]:
        path = parts(pointer)
        node: Any = doc
        for part in path[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, path[-1]

    def read(pointer: str) -> Any:
        node, last = parent(pointer)
        return node[int(last)] if isinstance(node, list) else node[last]

    for op in operations:
        try:
            kind, path = op["op"], op["path"]
            if kind == "test":
                if read(path) != op["value"]:
                    raise KubeError(
                        422,
                        "Invalid",
                        f"the server rejected our request due to an error in our request: testing value {path} failed",
                    )
                continue
            value = (
                copy.deepcopy(op["value"])
                if kind in ("add", "replace")
                else (read(op["from"]) if kind in ("move", "copy") else None)
            )
            if kind == "move":
                node, last = parent(op["from"])
                node.pop(int(last)) if isinstance(node, list) else node.pop(last)
            node, last = parent(path)
            if kind == "remove":
                node.pop(int(last)) if isinstance(node, list) else node.pop(last)
            elif isinstance(node, list):
                if kind == "replace":
                    node[int(last)] = value
                else:
                    node.insert(len(node) if last == "-" else int(last), copy.deepcopy(value))
            else:
                if kind == "replace" and last not in node:
                    raise KeyError(last)
                node[last] = copy.deepcopy(value)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise KubeError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {exc}",
            ) from exc
    return doc


# -- HTTP: validation ---------------------------------------------------------------------------

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _invalid(kind: str, name: str, causes: list[tuple[str, str, str]]) -> KubeError:
    """``causes``: (field, reason, message) as the API server aggregates field errors."""
    texts = [f"{f}: {m}" for f, _, m in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return KubeError(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {summary}',
        {
            "name": name,
            "kind": kind,
            "causes": [
                {
                    "reason": r,
                    "message": m.split(": ", 1)[-1] if r != "FieldValueNotSupported" else m,
                    "field": f,
                }
                for f, r, m in causes
            ],
        },
    )


def validate_secret(secret: Json, old: Json | None) -> None:
    name = secret["metadata"]["name"]
    data = secret.get("data") or {}
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KubeError(
                400, "BadRequest", f"illegal base64 data at input byte 0 in data[{key}]"
            ) from exc
    for key, value in (secret.pop("stringData", None) or {}).items():
        data[key] = b64(str(value))
    if data:
        secret["data"] = data
    secret.setdefault("type", "Opaque")
    causes: list[tuple[str, str, str]] = []
    for key in data:
        if not re.fullmatch(r"[-._a-zA-Z0-9]+", key):
            causes.append(
                (
                    f"data[{key}]",
                    "FieldValueInvalid",
                    f"Invalid value: \"{key}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
    wanted = {DOCKER_CONFIG_JSON: ".dockerconfigjson", DOCKER_CFG: ".dockercfg"}.get(secret["type"])
    if wanted:
        if wanted not in data:
            causes.append((f"data[{wanted}]", "FieldValueRequired", "Required value"))
        else:
            try:
                parsed = json.loads(base64.b64decode(data[wanted]))
                if not isinstance(parsed, dict):
                    raise ValueError("not an object")
            except ValueError:
                causes.append(
                    (
                        f"data[{wanted}]",
                        "FieldValueInvalid",
                        'Invalid value: "<secret contents redacted>": invalid character looking for beginning of value',
                    )
                )
    if old is not None:
        if old.get("type", "Opaque") != secret["type"]:
            causes.append(
                (
                    "type",
                    "FieldValueInvalid",
                    f'Invalid value: "{secret["type"]}": field is immutable',
                )
            )
        if old.get("immutable") and (
            old.get("data") != secret.get("data") or not secret.get("immutable")
        ):
            causes.append(
                (
                    "data",
                    "FieldValueForbidden",
                    "Forbidden: field is immutable when `immutable` is set",
                )
            )
    if causes:
        raise _invalid("Secret", name, causes)


def validate_service_account(account: Json, old: Json | None) -> None:
    causes = [
        (f"imagePullSecrets[{i}].name", "FieldValueRequired", "Required value")
        for i, ref in enumerate(account.get("imagePullSecrets") or [])
        if not isinstance(ref, dict) or not ref.get("name")
    ]
    if causes:
        raise _invalid("ServiceAccount", account["metadata"]["name"], causes)


def validate_deployment(deployment: Json, old: Json | None) -> None:
    name = deployment["metadata"]["name"]
    spec = deployment.get("spec") or {}
    causes: list[tuple[str, str, str]] = []
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    if not selector:
        causes.append(("spec.selector", "FieldValueRequired", "Required value"))
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector and any(labels.get(k) != v for k, v in selector.items()):
        causes.append(
            (
                "spec.template.metadata.labels",
                "FieldValueInvalid",
                f"Invalid value: {json.dumps(labels)}: `selector` does not match template `labels`",
            )
        )
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        causes.append(
            (
                "spec.replicas",
                "FieldValueInvalid",
                f"Invalid value: {replicas}: must be greater than or equal to 0",
            )
        )
    pod_spec = template.get("spec") or {}
    if not pod_spec.get("containers"):
        causes.append(("spec.template.spec.containers", "FieldValueRequired", "Required value"))
    for group in ("initContainers", "containers"):
        for i, container in enumerate(pod_spec.get(group) or []):
            where = f"spec.template.spec.{group}[{i}]"
            if not container.get("name"):
                causes.append((f"{where}.name", "FieldValueRequired", "Required value"))
            if not container.get("image"):
                causes.append((f"{where}.image", "FieldValueRequired", "Required value"))
            policy = container.get("imagePullPolicy")
            if policy is not None and policy not in PULL_POLICIES:
                causes.append(
                    (
                        f"{where}.imagePullPolicy",
                        "FieldValueNotSupported",
                        f'Unsupported value: "{policy}": supported values: "Always", "IfNotPresent", "Never"',
                    )
                )
    if old is not None and (old["spec"].get("selector") != spec.get("selector")):
        causes.append(
            (
                "spec.selector",
                "FieldValueInvalid",
                f"Invalid value: {json.dumps(spec.get('selector'))}: field is immutable",
            )
        )
    causes += node_selector_causes(pod_spec, "spec.template.spec")
    if causes:
        raise _invalid("Deployment", name, causes)
    default_pod_spec(pod_spec)
    spec.setdefault("replicas", 1)
    spec.setdefault(
        "strategy",
        {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
    )
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)


def validate_pod(pod: Json, old: Json | None) -> None:
    """A bare pod as the API server checks it: containers with names and images; once created,
    its spec cannot change (only a few fields may, none of which the product sets)."""
    name = pod["metadata"].get("name", "")
    spec = pod.get("spec") or {}
    if old is not None and old.get("spec") != spec:
        raise _invalid(
            "Pod",
            name,
            [
                (
                    "FieldValueForbidden",
                    "spec",
                    "pod updates may not change fields other than "
                    "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                    "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing "
                    "tolerations) or `spec.terminationGracePeriodSeconds`",
                )
            ],
        )
    containers = spec.get("containers") or []
    causes = []
    if not containers:
        causes.append(("FieldValueRequired", "spec.containers", "Required value"))
    for n, container in enumerate(containers):
        for key in ("name", "image"):
            if not container.get(key):
                causes.append(
                    ("FieldValueRequired", f"spec.containers[{n}].{key}", "Required value")
                )
    if spec.get("restartPolicy", "Always") not in ("Always", "OnFailure", "Never"):
        causes.append(("FieldValueNotSupported", "spec.restartPolicy", "Unsupported value"))
    causes += node_selector_causes(spec, "spec")
    causes += host_process_causes(spec, "spec")
    if causes:
        raise _invalid("Pod", name, causes)


def host_process_causes(pod_spec: Json, where: str) -> list[tuple[str, str, str]]:
    """The API server's checks of Windows HostProcess pods (validateWindowsHostProcessPod):
    with any HostProcess container, every container must be one, and the pod must be on the
    host network."""

    def host_process(context: Json | None) -> bool | None:
        value = ((context or {}).get("windowsOptions") or {}).get("hostProcess")
        return value if isinstance(value, bool) else None

    pod_level = host_process(pod_spec.get("securityContext"))
    containers = _containers(pod_spec)
    flags = [host_process(c.get("securityContext")) for c in containers]
    effective = [pod_level if flag is None else flag for flag in flags]
    if not any(effective):
        return []
    causes = []
    if not all(effective):
        causes.append(
            (
                where,
                "FieldValueInvalid",
                'Invalid value: "": If pod contains any hostProcess containers then all '
                "containers must be HostProcess containers",
            )
        )
    if not pod_spec.get("hostNetwork"):
        causes.append(
            (
                f"{where}.hostNetwork",
                "FieldValueInvalid",
                "Invalid value: false: hostNetwork must be true if pod contains any hostProcess "
                "containers",
            )
        )
    return causes


# Images whose behaviour the emulator models (a probe): (state, api, pod) -> (exit code, logs)
# or None for any other image. emulator/probe.py registers the pull probe's.
PodRunner = Callable[[State, "ClusterApi", Json], "tuple[int, str] | None"]
POD_RUNNERS: list[PodRunner] = []


def _store_pod(state: State, api: ClusterApi, pod: Json) -> None:
    """A created pod is scheduled on a node its nodeSelector allows; a modelled image runs to
    completion at once (Succeeded or Failed, with its logs), any other runs."""
    spec = pod["spec"]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    api.put("pods", pod)
    if not spec.get("nodeName"):
        candidates = _schedulable_nodes(state, api, spec, None)
        if not candidates:
            _unschedulable(api, pod, len(nodes(state, api)))
            return
        spec["nodeName"] = candidates[0]
    for runner in POD_RUNNERS:
        ran = runner(state, api, pod)
        if ran is None:
            continue
        exit_code, logs = ran
        api.logs[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = logs
        _set_pod_status(api, pod)
        phase = "Succeeded" if exit_code == 0 else "Failed"
        pod["status"]["phase"] = phase
        for status in pod["status"]["containerStatuses"]:
            started = status["state"].get("running", {}).get("startedAt", now())
            status.update(ready=False, started=False)
            status["state"] = {
                "terminated": {
                    "exitCode": exit_code,
                    "reason": "Completed" if exit_code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": now(),
                }
            }
        return
    _set_pod_status(api, pod)


VALIDATORS: dict[str, Callable[[Json, Json | None], None]] = {
    "pods": validate_pod,
    "secrets": validate_secret,
    "serviceaccounts": validate_service_account,
    "deployments": validate_deployment,
}


# -- HTTP: the API server -----------------------------------------------------------------------


def handle(state: State, request: Request, *, in_cluster: bool = False) -> Response:
    """Serve one API request; ``in_cluster`` requests (a Run Command pod's kubectl) reach the API
    server from inside the cluster, so a private or IP-restricted endpoint does not stop them."""
    try:
        return _serve(state, request, in_cluster=in_cluster)
    except KubeError as exc:
        return exc.response()


def _serve(state: State, request: Request, *, in_cluster: bool = False) -> Response:
    _, _, key, *rest = request.path.split("/", 3)
    with state.lock:
        api: ClusterApi | None = state.kubernetes.get(key)
        if api is None or state.get(api.cluster_id) is None:
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        if not api.reachable and not in_cluster:
            raise KubeError(
                503, "ServiceUnavailable", "the server is currently unable to handle the request"
            )
        _authenticate(state, api, request)
        recover(state, api)
        path = rest[0] if rest else ""
        if path.strip("/") == "version":
            return kube_response(_version(state, api))
        found = discovery(path.strip("/"))
        if found is not None:
            return kube_response(found)
        kind, namespace, name = _route(path)
        verb = _verb(request.method, name)
        if kind.plural in api.forbidden:
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            group = kind.api_version.split("/")[0] if "/" in kind.api_version else ""
            raise KubeError(
                403,
                "Forbidden",
                f'{kind.plural} is forbidden: User "clusterUser" cannot {verb} resource "{kind.plural}" '
                f'in API group "{group}" {scope}',
                {"kind": kind.plural},
            )
        if f"{verb} {kind.plural}" in api.forbidden:
            raise forbidden_verb_error(kind, verb, namespace)
        if request.method == "GET":
            if name is None:
                listed = _list(state, api, kind, namespace, request)
                if kind.plural == "pods" and "as=Table" in request.headers.get("Accept", ""):
                    return kube_response(pod_table(listed))
                return kube_response(listed)
            return kube_response(_with_kind(kind, _get(state, api, kind, namespace or "", name)))
        if not kind.writable or (
            request.method == "DELETE" and kind.plural not in ("secrets", "pods")
        ):
            raise KubeError(405, "MethodNotAllowed", NOT_ALLOWED)
        return _write(state, api, Route(kind, namespace, name), request)


def _authenticate(state: State, api: ClusterApi, request: Request) -> None:
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else ""
    if token and token in (api.user_token, api.admin_token):
        return
    cluster = state.get(api.cluster_id) or {}
    aad = (cluster.get("properties", {}).get("aadProfile") or {}).get("managed")
    if (
        aad
        and token
        and state.tokens.get(token, "").rstrip("/") in (AAD_SERVER_APP, f"api://{AAD_SERVER_APP}")
    ):
        return
    raise KubeError(401, "Unauthorized", "Unauthorized")


# -- discovery: what kubectl reads before any request (legacy discovery documents) ---------------

_READ_VERBS = ["get", "list", "watch"]
_WRITE_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
_SHORT_NAMES = {
    "nodes": ["no"],
    "namespaces": ["ns"],
    "pods": ["po"],
    "events": ["ev"],
    "serviceaccounts": ["sa"],
    "deployments": ["deploy"],
    "replicasets": ["rs"],
    "statefulsets": ["sts"],
    "daemonsets": ["ds"],
    "cronjobs": ["cj"],
}


def discovery(path: str) -> Json | None:
    """``/api``, ``/apis``, ``/api/v1`` and ``/apis/<group>/<version>``, or None for other paths.

    The server answers the legacy documents only (no aggregated discovery): kubectl asks for
    ``apidiscovery.k8s.io/v2`` first and falls back to these when the answer is plain JSON.
    """
    group_versions = sorted({k.api_version for k in KINDS.values()})
    if path == "api":
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
        }
    if path == "apis":
        groups = []
        for group_version in group_versions:
            if "/" not in group_version:
                continue
            name, version = group_version.split("/")
            entry = {"groupVersion": group_version, "version": version}
            groups.append({"name": name, "versions": [entry], "preferredVersion": entry})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    group_version = path[len("api/") :] if path.startswith("api/") else path[len("apis/") :]
    if not path.startswith(("api/", "apis/")) or group_version not in group_versions:
        return None
    if path.startswith("api/") != ("/" not in group_version):
        return None
    resources = []
    for kind in KINDS.values():
        if kind.api_version != group_version:
            continue
        resource: Json = {
            "name": kind.plural,
            "singularName": kind.kind.lower(),
            "namespaced": kind.namespaced,
            "kind": kind.kind,
            "verbs": _WRITE_VERBS if kind.writable else _READ_VERBS,
        }
        if kind.plural in _SHORT_NAMES:
            resource["shortNames"] = _SHORT_NAMES[kind.plural]
        resources.append(resource)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _version(state: State, api: ClusterApi) -> Json:
    cluster = state.get(api.cluster_id) or {}
    version = cluster.get("properties", {}).get("currentKubernetesVersion", "1.30.5")
    major, minor, *_ = version.split(".")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{version}",
        "gitCommit": stable(version, length=40, alphabet="0123456789abcdef"),
        "gitTreeState": "clean",
        "buildDate": "2024-10-01T00:00:00Z",
        "goVersion": "go1.22.7",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _route(path: str) -> tuple[Kind, str | None, str | None]:
    segments = [s for s in path.split("/") if s]
    if segments[:2] == ["api", "v1"]:
        api_version, segments = "v1", segments[2:]
    elif len(segments) >= 3 and segments[0] == "apis":
        api_version, segments = f"{segments[1]}/{segments[2]}", segments[3:]
    else:
        raise KubeError(404, "NotFound", "the server could not find the requested resource")
    namespace = None
    if len(segments) >= 3 and segments[0] == "namespaces":
        namespace, segments = segments[1], segments[2:]
    kind = KINDS.get((api_version, segments[0])) if segments else None
    if kind is None or len(segments) > 2 or (namespace is not None and not kind.namespaced):
        raise KubeError(404, "NotFound", "the server could not find the requested resource")
    name = segments[1] if len(segments) == 2 else None
    if name is not None and kind.namespaced and namespace is None:
        raise KubeError(404, "NotFound", "the server could not find the requested resource")
    return kind, namespace, name


def _verb(method: str, name: str | None) -> str:
    if method == "GET":
        return "list" if name is None else "get"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )


def _with_kind(kind: Kind, obj: Json) -> Json:
    return {"kind": kind.kind, "apiVersion": kind.api_version, **obj}


def _objects(state: State, api: ClusterApi, kind: Kind) -> list[Json]:
    """The stored objects themselves, in order: callers filter, then copy what they return."""
    if kind.plural == "nodes":
        return nodes(state, api)
    return [o for _, o in sorted(api.store(kind.plural).items())]


def _get(state: State, api: ClusterApi, kind: Kind, namespace: str, name: str) -> Json:
    if kind.plural == "nodes":
        found = next((n for n in nodes(state, api) if n["metadata"]["name"] == name), None)
    else:
        found = copy.deepcopy(api.get(kind.plural, namespace, name))
    if found is None:
        raise not_found(kind.plural, name)
    return found


def _list(
    state: State, api: ClusterApi, kind: Kind, namespace: str | None, request: Request
) -> Json:
    items = _objects(state, api, kind)
    if namespace is not None:
        items = [o for o in items if o["metadata"].get("namespace") == namespace]
    labels = request.args.get("labelSelector")
    fields = request.args.get("fieldSelector")
    if labels:
        items = [o for o in items if label_selector(labels)(o)]
    if fields:
        items = [o for o in items if field_selector(fields, kind)(o)]
    start = request.args.get("continue")
    if start:
        after = _start_after(start)
        items = [o for o in items if _sort_key(o) > after]
    limit_text = request.args.get("limit")
    metadata: Json = {"resourceVersion": str(api.revision)}
    if limit_text:
        try:
            limit = int(limit_text)
        except ValueError as exc:
            raise KubeError(400, "BadRequest", f'invalid limit "{limit_text}"') from exc
        if 0 < limit < len(items):
            metadata["continue"] = _continue_token(api.revision, _sort_key(items[limit - 1]))
            if not labels and not fields:
                metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
    # Copied only once selected: a field-selected list of 2 secrets among thousands copies 2.
    items = [copy.deepcopy(o) for o in items]
    return {
        "kind": f"{kind.kind}List",
        "apiVersion": kind.api_version,
        "metadata": metadata,
        "items": items,
    }


# -- server-side printing: what `kubectl get pods` shows (a meta.k8s.io/v1 Table) --------------

_POD_COLUMNS = [
    ("Name", "string", "name", 0),
    ("Ready", "string", "", 0),
    ("Status", "string", "", 0),
    ("Restarts", "integer", "", 0),
    ("Age", "string", "", 0),
    ("IP", "string", "", 1),
    ("Node", "string", "", 1),
]


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    seconds = max(
        0, int(time.time() - calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")))
    )
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _pod_status(pod: Json) -> str:
    status = pod.get("status", {})
    for container in status.get("containerStatuses", []):
        waiting = container.get("state", {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return str(status.get("phase", "Unknown"))


def pod_table(listed: Json) -> Json:
    """The Table the API server prints pods with (kubectl asks for it with ``as=Table``)."""
    rows = []
    for pod in listed["items"]:
        statuses = pod.get("status", {}).get("containerStatuses", [])
        ready = sum(1 for c in statuses if c.get("ready"))
        total = len(pod.get("spec", {}).get("containers", [])) or len(statuses)
        cells = [
            pod["metadata"]["name"],
            f"{ready}/{total}",
            _pod_status(pod),
            sum(int(c.get("restartCount", 0)) for c in statuses),
            _age(pod["metadata"].get("creationTimestamp")),
            pod.get("status", {}).get("podIP", "<none>"),
            pod.get("spec", {}).get("nodeName", "<none>"),
        ]
        meta = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1"}
        rows.append({"cells": cells, "object": {**meta, "metadata": pod["metadata"]}})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": listed["metadata"],
        "columnDefinitions": [
            {"name": n, "type": t, "format": f, "description": n, "priority": p}
            for n, t, f, p in _POD_COLUMNS
        ],
        "rows": rows,
    }


def _sort_key(obj: Json) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}\x00"


def _body(request: Request) -> Any:
    from emulator import kube_protobuf

    content_type = (request.mimetype or "application/json").lower()
    if content_type == kube_protobuf.MEDIA_TYPE:
        try:
            return kube_protobuf.decode(request.get_data())
        except (kube_protobuf.ProtobufError, UnicodeDecodeError) as exc:
            raise KubeError(415, "UnsupportedMediaType", str(exc)) from exc
    raw = request.get_data(as_text=True)
    try:
        if content_type in ("application/yaml", "application/apply-patch+yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw or "null")
    except (ValueError, yaml.YAMLError) as exc:
        raise KubeError(400, "BadRequest", f"error decoding request body: {exc}") from exc


@dataclass(frozen=True)
class Route:
    kind: Kind
    namespace: str | None
    name: str | None


NOT_ALLOWED = "the server does not allow this method on the requested resource"


def _write(state: State, api: ClusterApi, route: Route, request: Request) -> Response:
    kind, namespace, name = route.kind, route.namespace, route.name
    method = request.method
    if namespace is None or (method == "POST") != (name is None):
        raise KubeError(405, "MethodNotAllowed", NOT_ALLOWED)
    if api.get("namespaces", "", namespace) is None:
        details = {"name": namespace, "kind": "namespaces"}
        raise KubeError(404, "NotFound", f'namespaces "{namespace}" not found', details)
    dry_run = request.args.get("dryRun") == "All"
    old = api.get(kind.plural, namespace, name) if name else None
    if method != "POST" and old is None:
        raise not_found(kind.plural, name or "")
    if method == "DELETE":
        assert old is not None
        if not dry_run:
            del api.store(kind.plural)[(namespace, name or "")]
            api.logs.pop((namespace, name or ""), None)
        details = {"name": name or "", "kind": kind.plural, "uid": old["metadata"]["uid"]}
        status: Json = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        return kube_response({**status, "details": details})
    new = _incoming(kind, old, request)
    _check_identity(kind, new, namespace, name)
    new_name = new["metadata"]["name"]
    if method == "POST":
        old = api.get(kind.plural, namespace, new_name)
        if old is not None:
            details = {"name": new_name, "kind": kind.plural}
            raise KubeError(
                409, "AlreadyExists", f'{kind.plural} "{new_name}" already exists', details
            )
    if old is not None and new["metadata"].get("resourceVersion") not in (
        None,
        old["metadata"]["resourceVersion"],
    ):
        raise KubeError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {kind.plural} "{new_name}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            {"name": new_name, "kind": kind.plural},
        )
    new.pop("kind", None)
    new.pop("apiVersion", None)
    new["metadata"]["namespace"] = namespace
    if old is not None:
        for server_field in ("uid", "creationTimestamp", "generation"):
            if server_field in old["metadata"]:
                new["metadata"][server_field] = old["metadata"][server_field]
        if "status" in old:
            new["status"] = old["status"]
    VALIDATORS[kind.plural](new, old)
    status_code = 201 if old is None else 200
    if dry_run:
        return kube_response(_with_kind(kind, new), status_code)
    if kind.plural == "deployments":
        _store_deployment(state, api, new, old)
    elif kind.plural == "pods":
        _store_pod(state, api, new)
    else:
        api.put(kind.plural, new)
    recover(state, api)
    stored = api.get(kind.plural, namespace, new_name) or new
    return kube_response(_with_kind(kind, copy.deepcopy(stored)), status_code)


def _incoming(kind: Kind, old: Json | None, request: Request) -> Json:
    if request.method == "PATCH":
        assert old is not None
        return _patched(kind, old, request)
    body = _body(request)
    if not isinstance(body, dict):
        raise KubeError(
            400,
            "BadRequest",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
    return body


def _store_deployment(state: State, api: ClusterApi, new: Json, old: Json | None) -> None:
    """Store a written deployment; a new pod template (or replica count) rolls out new pods."""
    meta = new["metadata"]
    meta.setdefault("generation", 1)
    annotations = meta.setdefault("annotations", {})
    revision_key = "deployment.kubernetes.io/revision"
    if old is None:
        annotations[revision_key] = "1"
        api.put("deployments", new)
        rollout(state, api, new, previous={})
        return
    if old.get("spec") != new.get("spec"):
        meta["generation"] = old["metadata"].get("generation", 1) + 1
    revision = old["metadata"].get("annotations", {}).get(revision_key, "1")
    templated = old["spec"].get("template") != new["spec"].get("template")
    annotations[revision_key] = str(int(revision) + 1) if templated else revision
    api.put("deployments", new)
    if templated or old["spec"].get("replicas") != new["spec"].get("replicas"):
        rollout(state, api, new, previous={})
    else:
        _deployment_status(api, new)


def _patched(kind: Kind, old: Json, request: Request) -> Json:
    content_type = (request.mimetype or "").lower()
    patch = _body(request)
    current = _with_kind(kind, old)
    if content_type == "application/json-patch+json":
        return json_patch(current, patch)
    if not isinstance(patch, dict):
        raise KubeError(
            400,
            "BadRequest",
            "json: cannot unmarshal array into Go value of type map[string]interface {}",
        )
    if content_type == "application/merge-patch+json":
        return dict(merge_patch(current, patch))
    if content_type == "application/strategic-merge-patch+json":
        return dict(strategic_merge_patch(current, patch))
    if content_type == "application/apply-patch+yaml":
        if not request.args.get("fieldManager"):
            raise KubeError(
                400,
                "BadRequest",
                "PATCH, Content-Type: application/apply-patch+yaml requires fieldManager",
            )
        return dict(strategic_merge_patch(current, patch))
    raise KubeError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
        f'application/strategic-merge-patch+json (got "{content_type}")',
    )


def _check_identity(kind: Kind, obj: Json, namespace: str, name: str | None) -> None:
    for field_name, expected in (("apiVersion", kind.api_version), ("kind", kind.kind)):
        if obj.get(field_name) not in (None, expected):
            raise KubeError(
                400,
                "BadRequest",
                f"the {field_name} in the data ({obj[field_name]}) does not match the expected {field_name} ({expected})",
            )
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise _invalid(
            kind.kind,
            "",
            [
                (
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                )
            ],
        )
    if name is not None and meta["name"] != name:
        raise KubeError(
            400,
            "BadRequest",
            f"the name of the object ({meta['name']}) does not match the name on the URL ({name})",
        )
    if meta.get("namespace") not in (None, namespace):
        raise KubeError(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        )
    if not DNS_SUBDOMAIN.match(meta["name"]) or len(meta["name"]) > 253:
        raise _invalid(
            kind.kind,
            meta["name"],
            [
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f"Invalid value: \"{meta['name']}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
                )
            ],
        )


# -- ARM: listClusterUserCredential / listClusterAdminCredential --------------------------------


def list_cluster_user_credential(state: State, arm: ArmRequest) -> Response:
    return _credentials(state, arm, "clusterUser")


def list_cluster_admin_credential(state: State, arm: ArmRequest) -> Response:
    return _credentials(state, arm, "clusterAdmin")


ARM_ACTIONS = {
    "listclusterusercredential": list_cluster_user_credential,
    "listclusteradmincredential": list_cluster_admin_credential,
}


def _credentials(state: State, arm: ArmRequest, role: str) -> Response:
    from emulator.arm import json_response

    requested_format = arm.request.args.get("format")
    if requested_format is not None and requested_format.lower() not in ("azure", "exec"):
        raise ArmError(
            400,
            "BadRequest",
            f"Invalid format '{requested_format}'. Supported formats: azure, exec.",
        )
    cluster = state.get(arm.resource_id)
    assert cluster is not None
    properties = cluster["properties"]
    aad = (properties.get("aadProfile") or {}).get("managed")
    if role == "clusterAdmin" and properties.get("disableLocalAccounts"):
        raise ArmError(
            400,
            "BadRequest",
            "Getting static credential is not allowed because this cluster is set to disable local accounts.",
        )
    api = api_for(state, cluster["id"])
    port = arm.request.host.rsplit(":", 1)[-1]
    if not api.reachable and state.kube_refusing_port:
        port = str(
            state.kube_refusing_port
        )  # as a private cluster's FQDN is for a caller outside its VNet
    name = cluster["name"]
    user_name = f"{role}_{arm.resource_group}_{name}"
    # AKS names the context after the cluster for both roles; `az aks get-credentials --admin`
    # appends "-admin" itself when it merges the kubeconfig.
    context = name
    user: Json
    if aad and role == "clusterUser":
        user = _exec_user(state, requested_format or "exec")
    else:
        cert, key = _client_cert(state, api, role)
        user = {
            "client-certificate-data": b64(cert),
            "client-key-data": b64(key),
            "token": api.user_token if role == "clusterUser" else api.admin_token,
        }
    kubeconfig: Json = {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {
                    "certificate-authority-data": b64(state.kube_ca.cert_pem.bytes())
                    if state.kube_ca
                    else "",
                    "server": f"https://127.0.0.1:{port}/k8s/{api.key}",
                },
                "name": name,
            }
        ],
        "contexts": [{"context": {"cluster": name, "user": user_name}, "name": context}],
        "current-context": context,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": user_name, "user": user}],
    }
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: fast at fleet sizes
    value = b64(yaml.dump(kubeconfig, Dumper=dumper, sort_keys=False))
    return json_response({"kubeconfigs": [{"name": role, "value": value}]})


def _exec_user(state: State, requested_format: str) -> Json:
    if requested_format.lower() == "azure":
        return {
            "auth-provider": {
                "name": "azure",
                "config": {
                    "apiserver-id": AAD_SERVER_APP,
                    "client-id": AZURE_CLI_CLIENT,
                    "config-mode": "1",
                    "environment": "AzurePublicCloud",
                    "tenant-id": state.tenant_id,
                },
            }
        }
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "args": [
                "get-token",
                "--environment",
                "AzurePublicCloud",
                "--server-id",
                AAD_SERVER_APP,
                "--client-id",
                AZURE_CLI_CLIENT,
                "--tenant-id",
                state.tenant_id,
                "--login",
                "devicecode",
            ],
            "command": "kubelogin",
            "env": None,
            "installHint": "\nkubelogin is not installed which is required to connect to AAD enabled cluster.\n",
            "interactiveMode": "IfAvailable",
            "provideClusterInfo": False,
        }
    }


def _client_cert(state: State, api: ClusterApi, role: str) -> tuple[str, str]:
    if role not in api.client_certs:
        if state.kube_ca is None:
            return "", ""
        common_name = "masterclient" if role == "clusterAdmin" else "clusterUser"
        issued = state.kube_ca.issue_cert(
            common_name, common_name=common_name, organization_name="system:masters"
        )
        api.client_certs[role] = (
            issued.cert_chain_pems[0].bytes().decode(),
            issued.private_key_pem.bytes().decode(),
        )
    return api.client_certs[role]


# -- registration -------------------------------------------------------------------------------


def register(emulator: Emulator) -> None:
    state = emulator.state
    state.kube_ca = emulator.ca
    # A loopback port bound but never listening: connecting to it is refused at once.
    refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    refusing.bind(("127.0.0.1", 0))
    state.kube_refusing_port = refusing.getsockname()[1]
    weakref.finalize(emulator, refusing.close)
    emulator.mount(
        "/k8s/<key>/<path:rest>",
        "kubernetes",
        lambda request: handle(state, request),
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    )


def objects(state: State, cluster_id: str, plural: str) -> list[Json]:
    """A copy of the stored objects of one kind (tests assert on these)."""
    api = api_for(state, cluster_id)
    with state.lock:
        if plural == "nodes":
            return nodes(state, api)
        return [copy.deepcopy(o) for _, o in sorted(api.store(plural).items())]


def iter_pull_secrets(api: ClusterApi) -> Iterable[tuple[Json, str, tuple[str, str]]]:
    """(secret, host, (username, password)) for every registry credential in the cluster."""
    for secret in list(api.store("secrets").values()):
        for host, creds in docker_auths(secret).items():
            yield secret, host, creds


# -- verb-level RBAC and nodeSelector validation (remediation writes) ----------------------------


def forbid_verb(state: State, cluster_id: str, plural: str, verb: str) -> None:
    """Let the cluster user no longer ``verb`` (get, list, create, update, patch, delete)
    ``plural``, as with a role that reads secrets but may not write them: 403 Forbidden."""
    api_for(state, cluster_id).forbidden.add(f"{verb} {plural}")


def forbidden_verb_error(kind: Kind, verb: str, namespace: str | None) -> KubeError:
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    group = kind.api_version.split("/")[0] if "/" in kind.api_version else ""
    return KubeError(
        403,
        "Forbidden",
        f'{kind.plural} is forbidden: User "clusterUser" cannot {verb} resource "{kind.plural}" '
        f'in API group "{group}" {scope}',
        {"kind": kind.plural},
    )


LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def node_selector_causes(pod_spec: Json, where: str) -> list[tuple[str, str, str]]:
    """The API server's checks of ``nodeSelector``: a string map of qualified label names to
    label values (apimachinery ValidateLabels); a non-string value does not even decode (400)."""
    selector = pod_spec.get("nodeSelector")
    if selector is None:
        return []
    field_path = f"{where}.nodeSelector"
    if not isinstance(selector, dict):
        raise KubeError(
            400,
            "BadRequest",
            f"json: cannot unmarshal {type(selector).__name__} into Go struct field "
            f"PodSpec.{field_path} of type map[string]string",
        )
    causes: list[tuple[str, str, str]] = []
    for key, value in selector.items():
        if not isinstance(value, str):
            raise KubeError(
                400,
                "BadRequest",
                f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                f"PodSpec.{field_path} of type string",
            )
        prefix, _, name = key.rpartition("/")
        if (
            not LABEL_NAME.match(name)
            or len(name) > 63
            or (prefix and (not LABEL_PREFIX.match(prefix) or len(prefix) > 253))
            or key.count("/") > 1
        ):
            causes.append(
                (
                    field_path,
                    "FieldValueInvalid",
                    f'Invalid value: "{key}": name part must consist of alphanumeric characters, '
                    "'-', '_' or '.', and must start and end with an alphanumeric character "
                    "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                )
            )
        if not LABEL_VALUE.match(value) or len(value) > 63:
            causes.append(
                (
                    f"{field_path}[{key}]",
                    "FieldValueInvalid",
                    f'Invalid value: "{value}": a valid label must be an empty string or consist '
                    "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
                    "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                )
            )
    return causes
