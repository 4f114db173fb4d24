"""refresh-pull-secret from a broken estate to a verified fix, through the real SDKs and lightkube."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.server import Emulator
from shared.azure.estate import ArmEstate
from shared.checks.base import Check, Finding, Status, Target
from shared.checks.pull_secret_admin_stale import PullSecretAdminStale
from shared.checks.pull_secret_sp_invalid import PullSecretSpInvalid
from shared.remediations.base import ActionRecord
from shared.remediations.refresh_pull_secret import (
    NEEDS_ROTATION,
    IssuedPasswords,
    RefreshPullSecret,
    SpPasswords,
)
from tests.support.estate import fresh_estate

CLUSTER = "aks-shop-weu"
REGISTRY = "acrshopweu"
HOST = "acrshopweu.azurecr.io"
APP_ID = "0d3f9a52-7e1b-4c2a-9f4e-3b6c8d1e2a70"
# A second registry entry in the admin secret that the refresh must keep as it is.
OTHER = ("ghcr.io", "octocat", "ghp_untouched-other-registry-token")
LOGGERS = ("", "azure", "urllib3", "httpx", "httpx2", "lightkube", "shared", "emulator")


@pytest.fixture
def shop(emulator: Emulator, app_env: dict[str, str]) -> dict[str, Any]:
    loaded = scenario.load(emulator.state, "kubernetes-pulls")
    api = k8s.api_for(emulator.state, cluster_id(emulator))
    with emulator.state.lock:
        secret = api.get("secrets", "shop", "acr-admin")
        assert secret is not None
        config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
        host, user, password = OTHER
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        config["auths"][host] = {"username": user, "password": password, "auth": auth}
        secret["data"][".dockerconfigjson"] = k8s.b64(json.dumps(config))
        api.put("secrets", secret)
    return loaded


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def cluster_id(emulator: Emulator) -> str:
    return str(scenario.find_cluster(emulator.state, CLUSTER)["id"])


def estate() -> ArmEstate:
    return fresh_estate()


def target(emulator: Emulator, reader: ArmEstate) -> Target:
    registry_id = scenario.find_registry(emulator.state, REGISTRY)["id"]
    return Target(reader.get_cluster(cluster_id(emulator)), registry_id)


def diagnose(emulator: Emulator, check: Check) -> Finding:
    reader = estate()
    return check.run(target(emulator, reader), reader)


def fix(emulator: Emulator, finding: Finding, **kwargs: Any) -> ActionRecord:
    reader = estate()
    return RefreshPullSecret().apply(
        finding, target(emulator, reader), reader, timeout=30, **kwargs
    )


def auths(emulator: Emulator, name: str) -> dict[str, dict[str, str]]:
    secrets = k8s.objects(emulator.state, cluster_id(emulator), "secrets")
    secret = next(s for s in secrets if s["metadata"]["name"] == name)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config: dict[str, dict[str, dict[str, str]]] = json.loads(
        base64.b64decode(secret["data"][".dockerconfigjson"])
    )
    return config["auths"]


def admin_passwords(emulator: Emulator) -> list[str]:
    registry = scenario.find_registry(emulator.state, REGISTRY)
    return [p["value"] for p in emulator.state.registry_passwords[registry["id"].lower()]]


def sp_secrets(emulator: Emulator) -> list[str]:
    return list(emulator.state.graph_applications[APP_ID]["_secrets"].values())


def kube_writes(emulator: Emulator) -> list[str]:
    return [
        f"{e.method} {e.path}"
        for e in emulator.journal("kubernetes")
        if e.method in ("PATCH", "PUT", "POST", "DELETE")
    ]


def phases(emulator: Emulator, app: str) -> set[str]:
    pods = k8s.objects(emulator.state, cluster_id(emulator), "pods")
    return {p["status"]["phase"] for p in pods if p["metadata"]["labels"].get("app") == app}


def assert_never_shown(secrets: list[str], *published: str) -> None:
    text = "\n".join(published)
    for secret in secrets:
        assert secret not in text
        assert base64.b64encode(secret.encode()).decode() not in text


def test_stale_admin_password_is_refreshed_and_the_check_passes(
    emulator: Emulator, shop: dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    old = auths(emulator, "acr-admin")[HOST]["password"]
    sp_before = auths(emulator, "acr-sp")
    scenario.apply_break(emulator.state, {"cause": "pull-secret-admin-stale", "cluster": CLUSTER})
    assert phases(emulator, "api") == {"Pending"}
    finding = diagnose(emulator, PullSecretAdminStale())
    assert finding.status is Status.FAIL and finding.action_id == "refresh-pull-secret"
    emulator.clear_journal()

    plan = RefreshPullSecret().plan(finding, target(emulator, estate()))
    record = fix(emulator, finding)

    assert record.status == "applied", record.detail
    assert "updated shop/acr-admin" in record.detail and "registry accepts" in record.detail
    current = admin_passwords(emulator)[0]
    entries = auths(emulator, "acr-admin")
    assert entries[HOST]["username"] == REGISTRY and entries[HOST]["password"] == current
    expected = base64.b64encode(f"{REGISTRY}:{current}".encode()).decode()
    assert entries[HOST]["auth"] == expected
    host, user, password = OTHER
    assert entries[host] == {
        "username": user,
        "password": password,
        "auth": base64.b64encode(f"{user}:{password}".encode()).decode(),
    }
    assert auths(emulator, "acr-sp") == sp_before  # another cause's secret is left alone
    # One conditional merge PATCH of that secret, then a token request with what was written.
    assert kube_writes(emulator) == [
        next(w for w in kube_writes(emulator) if w.endswith("/namespaces/shop/secrets/acr-admin"))
    ]
    assert kube_writes(emulator)[0].startswith("PATCH ")
    tokens = [e.status for e in emulator.journal("acr") if e.path.endswith("/oauth2/token")]
    assert tokens == [200]
    # The kubelet pulls again, and the check passes through the real clients.
    assert phases(emulator, "api") == {"Running"}
    assert diagnose(emulator, PullSecretAdminStale()).status is Status.PASS
    assert_never_shown(
        [old, *admin_passwords(emulator)],
        logs.text,
        json.dumps(record.to_dict()),
        repr(record),
        json.dumps(plan.to_dict()),
    )


def test_refresh_is_idempotent(emulator: Emulator, shop: dict[str, Any]) -> None:
    scenario.apply_break(emulator.state, {"cause": "pull-secret-admin-stale", "cluster": CLUSTER})
    finding = diagnose(emulator, PullSecretAdminStale())
    assert fix(emulator, finding).status == "applied"
    emulator.clear_journal()

    again = fix(emulator, finding)

    assert again.status == "applied"
    assert again.detail == "already current: shop/acr-admin"
    assert kube_writes(emulator) == []


def test_healthy_secret_is_not_rewritten(emulator: Emulator, shop: dict[str, Any]) -> None:
    """A secret written with the registry's second password is current too."""
    finding = diagnose(emulator, PullSecretAdminStale())
    emulator.clear_journal()
    record = fix(emulator, finding)
    assert (record.status, record.detail) == ("applied", "already current: shop/acr-admin")
    assert kube_writes(emulator) == []


def test_plan_is_a_dry_run(emulator: Emulator, shop: dict[str, Any]) -> None:
    scenario.apply_break(emulator.state, {"cause": "pull-secret-admin-stale", "cluster": CLUSTER})
    finding = diagnose(emulator, PullSecretAdminStale())
    before = auths(emulator, "acr-admin")
    emulator.clear_journal()

    plan = RefreshPullSecret().plan(finding, target(emulator, estate()))

    assert plan.action_id == "refresh-pull-secret"
    assert "az acr credential show -n acrshopweu" in plan.commands
    assert (
        "kubectl create secret docker-registry acr-admin -n shop "
        f"--docker-server={HOST} --docker-username={REGISTRY} --docker-password=<redacted> "
        "--dry-run=client -o yaml | kubectl apply -f -"
    ) in plan.commands
    assert any("keeps the secret's other registries" in w for w in plan.warnings)
    assert kube_writes(emulator) == []
    assert not [e for e in emulator.journal() if e.method != "GET" and e.service != "identity"]
    assert auths(emulator, "acr-admin") == before


def test_sp_secret_without_a_new_credential_needs_rotation(
    emulator: Emulator, shop: dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    scenario.apply_break(emulator.state, {"cause": "pull-secret-sp-invalid", "cluster": CLUSTER})
    finding = diagnose(emulator, PullSecretSpInvalid())
    assert finding.status is Status.FAIL
    plan = RefreshPullSecret().plan(finding, target(emulator, estate()))
    emulator.clear_journal()

    record = fix(emulator, finding)

    assert record.status == "failed"
    assert "shop/acr-sp" in record.detail and NEEDS_ROTATION in record.detail
    assert kube_writes(emulator) == []
    assert any(NEEDS_ROTATION in w and APP_ID in w for w in plan.warnings)
    assert any(f"--docker-username={APP_ID}" in c for c in plan.commands)
    assert_never_shown(sp_secrets(emulator), logs.text, json.dumps(record.to_dict()))


def test_sp_secret_gets_the_new_credential_it_is_given(
    emulator: Emulator, shop: dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    admin_before = auths(emulator, "acr-admin")
    scenario.apply_break(
        emulator.state, {"cause": "pull-secret-sp-invalid", "cluster": CLUSTER, "mode": "reset"}
    )
    assert phases(emulator, "web") == {"Pending"}
    finding = diagnose(emulator, PullSecretSpInvalid())
    # What rotate-sp-secret hands over: a password just added through Graph.
    issued = estate().add_application_password(
        APP_ID, display_name="acr-pull-remediator test", end=datetime.now(UTC) + timedelta(days=30)
    )
    provider: SpPasswords = IssuedPasswords({APP_ID: issued})
    emulator.clear_journal()

    record = fix(emulator, finding, sp_passwords=provider)

    assert record.status == "applied", record.detail
    entry = auths(emulator, "acr-sp")[HOST]
    assert (entry["username"], entry["password"]) == (APP_ID, issued.secret_text)
    assert auths(emulator, "acr-admin") == admin_before
    assert [w.split()[0] for w in kube_writes(emulator)] == ["PATCH"]
    assert phases(emulator, "web") == {"Running"}
    assert diagnose(emulator, PullSecretSpInvalid()).status is Status.PASS
    # Given again, the same credential changes nothing.
    emulator.clear_journal()
    assert fix(emulator, finding, sp_passwords=provider).status == "applied"
    assert kube_writes(emulator) == []
    assert_never_shown(
        sp_secrets(emulator),
        logs.text,
        json.dumps(record.to_dict()),
        repr(record),
        repr(provider),
    )


def test_unreachable_cluster_api_fails_without_raising(
    emulator: Emulator, shop: dict[str, Any]
) -> None:
    scenario.apply_break(emulator.state, {"cause": "pull-secret-admin-stale", "cluster": CLUSTER})
    finding = diagnose(emulator, PullSecretAdminStale())
    k8s.set_reachable(emulator.state, cluster_id(emulator), False)

    record = fix(emulator, finding)

    assert record.status == "failed"
    assert record.detail.startswith("nothing changed: could not reach the Kubernetes API")


def test_forbidden_secret_write_fails_and_changes_nothing(
    emulator: Emulator, shop: dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    scenario.apply_break(emulator.state, {"cause": "pull-secret-admin-stale", "cluster": CLUSTER})
    finding = diagnose(emulator, PullSecretAdminStale())
    stale = auths(emulator, "acr-admin")
    k8s.forbid_verb(emulator.state, cluster_id(emulator), "secrets", "patch")

    record = fix(emulator, finding)

    assert record.status == "failed"
    assert "could not update shop/acr-admin" in record.detail and "403" in record.detail
    assert auths(emulator, "acr-admin") == stale
    statuses = [e.status for e in emulator.journal("kubernetes") if e.method == "PATCH"]
    assert statuses == [403]
    assert_never_shown(admin_passwords(emulator), logs.text, record.detail)


def test_disabled_admin_user_is_refused(emulator: Emulator, shop: dict[str, Any]) -> None:
    registry = scenario.find_registry(emulator.state, REGISTRY)
    registry["properties"]["adminUserEnabled"] = False
    emulator.state.put(registry)
    finding = diagnose(emulator, PullSecretAdminStale())

    record = fix(emulator, finding)

    assert record.status == "failed" and "admin user of acrshopweu is disabled" in record.detail
    assert kube_writes(emulator) == []


def test_permissions_are_the_exact_rbac_actions() -> None:
    assert RefreshPullSecret.permissions == (
        "Microsoft.ContainerRegistry/registries/read",
        "Microsoft.ContainerRegistry/registries/listCredentials/action",
        "Microsoft.ContainerRegistry/registries/tokens/read",
        "Microsoft.ContainerRegistry/registries/generateCredentials/action",
        "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
        "Microsoft.ContainerService/managedClusters/secrets/read",
        "Microsoft.ContainerService/managedClusters/secrets/write",
    )


# -- admin passwords by slot: password and password2 ---------------------------------------------


@pytest.fixture
def two_slots(emulator: Emulator, app_env: dict[str, str]) -> dict[str, Any]:
    """Mid-rotation: shop/acr-one signs in with password, shop/acr-two with password2."""
    from tests.conftest import PROD_SUB

    return scenario.load(
        emulator.state,
        {
            "subscriptions": [
                {
                    "id": PROD_SUB,
                    "resourceGroups": [
                        {
                            "name": "rg-acr",
                            "registries": [{"name": REGISTRY, "adminUserEnabled": True}],
                        },
                        {
                            "name": "rg-aks-shop",
                            "clusters": [
                                {
                                    "name": CLUSTER,
                                    "namespaces": ["shop"],
                                    "pullSecrets": [
                                        {
                                            "namespace": "shop",
                                            "name": "acr-one",
                                            "registry": REGISTRY,
                                            "from": "admin",
                                        },
                                        {
                                            "namespace": "shop",
                                            "name": "acr-two",
                                            "registry": REGISTRY,
                                            "from": "admin:password2",
                                        },
                                        {
                                            "namespace": "shop",
                                            "name": "acr-three",
                                            "registry": REGISTRY,
                                            "from": "admin:password2",
                                        },
                                    ],
                                }
                            ],
                        },
                    ],
                }
            ]
        },
    )


def regenerate(emulator: Emulator, slot: str) -> None:
    """`az acr credential renew --password-name <slot>` through the ARM SDK."""
    import os

    from shared.azure.factory import ClientFactory
    from shared.config import Settings
    from tests.conftest import PROD_SUB

    client = ClientFactory(Settings.from_env(os.environ)).container_registry(PROD_SUB)
    client.registries.regenerate_credential("rg-acr", REGISTRY, {"name": slot})


def slot_value(emulator: Emulator, slot: str) -> str:
    registry = scenario.find_registry(emulator.state, REGISTRY)
    passwords = emulator.state.registry_passwords[registry["id"].lower()]
    return str(next(p["value"] for p in passwords if p["name"] == slot))


def test_evidence_names_the_slot_each_secret_holds(
    emulator: Emulator, two_slots: dict[str, Any]
) -> None:
    finding = diagnose(emulator, PullSecretAdminStale())
    assert finding.status is Status.PASS, finding.summary
    slots = {row["name"]: row["passwordSlot"] for row in finding.evidence["secrets"]}
    assert slots == {"acr-one": "password", "acr-two": "password2", "acr-three": "password2"}


def test_refresh_writes_the_slot_the_secret_used(
    emulator: Emulator, two_slots: dict[str, Any]
) -> None:
    # The second half of a rotation regenerated password2; acr-two and acr-three held it.
    regenerate(emulator, "password2")
    one = auths(emulator, "acr-one")[HOST]["password"]
    finding = diagnose(emulator, PullSecretAdminStale())
    assert finding.status is Status.FAIL
    assert "(password2 regenerated)" in finding.summary
    rows = {row["name"]: row for row in finding.evidence["secrets"]}
    assert rows["acr-two"]["slotUsed"] == "password2"
    assert rows["acr-two"]["passwordSlot"] is None
    assert rows["acr-one"]["passwordSlot"] == "password"
    assert any("passwords[?name=='password2']" in c for c in finding.commands)

    record = fix(emulator, finding)

    assert record.status == "applied", record.detail
    assert "shop/acr-two (password2)" in record.detail
    assert auths(emulator, "acr-two")[HOST]["password"] == slot_value(emulator, "password2")
    assert auths(emulator, "acr-one")[HOST]["password"] == one  # current: left alone
    # Old main wrote passwords[0] (password) into acr-two: the next step of the rotation,
    # regenerating password, broke it again. Now only acr-one (on password) goes stale.
    regenerate(emulator, "password")
    after = diagnose(emulator, PullSecretAdminStale())
    current = {row["name"]: row["passwordMatchesCurrent"] for row in after.evidence["secrets"]}
    assert current == {"acr-one": False, "acr-two": True, "acr-three": True}


def test_slot_that_cannot_be_told_is_said(emulator: Emulator, two_slots: dict[str, Any]) -> None:
    regenerate(emulator, "password")
    regenerate(emulator, "password2")
    finding = diagnose(emulator, PullSecretAdminStale())
    assert {row["slotUsed"] for row in finding.evidence["secrets"]} == {None}
    record = fix(emulator, finding)
    assert record.status == "applied", record.detail
    assert "the slot it held cannot be told" in record.detail
    assert auths(emulator, "acr-two")[HOST]["password"] == slot_value(emulator, "password")
