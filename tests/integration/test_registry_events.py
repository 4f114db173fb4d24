"""ImagePushed / ImageDeleted from a registry system topic, through the indexed ``registry_events``
function, in both schemas, against the emulator (registry data plane, clusters, GitHub issues).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emulator import scenario
from emulator.builders.registry_data import index_children, push_image, untag
from emulator.events import as_cloud_event, registry_image_event, with_string_data
from emulator.server import Emulator
from emulator.tickets import github_issues
from shared.errors import TransientError
from tests.conftest import SANDBOX_SUB
from tests.support.triggers import deliver_event, ticket_policy, writes

__all__ = ["ticket_policy"]  # the fixture, used by name

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CLUSTER = "aks-prod-weu"


def registry(emulator: Emulator, name: str = "acrprodweu") -> dict[str, Any]:
    return scenario.find_registry(emulator.state, name)


def pushed(emulator: Emulator, repository: str, tag: str, platforms: list[str]) -> dict[str, Any]:
    """Push the image into the emulator's registry, and the event ACR sends for it."""
    acr = registry(emulator)
    fmt = "docker" if len(platforms) == 1 else "oci"
    digest = push_image(emulator.state, acr["id"], repository, tag, platforms, fmt=fmt)
    return registry_image_event(
        acr["id"],
        acr["properties"]["loginServer"],
        repository,
        tag=tag,
        digest=digest,
        media_type=DOCKER_MANIFEST
        if fmt == "docker"
        else "application/vnd.oci.image.index.v1+json",
    )


def deleted(emulator: Emulator, repository: str, tag: str, *, with_tag: bool) -> dict[str, Any]:
    acr = registry(emulator)
    with emulator.state.lock:
        digest = emulator.state.registry_repositories[acr["id"].lower()][repository]["tags"][tag]
    untag(emulator.state, acr["id"], repository, tag)
    return registry_image_event(
        acr["id"],
        acr["properties"]["loginServer"],
        repository,
        action="delete",
        tag=tag if with_tag else None,
        digest=digest,
    )


def schema(event: dict[str, Any], name: str) -> dict[str, Any]:
    return as_cloud_event(event) if name == "cloud-events" else event


def findings(outcome: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["cause"]: f for f in outcome["findings"]}


def issue_titles(emulator: Emulator) -> list[str]:
    return sorted(i["title"] for i in github_issues(emulator.state))


SCHEMAS = pytest.mark.parametrize("wire", ["event-grid", "cloud-events"])

# A captured ACR delivery whose ``data`` is a JSON string (copied from the reference captures).
CAPTURE = (
    Path(__file__).parents[1]
    / "contract/examples/eventgrid/captures/acr_imagepushed_data_as_string.json"
)


@SCHEMAS
def test_captured_push_with_data_as_a_json_string_is_handled(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    wire: str,
) -> None:
    """The capture as ACR sent it, re-aimed at the sample registry: data stays a string."""
    (captured,) = json.loads(CAPTURE.read_text(encoding="utf-8"))
    assert isinstance(captured["data"], str)
    ours = pushed(emulator, "app", "v3", ["linux/amd64"])
    data = json.loads(captured["data"])
    data["target"].update(
        repository="app",
        tag="v3",
        digest=ours["data"]["target"]["digest"],
        mediaType=DOCKER_MANIFEST,
    )
    data["request"]["host"] = ours["data"]["request"]["host"]
    event = {**captured, "topic": ours["topic"], "subject": "app:v3", "data": json.dumps(data)}
    (outcome,) = deliver_event(functions, "registry_events", schema(event, wire), caplog)
    assert findings(outcome)["arch-mismatch"]["status"] == "FAIL"
    assert findings(outcome)["arch-mismatch"]["evidence"]["image"] == "acrprodweu.azurecr.io/app:v3"


def test_string_data_that_is_not_an_object_is_ignored(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = with_string_data(pushed(emulator, "app", "v3", ["linux/amd64"]))
    event["data"] = json.dumps([json.loads(event["data"])])
    (outcome,) = deliver_event(functions, "registry_events", event, caplog)
    assert outcome["verdict"] == "ignored"
    assert "no data object" in outcome["reason"]
    assert writes(emulator) == []


@SCHEMAS
def test_single_architecture_push_is_caught_before_any_pod_fails(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    wire: str,
) -> None:
    event = pushed(emulator, "app", "v3", ["linux/amd64"])
    outcomes = deliver_event(functions, "registry_events", schema(event, wire), caplog)

    # Only aks-prod-weu runs the app repository; aks-batch-weu runs nothing from it.
    assert [o["cluster"].rsplit("/", 1)[-1] for o in outcomes] == [CLUSTER]
    found = findings(outcomes[0])
    assert set(found) == {"arch-mismatch", "os-mismatch"}
    arch = found["arch-mismatch"]
    assert arch["status"] == "FAIL"
    assert arch["evidence"]["image"] == "acrprodweu.azurecr.io/app:v3"
    assert arch["evidence"]["platformsFound"] == ["linux/amd64"]
    assert [p["pool"] for p in arch["evidence"]["poolsAffected"]] == ["arm"]
    assert found["os-mismatch"]["status"] == "FAIL"
    assert found["os-mismatch"]["evidence"]["poolsWithoutImage"] == ["win"]
    assert issue_titles(emulator) == [
        f"[acr-pull] arch-mismatch on {CLUSTER}",
        f"[acr-pull] os-mismatch on {CLUSTER}",
    ]


@SCHEMAS
def test_push_without_windows_image_is_an_os_mismatch_only(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    wire: str,
) -> None:
    event = pushed(emulator, "app", "v4", ["linux/amd64", "linux/arm64"])
    (outcome,) = deliver_event(functions, "registry_events", schema(event, wire), caplog)
    found = findings(outcome)
    assert found["arch-mismatch"]["status"] == "PASS"
    assert found["os-mismatch"]["status"] == "FAIL"
    assert found["os-mismatch"]["evidence"]["imageOs"] == ["linux"]
    assert issue_titles(emulator) == [f"[acr-pull] os-mismatch on {CLUSTER}"]


def digest_pushes(emulator: Emulator, repository: str, index: str) -> list[dict[str, Any]]:
    """The digest-only ImagePushed events buildx causes: one per platform manifest of the index."""
    acr = registry(emulator)
    return [
        registry_image_event(
            acr["id"],
            acr["properties"]["loginServer"],
            repository,
            digest=child["digest"],
            media_type=child["mediaType"],
        )
        for child in index_children(emulator.state, acr["id"], repository, index)
    ]


@SCHEMAS
def test_platform_manifests_pushed_by_digest_are_checked_as_their_index(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    wire: str,
) -> None:
    """Each child is one platform; its index has them all: no arch- or os-mismatch."""
    index = pushed(emulator, "app", "v6", ["linux/amd64", "linux/arm64", "windows/amd64"])
    children = digest_pushes(emulator, "app", index["data"]["target"]["digest"])
    assert len(children) == 3 and all("tag" not in c["data"]["target"] for c in children)
    for child in children:
        (outcome,) = deliver_event(functions, "registry_events", schema(child, wire), caplog)
        assert outcome["verdict"] == "healthy", outcome["reason"]
        arch = findings(outcome)["arch-mismatch"]
        assert arch["evidence"]["image"] == "acrprodweu.azurecr.io/app:v6"
        assert arch["evidence"]["platformsFound"] == [
            "linux/amd64",
            "linux/arm64",
            "windows/amd64",
        ]
    assert github_issues(emulator.state) == []


def test_a_platform_manifest_no_tagged_index_references_is_skipped(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The children arrive before the index is tagged: skipped with a log line, no finding."""
    index = pushed(emulator, "app", "v7", ["linux/amd64", "linux/arm64"])
    untag(emulator.state, registry(emulator)["id"], "app", "v7")
    amd64 = digest_pushes(emulator, "app", index["data"]["target"]["digest"])[0]
    (outcome,) = deliver_event(functions, "registry_events", amd64, caplog)
    assert outcome["verdict"] == "ignored"
    assert "no tagged index references" in outcome["reason"]
    assert any(
        "skipped (the index's own push is checked)" in r.getMessage() for r in caplog.records
    )
    assert github_issues(emulator.state) == []


def test_an_index_pushed_by_digest_is_checked_as_it_is(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    index = pushed(emulator, "app", "v8", ["linux/amd64", "linux/arm64"])
    digest = index["data"]["target"]["digest"]
    untag(emulator.state, registry(emulator)["id"], "app", "v8")
    del index["data"]["target"]["tag"]
    (outcome,) = deliver_event(functions, "registry_events", index, caplog)
    found = findings(outcome)
    assert found["arch-mismatch"]["status"] == "PASS"
    assert found["os-mismatch"]["status"] == "FAIL"
    assert found["os-mismatch"]["evidence"]["image"] == f"acrprodweu.azurecr.io/app@{digest}"


def test_push_for_every_platform_is_healthy(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = pushed(emulator, "app", "v5", ["linux/amd64", "linux/arm64", "windows/amd64"])
    (outcome,) = deliver_event(functions, "registry_events", event, caplog)
    assert outcome["verdict"] == "healthy", outcome["reason"]
    assert github_issues(emulator.state) == []
    assert writes(emulator) == []


@SCHEMAS
@pytest.mark.parametrize("with_tag", [True, False], ids=["tag", "digest-only"])
def test_deleted_image_still_running_is_image_not_found(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    wire: str,
    with_tag: bool,
) -> None:
    event = deleted(emulator, "app", "v1", with_tag=with_tag)
    outcomes = deliver_event(functions, "registry_events", schema(event, wire), caplog)
    (outcome,) = outcomes
    (finding,) = outcome["findings"]
    assert finding["cause"] == "image-not-found"
    assert finding["status"] == "FAIL"
    assert finding["evidence"]["missing"] == "tag"
    assert finding["evidence"]["closestTag"] == "v2"
    assert outcome["decisions"][0]["ticket"]["title"] == f"[acr-pull] image-not-found on {CLUSTER}"
    assert issue_titles(emulator) == [f"[acr-pull] image-not-found on {CLUSTER}"]


def test_deleted_tag_nobody_runs_is_ignored(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = deleted(emulator, "app", "v2", with_tag=True)
    (outcome,) = deliver_event(functions, "registry_events", event, caplog)
    assert outcome["verdict"] == "ignored"
    assert "no cluster in scope runs acrprodweu.azurecr.io/app:v2" in outcome["reason"]
    assert writes(emulator) == []


def test_push_to_a_repository_nobody_runs_is_ignored(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = pushed(emulator, "tools/lint", "v1", ["linux/amd64"])
    (outcome,) = deliver_event(functions, "registry_events", event, caplog)
    assert outcome["verdict"] == "ignored"
    assert "no cluster in scope runs acrprodweu.azurecr.io/tools/lint" in outcome["reason"]
    assert writes(emulator) == []


def test_registry_outside_scope_is_ignored_without_reading(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = pushed(emulator, "app", "v3", ["linux/amd64"])
    event["topic"] = event["topic"].replace(event["topic"].split("/")[2], SANDBOX_SUB)
    (outcome,) = deliver_event(functions, "registry_events", event, caplog)
    assert outcome["verdict"] == "ignored"
    assert "outside the configured scope" in outcome["reason"]
    assert [e for e in emulator.journal("arm")] == []


def test_unknown_registry_is_ignored(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = pushed(emulator, "app", "v3", ["linux/amd64"])
    event["topic"] = event["topic"].replace("acrprodweu", "acrgone")
    (outcome,) = deliver_event(functions, "registry_events", event, caplog)
    assert outcome["verdict"] == "ignored"
    assert "registry acrgone cannot be read" in outcome["reason"]
    assert writes(emulator) == []


def test_a_redelivered_event_is_handled_once(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = pushed(emulator, "app", "v3", ["linux/amd64"])
    first = deliver_event(functions, "registry_events", event, caplog)
    assert first[0]["verdict"] == "needs-attention"
    again = deliver_event(functions, "registry_events", as_cloud_event(event), caplog)
    assert again[0]["verdict"] == "ignored"
    assert "already handled" in again[0]["reason"]
    assert len(github_issues(emulator.state)) == 2


def test_the_event_is_not_trusted_the_registry_is_read_again(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A delayed ImagePushed for a tag that has since been fixed: the checks read what is there."""
    event = pushed(emulator, "app", "v3", ["linux/amd64"])
    push_image(
        emulator.state,
        registry(emulator)["id"],
        "app",
        "v3",
        ["linux/amd64", "linux/arm64", "windows/amd64"],
    )
    (outcome,) = deliver_event(functions, "registry_events", event, caplog)
    assert outcome["verdict"] == "healthy"
    assert github_issues(emulator.state) == []


def test_throttling_beyond_retries_raises_and_the_retry_is_handled(
    emulator: Emulator,
    sample: dict[str, Any],
    ticket_policy: Any,
    functions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARM_RETRY_TOTAL", "1")
    event = pushed(emulator, "app", "v3", ["linux/amd64"])
    emulator.inject(r"/registries/acrprodweu$", method="GET", status=429, times=2)
    with pytest.raises(TransientError):
        deliver_event(functions, "registry_events", event, caplog)
    assert github_issues(emulator.state) == []
    # Event Grid delivers again: the failed attempt did not claim the event.
    outcomes = deliver_event(functions, "registry_events", event, caplog)
    assert outcomes[0]["verdict"] == "needs-attention"
