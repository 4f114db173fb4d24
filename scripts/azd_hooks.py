"""The `azd up` hooks (azure.yaml): the steps Bicep cannot wait for.

``python -m scripts.azd_hooks postprovision``
    When the deployment skipped the Microsoft Graph app roles (``GRANT_GRAPH_PERMISSIONS=false``:
    the deployer may not grant app roles), print the exact commands an administrator runs.
``python -m scripts.azd_hooks postdeploy``
    Wait until the published package is indexed: every function the infra delivers to is listed
    (``GET sites/{app}/functions``), ``alert_webhook`` has its own key, and the host has minted the
    ``eventgrid_extension`` system key (``POST sites/{app}/host/default/listkeys``); an
    ``AzureFunction`` event subscription made before that fails with "Destination endpoint not
    found". Then, once per environment, ``azd env set SUBSCRIBE_EVENTS true`` and ``azd provision``
    create the Event Grid subscriptions (and the pull-failure alert, which reads that key).
``python -m scripts.azd_hooks postdown``
    ``SUBSCRIBE_EVENTS=false``: the next ``azd up`` in this environment starts from an app with no
    functions again.

The hooks read what azd puts in their environment (the deployment's outputs and the environment's
values) and sign in with DefaultAzureCredential, which finds the ``azd auth login`` session (or
the Azure CLI's). ARM is reached through the product's own client factory, so a sovereign cloud
(``AZURE_CLOUD``) works as it does for the app. Keys are checked for presence, never printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core import PipelineClient
    from azure.core.rest import HttpRequest, HttpResponse

WEB_API_VERSION = "2024-04-01"
EVENT_GRID_KEY = "eventgrid_extension"
# The functions infra/ delivers to: Event Grid subscriptions (arm_events, registry_events) and the
# alert's action group (alert_webhook, with its own key). tests/infra checks this list.
EVENT_GRID_FUNCTIONS = ("arm_events", "registry_events")
KEYED_FUNCTIONS = ("alert_webhook",)
# listkeys answers these while the host restarts after a deployment: wait, do not fail.
NOT_YET = {404, 409, 429, 500, 502, 503}

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_ROLES = {
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "Application.ReadWrite.OwnedBy": "18a4783c-866b-4cc7-a460-3d5e5662c884",
}


class HookError(Exception):
    """A hook cannot go on; the message says what to do."""


@dataclass(frozen=True)
class Readiness:
    """What the app's host has indexed so far."""

    listed: frozenset[str]
    missing: tuple[str, ...]
    event_grid_key: bool
    keyed: frozenset[str]

    @property
    def ready(self) -> bool:
        return not self.missing and self.event_grid_key and set(KEYED_FUNCTIONS) <= self.keyed

    def waiting_for(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"functions not indexed yet: {', '.join(self.missing)}")
        if not self.event_grid_key:
            parts.append(f"no {EVENT_GRID_KEY} system key yet")
        unkeyed = sorted(set(KEYED_FUNCTIONS) - self.keyed)
        if unkeyed:
            parts.append(f"no function key yet for {', '.join(unkeyed)}")
        return "; ".join(parts) or "nothing"


def site_id(subscription_id: str, resource_group: str, app_name: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.Web/sites/{app_name}"
    )


def _call(arm: PipelineClient[HttpRequest, HttpResponse], method: str, url: str) -> tuple[int, Any]:
    from azure.core.rest import HttpRequest

    if "api-version=" not in url:
        url = f"{url}?api-version={WEB_API_VERSION}"
    if url.startswith("/"):
        url = arm.format_url(url)
    response = arm.send_request(HttpRequest(method, url))
    if response.status_code == 403:
        raise HookError(
            f"ARM refused {method} {url.split('?')[0]} (403): the signed-in account needs "
            "Microsoft.Web/sites/functions/read and Microsoft.Web/sites/host/listkeys/action "
            "(Contributor or Website Contributor on the app's resource group)"
        )
    try:
        body = response.json() if response.text() else None
    except ValueError:
        body = None
    return response.status_code, body


def readiness(arm: PipelineClient[HttpRequest, HttpResponse], site: str) -> Readiness:
    listed: set[str] = set()
    url: str | None = f"{site}/functions"
    while url:
        status, body = _call(arm, "GET", url)
        if status in NOT_YET:
            break
        if status != 200 or not isinstance(body, dict):
            raise HookError(f"listing the functions of {site} answered {status}")
        for item in body.get("value") or []:
            name = (item.get("properties") or {}).get("name") or item["name"].split("/")[-1]
            listed.add(name)
        url = body.get("nextLink")
    status, keys = _call(arm, "POST", f"{site}/host/default/listkeys")
    system_keys = (keys or {}).get("systemKeys") or {} if status == 200 else {}
    keyed = set()
    for function in KEYED_FUNCTIONS:
        if function in listed:
            status, own = _call(arm, "POST", f"{site}/functions/{function}/listkeys")
            if status == 200 and isinstance(own, dict) and own.get("default"):
                keyed.add(function)
    expected = (*EVENT_GRID_FUNCTIONS, *KEYED_FUNCTIONS)
    return Readiness(
        listed=frozenset(listed),
        missing=tuple(f for f in expected if f not in listed),
        event_grid_key=bool(system_keys.get(EVENT_GRID_KEY)),
        keyed=frozenset(keyed),
    )


def wait_until_indexed(
    arm: PipelineClient[HttpRequest, HttpResponse],
    site: str,
    *,
    timeout: float,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    say: Callable[[str], None] = print,
) -> Readiness:
    deadline = clock() + timeout
    polls = 0
    while True:
        state = readiness(arm, site)
        polls += 1
        if state.ready:
            say(f"indexed after {polls} poll(s): {', '.join(sorted(state.listed))}")
            return state
        if clock() >= deadline:
            raise HookError(
                f"after {timeout:.0f} s the app is still not ready ({state.waiting_for()}). "
                "Check the deployment log (Application Insights, or `az functionapp log "
                "deployment show`), then run `azd deploy` again."
            )
        say(f"waiting: {state.waiting_for()}")
        sleep(interval)


def graph_commands(principal_id: str, *, enforce: bool) -> list[str]:
    """What an administrator runs when the deployment could not grant the Graph app roles."""
    roles = ["Application.Read.All"] + (["Application.ReadWrite.OwnedBy"] if enforce else [])
    commands = [f"GRAPH=$(az ad sp show --id {GRAPH_APP_ID} --query id -o tsv)"]
    for role in roles:
        body = (
            f'{{"principalId":"{principal_id}","resourceId":"\'"$GRAPH"\'",'
            f'"appRoleId":"{GRAPH_ROLES[role]}"}}'
        )
        commands.append(
            "az rest --method POST --uri "
            f"https://graph.microsoft.com/v1.0/servicePrincipals/{principal_id}/appRoleAssignments"
            f" --headers Content-Type=application/json --body '{body}'  # {role}"
        )
    return commands


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    return default if not value else value == "true"


def _need(env: Mapping[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise HookError(
            f"{', '.join(missing)} not set: run this hook through azd (azure.yaml), after "
            "`azd provision` has written the deployment's outputs into the environment"
        )
    return [env[n] for n in names]


def postprovision(env: Mapping[str, str], say: Callable[[str], None] = print) -> int:
    if _flag(env, "GRAPH_PERMISSIONS_GRANTED", True):
        say("Microsoft Graph app roles: granted by the deployment.")
        return 0
    (principal,) = _need(env, "AZURE_IDENTITY_PRINCIPAL_ID")
    enforce = env.get("REMEDIATION_MODE", "dry-run") == "enforce"
    say(
        "Microsoft Graph app roles were NOT granted (GRANT_GRAPH_PERMISSIONS=false). Until an "
        "administrator (Privileged Role Administrator) runs these, the service principal checks "
        "are UNKNOWN:"
    )
    for command in graph_commands(principal, enforce=enforce):
        say(f"  {command}")
    return 0


def postdeploy(
    env: Mapping[str, str],
    *,
    arm: PipelineClient[HttpRequest, HttpResponse] | None = None,
    run: Callable[[Sequence[str]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = print,
) -> int:
    subscription, group, app = _need(
        env, "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME"
    )
    client = arm if arm is not None else _arm_client(env)
    wait_until_indexed(
        client,
        site_id(subscription, group, app),
        timeout=float(env.get("INDEX_WAIT_SECONDS") or 900),
        interval=float(env.get("INDEX_POLL_SECONDS") or 15),
        sleep=sleep,
        say=say,
    )
    if _flag(env, "SUBSCRIBE_EVENTS", False):
        say("Event Grid subscriptions: already part of this environment's deployment.")
        return 0
    runner = run or _run
    say("Subscribing the events: azd provision with SUBSCRIBE_EVENTS=true")
    runner(["azd", "env", "set", "SUBSCRIBE_EVENTS", "true"])
    runner(["azd", "provision", "--no-prompt"])
    return 0


def postdown(env: Mapping[str, str], *, run: Callable[[Sequence[str]], None] | None = None) -> int:
    (run or _run)(["azd", "env", "set", "SUBSCRIBE_EVENTS", "false"])
    return 0


def _run(command: Sequence[str]) -> None:
    completed = subprocess.run(list(command), check=False)  # noqa: S603 (fixed azd commands)
    if completed.returncode != 0:
        raise HookError(f"`{' '.join(command)}` failed with exit code {completed.returncode}")


def _arm_client(env: Mapping[str, str]) -> PipelineClient[HttpRequest, HttpResponse]:
    from shared.azure.factory import ClientFactory
    from shared.config import Settings

    return ClientFactory(Settings.from_env(env)).resource_manager()


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.azd_hooks", description=__doc__)
    parser.add_argument("hook", choices=("postprovision", "postdeploy", "postdown"))
    args = parser.parse_args(argv)
    values = os.environ if env is None else env
    try:
        if args.hook == "postprovision":
            return postprovision(values)
        if args.hook == "postdeploy":
            return postdeploy(values)
        return postdown(values)
    except HookError as exc:
        print(f"azd hook {args.hook}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
