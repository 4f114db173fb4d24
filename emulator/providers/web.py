"""Microsoft.Web: a Flex Consumption Function App as ARM shows it before and after publishing.

What the deploy hooks (scripts/azd_hooks.py) wait for, in the shapes Azure answers (the REST
specification declares a ``properties`` wrapper for key lists that the service does not send):

- ``GET sites/{app}/functions`` lists the indexed functions: ``{"value": [{"id", "name":
  "{app}/{function}", "type": "Microsoft.Web/sites/functions", "properties": {"name", "config":
  {"bindings"}, "invoke_url_template", "language", "isDisabled"}}]}``; empty until the host has
  indexed the published package.
- ``POST sites/{app}/host/default/listkeys`` answers ``{"masterKey", "functionKeys": {"default"},
  "systemKeys": {...}}``; ``systemKeys.eventgrid_extension`` appears only once the host has started
  the Event Grid extension for an indexed Event Grid trigger.
- ``POST sites/{app}/functions/{function}/listkeys`` answers that function's own keys,
  ``{"default": "..."}`` (what ``listKeys(...functions...)`` in Bicep reads); 404 until indexed.

Tests create a site with :func:`add_function_app` and publish with :func:`publish`, saying after
how many reads the host has indexed the package and minted the Event Grid key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emulator.arm import ArmError, ArmRequest, ResourceKind, json_response
from emulator.state import Json, State

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from emulator.server import Emulator

SITES = "Microsoft.Web/sites"
FUNCTIONS = "Microsoft.Web/sites/functions"
HOST = "Microsoft.Web/sites/host"
EVENT_GRID_KEY = "eventgrid_extension"
TRIGGERS = {"eventGridTrigger", "httpTrigger", "timerTrigger", "queueTrigger"}


def _key() -> str:
    return secrets.token_urlsafe(40)


@dataclass
class FunctionHost:
    """The Functions host of one site: what it has indexed, and its keys (never in the resource)."""

    functions: dict[str, str] = field(default_factory=dict)  # name -> trigger binding type
    # Reads of the function list that still answer the previous index (a new package is indexed
    # after this many), and host key reads that still lack the Event Grid system key.
    index_reads_left: int = 0
    key_reads_left: int = 0
    indexed: dict[str, str] = field(default_factory=dict)
    master_key: str = field(default_factory=_key)
    host_keys: dict[str, str] = field(default_factory=lambda: {"default": _key()})
    system_keys: dict[str, str] = field(default_factory=dict)
    function_keys: dict[str, dict[str, str]] = field(default_factory=dict)


def _hosts(state: State) -> dict[str, FunctionHost]:
    hosts: dict[str, FunctionHost] = state.function_hosts
    return hosts


def add_function_app(
    state: State, subscription_id: str, resource_group: str, name: str, location: str = "westeurope"
) -> str:
    """A Function App as provisioning leaves it: the site and an empty host. Returns its id."""
    if state.resource_group(subscription_id, resource_group) is None:
        state.add_resource_group(subscription_id, resource_group, location)
    site_id = (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{SITES}/{name}"
    )
    state.put(
        {
            "id": site_id,
            "name": name,
            "type": SITES,
            "kind": "functionapp,linux",
            "location": location,
            "properties": {
                "state": "Running",
                "defaultHostName": f"{name}.azurewebsites.net",
                "sku": "FlexConsumption",
            },
        }
    )
    state.put({"id": f"{site_id}/host/default", "name": "default", "type": HOST})
    _hosts(state)[site_id.lower()] = FunctionHost()
    return site_id


def publish(
    state: State,
    site_id: str,
    functions: dict[str, str],
    *,
    index_after: int = 0,
    event_grid_key_after: int = 0,
) -> None:
    """Deploy a package with ``functions`` (name -> trigger type). The function list shows them
    after ``index_after`` more reads; the Event Grid key exists ``event_grid_key_after`` host key
    reads after that (Azure: seconds to minutes after a deployment)."""
    unknown = set(functions.values()) - TRIGGERS
    if unknown:
        raise ValueError(f"unknown trigger types {sorted(unknown)}; known: {sorted(TRIGGERS)}")
    host = _hosts(state)[site_id.lower()]
    host.functions = dict(functions)
    host.index_reads_left = index_after
    host.key_reads_left = event_grid_key_after
    if index_after == 0:
        _index(state, site_id, host)


def _index(state: State, site_id: str, host: FunctionHost) -> None:
    """The host has indexed the package: its functions exist as ARM child resources, with keys."""
    site = state.get(site_id) or {}
    for name in set(host.indexed) - set(host.functions):
        state.delete(f"{site_id}/functions/{name}")
        host.function_keys.pop(name, None)
    host.indexed = dict(host.functions)
    for name, trigger in host.indexed.items():
        state.put(_function(site_id, site, name, trigger))
        host.function_keys.setdefault(name, {"default": _key()})


def _host_of(state: State, arm: ArmRequest) -> tuple[str, FunctionHost]:
    site_id = arm.resource_id.split("/providers/")[0] + f"/providers/{SITES}/{arm.names[0]}"
    host = _hosts(state).get(site_id.lower())
    if host is None:
        raise ArmError(
            404,
            "ResourceNotFound",
            f"The Resource '{SITES}/{arm.names[0]}' under resource group "
            f"'{arm.resource_group}' was not found.",
        )
    return site_id, host


def _read_index(state: State, site_id: str, host: FunctionHost) -> dict[str, str]:
    if host.functions != host.indexed:
        if host.index_reads_left <= 0:
            _index(state, site_id, host)
        else:
            host.index_reads_left -= 1
    return host.indexed


def _function(site_id: str, site: Json, name: str, trigger: str) -> Json:
    app = site["name"]
    hostname = site["properties"]["defaultHostName"]
    binding: Json = {"direction": "IN", "type": trigger, "name": "event"}
    if trigger == "httpTrigger":
        binding = {**binding, "name": "req", "methods": ["POST"], "authLevel": "FUNCTION"}
    url = (
        f"https://{hostname}/api/{name}"
        if trigger == "httpTrigger"
        else f"https://{hostname}/runtime/webhooks/eventgrid?functionName={name}"
        if trigger == "eventGridTrigger"
        else ""
    )
    return {
        "id": f"{site_id}/functions/{name}",
        "name": f"{app}/{name}",
        "type": FUNCTIONS,
        "location": site.get("location", ""),
        "properties": {
            "name": name,
            "function_app_id": None,
            "script_href": f"https://{hostname}/admin/vfs/home/site/wwwroot/function_app.py",
            "href": f"https://{hostname}/admin/functions/{name}",
            "config": {
                "name": name,
                "entryPoint": name,
                "scriptFile": "function_app.py",
                "language": "python",
                "functionDirectory": "/home/site/wwwroot",
                "bindings": [binding],
            },
            "test_data": "",
            "invoke_url_template": url,
            "language": "python",
            "isDisabled": False,
        },
    }


def _list_functions(state: State, arm: ArmRequest) -> list[Json]:
    site_id, host = _host_of(state, arm)
    site = state.get(site_id) or {}
    indexed = _read_index(state, site_id, host)
    return [_function(site_id, site, n, t) for n, t in sorted(indexed.items())]


def _host_keys(state: State, arm: ArmRequest) -> Response:
    site_id, host = _host_of(state, arm)
    indexed = _read_index(state, site_id, host)
    if any(t == "eventGridTrigger" for t in indexed.values()) and EVENT_GRID_KEY not in (
        host.system_keys
    ):
        if host.key_reads_left <= 0:
            host.system_keys[EVENT_GRID_KEY] = _key()
        else:
            host.key_reads_left -= 1
    return json_response(
        {
            "masterKey": host.master_key,
            "functionKeys": dict(host.host_keys),
            "systemKeys": dict(host.system_keys),
        }
    )


def _function_keys(state: State, arm: ArmRequest) -> Response:
    _, host = _host_of(state, arm)
    return json_response(dict(host.function_keys[arm.names[1]]))


def register(emulator: Emulator) -> None:
    arm = emulator.arm
    arm.register(ResourceKind(type=SITES, read_only=True))
    arm.register(
        ResourceKind(
            type=FUNCTIONS,
            read_only=True,
            list_children=_list_functions,
            actions={"listkeys": _function_keys},
        )
    )
    arm.register(ResourceKind(type=HOST, read_only=True, actions={"listkeys": _host_keys}))
