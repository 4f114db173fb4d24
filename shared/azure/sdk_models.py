"""Azure SDK model classes set up once, in one thread, before threads share them.

The typespec-generated models (``azure.mgmt.*._utils.model_base``) build each class's table of
fields the first time an object of that class is made, and that first-time setup is not
thread-safe: when several threads make the first objects of related classes at once, the
deserializer fails and silently falls back to the raw JSON, so a reader gets a ``dict`` where
a model was expected (Azure/azure-sdk-for-python#47426; seen here as ``'dict' object has no
attribute 'default_action'`` on a registry's network rules, with ten clusters checked at once).

So, under a lock, before a package's first client is made or its first model is built from a
Resource Graph row, the classes the readers deserialize are set up: the roots below and every
model class their fields name, transitively (about 600 classes, 0.3 s once per process, most
of which the first diagnosis would spend anyway). Packages with the older msrest models
(authorization, msi) have no such setup and are not listed.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Iterable
from typing import Any

ROOTS: dict[str, tuple[str, ...]] = {
    "azure.mgmt.containerregistry": ("Registry",),
    "azure.mgmt.containerservice": (
        "ManagedCluster",
        "AgentPool",
        "CredentialResults",
        "RunCommandResult",
    ),
    "azure.mgmt.network": (
        "VirtualNetwork",
        "RouteTable",
        "PublicIPAddress",
        "PublicIPPrefix",
        "PrivateEndpoint",
        "NatGateway",
        "LoadBalancer",
    ),
    "azure.mgmt.privatedns": ("PrivateZone", "VirtualNetworkLink"),
    "azure.mgmt.compute": ("VirtualMachineScaleSet", "VirtualMachine"),
}
_NAMED = re.compile(r"_models\.(\w+)")
_lock = threading.Lock()
_ready: set[str] = set()


def ready(package: str) -> None:
    """Set up the model classes of ``package`` (``azure.mgmt.containerregistry``) once."""
    if package in _ready or package not in ROOTS:
        return
    with _lock:
        if package not in _ready:
            _set_up(importlib.import_module(f"{package}.models"), ROOTS[package])
            _ready.add(package)


def ready_for(cls: type) -> None:
    """:func:`ready` for the package of a client class (``NetworkManagementClient``)."""
    ready(cls.__module__.split("._", 1)[0])


def _set_up(models: object, roots: Iterable[str]) -> None:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found = getattr(models, name, None)
        if not (isinstance(found, type) and getattr(found, "_is_model", False)):
            continue
        cls: Any = found  # a generated model class: its __new__ is the SDK's
        cls.__new__(cls)  # Model.__new__ computes the class's field table; the object is dropped
        for base in cls.__mro__:
            for annotation in getattr(base, "__annotations__", {}).values():
                todo += _NAMED.findall(str(annotation))
