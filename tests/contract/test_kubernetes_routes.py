"""Contract tests for the Kubernetes side: the kubeconfig ARM hands out, and each API route.

Kubeconfigs come through the real azure-mgmt-containerservice client and round-trip through its
``CredentialResults`` model; Kubernetes responses are decoded into lightkube-models (as lightkube
does, from the raw bytes) and encoded back, and nothing the emulator sent may get lost.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import ssl
from typing import Any

import httpx2
import msgspec
import pytest
import yaml
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.server import Emulator
from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.config import Settings
from shared.errors import Unreachable
from shared.ports.kubernetes import PullSecret, vm_size_architecture
from tests.conftest import PROD_SUB
from tests.support.contract import assert_round_trips

CLUSTER = "aks-shop-weu"
GROUP = "rg-aks-shop"
STATUS_401 = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


@pytest.fixture
def shop(emulator: Emulator) -> dict[str, Any]:
    return scenario.load(emulator.state, "kubernetes-pulls")


@pytest.fixture
def factory(emulator: Emulator, shop: dict[str, Any], app_env: dict[str, str]) -> ClientFactory:
    return ClientFactory(Settings.from_env(os.environ))


@pytest.fixture
def cluster_id(emulator: Emulator, shop: dict[str, Any]) -> str:
    return str(scenario.find_cluster(emulator.state, CLUSTER)["id"])


def kubeconfig(factory: ClientFactory, **options: Any) -> dict[str, Any]:
    result = factory.container_service(PROD_SUB).managed_clusters.list_cluster_user_credentials(
        GROUP, CLUSTER, **options
    )
    loaded: dict[str, Any] = yaml.safe_load(result.kubeconfigs[0].value)
    return loaded


@pytest.fixture
def raw(emulator: Emulator, factory: ClientFactory) -> httpx2.Client:
    """Plain HTTPS to the cluster's API server with the kubeconfig's server, CA and token."""
    config = kubeconfig(factory)
    token = config["users"][0]["user"]["token"]
    with httpx2.Client(
        base_url=config["clusters"][0]["cluster"]["server"],
        verify=ssl.create_default_context(cafile=emulator.ca_path),
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
    ) as client:
        yield client


@pytest.fixture
def kube(factory: ClientFactory) -> Any:
    return factory.kubernetes(kubeconfig(factory))


def lost_fields(original: Any, round_trip: Any, path: str = "$") -> list[str]:
    """Keys (or values) of ``original`` that did not survive ``round_trip``."""
    if isinstance(original, dict):
        if not isinstance(round_trip, dict):
            return [path]
        return [
            p
            for k, v in original.items()
            for p in (
                lost_fields(v, round_trip[k], f"{path}.{k}") if k in round_trip else [f"{path}.{k}"]
            )
        ]
    if isinstance(original, list):
        if not isinstance(round_trip, list) or len(original) != len(round_trip):
            return [path]
        return [
            p
            for i, (a, b) in enumerate(zip(original, round_trip, strict=True))
            for p in lost_fields(a, b, f"{path}[{i}]")
        ]
    return [] if original == round_trip else [f"{path} ({original!r} != {round_trip!r})"]


def assert_lightkube_round_trips(model: type, item: dict[str, Any]) -> None:
    decoded = msgspec.json.decode(json.dumps(item).encode(), type=model)
    lost = lost_fields(item, msgspec.to_builtins(decoded))
    assert not lost, f"{model.__name__} loses {lost}"


# -- ARM: the kubeconfig ----------------------------------------------------------------------


def test_list_cluster_user_credential_round_trips(
    emulator: Emulator, factory: ClientFactory, cluster_id: str
) -> None:
    from azure.mgmt.containerservice.models import CredentialResults

    client = factory.container_service(PROD_SUB)
    body = client.managed_clusters.list_cluster_user_credentials(
        GROUP, CLUSTER, cls=lambda response, _model, _headers: response.http_response.json()
    )
    assert_round_trips(CredentialResults, body)
    assert [k["name"] for k in body["kubeconfigs"]] == ["clusterUser"]

    config = kubeconfig(factory)
    api = k8s.api_for(emulator.state, cluster_id)
    server = config["clusters"][0]["cluster"]["server"]
    assert server == f"{emulator.base_url}/k8s/{k8s.cluster_key(cluster_id)}"
    ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    assert ca == emulator.ca.cert_pem.bytes()
    user = config["users"][0]
    assert user["name"] == f"clusterUser_{GROUP}_{CLUSTER}"
    assert user["user"]["token"] == api.user_token
    assert base64.b64decode(user["user"]["client-certificate-data"]).startswith(
        b"-----BEGIN CERTIFICATE"
    )
    assert config["current-context"] == CLUSTER
    assert config["contexts"] == [
        {"context": {"cluster": CLUSTER, "user": user["name"]}, "name": CLUSTER}
    ]
    post = [e for e in emulator.journal("arm") if e.path.endswith("/listClusterUserCredential")]
    assert post and all(e.method == "POST" and e.api_version for e in post)


def test_list_cluster_admin_credential(
    emulator: Emulator, factory: ClientFactory, cluster_id: str
) -> None:
    result = factory.container_service(PROD_SUB).managed_clusters.list_cluster_admin_credentials(
        GROUP, CLUSTER
    )
    assert [k.name for k in result.kubeconfigs] == ["clusterAdmin"]
    config = yaml.safe_load(result.kubeconfigs[0].value)
    # AKS names the context after the cluster; the CLI adds "-admin" when it merges it.
    assert config["current-context"] == CLUSTER
    assert [c["name"] for c in config["contexts"]] == [CLUSTER]
    assert (
        config["users"][0]["user"]["token"] == k8s.api_for(emulator.state, cluster_id).admin_token
    )


def test_credential_rejections(emulator: Emulator, factory: ClientFactory, cluster_id: str) -> None:
    client = factory.container_service(PROD_SUB).managed_clusters
    with pytest.raises(HttpResponseError) as bad_format:
        client.list_cluster_user_credentials(GROUP, CLUSTER, format="yaml")
    assert bad_format.value.status_code == 400
    with pytest.raises(ResourceNotFoundError):
        client.list_cluster_user_credentials(GROUP, "aks-nope")
    cluster = emulator.state.get(cluster_id)
    assert cluster is not None
    cluster["properties"]["disableLocalAccounts"] = True
    emulator.state.put(cluster)
    with pytest.raises(HttpResponseError) as local:
        client.list_cluster_admin_credentials(GROUP, CLUSTER)
    assert local.value.status_code == 400
    assert "disable local accounts" in str(local.value.message)
    emulator.deny(cluster_id)
    with pytest.raises(HttpResponseError) as denied:
        client.list_cluster_user_credentials(GROUP, CLUSTER)
    assert denied.value.status_code == 403
    assert denied.value.error.code == "AuthorizationFailed"
    assert "managedClusters/listClusterUserCredential" in denied.value.message


def test_entra_id_cluster_is_read_with_the_apps_own_token(
    emulator: Emulator, factory: ClientFactory, cluster_id: str
) -> None:
    cluster = emulator.state.get(cluster_id)
    assert cluster is not None
    cluster["properties"]["aadProfile"] = {
        "managed": True,
        "enableAzureRBAC": True,
        "tenantID": emulator.state.tenant_id,
    }
    emulator.state.put(cluster)
    config = kubeconfig(factory, format="exec")
    user = config["users"][0]["user"]
    assert "token" not in user
    assert user["exec"]["command"] == "kubelogin"
    assert k8s.AAD_SERVER_APP in user["exec"]["args"]
    assert "auth-provider" in kubeconfig(factory, format="azure")["users"][0]["user"]

    estate = ArmEstate(factory)
    nodes = estate.list_nodes(estate.get_cluster(cluster_id))
    assert len(nodes) == 4
    assert k8s.AAD_SERVER_APP in emulator.state.tokens.values()


# -- Kubernetes: authentication and errors ----------------------------------------------------


def test_requests_without_a_valid_token_get_401(raw: httpx2.Client, emulator: Emulator) -> None:
    anonymous = raw.get("api/v1/pods", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.json() == STATUS_401
    wrong = raw.get("api/v1/pods", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401
    # A token the identity endpoint issued is only good on Entra ID clusters.
    arm_token = next(iter(emulator.state.tokens))
    assert (
        raw.get("api/v1/pods", headers={"Authorization": f"Bearer {arm_token}"}).status_code == 401
    )


def test_not_found_is_a_status_object(raw: httpx2.Client, kube: Any) -> None:
    from lightkube import ApiError
    from lightkube.resources.core_v1 import Secret

    response = raw.get("api/v1/namespaces/shop/secrets/nope")
    assert response.status_code == 404
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "secrets"},
        "code": 404,
    }
    with pytest.raises(ApiError) as missing:
        kube.get(Secret, "nope", namespace="shop")
    assert missing.value.status.code == 404
    assert raw.get("api/v1/namespaces/shop/widgets").status_code == 404
    assert raw.patch("api/v1/nodes/x", json={}).status_code == 405


# -- Kubernetes: each resource parses into lightkube-models without losing fields -------------


@pytest.mark.parametrize(
    ("path", "module", "kind"),
    [
        ("api/v1/nodes", "core_v1", "Node"),
        ("api/v1/namespaces", "core_v1", "Namespace"),
        ("api/v1/pods", "core_v1", "Pod"),
        ("api/v1/events", "core_v1", "Event"),
        ("api/v1/secrets", "core_v1", "Secret"),
        ("api/v1/serviceaccounts", "core_v1", "ServiceAccount"),
        ("apis/apps/v1/deployments", "apps_v1", "Deployment"),
    ],
)
def test_lists_round_trip_through_lightkube_models(
    emulator: Emulator, raw: httpx2.Client, path: str, module: str, kind: str
) -> None:
    import importlib

    scenario.apply_break(
        emulator.state, {"cause": "pull-qps-exceeded", "cluster": CLUSTER, "workload": "etl"}
    )
    model = getattr(importlib.import_module(f"lightkube.resources.{module}"), kind)
    listed = raw.get(path)
    assert listed.status_code == 200
    assert listed.headers["Content-Type"] == "application/json"
    body = listed.json()
    assert body["kind"] == f"{kind}List"
    assert body["apiVersion"] == ("apps/v1" if module == "apps_v1" else "v1")
    assert body["metadata"]["resourceVersion"].isdigit()
    assert body["items"], f"no {kind} in the estate"
    for item in body["items"]:
        assert "kind" not in item and "apiVersion" not in item  # as the API server lists them
        assert_lightkube_round_trips(model, item)
    first = body["items"][0]["metadata"]
    one_path = (
        path
        if "namespace" not in first
        else path.replace(
            path.rsplit("/", 1)[1], f"namespaces/{first['namespace']}/{path.rsplit('/', 1)[1]}"
        )
    )
    single = raw.get(f"{one_path}/{first['name']}").json()
    assert (single["kind"], single["apiVersion"]) == (kind, body["apiVersion"])
    assert_lightkube_round_trips(model, single)


def test_pods_show_pull_failures_with_kubelet_events(
    emulator: Emulator, raw: httpx2.Client
) -> None:
    scenario.apply_break(emulator.state, {"cause": "pull-secret-admin-stale", "cluster": CLUSTER})
    pods = raw.get("api/v1/namespaces/shop/pods", params={"labelSelector": "app=api"}).json()[
        "items"
    ]
    assert len(pods) == 2
    status = pods[0]["status"]["containerStatuses"][0]
    assert status["state"]["waiting"]["reason"] == "ImagePullBackOff"
    assert "failed to fetch oauth token" in status["state"]["waiting"]["message"]
    assert "401 Unauthorized" in status["state"]["waiting"]["message"]
    name = pods[0]["metadata"]["name"]
    events = raw.get(
        "api/v1/namespaces/shop/events",
        params={"fieldSelector": f"involvedObject.name={name},reason=Failed"},
    ).json()["items"]
    messages = [e["message"] for e in events]
    assert any(
        m.startswith('Failed to pull image "acrshopweu.azurecr.io/shop/api:v1": rpc error')
        for m in messages
    )
    assert "Error: ImagePullBackOff" in messages
    assert all(e["involvedObject"]["name"] == name and e["reason"] == "Failed" for e in events)
    assert all(e["source"]["component"] == "kubelet" for e in events)
    # A kubelet reports on pods it runs: no event predates its pod.
    created = pods[0]["metadata"]["creationTimestamp"]
    assert all(created <= e["firstTimestamp"] <= e["lastTimestamp"] for e in events)


def test_nodes_follow_the_agent_pools(
    emulator: Emulator, factory: ClientFactory, cluster_id: str
) -> None:
    estate = ArmEstate(factory)
    nodes = estate.list_nodes(estate.get_cluster(cluster_id))
    assert sorted((n.pool, n.os, n.arch, n.instance_type) for n in nodes) == [
        ("arm", "linux", "arm64", "Standard_D4ps_v5"),
        ("arm", "linux", "arm64", "Standard_D4ps_v5"),
        ("system", "linux", "amd64", "Standard_D4s_v5"),
        ("system", "linux", "amd64", "Standard_D4s_v5"),
    ]
    vmss = {
        v["tags"]["aks-managed-poolName"]: v["name"]
        for v in scenario.node_pool_vmss(
            emulator.state, scenario.find_cluster(emulator.state, CLUSTER)
        )
    }
    assert {n.name for n in nodes if n.pool == "system"} == {
        f"{vmss['system'].removesuffix('-vmss')}-vmss00000{i}" for i in (0, 1)
    }


@pytest.mark.parametrize(
    ("size", "arch"),
    [
        ("Standard_D4ps_v5", "arm64"),
        ("Standard_E8pds_v5", "arm64"),
        ("Standard_D2plds_v5", "arm64"),
        ("Standard_B2pts_v2", "arm64"),
        ("Standard_D4s_v5", "amd64"),
        ("Standard_D4as_v5", "amd64"),
        ("Standard_NP10s", "amd64"),
        ("Standard_DC2s_v3", "amd64"),
        ("Standard_M64-32ms", "amd64"),
    ],
)
def test_vm_size_architecture(size: str, arch: str) -> None:
    assert vm_size_architecture(size) == arch
    assert k8s.vm_architecture(size) == arch


# -- Kubernetes: paging and selectors ---------------------------------------------------------


def test_limit_and_continue_page_through_every_item(
    emulator: Emulator, raw: httpx2.Client, kube: Any
) -> None:
    from lightkube.resources.core_v1 import Pod

    everything = [p["metadata"]["name"] for p in raw.get("api/v1/pods").json()["items"]]
    first = raw.get("api/v1/pods", params={"limit": 3}).json()
    assert len(first["items"]) == 3
    assert first["metadata"]["remainingItemCount"] == len(everything) - 3
    second = raw.get(
        "api/v1/pods", params={"limit": 3, "continue": first["metadata"]["continue"]}
    ).json()
    assert [p["metadata"]["name"] for p in first["items"] + second["items"]] == everything[:6]

    emulator.clear_journal()
    paged = [p.metadata.name for p in kube.list(Pod, namespace="*", chunk_size=2)]
    assert paged == everything
    assert len(emulator.journal("kubernetes")) == -(-len(everything) // 2)
    assert raw.get("api/v1/pods", params={"continue": "garbage!"}).status_code == 400


def test_label_and_field_selectors(raw: httpx2.Client) -> None:
    def names(path: str, **params: str) -> list[str]:
        return sorted(
            p["metadata"]["name"].split("-")[0]
            for p in raw.get(path, params=params).json()["items"]
        )

    assert names("api/v1/namespaces/shop/pods", labelSelector="app=api") == ["api", "api"]
    assert names("api/v1/namespaces/shop/pods", labelSelector="app in (web,worker)") == [
        "web",
        "web",
        "worker",
    ]
    assert names("api/v1/namespaces/shop/pods", labelSelector="app!=api,app notin (web)") == [
        "worker"
    ]
    assert names("api/v1/namespaces/shop/pods", labelSelector="!app") == []
    assert names("api/v1/secrets", fieldSelector="type=kubernetes.io/dockerconfigjson") == [
        "acr",
        "acr",
    ]
    assert names("api/v1/pods", fieldSelector="metadata.namespace=batch") == ["etl", "etl", "etl"]
    unsupported = raw.get("api/v1/secrets", params={"fieldSelector": "data.password=x"})
    assert unsupported.status_code == 400
    assert unsupported.json()["message"] == "field label not supported: data.password"


# -- Kubernetes: writes the remediations need -------------------------------------------------


def _docker_config(username: str, password: str) -> str:
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = {
        "auths": {
            "acrshopweu.azurecr.io": {"username": username, "password": password, "auth": auth}
        }
    }
    return base64.b64encode(json.dumps(config).encode()).decode()


def test_secret_patch_and_put(
    emulator: Emulator, raw: httpx2.Client, kube: Any, cluster_id: str
) -> None:
    from lightkube.resources.core_v1 import Secret
    from lightkube.types import PatchType

    before = raw.get("api/v1/namespaces/shop/secrets/acr-admin").json()
    patched = kube.patch(
        Secret,
        "acr-admin",
        {"data": {".dockerconfigjson": _docker_config("acrshopweu", "new")}},
        namespace="shop",
        patch_type=PatchType.STRATEGIC,
    )
    assert int(patched.metadata.resourceVersion) > int(before["metadata"]["resourceVersion"])
    assert patched.metadata.uid == before["metadata"]["uid"]
    stored = k8s.api_for(emulator.state, cluster_id).get("secrets", "shop", "acr-admin")
    assert stored is not None and k8s.docker_auths(stored)["acrshopweu.azurecr.io"] == (
        "acrshopweu",
        "new",
    )

    stale = {**before, "data": {".dockerconfigjson": _docker_config("acrshopweu", "x")}}
    conflict = raw.put("api/v1/namespaces/shop/secrets/acr-admin", json=stale)
    assert conflict.status_code == 409 and conflict.json()["reason"] == "Conflict"

    current = raw.get("api/v1/namespaces/shop/secrets/acr-admin").json()
    replaced = raw.put(
        "api/v1/namespaces/shop/secrets/acr-admin",
        json={**current, "data": {".dockerconfigjson": _docker_config("acrshopweu", "put")}},
    )
    assert replaced.status_code == 200

    ops = [
        {
            "op": "replace",
            "path": "/data/.dockerconfigjson",
            "value": _docker_config("acrshopweu", "json"),
        }
    ]
    assert (
        kube.patch(
            Secret, "acr-admin", ops, namespace="shop", patch_type=PatchType.JSON
        ).metadata.name
        == "acr-admin"
    )
    merged = raw.patch(
        "api/v1/namespaces/shop/secrets/acr-admin",
        json={"metadata": {"labels": {"rotated-by": "acr-pull-remediator"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert merged.json()["metadata"]["labels"] == {"rotated-by": "acr-pull-remediator"}
    dry = raw.patch(
        "api/v1/namespaces/shop/secrets/acr-admin",
        params={"dryRun": "All"},
        json={"metadata": {"labels": {"dry": "run"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert dry.status_code == 200 and "dry" in dry.json()["metadata"]["labels"]
    assert (
        "dry"
        not in raw.get("api/v1/namespaces/shop/secrets/acr-admin").json()["metadata"]["labels"]
    )


def test_secret_writes_are_validated(raw: httpx2.Client) -> None:
    base = "api/v1/namespaces/shop/secrets"
    not_json = raw.patch(
        f"{base}/acr-admin",
        json={"data": {".dockerconfigjson": base64.b64encode(b"{not json").decode()}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert not_json.status_code == 422
    assert not_json.json()["reason"] == "Invalid"
    assert not_json.json()["details"]["causes"][0]["field"] == "data[.dockerconfigjson]"
    assert "{not json" not in not_json.text  # the API server redacts secret content
    retyped = raw.patch(
        f"{base}/acr-admin",
        json={"type": "Opaque"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert retyped.status_code == 422 and "field is immutable" in retyped.json()["message"]
    renamed = raw.put(f"{base}/acr-admin", json={"metadata": {"name": "other"}, "type": "Opaque"})
    assert renamed.status_code == 400
    assert (
        raw.patch(f"{base}/acr-admin", json={}, headers={"Content-Type": "text/plain"}).status_code
        == 415
    )

    created = raw.post(
        base,
        json={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "acr-new"},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": json.dumps({"auths": {}})},
        },
    )
    assert created.status_code == 201
    assert json.loads(base64.b64decode(created.json()["data"][".dockerconfigjson"])) == {
        "auths": {}
    }
    assert "stringData" not in created.json()
    again = raw.post(base, json={"metadata": {"name": "acr-new"}, "type": "Opaque"})
    assert again.status_code == 409 and again.json()["reason"] == "AlreadyExists"
    missing = raw.post(
        base, json={"metadata": {"name": "acr-x"}, "type": "kubernetes.io/dockerconfigjson"}
    )
    assert missing.status_code == 422
    assert (
        missing.json()["message"]
        == 'Secret "acr-x" is invalid: data[.dockerconfigjson]: Required value'
    )


def test_deployment_and_service_account_patches(
    emulator: Emulator, raw: httpx2.Client, kube: Any, cluster_id: str
) -> None:
    from lightkube.resources.apps_v1 import Deployment
    from lightkube.resources.core_v1 import ServiceAccount

    deployment = kube.get(Deployment, "api", namespace="shop")
    assert (
        deployment.spec.template.spec.containers[0].imagePullPolicy == "IfNotPresent"
    )  # defaulted
    bad = raw.patch(
        "apis/apps/v1/namespaces/shop/deployments/api",
        json={
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "api", "imagePullPolicy": "Sometimes"}]}
                }
            }
        },
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert bad.status_code == 422
    cause = bad.json()["details"]["causes"][0]
    assert cause == {
        "reason": "FieldValueNotSupported",
        "message": 'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"',
        "field": "spec.template.spec.containers[0].imagePullPolicy",
    }
    selector = raw.patch(
        "apis/apps/v1/namespaces/shop/deployments/api",
        json={"spec": {"selector": {"matchLabels": {"app": "other"}}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert selector.status_code == 422

    account = kube.patch(
        ServiceAccount, "default", {"imagePullSecrets": [{"name": "acr-admin"}]}, namespace="shop"
    )
    assert [r.name for r in account.imagePullSecrets] == ["acr-admin"]
    # New pods get the account's pull secrets, as the ServiceAccount admission plugin adds them.
    kube.patch(
        Deployment,
        "worker",
        {"spec": {"template": {"metadata": {"annotations": {"restarted": "1"}}}}},
        namespace="shop",
    )
    worker = [
        p
        for p in k8s.objects(emulator.state, cluster_id, "pods")
        if p["metadata"]["labels"]["app"] == "worker"
    ]
    assert worker[0]["spec"]["imagePullSecrets"] == [{"name": "acr-admin"}]


# -- the adapter ------------------------------------------------------------------------------


def test_pull_secrets_never_show_their_password(
    emulator: Emulator, factory: ClientFactory, cluster_id: str
) -> None:
    estate = ArmEstate(factory)
    found = estate.list_pull_secrets(estate.get_cluster(cluster_id))
    assert sorted((s.ref, s.registry_host) for s in found) == [
        ("shop/acr-admin", "acrshopweu.azurecr.io"),
        ("shop/acr-sp", "acrshopweu.azurecr.io"),
    ]
    for secret in found:
        assert secret.password
        assert secret.password not in repr(secret) and secret.password not in str(found)
    assert "password=" not in repr(PullSecret("ns", "n", "h", "u", "hunter2"))


def test_refused_connection_is_unreachable(
    emulator: Emulator, factory: ClientFactory, cluster_id: str
) -> None:
    k8s.set_reachable(emulator.state, cluster_id, False)
    config = kubeconfig(factory)
    assert config["clusters"][0]["cluster"]["server"].startswith(
        f"https://127.0.0.1:{emulator.state.kube_refusing_port}/"
    )
    direct_only = ClientFactory(
        dataclasses.replace(factory.settings, kubernetes_transport="direct")
    )
    estate = ArmEstate(direct_only)
    with pytest.raises(Unreachable):
        estate.list_workloads(estate.get_cluster(cluster_id))


def test_discovery_documents_name_every_served_kind(raw: httpx2.Client) -> None:
    api = raw.get("api").json()
    assert (api["kind"], api["versions"]) == ("APIVersions", ["v1"])
    groups = raw.get("apis").json()
    assert groups["kind"] == "APIGroupList"
    assert {g["preferredVersion"]["groupVersion"] for g in groups["groups"]} == {
        "apps/v1",
        "batch/v1",
    }
    core = raw.get("api/v1").json()
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["kind"] == "Pod" and by_name["pods"]["namespaced"] is True
    assert by_name["nodes"]["namespaced"] is False
    assert "create" in by_name["secrets"]["verbs"] and "create" not in by_name["nodes"]["verbs"]
    apps = raw.get("apis/apps/v1").json()
    assert "deployments" in {r["name"] for r in apps["resources"]}
    # Every kind a discovery document names is served at the path it implies.
    for document in (core, apps, raw.get("apis/batch/v1").json()):
        prefix = (
            "api/v1" if document["groupVersion"] == "v1" else f"apis/{document['groupVersion']}"
        )
        for resource in document["resources"]:
            assert raw.get(f"{prefix}/{resource['name']}").status_code == 200, resource["name"]
    assert raw.get("apis/apps/v2").status_code == 404
    assert raw.get("api/apps/v1").status_code == 404


def test_a_created_object_gets_its_creation_timestamp_from_the_server(
    raw: httpx2.Client,
) -> None:
    """kubectl create sends ``creationTimestamp: null``; the server sets it (and the uid)."""
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "fresh", "creationTimestamp": None, "uid": None},
        "type": "Opaque",
        "data": {"k": base64.b64encode(b"v").decode()},
    }
    created = raw.post("api/v1/namespaces/shop/secrets", json=body)
    assert created.status_code == 201, created.text
    meta = created.json()["metadata"]
    assert meta["creationTimestamp"] and meta["creationTimestamp"].endswith("Z")
    assert meta["uid"]
    assert raw.get("api/v1/namespaces/shop/secrets/fresh").json()["metadata"] == meta


def _pb_field(number: int, value: bytes | str) -> bytes:
    """One length-delimited protobuf field (what client-go's generated marshallers write)."""
    data = value.encode() if isinstance(value, str) else value
    out, length = bytearray([number << 3 | 2]), len(data)
    while True:
        out.append((length & 0x7F) | (0x80 if length > 0x7F else 0))
        length >>= 7
        if not length:
            return bytes(out) + data


def test_a_secret_sent_as_protobuf_is_created_as_kubectl_sends_it(raw: httpx2.Client) -> None:
    """kubectl 1.3x creates built-in objects with Content-Type application/vnd.kubernetes.protobuf."""
    config = json.dumps({"auths": {"acr.azurecr.io": {"username": "u", "password": "p"}}})
    meta = _pb_field(1, "pb-secret") + _pb_field(2, "") + _pb_field(3, "shop")
    secret = (
        _pb_field(1, meta)
        + _pb_field(2, _pb_field(1, ".dockerconfigjson") + _pb_field(2, config))
        + _pb_field(3, "kubernetes.io/dockerconfigjson")
    )
    envelope = b"k8s\x00" + _pb_field(1, _pb_field(1, "v1") + _pb_field(2, "Secret"))
    envelope += _pb_field(2, secret)
    created = raw.post(
        "api/v1/namespaces/shop/secrets",
        content=envelope,
        headers={
            "Content-Type": "application/vnd.kubernetes.protobuf",
            "Accept": "application/vnd.kubernetes.protobuf,application/json",
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["Content-Type"].startswith("application/json")
    body = created.json()
    assert body["type"] == "kubernetes.io/dockerconfigjson"
    assert "generateName" not in body["metadata"]
    assert base64.b64decode(body["data"][".dockerconfigjson"]).decode() == config
    assert body["metadata"]["creationTimestamp"]
    deployment = b"k8s\x00" + _pb_field(1, _pb_field(1, "apps/v1") + _pb_field(2, "Deployment"))
    refused = raw.post(
        "apis/apps/v1/namespaces/shop/deployments",
        content=deployment,
        headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    assert refused.status_code == 415
    garbage = raw.post(
        "api/v1/namespaces/shop/secrets",
        content=b"not protobuf",
        headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    assert garbage.status_code == 415


def test_pods_are_printed_as_a_table_when_kubectl_asks_for_one(
    emulator: Emulator, raw: httpx2.Client
) -> None:
    scenario.apply_break(emulator.state, {"cause": "pull-secret-admin-stale", "cluster": CLUSTER})
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = raw.get("api/v1/namespaces/shop/pods", headers={"Accept": accept}).json()
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    listed = raw.get("api/v1/namespaces/shop/pods").json()
    assert listed["kind"] == "PodList"  # plain JSON unless the Table is asked for
    by_name = {row["cells"][0]: row for row in table["rows"]}
    assert set(by_name) == {p["metadata"]["name"] for p in listed["items"]}
    for pod in listed["items"]:
        cells = by_name[pod["metadata"]["name"]]["cells"]
        waiting = pod["status"]["containerStatuses"][0]["state"].get("waiting")
        assert cells[2] == (waiting["reason"] if waiting else pod["status"]["phase"])
        assert cells[1] == ("0/1" if waiting else "1/1")
        assert (
            by_name[pod["metadata"]["name"]]["object"]["metadata"]["uid"] == pod["metadata"]["uid"]
        )
    assert "ImagePullBackOff" in {row["cells"][2] for row in table["rows"]}
