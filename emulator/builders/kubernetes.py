"""Scenario builders for what runs inside each AKS cluster: workloads, pull secrets, breaks.

Cluster spec keys (all optional)::

    clusters:
      - name: aks-prod-weu
        kubernetesApi: {reachable: false, forbidden: [secrets]}   # API server switches
        apiServerAccessProfile: {enablePrivateCluster: true}      # or authorizedIPRanges: [...];
                            # either makes the API unreachable from the app unless kubernetesApi
                            # says reachable; disableRunCommand: true makes Run Command refuse
        aadProfile: {managed: true}     # Entra ID: kubectl (and Run Command) need an AAD token
        namespaces: [shop]
        pullSecrets:        # kubernetes.io/dockerconfigjson, as `kubectl create secret docker-registry`
          - {namespace: shop, name: acr-admin, registry: acrprodweu, from: admin}
          - {namespace: shop, name: acr-sp, registry: acrprodweu, from: "sp:<appId>",
             serviceAccount: default}                  # also listed in that account's imagePullSecrets
        workloads:          # a Deployment, its pods, and the kubelet's events
          - namespace: shop
            name: api
            image: acrprodweu.azurecr.io/shop/api:v1   # or containers: [{name, image, imagePullPolicy}]
            replicas: 2
            imagePullSecrets: [acr-admin]
            imagePullPolicy: Always
            nodeSelector: {kubernetes.io/os: linux}
            pool: arm             # place the pods on this node pool without writing a nodeSelector
            serviceAccount: default
            status: Running       # or ImagePullBackOff / ErrImagePull
            message: "..."        # the pull error for failing pods (the text after `Failed to pull image "x": `)

Workloads without ``nodeSelector`` or ``pool`` land on Linux amd64 nodes. ``from: admin`` uses the
registry's current admin password (``admin:password2``: its second slot; the admin user must be
enabled); ``from: token:<name>`` a repository-scoped token's ``password1`` (``token:<name>:password2``
its second; see :mod:`emulator.builders.tokens`); ``from: sp:<appId>`` uses a
valid secret of that application (created, with a secret, when the scenario has no such app).

Breaks: ``pull-secret-admin-stale`` (the admin password in the secret was regenerated),
``pull-secret-sp-invalid`` (``mode: expired`` (default), ``reset`` or ``wrong``) and
``pull-qps-exceeded`` (``workload:``; the kubelet's pull QPS limit rejects its ``Always`` pulls)
and ``registry-throttled`` (``registry:``, optional ``workload:``; a burst of ``pullsPerMinute``
pulls over ``minutes`` minutes, ``throttledShare`` of them answered 429 toomanyrequests: the
registry's pull metrics, its data plane and the pods pulling from it all show it).
Each takes ``cluster`` and optionally ``namespace`` / ``secret`` (or ``workload``).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from emulator import kubernetes as k8s
from emulator.acr_data import THROTTLED_MESSAGE
from emulator.builders.rbac import ensure_application
from emulator.providers import graph
from emulator.providers.containerregistry import new_password
from emulator.scenario import (
    CLUSTER_HOOKS,
    api_server_reachable,
    breaks,
    find_cluster,
    find_registry,
)
from emulator.state import Json, State

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
QPS_MESSAGE = "pull QPS exceeded."
COREDNS = "mcr.microsoft.com/oss/v2/kubernetes/coredns:v1.11.3-2"


def cluster_hook(state: State, cluster: Json, spec: dict[str, Any]) -> None:
    api = k8s.api_for(state, cluster["id"])
    with state.lock:
        add_workload(
            state,
            api,
            {
                "namespace": "kube-system",
                "name": "coredns",
                "image": COREDNS,
                "replicas": 2,
                "nodeSelector": {"kubernetes.io/os": "linux"},
            },
        )
        for namespace in spec.get("namespaces", []):
            k8s.ensure_namespace(api, str(namespace))
        for secret in spec.get("pullSecrets", []):
            add_pull_secret(state, api, secret)
        for workload in spec.get("workloads", []):
            add_workload(state, api, workload)
        switches = spec.get("kubernetesApi") or {}
        # Unless the scenario says otherwise, reachable as the cluster's configuration implies.
        implied = api_server_reachable(cluster["properties"])
        api.reachable = bool(switches.get("reachable", implied))
        api.forbidden |= set(switches.get("forbidden", []))


CLUSTER_HOOKS.append(cluster_hook)


def docker_config_secret(
    namespace: str, name: str, host: str, username: str, password: str
) -> Json:
    """A pull secret as ``kubectl create secret docker-registry`` writes it."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = {"auths": {host: {"username": username, "password": password, "auth": auth}}}
    return {
        "metadata": {"name": name, "namespace": namespace},
        "data": {".dockerconfigjson": k8s.b64(json.dumps(config, separators=(",", ":")))},
        "type": k8s.DOCKER_CONFIG_JSON,
    }


def add_pull_secret(state: State, api: k8s.ClusterApi, spec: dict[str, Any]) -> Json:
    registry = find_registry(state, str(spec["registry"]))
    source = str(spec.get("from", "admin"))
    if source in ("admin", "admin:password", "admin:password2"):
        if not registry["properties"].get("adminUserEnabled"):
            raise ValueError(
                f"pull secret {spec['name']!r}: registry {registry['name']!r} has the admin user disabled"
            )
        slot = source.partition(":")[2] or "password"
        [password] = [p["value"] for p in admin_passwords(state, registry) if p["name"] == slot]
        username = registry["name"]
    elif source.startswith("sp:"):
        username = source[3:]
        password = usable_secret(state, username)
    elif source.startswith("token:"):
        from emulator.builders.tokens import token_password

        username, password = token_password(state, registry, source)
    else:
        raise ValueError(
            f"pull secret {spec['name']!r}: from must be 'admin', 'admin:password2', "
            f"'sp:<appId>' or 'token:<name>[:password2]', not {source!r}"
        )
    namespace = str(spec.get("namespace", "default"))
    k8s.ensure_namespace(api, namespace)
    host = registry["properties"]["loginServer"]
    secret = api.put(
        "secrets", docker_config_secret(namespace, str(spec["name"]), host, username, password)
    )
    account_name = spec.get("serviceAccount")
    if account_name:
        account = api.get("serviceaccounts", namespace, str(account_name))
        if account is None:
            account = {"metadata": {"name": str(account_name), "namespace": namespace}}
        refs = account.setdefault("imagePullSecrets", [])
        if {"name": spec["name"]} not in refs:
            refs.append({"name": spec["name"]})
        api.put("serviceaccounts", account)
    return secret


def admin_passwords(state: State, registry: Json) -> list[Json]:
    return state.registry_passwords.setdefault(
        registry["id"].lower(), [new_password("password"), new_password("password2")]
    )


def usable_secret(state: State, app_id: str) -> str:
    """A secret of ``app_id`` that Entra ID accepts now; one is added when there is none."""
    ensure_application(state, app_id)
    with state.lock:
        app = state.graph_applications[app_id]
        stored = list(app["_secrets"].values())
    for secret in stored:
        if graph.graph_secret_valid(state, app_id, secret, datetime.now(UTC)):
            return str(secret)
    _, secret = graph.add_password(state, app_id, display_name="acr-pull")
    return secret


def add_workload(state: State, api: k8s.ClusterApi, spec: dict[str, Any]) -> Json:
    namespace, name = str(spec.get("namespace", "default")), str(spec["name"])
    containers = [
        dict(c) for c in spec.get("containers") or [{"name": name, "image": spec["image"]}]
    ]
    for container in containers:
        if spec.get("imagePullPolicy") and "imagePullPolicy" not in container:
            container["imagePullPolicy"] = spec["imagePullPolicy"]
    pod_spec: Json = {"containers": containers}
    if spec.get("imagePullSecrets"):
        pod_spec["imagePullSecrets"] = [{"name": str(n)} for n in spec["imagePullSecrets"]]
    if spec.get("nodeSelector"):
        pod_spec["nodeSelector"] = {str(k): str(v) for k, v in spec["nodeSelector"].items()}
    if spec.get("serviceAccount"):
        pod_spec["serviceAccountName"] = str(spec["serviceAccount"])
    labels = {"app": name}
    deployment: Json = {
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": int(spec.get("replicas", 1)),
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }
    status = str(spec.get("status", "Running"))
    failures: dict[str, Json] = {}
    if status in ("ImagePullBackOff", "ErrImagePull"):
        for container in containers:
            image = container["image"]
            if spec.get("message"):
                message = spec["message"]
            elif k8s.image_host(image) not in (*k8s.registries_by_host(state), "docker.io"):
                message = k8s.no_such_host_message(image)  # no registry has that name
            else:
                message = k8s.unauthorized_message(
                    image, with_credentials=bool(spec.get("imagePullSecrets"))
                )
            message = re.sub(r'^Failed to pull image "[^"]*": ', "", str(message))
            failures[container["name"]] = {
                "kind": "message",
                "image": container["image"],
                "message": message,
                "reason": status,
            }
    elif status != "Running":
        raise ValueError(
            f"workload {name!r}: status must be Running, ImagePullBackOff or ErrImagePull"
        )
    return k8s.put_deployment(state, api, deployment, pool=spec.get("pool"), failures=failures)


# -- breaks -------------------------------------------------------------------------------------


def _pull_secrets(
    state: State, spec: dict[str, Any], admin: bool
) -> tuple[k8s.ClusterApi, list[tuple[Json, str, tuple[str, str]]]]:
    """The cluster's registry credentials the break is about: admin users or service principals."""
    cluster = find_cluster(state, str(spec["cluster"]))
    api = k8s.api_for(state, cluster["id"])
    registries = k8s.registries_by_host(state)
    found = []
    for secret, host, creds in k8s.iter_pull_secrets(api):
        meta = secret["metadata"]
        if spec.get("namespace") and meta["namespace"] != spec["namespace"]:
            continue
        if spec.get("secret") and meta["name"] != spec["secret"]:
            continue
        registry = registries.get(host)
        is_admin = registry is not None and creds[0].lower() == registry["name"].lower()
        is_sp = bool(GUID.match(creds[0]))
        if (admin and is_admin) or (not admin and is_sp):
            found.append((secret, host, creds))
    if not found:
        kind = "admin-user" if admin else "service principal"
        raise ValueError(f"no {kind} pull secret in cluster {spec['cluster']!r} matches {spec}")
    return api, found


def fail_pods_using(state: State, api: k8s.ClusterApi, secrets_: list[Json]) -> None:
    """Pods pulling with these secrets fail with 401 on their next pull, as after a restart."""
    names = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in secrets_}
    hosts = {h for s in secrets_ for h in k8s.docker_auths(s)}
    for pod in list(api.store("pods").values()):
        namespace = pod["metadata"]["namespace"]
        refs = {(namespace, r.get("name")) for r in pod["spec"].get("imagePullSecrets") or []}
        if not refs & names or not pod["spec"].get("nodeName"):
            continue
        for container in pod["spec"].get("containers", []):
            image = container["image"]
            if k8s.image_host(image) not in hosts:
                continue
            cause = {
                "kind": "secret",
                "image": image,
                "message": k8s.unauthorized_message(image, with_credentials=True),
                "reason": "ImagePullBackOff",
            }
            if k8s.still_failing(state, api, pod, container["name"], cause):
                k8s.fail_pull(api, pod, container["name"], cause)
    k8s.refresh_deployments(api)


@breaks("pull-secret-admin-stale")
def regenerate_admin_password(state: State, spec: dict[str, Any]) -> None:
    """Someone ran ``az acr credential renew`` after the pull secret was written."""
    with state.lock:
        api, found = _pull_secrets(state, spec, admin=True)
        registries = k8s.registries_by_host(state)
        for _, host, (_, password) in found:
            passwords = admin_passwords(state, registries[host])
            for index, entry in enumerate(passwords):
                if entry["value"] == password:
                    passwords[index] = new_password(entry["name"])
        fail_pods_using(state, api, [secret for secret, _, _ in found])


@breaks("pull-secret-sp-invalid")
def invalidate_service_principal_secret(state: State, spec: dict[str, Any]) -> None:
    """The service principal in the pull secret no longer signs in with the secret it holds.

    ``mode``: ``expired`` (its credential ended), ``reset`` (``az ad sp credential reset`` replaced
    every credential) or ``wrong`` (the pull secret was written with a mistyped secret).
    """
    mode = str(spec.get("mode", "expired"))
    if mode not in ("expired", "reset", "wrong"):
        raise ValueError(
            f"pull-secret-sp-invalid: mode must be expired, reset or wrong, not {mode!r}"
        )
    with state.lock:
        api, found = _pull_secrets(state, spec, admin=False)
        for secret, host, (app_id, password) in found:
            app = state.graph_applications.get(app_id)
            if mode == "wrong" or app is None:
                meta = secret["metadata"]
                wrong = secrets.token_urlsafe(30)
                api.put(
                    "secrets",
                    docker_config_secret(meta["namespace"], meta["name"], host, app_id, wrong),
                )
            elif mode == "expired":
                ended = datetime.now(UTC) - timedelta(days=float(spec.get("daysAgo", 3)))
                for credential in app["passwordCredentials"]:
                    if app["_secrets"].get(credential["keyId"]) == password:
                        credential["endDateTime"] = graph.iso(ended)
                        credential["startDateTime"] = graph.iso(ended - timedelta(days=365))
            else:
                app["passwordCredentials"] = []
                app["_secrets"] = {}
                graph.add_password(state, app_id, display_name="rbac")
        current = [
            api.get("secrets", s["metadata"]["namespace"], s["metadata"]["name"])
            for s, _, _ in found
        ]
        fail_pods_using(state, api, [s for s in current if s is not None])


@breaks("pull-qps-exceeded")
def exceed_pull_qps(state: State, spec: dict[str, Any]) -> None:
    """Many pods of a deployment pull with ``imagePullPolicy: Always`` and hit registryPullQPS."""
    cluster = find_cluster(state, str(spec["cluster"]))
    api = k8s.api_for(state, cluster["id"])
    with state.lock:
        matches = [
            d
            for (namespace, name), d in api.store("deployments").items()
            if name == spec["workload"] and spec.get("namespace") in (None, namespace)
        ]
        if len(matches) != 1:
            raise ValueError(f"pull-qps-exceeded: {len(matches)} deployments match {spec}")
        deployment = matches[0]
        causes: dict[str, Json] = {}
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            container["imagePullPolicy"] = "Always"
            causes[container["name"]] = {
                "kind": "qps",
                "image": container["image"],
                "message": QPS_MESSAGE,
                "reason": "ErrImagePull",
            }
        api.put("deployments", deployment)
        k8s.rollout(state, api, deployment, previous=causes)


@breaks("registry-throttled")
def throttle_registry(state: State, spec: dict[str, Any]) -> None:
    """A scale-out pulls faster than the registry's SKU allows: 429 toomanyrequests."""
    registry = find_registry(state, str(spec["registry"]))
    host = registry["properties"]["loginServer"].lower()
    cluster = find_cluster(state, str(spec["cluster"]))
    api = k8s.api_for(state, cluster["id"])
    pulls, minutes = int(spec.get("pullsPerMinute", 1500)), int(spec.get("minutes", 5))
    share = float(spec.get("throttledShare", 0.3))
    with state.lock:
        state.registry_throttled.setdefault(registry["id"].lower(), 0)
        state.registry_pull_metrics[registry["id"].lower()] = [
            {"minutesAgo": ago, "total": pulls, "successful": round(pulls * (1 - share))}
            for ago in range(1, minutes + 1)
        ]
        deployments = [
            d
            for (namespace, name), d in api.store("deployments").items()
            if spec.get("workload") in (None, name)
            and spec.get("namespace") in (None, namespace)
            and any(
                k8s.image_host(c["image"]) == host
                for c in d["spec"]["template"]["spec"]["containers"]
            )
        ]
        if not deployments:
            raise ValueError(f"registry-throttled: no deployment pulls from {host}: {spec}")
        for deployment in deployments:
            causes: dict[str, Json] = {}
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                image = container["image"]
                if k8s.image_host(image) != host:
                    continue
                repository, _, tag = image.split("/", 1)[1].partition(":")
                causes[container["name"]] = {
                    "kind": "throttled",
                    "registry": registry["id"],
                    "image": image,
                    "reason": "ImagePullBackOff",
                    "message": (
                        f'rpc error: code = Unknown desc = failed to pull and unpack image "{image}": '
                        f'failed to resolve reference "{image}": unexpected status from HEAD '
                        f"request to https://{host}/v2/{repository}/manifests/{tag or 'latest'}: "
                        f"429 Too Many Requests - Server message: toomanyrequests: "
                        f"{THROTTLED_MESSAGE}"
                    ),
                }
            k8s.rollout(state, api, deployment, previous=causes)
