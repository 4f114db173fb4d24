"""No secret the emulator issued may reach a log line, ticket, audit row, event or outcome.

Runs the response to every cause of the demo estate (every remediation, every ticket) with all
loggers at DEBUG, then scans everything the product wrote for every secret the emulator knows:
registry passwords, service principal secrets (old and newly issued), access tokens, Kubernetes
tokens, dockerconfigjson contents, ticket tokens and topic keys.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from emulator import scenario
from emulator.eventgrid_topic import topic_environment, topic_events
from emulator.providers.containerservice import cluster_sp_secret
from emulator.server import Emulator
from emulator.tickets import github_comments, github_issues
from shared.checks import Target
from tests.conftest import PROD_SUB

MIN_SECRET_LENGTH = 12


def issued_secrets(emulator: Emulator) -> set[str]:
    state = emulator.state
    found: set[str] = set(state.tokens) | set(state.acr_tokens) | {state.identity_header}
    for passwords in state.registry_passwords.values():
        found |= {p["value"] for p in passwords}
    for app in state.graph_applications.values():
        found |= set(app.get("_secrets", {}).values())
    for api in state.kubernetes.values():
        found |= {getattr(api, "user_token", ""), getattr(api, "admin_token", "")}
        for secret in getattr(api, "secrets", {}).values() if hasattr(api, "secrets") else []:
            found |= {str(v) for v in secret.get("data", {}).values()}
    found |= set(state.github_tokens) | set(state.ado_pats) | set(state.webhook_secrets.values())
    found |= {topic["key"] for topic in state.eventgrid_topics.values()}
    for cluster in state.iter_resources():
        if cluster["type"] == "Microsoft.ContainerService/managedClusters":
            found.add(cluster_sp_secret(state, cluster["id"]) or "")
    # Pull secrets carry user:password base64-encoded as "auth".
    with_auth = set()
    for secret in found:
        if secret:
            with_auth.add(base64.b64encode(f"x:{secret}".encode()).decode()[4:])
    return {s for s in found | with_auth if len(s) >= MIN_SECRET_LENGTH}


@pytest.fixture
def demo(
    emulator: Emulator, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    spec = scenario.load(emulator.state, "demo")
    for key, value in topic_environment(emulator, "outcomes", auth="key").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SCOPE_SUBSCRIPTION_IDS", PROD_SUB)
    return spec


def test_no_issued_secret_reaches_any_output(
    emulator: Emulator, demo: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    from shared.runtime import engine

    caplog.set_level(logging.DEBUG)
    responder = engine(respond=True, source="test")
    outcomes = []
    for pair in demo["pairs"]:
        cluster = responder.estate.get_cluster(
            scenario.find_cluster(emulator.state, pair["cluster"])["id"]
        )
        registry = scenario.find_registry(emulator.state, pair["registry"])["id"]
        target = Target(cluster, registry, pair["image"])
        outcome = responder.diagnose_and_respond(
            f"secrets:{pair['cause']}", target, (pair["cause"],)
        )
        outcomes.append(outcome)
    applied = {a.action_id for o in outcomes for a in o.actions if a.status == "applied"}
    # The scan means something only if the remediations that handle secrets really ran.
    assert {"rotate-sp-secret", "refresh-pull-secret", "attach-acr"} <= applied
    assert github_issues(emulator.state)

    secrets = issued_secrets(emulator)
    assert len(secrets) > 20
    audit = (
        responder.store.list_audit(datetime.now(UTC) - timedelta(minutes=10))
        if responder.store
        else []
    )
    outputs = {
        "logs": "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records),
        "outcomes": json.dumps([o.to_dict() for o in outcomes]),
        "reprs": repr(outcomes),
        "tickets": json.dumps(github_issues(emulator.state))
        + json.dumps(
            [github_comments(emulator.state, i["number"]) for i in github_issues(emulator.state)]
        ),
        "audit": json.dumps([a.__dict__ for a in audit], default=str),
        "events": json.dumps(topic_events(emulator.state, "outcomes")),
        "scenario": yaml.safe_dump(demo),
    }
    leaks = {name: [s[:6] + "..." for s in secrets if s in text] for name, text in outputs.items()}
    assert leaks == {name: [] for name in outputs}
