"""pull-secret-token-invalid through the real SDKs and lightkube against the emulator.

The emulator serves ACR tokens and scope maps as ARM does and its token service accepts token
credentials per scope map; its pods pull with them (a broken token makes them ImagePullBackOff).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.server import Emulator
from shared.checks.base import Finding, Status, Target
from shared.checks.pull_secret_token_invalid import PullSecretTokenInvalid
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

CLUSTER, REGISTRY, TOKEN = "aks-tok", "acrtok", "shop-puller"


def estate_spec(
    *, token: dict[str, Any] | None = None, breaks: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {
                        "name": "rg-acr",
                        "registries": [
                            {
                                "name": REGISTRY,
                                "repositories": {"app": {"v1": ["linux/amd64"]}},
                                "scopeMaps": [
                                    {
                                        "name": "shop-pull",
                                        "actions": [
                                            "repositories/app/content/read",
                                            "repositories/app/metadata/read",
                                        ],
                                    }
                                ],
                                "tokens": [
                                    {"name": TOKEN, "scopeMap": "shop-pull", **(token or {})}
                                ],
                            }
                        ],
                    },
                    {
                        "name": "rg-aks",
                        "clusters": [
                            {
                                "name": CLUSTER,
                                "attachedRegistries": [REGISTRY],
                                "namespaces": ["shop"],
                                "pullSecrets": [
                                    {
                                        "namespace": "shop",
                                        "name": "acr-token",
                                        "registry": REGISTRY,
                                        "from": f"token:{TOKEN}",
                                    }
                                ],
                                "workloads": [
                                    {
                                        "namespace": "shop",
                                        "name": "cart",
                                        "image": f"{REGISTRY}.azurecr.io/app:v1",
                                        "imagePullSecrets": ["acr-token"],
                                    }
                                ],
                            }
                        ],
                    },
                ],
            }
        ],
        "breaks": breaks or [],
    }


def run(emulator: Emulator) -> Finding:
    estate = fresh_estate()
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, CLUSTER)["id"])
    registry_id = scenario.find_registry(emulator.state, REGISTRY)["id"]
    return PullSecretTokenInvalid().run(Target(cluster, registry_id), estate)


def pod_status(emulator: Emulator) -> set[str]:
    cluster = scenario.find_cluster(emulator.state, CLUSTER)
    reasons = set()
    for pod in k8s.objects(emulator.state, cluster["id"], "pods"):
        if pod["metadata"]["labels"].get("app") != "cart":
            continue
        for status in pod["status"].get("containerStatuses", []):
            waiting = status.get("state", {}).get("waiting")
            reasons.add(waiting["reason"] if waiting else "Running")
    return reasons


def break_(mode: str) -> list[dict[str, Any]]:
    return [{"cause": "pull-secret-token-invalid", "cluster": CLUSTER, "mode": mode}]


def test_a_working_token_secret_passes(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(token={"expiryDays": 90}))
    finding = run(emulator)
    assert finding.status is Status.PASS, finding.summary
    [row] = finding.evidence["secrets"]
    assert row["token"] == TOKEN and row["status"] == "enabled"
    assert row["credentialsAccepted"] is True and row["problems"] == []
    assert row["repositories"] == ["app"] and row["repositoriesWithoutRead"] == []
    assert [p["name"] for p in row["passwords"]] == ["password1", "password2"]
    assert row["usedBy"] == ["Deployment/shop/cart"]
    arm = [e.path for e in emulator.journal("arm")]
    assert any(p.endswith(f"/registries/{REGISTRY}/tokens") for p in arm)
    assert any(p.endswith("/scopeMaps/shop-pull") for p in arm)


def test_a_regenerated_password_fails_naming_the_slot_without_leaking_it(
    emulator: Emulator, app_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scenario.load(emulator.state, estate_spec(breaks=break_("regenerated")))
    assert pod_status(emulator) == {"ImagePullBackOff"}
    finding = run(emulator)
    assert finding.status is Status.FAIL, finding.summary
    assert finding.action_id == "refresh-pull-secret"
    [row] = finding.evidence["secrets"]
    assert row["credentialsAccepted"] is False and row["regenerate"] is True
    assert row["slotUsed"] == "password1"
    assert "password1 was generated last" in row["slotEvidence"]
    assert "regenerated" in finding.summary
    assert any("credential generate" in c and "--password1" in c for c in finding.commands)
    with emulator.state.lock:
        values = [
            e["value"] for slots in emulator.state.token_passwords.values() for e in slots.values()
        ]
    text = json.dumps(finding.to_dict()) + caplog.text
    assert not any(v in text for v in values)


def test_an_expired_password_fails_with_its_expiry(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(token={"expiryDays": 90}, breaks=break_("expired")))
    finding = run(emulator)
    assert finding.status is Status.FAIL, finding.summary
    [row] = finding.evidence["secrets"]
    assert row["slotUsed"] == "password1"
    assert [p["expired"] for p in row["passwords"]] == [True, False]
    assert "password1 of token shop-puller expired on" in finding.summary
    assert finding.action_id == "refresh-pull-secret"


def test_a_disabled_token_fails_and_is_not_fixed_by_a_new_password(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(breaks=break_("disabled")))
    finding = run(emulator)
    assert finding.status is Status.FAIL, finding.summary
    assert "token shop-puller is disabled" in finding.summary
    assert finding.action_id is None  # a ticket: enabling a token is a person's decision
    assert f"az acr token update -n {TOKEN} -r {REGISTRY} --status enabled" in finding.commands


def test_a_scope_map_without_content_read_fails(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec(breaks=break_("scope")))
    assert pod_status(emulator) == {"ImagePullBackOff"}
    finding = run(emulator)
    assert finding.status is Status.FAIL, finding.summary
    [row] = finding.evidence["secrets"]
    assert row["credentialsAccepted"] is True  # it signs in; it just may not read `app`
    assert row["repositoriesWithoutRead"] == ["app"]
    assert "scope map shop-pull has no content/read on app" in finding.summary
    assert finding.action_id is None
    assert any("scope-map update -n shop-pull" in c for c in finding.commands)


def test_no_token_secret_is_not_applicable_and_lists_no_tokens(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = estate_spec()
    cluster = spec["subscriptions"][0]["resourceGroups"][1]["clusters"][0]
    cluster["pullSecrets"] = []
    cluster["workloads"][0].pop("imagePullSecrets")
    scenario.load(emulator.state, spec)
    finding = run(emulator)
    assert finding.status is Status.PASS and "Not applicable" in finding.summary
    assert not any(e.path.endswith("/tokens") for e in emulator.journal("arm"))
