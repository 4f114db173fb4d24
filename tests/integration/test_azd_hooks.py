"""The `azd up` hooks against the emulator's ARM: the wait for an indexed app, and what they run.

azd itself cannot run here; the hooks are what `azure.yaml` runs, so they are run as azd would,
as `python -m scripts.azd_hooks <hook>` with azd's environment (the deployment's outputs), and a
stand-in `azd` on PATH that records the commands it is given. The waits read the emulator's
Microsoft.Web routes (emulator/providers/web.py), in the shapes Azure answers.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.providers import web
from emulator.server import Emulator
from scripts import azd_hooks
from shared.azure.factory import ClientFactory
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SUB = "9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c"
GROUP, APP = "acrpull-rg", "acrpull-func-abc123"
FUNCTIONS = {
    "arm_events": "eventGridTrigger",
    "registry_events": "eventGridTrigger",
    "alert_webhook": "httpTrigger",
    "drift_sweep": "timerTrigger",
}


@pytest.fixture
def site(emulator: Emulator) -> str:
    return web.add_function_app(emulator.state, SUB, GROUP, APP)


@pytest.fixture
def env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for key in list(os.environ):
        if key.startswith(("AZURE_", "IDENTITY_", "MSI_")):
            monkeypatch.delenv(key)
    values = {
        **emulator.environment(),
        # What azd puts in a hook's environment: its own values and the deployment's outputs.
        "AZURE_SUBSCRIPTION_ID": SUB,
        "AZURE_RESOURCE_GROUP": GROUP,
        "AZURE_FUNCTION_APP_NAME": APP,
        "AZURE_IDENTITY_PRINCIPAL_ID": "0f4c2a6e-3d1b-4c5a-9e8f-7a6b5c4d3e2f",
        "INDEX_POLL_SECONDS": "0",
        "INDEX_WAIT_SECONDS": "5",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield values


def arm(env: dict[str, str]) -> Any:
    return ClientFactory(Settings.from_env(env)).resource_manager()


def test_the_routes_answer_in_azures_shapes_before_and_after_indexing(
    emulator: Emulator, site: str, env: dict[str, str]
) -> None:
    client = arm(env)
    assert azd_hooks.readiness(client, site).listed == frozenset()
    status, keys = azd_hooks._call(client, "POST", f"{site}/host/default/listkeys")
    assert status == 200
    assert set(keys) == {"masterKey", "functionKeys", "systemKeys"}, "flat, no properties wrapper"
    assert keys["systemKeys"] == {}
    status, _ = azd_hooks._call(client, "POST", f"{site}/functions/alert_webhook/listkeys")
    assert status == 404, "no function key before the function exists"

    web.publish(emulator.state, site, FUNCTIONS)
    status, listed = azd_hooks._call(client, "GET", f"{site}/functions")
    one = next(f for f in listed["value"] if f["properties"]["name"] == "arm_events")
    assert one["name"] == f"{APP}/arm_events"
    assert one["type"] == "Microsoft.Web/sites/functions"
    assert one["properties"]["config"]["bindings"][0]["type"] == "eventGridTrigger"
    status, own = azd_hooks._call(client, "POST", f"{site}/functions/alert_webhook/listkeys")
    assert status == 200 and set(own) == {"default"}
    status, keys = azd_hooks._call(client, "POST", f"{site}/host/default/listkeys")
    assert keys["systemKeys"][web.EVENT_GRID_KEY]
    assert keys["functionKeys"]["default"] != own["default"], "a function key is not the host key"


def test_the_wait_ends_when_functions_and_the_event_grid_key_exist(
    emulator: Emulator, site: str, env: dict[str, str]
) -> None:
    web.publish(emulator.state, site, FUNCTIONS, index_after=3, event_grid_key_after=2)
    said: list[str] = []
    state = azd_hooks.wait_until_indexed(
        arm(env), site, timeout=60, interval=0, sleep=lambda _: None, say=said.append
    )
    assert state.ready
    waits = [s for s in said if s.startswith("waiting")]
    assert any("functions not indexed yet: arm_events" in s for s in waits)
    assert any(s == "waiting: no eventgrid_extension system key yet" for s in waits), (
        "listed functions without the key is still not ready"
    )
    assert said[-1].startswith("indexed after")
    assert all("==" not in s and "key=" not in s for s in said), "keys are never printed"


def test_an_app_that_never_indexes_times_out_with_what_is_missing(
    emulator: Emulator, site: str, env: dict[str, str]
) -> None:
    web.publish(emulator.state, site, {"arm_events": "eventGridTrigger"})
    clock = iter(range(100))
    with pytest.raises(azd_hooks.HookError) as raised:
        azd_hooks.wait_until_indexed(
            arm(env),
            site,
            timeout=3,
            interval=1,
            sleep=lambda _: None,
            clock=lambda: float(next(clock)),
            say=lambda _: None,
        )
    message = str(raised.value)
    assert "registry_events, alert_webhook" in message
    assert "azd deploy" in message


def test_a_host_restarting_is_waited_for_and_a_refusal_is_not(
    emulator: Emulator, site: str, env: dict[str, str]
) -> None:
    web.publish(emulator.state, site, FUNCTIONS)
    # More 503s than the client retries: the hook itself sees the host restarting.
    emulator.inject(r"/host/default/listkeys", method="POST", status=503, times=8)
    state = azd_hooks.wait_until_indexed(
        arm(env), site, timeout=60, interval=0, sleep=lambda _: None, say=lambda _: None
    )
    assert state.ready
    emulator.state.denied_scopes.append(site.lower())
    with pytest.raises(azd_hooks.HookError, match="403"):
        azd_hooks.readiness(arm(env), site)


def fake_azd(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An `azd` on PATH that appends its arguments to a log, as the real one would be called."""
    log = tmp_path / "azd.log"
    script = tmp_path / "bin" / "azd"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{script.parent}{os.pathsep}{os.environ['PATH']}"}, log


def run_hook(
    hook: str, env: dict[str, str], extra: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.azd_hooks", hook],
        cwd=ROOT,
        env={**os.environ, **env, **extra},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_postdeploy_subscribes_the_events_once_the_app_is_indexed(
    emulator: Emulator, site: str, env: dict[str, str], tmp_path: Path
) -> None:
    web.publish(emulator.state, site, FUNCTIONS, index_after=2, event_grid_key_after=1)
    path, log = fake_azd(tmp_path)
    done = run_hook("postdeploy", env, path)
    assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == [
        "env set SUBSCRIBE_EVENTS true",
        "provision --no-prompt",
    ]
    assert "waiting" in done.stdout

    again = run_hook("postdeploy", env, {**path, "SUBSCRIBE_EVENTS": "true"})
    assert again.returncode == 0, again.stderr
    assert len(log.read_text().splitlines()) == 2, "an environment already subscribed: no provision"


def test_postdeploy_before_indexing_fails_and_subscribes_nothing(
    emulator: Emulator, site: str, env: dict[str, str], tmp_path: Path
) -> None:
    path, log = fake_azd(tmp_path)
    done = run_hook("postdeploy", {**env, "INDEX_WAIT_SECONDS": "0"}, path)
    assert done.returncode == 1
    assert "functions not indexed yet: arm_events, registry_events, alert_webhook" in done.stderr
    assert not log.exists(), "no event subscription is attempted before the functions exist"


def test_postdeploy_outside_azd_says_what_is_missing(tmp_path: Path) -> None:
    done = run_hook("postdeploy", {"AZURE_RESOURCE_GROUP": ""}, {"AZURE_FUNCTION_APP_NAME": ""})
    assert done.returncode == 1
    assert "AZURE_RESOURCE_GROUP, AZURE_FUNCTION_APP_NAME not set" in done.stderr


def test_postdown_resets_the_event_stage(tmp_path: Path, env: dict[str, str]) -> None:
    path, log = fake_azd(tmp_path)
    assert run_hook("postdown", env, path).returncode == 0
    assert log.read_text().splitlines() == ["env set SUBSCRIBE_EVENTS false"]


@pytest.mark.parametrize(("mode", "roles"), [("dry-run", 1), ("enforce", 2)])
def test_postprovision_prints_the_graph_commands_when_the_grant_was_skipped(
    env: dict[str, str], mode: str, roles: int
) -> None:
    skipped = run_hook(
        "postprovision", env, {"GRAPH_PERMISSIONS_GRANTED": "false", "REMEDIATION_MODE": mode}
    )
    assert skipped.returncode == 0
    lines = [line.strip() for line in skipped.stdout.splitlines() if "az rest" in line]
    assert len(lines) == roles
    principal = env["AZURE_IDENTITY_PRINCIPAL_ID"]
    for line in lines:
        assert f"/servicePrincipals/{principal}/appRoleAssignments" in line
        body = line.split("--body '")[1].split("'  #")[0].replace("'\"$GRAPH\"'", "GRAPH-ID")
        parsed = json.loads(body)
        assert parsed["principalId"] == principal
        assert parsed["appRoleId"] in azd_hooks.GRAPH_ROLES.values()
    assert ("Application.ReadWrite.OwnedBy" in skipped.stdout) is (mode == "enforce")
    granted = run_hook("postprovision", env, {"GRAPH_PERMISSIONS_GRANTED": "true"})
    assert "az rest" not in granted.stdout


def test_azure_yaml_runs_these_hooks_on_both_shells() -> None:
    config = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert config["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    (service,) = config["services"].values()
    assert service["host"] == "function" and service["language"] == "python"
    for hook in ("postprovision", "postdeploy", "postdown"):
        for shell in ("posix", "windows"):
            assert config["hooks"][hook][shell]["run"].endswith(f"-m scripts.azd_hooks {hook}")


def test_azd_deploy_finds_the_function_app_by_its_service_tag() -> None:
    (name,) = yaml.safe_load((ROOT / "azure.yaml").read_text())["services"]
    app = (ROOT / "infra" / "modules" / "app.bicep").read_text()
    site = app[app.index("resource functionApp 'Microsoft.Web/sites@") :]
    site = site[: site.index("\n}\n")]
    assert f"'azd-service-name': '{name}'" in site


def test_the_hooks_wait_for_every_function_the_infra_delivers_to(
    functions: dict[str, Any],
) -> None:
    infra = ROOT / "infra"
    text = "\n".join(p.read_text() for p in infra.rglob("*.bicep"))
    expected = set(azd_hooks.EVENT_GRID_FUNCTIONS) | set(azd_hooks.KEYED_FUNCTIONS)
    delivered = {f for f in functions if f"/functions/{f}'" in text or f"'{f}'" in text}
    assert delivered == expected
