"""The expiry sweep warns at the policy's windows before a token password expires.

Through the indexed function app (``expiry_sweep``, ``sweep_handover``) against the emulator:
tokens and their passwords as ARM serves them, tickets in the emulator's GitHub.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator import scenario
from emulator.providers import registry_tokens
from emulator.server import Emulator
from emulator.tickets import github_comments, github_issues
from shared.signals import BadSignal
from shared.sweeps import parse_handover
from tests.checks.test_pull_secret_token_invalid import CLUSTER, REGISTRY, TOKEN, estate_spec
from tests.conftest import PROD_SUB
from tests.support.triggers import process_handover, run_timer


def token_id(emulator: Emulator) -> str:
    return f"{scenario.find_registry(emulator.state, REGISTRY)['id']}/tokens/{TOKEN}"


def title(emulator: Emulator) -> str:
    return f"[acr-pull] pull-secret-token-invalid on {TOKEN}"  # the token's name


def issues(emulator: Emulator) -> list[dict[str, Any]]:
    return [i for i in github_issues(emulator.state) if i["title"] == title(emulator)]


def set_expiry(emulator: Emulator, slot: str, days: float) -> None:
    with emulator.state.lock:
        entry = emulator.state.token_passwords[token_id(emulator).lower()][slot]
        entry["expiry"] = registry_tokens.iso(datetime.now(UTC) + timedelta(days=days))
    registry_tokens.refresh_token_view(emulator.state, token_id(emulator))


@pytest.fixture
def expiring(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec(token={"expiryDays": 200}))
    set_expiry(emulator, "password2", 5)  # inside the 7-day window; password1 has 200 days


def token_outcomes(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        o
        for o in outcomes
        if o.get("findings") and o["findings"][0]["cause"] == "pull-secret-token-invalid"
    ]


def test_the_sweep_tickets_a_token_once_per_window_and_closes_it_when_renewed(
    emulator: Emulator,
    expiring: None,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes, handed_over = run_timer(functions, "expiry_sweep", caplog)
    assert handed_over == []
    [outcome] = token_outcomes(outcomes)
    [finding] = outcome["findings"]
    assert finding["status"] == "FAIL" and finding["resource"] == token_id(emulator)
    assert finding["evidence"]["slot"] == "password2"
    assert finding["evidence"]["window"] == "7-day"
    assert finding["evidence"]["pullSecrets"] == [f"{CLUSTER}/shop/acr-token"]
    [issue] = issues(emulator)
    assert "7-day window" in issue["body"]
    # The safe rotation: the other slot, then the secrets moved to it.
    assert f"az acr token credential generate -n {TOKEN} -r {REGISTRY} --password1" in issue["body"]
    with emulator.state.lock:
        values = [
            e["value"] for e in emulator.state.token_passwords[token_id(emulator).lower()].values()
        ]
    assert not any(v in issue["body"] for v in values)

    # The next day: the same window, nothing new to say.
    outcomes, _ = run_timer(functions, "expiry_sweep", caplog)
    [again] = token_outcomes(outcomes)
    assert again["verdict"] == "ignored" and "already notified" in again["reason"]
    assert github_comments(emulator.state, issue["number"]) == []

    # Four days later it is inside the 1-day window: one comment.
    set_expiry(emulator, "password2", 0.5)
    run_timer(functions, "expiry_sweep", caplog)
    assert len(github_comments(emulator.state, issue["number"])) == 1

    # Renewed (az acr token credential generate --password2 --expiration-in-days 365): closed.
    set_expiry(emulator, "password2", 365)
    outcomes, _ = run_timer(functions, "expiry_sweep", caplog)
    [closed] = token_outcomes(outcomes)
    assert closed["findings"][0]["status"] == "PASS"
    [issue] = issues(emulator)
    assert issue["state"] == "closed"


def test_an_expired_slot_that_no_secret_holds_is_not_warned_about(
    emulator: Emulator,
    app_env: dict[str, str],
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario.load(emulator.state, estate_spec(token={"expiryDays": 200}))
    set_expiry(emulator, "password2", -3)  # the secret holds password1, which still works
    outcomes, _ = run_timer(functions, "expiry_sweep", caplog)
    [outcome] = token_outcomes(outcomes)
    assert outcome["findings"][0]["status"] == "PASS"
    assert issues(emulator) == []


def test_a_token_task_is_handed_over_and_processed(
    emulator: Emulator,
    expiring: None,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWEEP_BUDGET_SECONDS", "0")
    _, handed_over = run_timer(functions, "expiry_sweep", caplog)
    [message] = [m for m in handed_over if "token" in json.loads(m)]
    assert json.loads(message)["token"] == token_id(emulator)
    outcomes = process_handover(functions, [message], caplog)
    [outcome] = token_outcomes(outcomes)
    assert outcome["findings"][0]["evidence"]["window"] == "7-day"
    assert len(issues(emulator)) == 1


def test_a_hostile_token_hand_over_is_refused() -> None:
    def in_scope(subscription: str) -> bool:
        return subscription.lower() == PROD_SUB

    good = {
        "v": 1,
        "sweep": "expiry",
        "signal": "s",
        "token": f"/subscriptions/{PROD_SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r/tokens/t",
        "pullSecrets": [],
    }
    assert parse_handover(json.dumps(good), in_scope=in_scope)["token"].endswith("/tokens/t")
    for bad in (
        {**good, "token": good["token"].rsplit("/tokens/", 1)[0]},
        {**good, "token": good["token"].replace(PROD_SUB, "0" * 8 + "-0000-0000-0000-" + "0" * 12)},
        {**good, "pullSecrets": "x"},
    ):
        with pytest.raises(BadSignal):
            parse_handover(json.dumps(bad), in_scope=in_scope)
