"""Bad input, one negative test per class, through the indexed functions: it is logged and
ignored, never raised, and nothing is written (the emulator's journal shows no write). Transient
failures (ARM throttling or server errors beyond the retries, the state store unavailable) raise,
so Event Grid (or the queue) delivers again.
"""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

from emulator import scenario
from emulator.events import as_cloud_event, registry_image_event
from emulator.server import Emulator
from shared.errors import TransientError
from tests.conftest import SANDBOX_SUB
from tests.support.events import arm_event
from tests.support.triggers import deliver_event, process_handover, ticket_policy, writes

__all__ = ["ticket_policy"]  # the fixture, used by name

VMSS_WRITE = "Microsoft.Compute/virtualMachineScaleSets/write"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def broken(emulator: Emulator, sample: dict[str, Any]) -> dict[str, Any]:
    """A detached kubelet identity: a good event would lead to a ticket (a write)."""
    scenario.apply_break(
        emulator.state, {"cause": "kubelet-identity-detached", "cluster": "aks-prod-weu"}
    )
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")
    return scenario.node_pool_vmss(emulator.state, cluster)[0]


@pytest.fixture
def arm_good(broken: dict[str, Any]) -> dict[str, Any]:
    return arm_event(broken["id"], VMSS_WRITE)


@pytest.fixture
def image_good(emulator: Emulator, sample: dict[str, Any]) -> dict[str, Any]:
    acr = scenario.find_registry(emulator.state, "acrprodweu")
    return registry_image_event(
        acr["id"], acr["properties"]["loginServer"], "app", tag="v9", digest=DIGEST
    )


def ignored(
    functions: dict[str, Any],
    name: str,
    payload: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    emulator: Emulator,
) -> str:
    """Deliver; assert it was ignored with a log line (not raised) and wrote nothing; the reason."""
    outcomes = deliver_event(functions, name, payload, caplog)
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "shared.runtime" and r.levelname == "WARNING"
    ]
    assert outcomes or warnings, "every delivery logs what became of it"
    assert {o["verdict"] for o in outcomes} <= {"ignored"}, outcomes
    assert writes(emulator) == []
    reason = " ".join([o["reason"] for o in outcomes] + warnings)
    assert reason.isprintable() and len(reason) < 2000, reason[:300]
    return reason


def mutate(event: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(event)
    change(copied)
    return copied


# -- malformed JSON / not an object ----------------------------------------------------------------


@pytest.mark.parametrize("function", ["arm_events", "registry_events"])
@pytest.mark.parametrize(
    "data",
    ["{not json", None, [1, 2, 3], 42, {"status": 3, "operationName": ["x"]}],
    ids=["string", "null", "list", "number", "wrong-types"],
)
def test_malformed_data_is_ignored(
    emulator: Emulator,
    arm_good: dict[str, Any],
    image_good: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    function: str,
    data: Any,
) -> None:
    good = arm_good if function == "arm_events" else image_good
    payload = mutate(good, lambda e: e.update(data=data))
    ignored(functions, function, payload, caplog, emulator)
    ignored(functions, function, as_cloud_event(payload), caplog, emulator)


def test_envelope_without_id_or_type_is_ignored(
    emulator: Emulator,
    image_good: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for key in ("id", "eventType", "topic"):
        payload = mutate(image_good, lambda e, k=key: e.pop(k))
        assert "missing" in ignored(functions, "registry_events", payload, caplog, emulator)


# -- unknown event types and operations ------------------------------------------------------------


def test_unknown_event_types_are_ignored(
    emulator: Emulator,
    arm_good: dict[str, Any],
    image_good: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    blob = mutate(arm_good, lambda e: e.update(eventType="Microsoft.Storage.BlobCreated"))
    assert "not handled" in ignored(functions, "arm_events", blob, caplog, emulator)
    chart = mutate(
        image_good, lambda e: e.update(eventType="Microsoft.ContainerRegistry.ChartPushed")
    )
    assert "not handled" in ignored(functions, "registry_events", chart, caplog, emulator)
    # An ARM event sent to the registry function (a mis-wired subscription) is not an image event.
    assert "not handled" in ignored(functions, "registry_events", arm_good, caplog, emulator)


def test_unknown_operations_are_ignored(
    emulator: Emulator,
    broken: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = arm_event(broken["id"], "Microsoft.Compute/virtualMachineScaleSets/restart/action")
    assert "not handled" in ignored(functions, "arm_events", event, caplog, emulator)


# -- failed or canceled operations -----------------------------------------------------------------


@pytest.mark.parametrize(
    "event_type",
    [
        "Microsoft.Resources.ResourceActionFailure",
        "Microsoft.Resources.ResourceActionCancel",
        "Microsoft.Resources.ResourceDeleteFailure",
        "Microsoft.Resources.ResourceDeleteCancel",
    ],
)
def test_failed_or_canceled_operations_are_ignored(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    event_type: str,
) -> None:
    acr = scenario.find_registry(emulator.state, "acrprodweu")["id"]
    operation = (
        "Microsoft.ContainerRegistry/registries/regenerateCredential/action"
        if "Action" in event_type
        else "Microsoft.Authorization/roleAssignments/delete"
    )
    resource = (
        acr
        if "Action" in event_type
        else f"{acr}/providers/Microsoft.Authorization/roleAssignments/x"
    )
    status = "Failed" if "Failure" in event_type else "Canceled"
    event = arm_event(resource, operation, event_type=event_type, status=status)
    assert "did not succeed" in ignored(functions, "arm_events", event, caplog, emulator)
    assert emulator.journal("arm") == []


# -- other subscriptions and tenants ---------------------------------------------------------------


def test_other_subscriptions_and_tenants_are_ignored(
    emulator: Emulator,
    arm_good: dict[str, Any],
    image_good: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other_sub = mutate(arm_good, lambda e: e["data"].update(subscriptionId=SANDBOX_SUB))
    assert "outside the configured scope" in ignored(
        functions, "arm_events", other_sub, caplog, emulator
    )
    prod = image_good["topic"].split("/")[2]
    registry = mutate(image_good, lambda e: e.update(topic=e["topic"].replace(prod, SANDBOX_SUB)))
    assert "outside the configured scope" in ignored(
        functions, "registry_events", registry, caplog, emulator
    )
    monkeypatch.setenv("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47")
    tenant = mutate(
        arm_good, lambda e: e["data"].update(tenantId="11111111-2222-3333-4444-555555555555")
    )
    assert "not the configured tenant" in ignored(functions, "arm_events", tenant, caplog, emulator)
    assert emulator.journal("arm") == []


# -- oversized payloads ----------------------------------------------------------------------------


def test_oversized_payloads_are_ignored(
    emulator: Emulator,
    arm_good: dict[str, Any],
    image_good: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    huge = mutate(image_good, lambda e: e["data"].update(padding="x" * (1024 * 1024 + 1)))
    assert "larger than Event Grid" in ignored(functions, "registry_events", huge, caplog, emulator)
    long_tag = mutate(image_good, lambda e: e["data"]["target"].update(tag="v" * 3000))
    assert "longer than" in ignored(functions, "registry_events", long_tag, caplog, emulator)
    long_uri = mutate(
        arm_good, lambda e: e["data"].update(resourceUri=e["data"]["resourceUri"] + "/x" * 1500)
    )
    assert "longer than" in ignored(functions, "arm_events", long_uri, caplog, emulator)
    assert emulator.journal("arm") == []


# -- hostile strings -------------------------------------------------------------------------------

HOSTILE_REPOSITORIES = {
    "traversal": "../../../etc/passwd",
    "url": "app/../../v2/_catalog",
    "control": "app\x00\r\nX-Injected: 1",
    "ansi": "app\x1b[31m",
    "long": "a" * 10_000,
    "unicode": "\u0430pp",  # a Cyrillic a: looks like "app"
    "upper": "App",
}


@pytest.mark.parametrize("value", HOSTILE_REPOSITORIES.values(), ids=HOSTILE_REPOSITORIES.keys())
def test_hostile_image_names_are_ignored(
    emulator: Emulator,
    image_good: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    value: str,
) -> None:
    payload = mutate(image_good, lambda e: e["data"]["target"].update(repository=value))
    reason = ignored(functions, "registry_events", payload, caplog, emulator)
    assert "invalid repository" in reason or "control characters" in reason or "longer" in reason
    assert emulator.journal() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tag", "v1\n"),
        ("tag", "../v1"),
        ("digest", "sha256:../../x"),
        ("host", "evil.example.com/@acrprodweu.azurecr.io"),
        ("host", "acrprodweu.azurecr.io\x00"),
        (
            "topic",
            "/subscriptions/x/resourceGroups/../providers/Microsoft.ContainerRegistry/registries/a/b/c",
        ),
        ("topic", "/subscriptions/" + "9" * 10_000),
        ("id", "id\x07"),
    ],
)
def test_hostile_registry_event_fields_are_ignored(
    emulator: Emulator,
    image_good: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    field: str,
    value: str,
) -> None:
    def change(event: dict[str, Any]) -> None:
        if field in ("tag", "digest"):
            event["data"]["target"][field] = value
        elif field == "host":
            event["data"]["request"]["host"] = value
        else:
            event[field] = value

    ignored(functions, "registry_events", mutate(image_good, change), caplog, emulator)
    assert emulator.journal() == []


@pytest.mark.parametrize(
    "resource",
    [
        "/subscriptions/{sub}/resourceGroups/../../providers/Microsoft.Compute/virtualMachineScaleSets/x",
        "/subscriptions/{sub}/resourceGroups/rg\x00\r\n/providers/Microsoft.Compute/virtualMachineScaleSets/x",
        "/subscriptions/{sub}/resourceGroups/rg-ünïcödé/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-ü",
        "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/"
        + "x" * 10_000,
        "not a resource id at all",
    ],
    ids=["traversal", "control", "unicode", "long", "garbage"],
)
def test_hostile_resource_ids_are_ignored(
    emulator: Emulator,
    broken: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    resource: str,
) -> None:
    sub = broken["id"].split("/")[2]
    event = arm_event(broken["id"], VMSS_WRITE)
    event["data"]["resourceUri"] = resource.format(sub=sub)
    event["subject"] = event["data"]["resourceUri"]
    ignored(functions, "arm_events", event, caplog, emulator)


# -- hand-over messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[]",
        json.dumps({"v": 2, "sweep": "drift", "signal": "s"}),
        json.dumps({"v": 1, "sweep": "format-disk", "signal": "s"}),
        json.dumps(
            {
                "v": 1,
                "sweep": "drift",
                "signal": "s",
                "cluster": "/x",
                "causes": ["acrpull-missing"],
            }
        ),
        json.dumps(
            {
                "v": 1,
                "sweep": "drift",
                "signal": "s",
                "cluster": f"/subscriptions/{SANDBOX_SUB}/resourceGroups/rg-aks-dev/providers/Microsoft.ContainerService/managedClusters/aks-dev-neu",
                "causes": ["acrpull-missing"],
            }
        ),
        "CLUSTER:rm -rf",
        json.dumps(
            {
                "v": 1,
                "sweep": "expiry",
                "signal": "s",
                "app": "../../x",
                "clusters": [],
                "pullSecrets": [],
            }
        ),
        "x" * 70_000,
    ],
    ids=[
        "not-json",
        "not-object",
        "version",
        "sweep",
        "cluster-id",
        "out-of-scope",
        "garbage",
        "app-id",
        "oversized",
    ],
)
def test_bad_handover_messages_are_dropped(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    body: str,
) -> None:
    (outcome,) = process_handover(functions, [body], caplog)
    assert outcome["verdict"] == "ignored"
    assert emulator.journal() == []


def test_unknown_causes_in_a_handover_message_are_dropped(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = scenario.find_cluster(emulator.state, "aks-prod-weu")["id"]
    body = json.dumps(
        {"v": 1, "sweep": "drift", "signal": "s", "cluster": cluster, "causes": ["rm-rf"]}
    )
    (outcome,) = process_handover(functions, [body], caplog)
    assert "not known cause ids" in outcome["reason"]
    assert emulator.journal() == []


# -- transient failures raise ----------------------------------------------------------------------


@pytest.mark.parametrize("function", ["arm_events", "registry_events"])
def test_server_errors_beyond_retries_raise(
    emulator: Emulator,
    arm_good: dict[str, Any],
    image_good: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
) -> None:
    monkeypatch.setenv("ARM_RETRY_TOTAL", "1")
    emulator.inject(r"/(managedClusters|registries/acrprodweu)$", method="GET", status=503)
    payload = arm_good if function == "arm_events" else image_good
    with pytest.raises(TransientError):
        deliver_event(functions, function, payload, caplog)
    assert writes(emulator) == []


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("function", ["arm_events", "registry_events"])
def test_state_store_unavailable_raises(
    emulator: Emulator,
    arm_good: dict[str, Any],
    image_good: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    app_env: dict[str, str],
    function: str,
) -> None:
    port = closed_port()
    unavailable = app_env["STATE_STORAGE_CONNECTION_STRING"].replace(
        app_env["STATE_STORAGE_CONNECTION_STRING"].split("TableEndpoint=")[1].split(";")[0],
        f"http://127.0.0.1:{port}/devstoreaccount1",
    )
    monkeypatch.setenv("STATE_STORAGE_CONNECTION_STRING", unavailable)
    payload = arm_good if function == "arm_events" else image_good
    with pytest.raises(TransientError, match="state store"):
        deliver_event(functions, function, payload, caplog)
    assert writes(emulator) == []
