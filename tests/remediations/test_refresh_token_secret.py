"""refresh-pull-secret for token pull secrets: generateCredentials, every secret of the token.

Through azure-mgmt-containerregistry and lightkube against the emulator; end to end through the
drift sweep's timer function too.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest

from emulator import kubernetes as k8s
from emulator import scenario
from emulator.server import Emulator
from shared.checks.base import Finding, Status, Target
from shared.checks.pull_secret_token_invalid import PullSecretTokenInvalid
from shared.remediations.refresh_pull_secret import RefreshPullSecret
from tests.checks.test_pull_secret_token_invalid import CLUSTER, REGISTRY, TOKEN, estate_spec
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate
from tests.support.triggers import run_timer

OTHER_CLUSTER = "aks-tok2"
HOST = f"{REGISTRY}.azurecr.io"


def two_clusters(breaks: list[dict[str, Any]]) -> dict[str, Any]:
    """aks-tok and aks-tok2 both pull with the token's password1."""
    spec = estate_spec(token={"expiryDays": 60}, breaks=breaks)
    clusters = spec["subscriptions"][0]["resourceGroups"][1]["clusters"]
    clusters.append({**json.loads(json.dumps(clusters[0])), "name": OTHER_CLUSTER})
    return spec


def diagnose(emulator: Emulator, cluster: str = CLUSTER) -> tuple[Finding, Target]:
    estate = fresh_estate()
    target = Target(
        estate.get_cluster(scenario.find_cluster(emulator.state, cluster)["id"]),
        scenario.find_registry(emulator.state, REGISTRY)["id"],
    )
    return PullSecretTokenInvalid().run(target, estate), target


def secret_password(emulator: Emulator, cluster: str) -> str:
    cluster_id = scenario.find_cluster(emulator.state, cluster)["id"]
    secret = next(
        s
        for s in k8s.objects(emulator.state, cluster_id, "secrets")
        if s["metadata"]["name"] == "acr-token"
    )
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    return str(config["auths"][HOST]["password"])


def slots(emulator: Emulator) -> dict[str, dict[str, str]]:
    token_id = f"{scenario.find_registry(emulator.state, REGISTRY)['id']}/tokens/{TOKEN}".lower()
    with emulator.state.lock:
        return {k: dict(v) for k, v in emulator.state.token_passwords[token_id].items()}


def test_a_regenerated_password_is_generated_again_and_written_everywhere(
    emulator: Emulator, app_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scenario.load(
        emulator.state,
        two_clusters([{"cause": "pull-secret-token-invalid", "cluster": CLUSTER}]),
    )
    before = slots(emulator)
    finding, target = diagnose(emulator)
    assert finding.status is Status.FAIL and finding.action_id == "refresh-pull-secret"
    # The other cluster held the same value, so it is broken too.
    assert diagnose(emulator, OTHER_CLUSTER)[0].status is Status.FAIL
    plan = RefreshPullSecret().plan(finding, target)
    assert any("--password1" in c for c in plan.commands)
    # One instance at a time may generate this token's password (the responder leases it).
    token_id = f"{scenario.find_registry(emulator.state, REGISTRY)['id']}/tokens/{TOKEN}"
    assert RefreshPullSecret().blast_radius(finding, target, fresh_estate()) == (token_id,)

    estate = fresh_estate()
    record = RefreshPullSecret(subscription_ids=[PROD_SUB]).apply(
        finding, target, estate, timeout=30
    )

    assert record.status == "applied", record.detail
    after = slots(emulator)
    assert after["password2"] == before["password2"]  # the other slot is untouched
    assert after["password1"]["value"] != before["password1"]["value"]
    # The slot's 60-day lifetime is kept.
    assert after["password1"]["expiry"] > before["password1"]["expiry"]
    for cluster in (CLUSTER, OTHER_CLUSTER):
        assert secret_password(emulator, cluster) == after["password1"]["value"]
        assert f"{cluster}/shop/acr-token ({TOKEN} password1)" in record.detail
        assert diagnose(emulator, cluster)[0].status is Status.PASS
    posts = [e for e in emulator.journal("arm") if e.path.endswith("/generateCredentials")]
    assert len(posts) == 1 and posts[0].status == 202
    text = caplog.text + json.dumps(record.to_dict()) + json.dumps(plan.to_dict())
    assert not any(v["value"] in text for v in (*before.values(), *after.values()))


def test_secrets_holding_the_other_slot_are_left_alone(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    spec = two_clusters([{"cause": "pull-secret-token-invalid", "cluster": CLUSTER}])
    other = spec["subscriptions"][0]["resourceGroups"][1]["clusters"][1]
    other["pullSecrets"][0]["from"] = f"token:{TOKEN}:password2"
    scenario.load(emulator.state, spec)
    held = secret_password(emulator, OTHER_CLUSTER)
    finding, target = diagnose(emulator)
    record = RefreshPullSecret(subscription_ids=[PROD_SUB]).apply(
        finding, target, fresh_estate(), timeout=30
    )
    assert record.status == "applied", record.detail
    assert secret_password(emulator, OTHER_CLUSTER) == held
    assert OTHER_CLUSTER not in record.detail


def test_a_disabled_token_is_not_given_a_password(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            breaks=[{"cause": "pull-secret-token-invalid", "cluster": CLUSTER, "mode": "disabled"}]
        ),
    )
    finding, target = diagnose(emulator)
    record = RefreshPullSecret().apply(finding, target, fresh_estate(), timeout=30)
    assert record.status == "failed" and "token shop-puller is disabled" in record.detail
    assert not any(e.path.endswith("/generateCredentials") for e in emulator.journal("arm"))


def test_the_drift_sweep_fixes_it_end_to_end(
    emulator: Emulator,
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            token={"expiryDays": 60},
            breaks=[{"cause": "pull-secret-token-invalid", "cluster": CLUSTER, "mode": "expired"}],
        ),
    )
    outcomes, _ = run_timer(functions, "drift_sweep", caplog)
    [outcome] = [o for o in outcomes if o["cluster"].endswith(f"/{CLUSTER}")]
    assert outcome["verdict"] == "remediated", outcome["reason"]
    assert [a["status"] for a in outcome["actions"]] == ["applied"]
    [verified] = outcome["verification"]
    assert (verified["cause"], verified["status"]) == ("pull-secret-token-invalid", "PASS")
    assert diagnose(emulator)[0].status is Status.PASS
    # The new password1 lives as long as the expired one did (60 days), not a day.
    after = slots(emulator)["password1"]
    lifetime = datetime.fromisoformat(after["expiry"]) - datetime.fromisoformat(
        after["creationTime"]
    )
    assert abs(lifetime - timedelta(days=60)) < timedelta(minutes=1)
