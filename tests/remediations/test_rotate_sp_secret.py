"""rotate-sp-secret through Graph, the AKS resetServicePrincipalProfile LRO and lightkube against
the emulator: from an expired service principal secret to a new one that Entra ID accepts, that
every cluster using the SP holds, and that the pull secrets carry; the secret shows up nowhere."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceResponseError

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.providers import graph
from emulator.providers.containerservice import cluster_sp_secret
from emulator.server import Emulator
from shared.azure.estate import ArmEstate
from shared.azure.factory import ClientFactory
from shared.checks.base import Finding, Status, Target
from shared.checks.pull_secret_sp_invalid import PullSecretSpInvalid
from shared.checks.sp_secret_expired import SpSecretExpired
from shared.config import Settings
from shared.remediations.rotate_sp_secret import (
    RotateSpSecret,
    RotationRecord,
    remove_expired_passwords,
)
from tests.conftest import PROD_SUB, SANDBOX_SUB
from tests.support.estate import fresh_estate

APP = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
OTHER_APP = "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f"
RESET = "/resetServicePrincipalProfile"
WRITES = ("PUT", "POST", "PATCH", "DELETE")


def estate_spec(*, breaks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Three clusters share APP (two here, one in the sandbox subscription); one uses another SP;
    one uses a managed identity. aks1 has a pull secret built from APP."""
    pull_secret = {"namespace": "shop", "name": "acr-sp", "registry": "acr1", "from": f"sp:{APP}"}
    return {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {
                        "name": "rg-aks",
                        "servicePrincipals": [{"appId": APP, "displayName": "aks-shared-sp"}],
                        "clusters": [
                            {
                                "name": "aks1",
                                "servicePrincipal": APP,
                                "namespaces": ["shop"],
                                "pullSecrets": [pull_secret],
                            },
                            {"name": "aks2", "servicePrincipal": APP},
                            {"name": "aks-other", "servicePrincipal": OTHER_APP},
                            {"name": "aks-mi"},
                        ],
                    },
                    {"name": "rg-acr", "registries": [{"name": "acr1"}]},
                ],
            },
            {
                "id": SANDBOX_SUB,
                "resourceGroups": [
                    {"name": "rg-sbx", "clusters": [{"name": "aks3", "servicePrincipal": APP}]}
                ],
            },
        ],
        "breaks": breaks
        if breaks is not None
        else [{"cause": "sp-secret-expired", "cluster": "aks1"}],
    }


def new_estate() -> ArmEstate:
    return fresh_estate()


def cluster_id(emulator: Emulator, name: str) -> str:
    return str(scenario.find_cluster(emulator.state, name)["id"])


def target(estate: ArmEstate, emulator: Emulator, name: str = "aks1") -> Target:
    return Target(estate.get_cluster(cluster_id(emulator, name)))


def check(emulator: Emulator) -> Finding:
    estate = new_estate()
    return SpSecretExpired().run(target(estate, emulator), estate)


def rotation(**options: Any) -> RotateSpSecret:
    return RotateSpSecret(subscription_ids=(PROD_SUB, SANDBOX_SUB), **options)


def apply(
    emulator: Emulator, finding: Finding, *, timeout: float = 30, **options: Any
) -> RotationRecord:
    estate = new_estate()
    record = rotation(**options).apply(finding, target(estate, emulator), estate, timeout=timeout)
    assert isinstance(record, RotationRecord)
    return record


def app_state(emulator: Emulator) -> dict[str, Any]:
    return emulator.state.graph_applications[APP]


def secrets_of(emulator: Emulator, app_id: str = APP) -> dict[str, str]:
    return dict(emulator.state.graph_applications[app_id]["_secrets"])


def pull_secret_password(emulator: Emulator) -> str:
    [secret] = [
        s
        for s in k8s.objects(emulator.state, cluster_id(emulator, "aks1"), "secrets")
        if s["metadata"]["name"] == "acr-sp"
    ]
    [(username, password)] = k8s.docker_auths(secret).values()
    assert username == APP
    return password


def resets(emulator: Emulator) -> list[tuple[str, int]]:
    return [
        (e.path.split("/managedClusters/")[1].split("/")[0], e.status)
        for e in emulator.journal("arm")
        if e.path.endswith(RESET)
    ]


def graph_actions(emulator: Emulator) -> list[str]:
    return [e.path.rsplit("/", 1)[-1] for e in emulator.journal("graph") if e.method == "POST"]


@pytest.fixture
def broken(emulator: Emulator, app_env: dict[str, str]) -> Finding:
    scenario.load(emulator.state, estate_spec())
    finding = check(emulator)
    assert finding.status is Status.FAIL and finding.action_id == "rotate-sp-secret"
    return finding


def test_rotation_fixes_every_cluster_and_pull_secret(emulator: Emulator, broken: Finding) -> None:
    old = secrets_of(emulator)
    other_before = secrets_of(emulator, OTHER_APP)
    # One secret, in Graph and in the pull secret, expired by the break.
    assert list(old.values()) == [pull_secret_password(emulator)]
    assert (
        PullSecretSpInvalid()
        .run(Target(new_estate().get_cluster(cluster_id(emulator, "aks1"))), new_estate())
        .status
        is Status.FAIL
    )
    started = datetime.now(UTC)

    record = apply(emulator, broken)

    assert record.status == "applied", record.detail
    new_keys = set(secrets_of(emulator)) - set(old)
    [new_key] = new_keys
    new_secret = secrets_of(emulator)[new_key]
    assert record.new_key_id == new_key
    assert set(record.old_key_ids) == set(old)
    # Graph: a new credential, named and dated as documented, that Entra ID accepts.
    [credential] = [c for c in app_state(emulator)["passwordCredentials"] if c["keyId"] == new_key]
    assert credential["displayName"] == f"acr-pull-remediator {started:%Y-%m-%d}"
    days = (graph.parse_iso(credential["endDateTime"]) - started).total_seconds() / 86400
    assert 364.9 < days < 365.1
    assert graph.graph_secret_valid(emulator.state, APP, new_secret, datetime.now(UTC))
    # AKS: every cluster using APP, in both subscriptions, holds the new secret; no other cluster.
    assert sorted(resets(emulator)) == [("aks1", 202), ("aks2", 202), ("aks3", 202)]
    for name in ("aks1", "aks2", "aks3"):
        assert cluster_sp_secret(emulator.state, cluster_id(emulator, name)) == new_secret
        cluster = scenario.find_cluster(emulator.state, name)
        assert cluster["properties"]["provisioningState"] == "Succeeded"
        assert cluster["properties"]["servicePrincipalProfile"] == {"clientId": APP}
    for name in ("aks-other", "aks-mi"):
        assert cluster_sp_secret(emulator.state, cluster_id(emulator, name)) is None
    assert secrets_of(emulator, OTHER_APP) == other_before
    # Kubernetes: the pull secret built from APP carries the new secret.
    assert pull_secret_password(emulator) == new_secret
    assert record.pull_secrets_updated == (f"aks1/shop/acr-sp ({'acr1.azurecr.io'})",)
    # The old passwords stay until a later run: only addPassword was called.
    assert graph_actions(emulator) == ["addPassword"]
    assert set(old) <= set(secrets_of(emulator))
    assert record.remove_after is not None
    assert timedelta(hours=23.9) < record.remove_after - started < timedelta(hours=24.1)
    assert record.pending_removal == {
        "appId": APP,
        "keyIds": list(record.old_key_ids),
        "notBefore": record.remove_after.isoformat(),
        "clusters": [],
    }
    # The checks see the fix.
    assert check(emulator).status is Status.PASS
    estate = new_estate()
    pulls = PullSecretSpInvalid().run(target(estate, emulator), estate)
    assert pulls.status is Status.PASS, pulls.summary


def test_plan_is_a_dry_run_and_warns_about_reimaging(emulator: Emulator, broken: Finding) -> None:
    before = json.dumps(app_state(emulator), sort_keys=True)

    plan = rotation().plan(broken, target(new_estate(), emulator))

    today = f"{datetime.now(UTC):%Y-%m-%d}"
    assert plan.action_id == "rotate-sp-secret"
    assert plan.commands[0] == (
        f"SP_SECRET=$(az ad app credential reset --id {APP} --append "
        f'--display-name "acr-pull-remediator {today}" --years 1 --query password -o tsv)'
    )
    assert (
        f"az aks update-credentials -g rg-aks -n aks1 --reset-service-principal "
        f'--service-principal {APP} --client-secret "$SP_SECRET"'
    ) in plan.commands
    assert any(c.startswith("kubectl create secret docker-registry") for c in plan.commands)
    old_keys = [c["keyId"] for c in app_state(emulator)["passwordCredentials"]]
    for key in old_keys:
        assert f"az ad app credential delete --id {APP} --key-id {key}" in plan.commands
    assert any(
        "reimage" in w and "learn.microsoft.com/azure/aks/update-credentials" in w
        for w in plan.warnings
    )
    assert [e for e in emulator.journal() if e.method in WRITES] == []
    assert json.dumps(app_state(emulator), sort_keys=True) == before
    text = json.dumps(plan.to_dict()) + repr(plan)
    assert not any(s in text for s in secrets_of(emulator).values())


def test_the_new_secret_appears_nowhere(
    emulator: Emulator, broken: Finding, caplog: pytest.LogCaptureFixture
) -> None:
    logging.getLogger("azure").setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG):
        plan = rotation().plan(broken, target(new_estate(), emulator))
        record = apply(emulator, broken)
    assert record.status == "applied", record.detail
    [new_secret] = set(secrets_of(emulator).values()) - {
        v for k, v in secrets_of(emulator).items() if k in record.old_key_ids
    }
    assert cluster_sp_secret(emulator.state, cluster_id(emulator, "aks1")) == new_secret
    # The SDKs' HTTP logging was on and captured, so the scan below could find a leak.
    assert any(r.name.startswith("azure.core.pipeline") for r in caplog.records)
    assert any("resetServicePrincipalProfile" in r.getMessage() for r in caplog.records)
    texts = [
        caplog.text,
        *(r.getMessage() for r in caplog.records),
        *(repr(r.args) for r in caplog.records),
        repr(record),
        str(record),
        json.dumps(record.to_dict()),
        json.dumps(record.pending_removal),
        record.detail,
        repr(plan),
        json.dumps(plan.to_dict()),
    ]
    for text in texts:
        assert new_secret not in text
        assert new_secret[3:] not in text  # not even after the 3-character hint


def test_second_apply_changes_nothing(emulator: Emulator, broken: Finding) -> None:
    first = apply(emulator, broken)
    second = apply(emulator, broken)

    assert (first.status, second.status) == ("applied", "applied")
    assert second.detail.startswith(f"nothing to rotate: secret {first.new_key_id} of {APP}")
    assert graph_actions(emulator) == ["addPassword"]
    assert len(resets(emulator)) == 3
    assert second.remove_after is None and second.pending_removal is None


def test_secret_inside_the_warning_window_is_rotated(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state,
        estate_spec(breaks=[{"cause": "sp-secret-expired", "cluster": "aks1", "days": 10}]),
    )
    finding = check(emulator)
    assert finding.status is Status.FAIL and finding.evidence["severity"] == "warning"
    old = secrets_of(emulator)

    record = apply(emulator, finding)

    assert record.status == "applied", record.detail
    assert set(record.old_key_ids) == set(old)
    new_secret = secrets_of(emulator)[record.new_key_id]
    assert cluster_sp_secret(emulator.state, cluster_id(emulator, "aks2")) == new_secret
    # The old secrets still work until the later removal.
    for secret in old.values():
        assert graph.graph_secret_valid(emulator.state, APP, secret, datetime.now(UTC))
    assert check(emulator).status is Status.PASS


def test_failed_reset_fails_the_action_and_keeps_the_old_passwords(
    emulator: Emulator, broken: Finding
) -> None:
    emulator.inject(r"/managedClusters/aks2/resetServicePrincipalProfile$", lro_fails=True)

    record = apply(emulator, broken)

    assert record.status == "failed"
    assert record.failed_clusters == (cluster_id(emulator, "aks2"),)
    assert "reset FAILED on aks2: Failed ReconcileVMSSAgentPoolFailed" in record.detail
    assert "keep old password(s)" in record.detail
    assert record.remove_after is None and record.pending_removal is None
    new_secret = secrets_of(emulator)[record.new_key_id]
    assert cluster_sp_secret(emulator.state, cluster_id(emulator, "aks2")) is None
    assert scenario.find_cluster(emulator.state, "aks2")["properties"]["provisioningState"] == (
        "Failed"
    )
    for name in ("aks1", "aks3"):
        assert cluster_sp_secret(emulator.state, cluster_id(emulator, name)) == new_secret
    assert pull_secret_password(emulator) == new_secret


def test_forbidden_reset_fails_with_a_clear_reason(emulator: Emulator, broken: Finding) -> None:
    emulator.deny(cluster_id(emulator, "aks3"))

    record = apply(emulator, broken)

    assert record.status == "failed"
    assert record.failed_clusters == (cluster_id(emulator, "aks3"),)
    assert "may not reset the service principal profile" in record.detail
    assert "AuthorizationFailed" in record.detail
    assert ("aks3", 403) in resets(emulator)


def test_reset_outliving_the_timeout_is_in_progress(emulator: Emulator, broken: Finding) -> None:
    emulator.state.lro_polls = 1_000_000
    emulator.inject(r"/operations/", method="GET", latency=0.05)

    record = apply(emulator, broken, timeout=0.5)

    assert record.status == "in-progress", record.detail
    ids = tuple(sorted(cluster_id(emulator, n) for n in ("aks1", "aks2", "aks3")))
    assert record.pending_clusters == ids
    assert "reset still running on aks1, aks2, aks3" in record.detail
    assert record.pending_removal is not None
    assert record.pending_removal["clusters"] == list(ids)
    for name in ("aks1", "aks2", "aks3"):
        cluster = scenario.find_cluster(emulator.state, name)
        assert cluster["properties"]["provisioningState"] == "Updating"
        assert cluster_sp_secret(emulator.state, cluster["id"]) is None
    new_secret = secrets_of(emulator)[record.new_key_id]
    assert pull_secret_password(emulator) == new_secret  # secrets need not wait for AKS
    # The operations finish after the function returned; the clusters then hold the new secret.
    with emulator.state.lock:
        for operation in emulator.state.operations.values():
            operation.polls_left = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        cluster_sp_secret(emulator.state, i) != new_secret for i in ids
    ):
        time.sleep(0.05)
    assert all(cluster_sp_secret(emulator.state, i) == new_secret for i in ids)


def test_graph_refusing_add_password_changes_nothing(emulator: Emulator, broken: Finding) -> None:
    emulator.inject(r"/addPassword$", status=403)

    record = apply(emulator, broken)

    assert record.status == "failed"
    assert record.detail.startswith("Graph added no password, nothing changed")
    assert resets(emulator) == []
    assert [e for e in emulator.journal("kubernetes") if e.method in WRITES] == []


def test_a_dropped_add_password_is_not_sent_again(emulator: Emulator, broken: Finding) -> None:
    """addPassword writes: a second one would mint a second secret, so it is never retried."""
    emulator.inject(r"/addPassword$", drop=True, times=1)

    with pytest.raises(ServiceResponseError):  # the invocation fails; its redelivery looks again
        apply(emulator, broken)

    assert graph_actions(emulator) == ["addPassword"]
    assert resets(emulator) == []


def test_managed_identity_cluster_has_nothing_to_rotate(
    emulator: Emulator, broken: Finding
) -> None:
    estate = new_estate()
    record = rotation().apply(broken, target(estate, emulator, "aks-mi"), estate, timeout=5)
    assert record.status == "failed"
    assert "managed identities" in record.detail
    assert [e for e in emulator.journal() if e.method in WRITES] == []


def test_old_passwords_are_removed_only_by_the_later_call(
    emulator: Emulator, broken: Finding
) -> None:
    record = apply(emulator, broken)
    assert record.remove_after is not None
    old = record.old_key_ids

    early = remove_expired_passwords(
        new_estate(), APP, old, not_before=record.remove_after, now=datetime.now(UTC)
    )
    assert early.status == "in-progress"
    assert graph_actions(emulator) == ["addPassword"]

    later = record.remove_after + timedelta(minutes=1)
    done = remove_expired_passwords(
        new_estate(), APP, old, not_before=record.remove_after, now=later
    )
    assert done.status == "applied", done.detail
    assert set(secrets_of(emulator)) == {record.new_key_id}
    assert graph_actions(emulator) == ["addPassword", *["removePassword"] * len(old)]

    again = remove_expired_passwords(
        new_estate(), APP, old, not_before=record.remove_after, now=later
    )
    assert again.status == "applied"
    assert "already gone" in again.detail
    assert graph_actions(emulator).count("removePassword") == len(old)


def test_removal_never_leaves_the_application_without_a_valid_password(
    emulator: Emulator, broken: Finding
) -> None:
    keys = list(secrets_of(emulator))
    record = remove_expired_passwords(new_estate(), APP, keys)
    assert record.status == "failed"
    assert "no valid password left" in record.detail
    assert set(secrets_of(emulator)) == set(keys)


# -- the emulator's resetServicePrincipalProfile route, through the SDK ---------------------------


def sdk(emulator: Emulator) -> Any:
    return ClientFactory(Settings.from_env(os.environ)).container_service(PROD_SUB)


def test_reset_route_is_an_lro_that_never_returns_the_secret(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(breaks=[]))
    secret = next(iter(secrets_of(emulator).values()))
    client = sdk(emulator)

    poller = client.managed_clusters.begin_reset_service_principal_profile(
        "rg-aks", "aks2", {"clientId": APP, "secret": secret}
    )
    headers = poller.polling_method()._initial_response.http_response.headers
    poller.result()

    assert (
        headers["Azure-AsyncOperation"]
        .split("?")[0]
        .endswith(
            f"/providers/Microsoft.ContainerService/locations/westeurope/operations/"
            f"{headers['Azure-AsyncOperation'].split('/operations/')[1].split('?')[0]}"
        )
    )
    assert "/operationresults/" in headers["Location"]
    [post] = [e for e in emulator.journal("arm") if e.method == "POST"]
    assert post.status == 202 and post.api_version
    assert cluster_sp_secret(emulator.state, cluster_id(emulator, "aks2")) == secret
    cluster = client.managed_clusters.get("rg-aks", "aks2")
    assert cluster.service_principal_profile.client_id == APP
    assert cluster.service_principal_profile.secret is None
    assert cluster.provisioning_state == "Succeeded"
    raw = [e for e in emulator.journal("arm") if e.method == "GET" and e.path.endswith("/aks2")]
    assert raw and secret not in json.dumps(scenario.find_cluster(emulator.state, "aks2"))


@pytest.mark.parametrize(
    ("cluster", "body", "code"),
    [
        ("aks2", {"clientId": APP}, "InvalidParameter"),
        ("aks2", {"secret": "x"}, "InvalidParameter"),
        (
            "aks2",
            {"clientId": APP, "secret": "not-the-secret"},
            "ServicePrincipalValidationClientError",
        ),
        (
            "aks2",
            {"clientId": OTHER_APP.replace("5", "6"), "secret": "s"},
            "ServicePrincipalValidationClientError",
        ),
        ("aks-mi", {"clientId": APP, "secret": "s"}, "BadRequest"),
    ],
)
def test_reset_route_rejects_bad_requests(
    emulator: Emulator, app_env: dict[str, str], cluster: str, body: dict[str, str], code: str
) -> None:
    scenario.load(emulator.state, estate_spec(breaks=[]))
    with pytest.raises(HttpResponseError) as failure:
        sdk(emulator).managed_clusters.begin_reset_service_principal_profile(
            "rg-aks", cluster, body
        )
    assert failure.value.status_code == 400
    assert failure.value.error.code == code
    assert "not-the-secret" not in str(failure.value)
    assert cluster_sp_secret(emulator.state, cluster_id(emulator, cluster)) is None
    assert scenario.find_cluster(emulator.state, cluster)["properties"]["provisioningState"] == (
        "Succeeded"
    )


def test_reset_route_refuses_a_cluster_that_is_updating(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(breaks=[]))
    secret = next(iter(secrets_of(emulator).values()))
    emulator.state.lro_polls = 1_000_000
    client = sdk(emulator)
    client.managed_clusters.begin_reset_service_principal_profile(
        "rg-aks", "aks2", {"clientId": APP, "secret": secret}, polling=False
    )
    with pytest.raises(HttpResponseError) as failure:
        client.managed_clusters.begin_reset_service_principal_profile(
            "rg-aks", "aks2", {"clientId": APP, "secret": secret}, polling=False
        )
    assert failure.value.status_code == 409
    assert failure.value.error.code == "OperationNotAllowed"


# -- Entra ID replication and busy clusters ------------------------------------------------------


def test_a_new_secret_not_yet_accepted_is_retried_until_it_is(
    emulator: Emulator, broken: Finding
) -> None:
    emulator.state.secret_propagation_seconds = 2.0  # Entra ID replicates it after 2 s
    record = apply(emulator, broken, timeout=30)
    assert record.status == "applied", record.detail
    new_secret = secrets_of(emulator)[record.new_key_id]
    for name in ("aks1", "aks2", "aks3"):
        assert cluster_sp_secret(emulator.state, cluster_id(emulator, name)) == new_secret
    statuses = [status for name, status in resets(emulator)]
    assert 400 in statuses and statuses.count(202) == 3  # refused first, then accepted


def test_a_secret_never_accepted_in_time_is_removed_and_the_rotation_retried_later(
    emulator: Emulator, broken: Finding
) -> None:
    from shared.errors import Busy

    emulator.state.secret_propagation_seconds = 600.0
    before = set(secrets_of(emulator))
    with pytest.raises(Busy, match="removed unused"):
        apply(emulator, broken, timeout=3)
    assert set(secrets_of(emulator)) == before  # no orphaned credential
    assert "removePassword" in graph_actions(emulator)
    for name in ("aks1", "aks2", "aks3"):
        assert cluster_sp_secret(emulator.state, cluster_id(emulator, name)) is None


def test_busy_clusters_leave_no_orphaned_secret(emulator: Emulator, broken: Finding) -> None:
    from emulator.providers.containerservice import start_operation
    from shared.errors import Busy

    for name in ("aks1", "aks2", "aks3"):
        start_operation(emulator.state, cluster_id(emulator, name), "Upgrading")
    before = set(secrets_of(emulator))
    with pytest.raises(Busy, match="OperationNotAllowed"):
        apply(emulator, broken)
    assert set(secrets_of(emulator)) == before
    assert {status for _, status in resets(emulator)} == {409}


# -- a worker that died half-way: the mark on the application ------------------------------------


def test_a_rotation_marks_the_application_while_it_runs_and_unmarks_it(
    emulator: Emulator, broken: Finding
) -> None:
    record = apply(emulator, broken)
    assert record.status == "applied", record.detail
    patches = [e for e in emulator.journal("graph") if e.method == "PATCH"]
    assert [p.status for p in patches] == [204, 204]  # marked, then unmarked
    assert app_state(emulator)["tags"] == []


def test_a_rotation_left_half_done_is_found_and_done_again(
    emulator: Emulator, broken: Finding
) -> None:
    """What a worker killed after addPassword leaves: the mark, and a fresh password of ours that
    some clusters may hold and others never got. The check must not call that healthy."""
    started = datetime.now(UTC) - timedelta(minutes=5)
    dead_runs, _ = graph.add_password(
        emulator.state,
        APP,
        display_name=f"acr-pull-remediator {started:%Y-%m-%d}",
        start=started + timedelta(seconds=1),
        end=started + timedelta(days=365),
    )
    with emulator.state.lock:
        app_state(emulator)["tags"] = [
            "team:platform",
            f"acr-pull-remediator:rotating:{started.isoformat()}",
        ]
    leftover = dead_runs["keyId"]

    finding = check(emulator)
    assert finding.status is Status.FAIL, finding.summary  # a valid secret, but not a finished one
    assert finding.evidence["rotationStartedAt"] == started.isoformat()
    assert "has not finished" in finding.summary

    emulator.clear_journal()
    record = apply(emulator, finding)
    assert record.status == "applied", record.detail
    assert sorted(name for name, _ in resets(emulator)) == ["aks1", "aks2", "aks3"]
    keys = {c["keyId"] for c in app_state(emulator)["passwordCredentials"]}
    assert (
        leftover not in keys
    )  # the dead run's password went at once: every holder has the new one
    assert app_state(emulator)["tags"] == ["team:platform"]  # unmarked, other tags kept
    assert check(emulator).status is Status.PASS


def test_graph_refuses_a_read_only_or_unknown_application_property(
    emulator: Emulator, broken: Finding
) -> None:
    client = ClientFactory(Settings.from_env(os.environ)).graph()
    from azure.core.rest import HttpRequest

    url = client.format_url(f"/v1.0/applications(appId='{APP}')")
    for body, message in (
        ({"appId": "x"}, "read-only"),
        ({"tagz": ["a"]}, "Invalid property 'tagz'"),
        ({"tags": "not-a-list"}, "Invalid value"),
    ):
        response = client.send_request(HttpRequest("PATCH", url, json=body))
        assert response.status_code == 400, body
        assert message in response.json()["error"]["message"]
    assert app_state(emulator)["tags"] == []  # nothing changed
