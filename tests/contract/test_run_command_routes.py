"""Contract: AKS Run Command through the real SDK (``begin_run_command``), shaped as the specs'
examples (copied in examples/containerservice), and the kubectl subset the command pod runs."""

from __future__ import annotations

import base64
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from emulator import kubernetes as k8s
from emulator import run_command, scenario
from emulator.server import Emulator
from shared.azure.factory import ClientFactory
from shared.config import Settings
from tests.conftest import PROD_SUB
from tests.support.contract import assert_round_trips

EXAMPLES = Path(__file__).parent / "examples" / "containerservice"
RG, NAME = "rg-aks-prod", "aks-prod-weu"


def example(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / path).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def factory(emulator: Emulator, sample: dict[str, Any], app_env: dict[str, str]) -> ClientFactory:
    return ClientFactory(Settings.from_env(os.environ))


def run(factory: ClientFactory, command: str, **payload: Any) -> Any:
    from azure.mgmt.containerservice.models import RunCommandRequest

    client = factory.container_service(PROD_SUB)
    request = RunCommandRequest(command=command, **payload)
    return client.managed_clusters.begin_run_command(RG, NAME, request).result()


def test_submit_answers_202_with_a_location_at_command_results_and_a_bare_hex_id(
    factory: ClientFactory, emulator: Emulator
) -> None:
    from azure.mgmt.containerservice.models import RunCommandResult

    result = run(factory, "kubectl get namespaces -o name")
    journal = emulator.journal("arm")
    post = next(e for e in journal if e.method == "POST" and e.path.endswith("/runCommand"))
    assert post.status == 202
    polls = [e for e in journal if "/commandResults/" in e.path]
    assert polls and polls[-1].status == 200
    assert polls[-1].path.rsplit("/", 1)[-1] == result.id
    assert len(result.id) == 32 and int(result.id, 16) >= 0  # bare hex, not an ARM id
    assert result.provisioning_state == "succeeded"  # lower case, as the example
    assert result.exit_code == 0
    assert "namespace/kube-system" in result.logs
    wanted = example("2026-08-01/RunCommandResultSucceed.json")["responses"]["200"]["body"]
    served = result.as_dict()
    assert set(served) == set(wanted)
    assert set(served["properties"]) == set(wanted["properties"])
    assert_round_trips(RunCommandResult, served)
    request = example("2026-07-01/RunCommandRequest.json")["parameters"]["requestPayload"]
    assert set(post.body) <= set(request)


def test_latency_keeps_the_result_at_202_until_the_pod_ends(
    factory: ClientFactory, emulator: Emulator
) -> None:
    emulator.state.run_command_latency = 1.2
    result = run(factory, "echo hi")
    polls = [e.status for e in emulator.journal("arm") if "/commandResults/" in e.path]
    assert polls[0] == 202 and polls[-1] == 200
    assert result.logs == "hi\n"


def test_a_command_pod_that_cannot_run_is_failed_with_only_a_reason(
    factory: ClientFactory, emulator: Emulator
) -> None:
    cluster = scenario.find_cluster(emulator.state, NAME)
    run_command.fail_commands(emulator.state, cluster["id"], "ImagePullBackoff")
    result = run(factory, "kubectl get pods -A")
    wanted = example("2026-03-01/RunCommandResultFailed.json")["responses"]["200"]["body"]
    assert result.as_dict()["properties"] == {
        "provisioningState": "failed",
        "reason": "ImagePullBackoff",
    }
    assert set(wanted["properties"]) == {"provisioningState", "reason"}


def test_disabled_run_command_is_refused_as_azure_does(
    factory: ClientFactory, emulator: Emulator
) -> None:
    cluster = scenario.find_cluster(emulator.state, NAME)
    cluster["properties"]["apiServerAccessProfile"] = {"disableRunCommand": True}
    emulator.state.put(cluster)
    with pytest.raises(HttpResponseError) as caught:
        run(factory, "kubectl get pods")
    assert caught.value.status_code == 400
    assert "disableRunCommand" in str(caught.value.message)


def test_a_missing_command_and_a_context_that_is_not_a_zip_are_400(
    factory: ClientFactory, emulator: Emulator
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        run(factory, "")
    assert caught.value.status_code == 400
    with pytest.raises(HttpResponseError) as caught:
        run(factory, "kubectl apply -f x.yaml", context=base64.b64encode(b"not a zip").decode())
    assert caught.value.status_code == 400


def test_an_unknown_command_result_is_404(factory: ClientFactory) -> None:
    client = factory.container_service(PROD_SUB)
    with pytest.raises(ResourceNotFoundError):
        client.managed_clusters.get_command_result(RG, NAME, "0" * 32)


def test_kubectl_reads_a_private_clusters_api_from_inside(
    factory: ClientFactory, emulator: Emulator
) -> None:
    cluster = scenario.find_cluster(emulator.state, NAME)
    k8s.set_reachable(emulator.state, cluster["id"], False)
    result = run(
        factory,
        "set -e; printf '{\"nodes\":'; kubectl get nodes -o json; printf ',\"secrets\":'; "
        "kubectl get secrets -A --field-selector type=kubernetes.io/dockerconfigjson -o json; "
        "printf '}'",
    )
    document = json.loads(result.logs)
    assert document["nodes"]["kind"] == "List"
    assert {n["kind"] for n in document["nodes"]["items"]} == {"Node"}
    assert len(document["nodes"]["items"]) == len(
        k8s.objects(emulator.state, cluster["id"], "nodes")
    )
    assert all(s["type"] == k8s.DOCKER_CONFIG_JSON for s in document["secrets"]["items"])
    assert not emulator.journal("kubernetes")  # nothing reached the API server from outside


def test_kubectl_errors_exit_non_zero_with_kubectls_message(
    factory: ClientFactory, emulator: Emulator
) -> None:
    cluster = scenario.find_cluster(emulator.state, NAME)
    k8s.forbid(emulator.state, cluster["id"], "secrets")
    result = run(factory, "kubectl get secrets -A -o json")
    assert result.exit_code == 1
    assert result.logs.startswith("Error from server (Forbidden): secrets is forbidden")
    quiet = run(factory, "kubectl get secrets -A -o json 2>/dev/null || printf '{\"failed\":1}'")
    assert (quiet.exit_code, quiet.logs) == (0, '{"failed":1}')
    unknown = run(factory, "helm list")
    assert unknown.exit_code == 127
    stopped = run(factory, "set -e; false; echo never")
    assert (stopped.exit_code, stopped.logs) == (1, "")


def test_kubectl_patch_from_a_context_file_is_conditional_on_the_resource_version(
    factory: ClientFactory, emulator: Emulator
) -> None:
    cluster = scenario.find_cluster(emulator.state, NAME)
    [secret] = [
        s
        for s in k8s.objects(emulator.state, cluster["id"], "secrets")
        if s["type"] == k8s.DOCKER_CONFIG_JSON
    ][:1]
    ref = f"secret {secret['metadata']['name']} -n {secret['metadata']['namespace']}"
    patch = {
        "metadata": {
            "resourceVersion": secret["metadata"]["resourceVersion"],
            "labels": {"patched": "yes"},
        }
    }
    context = _zip({"patch.json": json.dumps(patch).encode()})
    done = run(
        factory, f"kubectl patch {ref} --type=merge --patch-file patch.json", context=context
    )
    assert done.exit_code == 0, done.logs
    assert done.logs == f"secret/{secret['metadata']['name']} patched\n"
    stale = run(
        factory, f"kubectl patch {ref} --type=merge --patch-file patch.json", context=context
    )
    assert stale.exit_code == 1
    assert stale.logs.startswith("Error from server (Conflict)")


def test_entra_id_clusters_run_kubectl_with_the_cluster_token(
    factory: ClientFactory, emulator: Emulator
) -> None:
    cluster = scenario.find_cluster(emulator.state, NAME)
    cluster["properties"]["aadProfile"] = {"managed": True, "enableAzureRBAC": True}
    emulator.state.put(cluster)
    refused = run(factory, "kubectl get ns -o name")
    assert refused.exit_code == 1
    assert refused.logs == "error: You must be logged in to the server (Unauthorized)\n"
    token = factory.credential.get_token(f"{k8s.AAD_SERVER_APP}/.default").token
    allowed = run(factory, "kubectl get ns -o name", cluster_token=token)
    assert allowed.exit_code == 0 and "namespace/default" in allowed.logs


def test_a_private_cluster_scenario_has_a_private_fqdn_only(emulator: Emulator) -> None:
    from azure.mgmt.containerservice.models import ManagedCluster

    scenario.load(
        emulator.state,
        {
            "subscriptions": [
                {
                    "id": PROD_SUB,
                    "resourceGroups": [
                        {
                            "name": "rg",
                            "location": "westeurope",
                            "clusters": [
                                {
                                    "name": "aks-private",
                                    "apiServerAccessProfile": {"enablePrivateCluster": True},
                                }
                            ],
                        }
                    ],
                }
            ]
        },
    )
    cluster = scenario.find_cluster(emulator.state, "aks-private")
    properties = cluster["properties"]
    assert "fqdn" not in properties
    assert properties["privateFQDN"].endswith(".privatelink.westeurope.azmk8s.io")
    shape = example("2026-07-01/ManagedClustersCreate_PrivateClusterFQDNSubdomain.json")
    wanted = shape["responses"]["200"]["body"]["properties"]
    assert "fqdn" not in wanted and "privateFQDN" in wanted
    assert properties["apiServerAccessProfile"]["enablePrivateCluster"] is True
    assert_round_trips(ManagedCluster, cluster)
    assert k8s.api_for(emulator.state, cluster["id"]).reachable is False


def _zip(files: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return base64.b64encode(buffer.getvalue()).decode()
