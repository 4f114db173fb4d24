"""image-not-found through the real ARM and registry data-plane clients against the emulator."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from emulator import scenario
from emulator.builders.registry_data import push_image
from emulator.server import Emulator
from shared.checks.base import Finding, Status, Target
from shared.checks.image_not_found import ImageNotFound
from shared.errors import TransientError
from tests.conftest import PROD_SUB
from tests.support.estate import fresh_estate

REGISTRY_ID = f"/subscriptions/{PROD_SUB}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/acr1"
TAGS = ["v1.2.0", "v1.2.1", "v2.0.0", "latest"]


def estate_spec(
    registry: dict[str, Any] | None = None, breaks: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [
                    {"name": "rg-aks", "clusters": [{"name": "aks1"}]},
                    {
                        "name": "rg-acr",
                        "registries": [
                            {
                                "name": "acr1",
                                "repositories": {
                                    "team/app": {t: ["linux/amd64", "linux/arm64"] for t in TAGS}
                                },
                                **(registry or {}),
                            }
                        ],
                    },
                ],
            }
        ],
        "breaks": breaks or [],
    }


def run(emulator: Emulator, image: str | None, *, registry_id: str | None = REGISTRY_ID) -> Finding:
    estate = fresh_estate()
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, "aks1")["id"])
    return ImageNotFound().run(Target(cluster, registry_id, image), estate)


def tag_digest(emulator: Emulator, tag: str) -> str:
    return str(emulator.state.registry_repositories[REGISTRY_ID.lower()]["team/app"]["tags"][tag])


def test_existing_tag_passes(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec())
    finding = run(emulator, "acr1.azurecr.io/team/app:v1.2.0")
    assert finding.status is Status.PASS, finding.summary
    assert finding.evidence["digest"] == tag_digest(emulator, "v1.2.0")
    assert finding.evidence["platforms"] == ["linux/amd64", "linux/arm64"]
    assert finding.action_id is None


def test_removed_tag_fails_with_closest_tag(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            breaks=[
                {
                    "cause": "image-not-found",
                    "registry": "acr1",
                    "repository": "team/app",
                    "tag": "v1.2.0",
                }
            ]
        ),
    )
    finding = run(emulator, "acr1.azurecr.io/team/app:v1.2.0")
    assert finding.status is Status.FAIL
    assert finding.evidence["missing"] == "tag"
    assert finding.evidence["closestTag"] == "v1.2.1"
    assert finding.evidence["suggestion"] == "acr1.azurecr.io/team/app:v1.2.1"
    assert finding.evidence["availableTags"] == ["latest", "v1.2.1", "v2.0.0"]
    assert finding.action_id is None
    assert "az acr repository show-tags -n acr1 --repository team/app -o table" in finding.commands
    assert [e.status for e in emulator.journal("acr") if "/manifests/" in e.path] == [404]


@pytest.mark.parametrize("typed", ["v1.2.O", "V1.2.0", "v1.2.o"])
def test_look_alike_tag_suggests_the_tag_it_looks_like(
    emulator: Emulator, app_env: dict[str, str], typed: str
) -> None:
    """v1.2.0 and v1.2.1 both exist: v1.2.O is one look-alike character from v1.2.0."""
    scenario.load(emulator.state, estate_spec())
    finding = run(emulator, f"acr1.azurecr.io/team/app:{typed}")
    assert finding.status is Status.FAIL
    assert finding.evidence["missing"] == "tag"
    assert finding.evidence["closestTag"] == "v1.2.0"
    assert finding.evidence["suggestion"] == "acr1.azurecr.io/team/app:v1.2.0"


def test_many_tags_are_paged_and_evidence_shows_the_first_twenty(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec())
    for n in range(150):
        push_image(emulator.state, REGISTRY_ID, "team/app", f"build-{n:03d}", ["linux/amd64"])
    finding = run(emulator, "acr1.azurecr.io/team/app:build-1000")
    assert finding.status is Status.FAIL
    assert finding.evidence["tagCount"] == 154
    assert finding.evidence["availableTags"] == [f"build-{n:03d}" for n in range(20)]
    assert finding.evidence["closestTag"] == "build-100"
    assert len([e for e in emulator.journal("acr") if e.path.endswith("/tags/list")]) == 2


def test_missing_repository_fails(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            breaks=[{"cause": "image-not-found", "registry": "acr1", "repository": "team/app"}]
        ),
    )
    finding = run(emulator, "acr1.azurecr.io/team/app:v1.2.0")
    assert finding.status is Status.FAIL
    assert finding.evidence["missing"] == "repository"
    assert "has no repository team/app" in finding.summary


def test_mistyped_login_server_fails_without_contacting_it(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec())
    finding = run(emulator, "acr1.azureacr.io/team/app:v1.2.0")
    assert finding.status is Status.FAIL
    assert finding.evidence["imageHost"] == "acr1.azureacr.io"
    assert finding.evidence["expectedHost"] == "acr1.azurecr.io"
    assert finding.evidence["suggestion"] == "acr1.azurecr.io/team/app:v1.2.0"
    assert "common typo" in finding.summary
    assert emulator.journal("acr") == []


def test_registry_found_by_host_when_target_has_none(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec())
    finding = run(emulator, "acr1.azureacr.io/team/app:v1.2.0", registry_id=None)
    assert finding.status is Status.FAIL
    assert finding.evidence["registry"] == REGISTRY_ID


def test_missing_digest_fails_and_existing_digest_passes(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec())
    missing = run(emulator, "acr1.azurecr.io/team/app@sha256:" + "ab" * 32)
    assert missing.status is Status.FAIL
    assert missing.evidence["missing"] == "digest"
    assert missing.evidence["closestTag"] is None
    pinned = run(emulator, f"acr1.azurecr.io/team/app:ignored@{tag_digest(emulator, 'v2.0.0')}")
    assert pinned.status is Status.PASS, pinned.summary


def test_invalid_reference_fails(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec())
    finding = run(emulator, "acr1.azurecr.io/Team/App:v1")
    assert finding.status is Status.FAIL
    assert "lowercase" in finding.evidence["problem"]
    assert emulator.journal("acr") == []


def test_no_image_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec())
    finding = run(emulator, None)
    assert finding.status is Status.UNKNOWN
    assert finding.summary == "No image reference to check."


def test_registry_firewall_denying_the_app_is_unknown(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(
        emulator.state,
        estate_spec({"networkRuleSet": {"defaultAction": "Deny", "ipRules": ["203.0.113.7"]}}),
    )
    finding = run(emulator, "acr1.azurecr.io/team/app:v1.2.0")
    assert finding.status is Status.UNKNOWN
    assert "client with IP '127.0.0.1' is not allowed access" in finding.summary
    assert [e.status for e in emulator.journal("acr")] == [403]


def test_firewall_allowing_the_app_passes(emulator: Emulator, app_env: dict[str, str]) -> None:
    rules = {"defaultAction": "Deny", "ipRules": ["127.0.0.0/8"]}
    scenario.load(emulator.state, estate_spec({"networkRuleSet": rules}))
    assert run(emulator, "acr1.azurecr.io/team/app:v1.2.0").status is Status.PASS


def test_denied_identity_is_unknown(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec())
    emulator.deny(REGISTRY_ID)
    finding = run(emulator, "acr1.azurecr.io/team/app:v1.2.0")
    assert finding.status is Status.UNKNOWN
    assert finding.evidence == {"unreadable": REGISTRY_ID}


def test_no_pull_rights_on_data_plane_is_unknown(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec())
    registry = fresh_estate()
    estate_cluster = registry.get_cluster(scenario.find_cluster(emulator.state, "aks1")["id"])
    registry.get_registry(REGISTRY_ID)  # read (and cached) before the identity loses its rights
    emulator.deny(REGISTRY_ID)
    finding = ImageNotFound().run(
        Target(estate_cluster, REGISTRY_ID, "acr1.azurecr.io/team/app:v1.2.0"), registry
    )
    assert finding.status is Status.UNKNOWN
    assert "not authorized" in finding.summary
    manifest_reads = [e.status for e in emulator.journal("acr") if "/manifests/" in e.path]
    assert manifest_reads == [401]


def test_persistent_registry_errors_raise_for_a_retry(
    emulator: Emulator, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARM_RETRY_TOTAL", "1")
    scenario.load(emulator.state, estate_spec())
    emulator.inject(r"^/acr/.*/manifests/", method="GET", status=503)
    with pytest.raises(TransientError):
        run(emulator, "acr1.azurecr.io/team/app:v1.2.0")
    assert [e.status for e in emulator.journal("acr") if "/manifests/" in e.path] == [503, 503]


def test_throttled_manifest_read_is_retried(emulator: Emulator, app_env: dict[str, str]) -> None:
    scenario.load(emulator.state, estate_spec())
    emulator.inject(r"^/acr/.*/manifests/", method="GET", status=429, times=1)
    assert run(emulator, "acr1.azurecr.io/team/app:v1.2.0").status is Status.PASS


def test_tokens_never_reach_the_logs(
    emulator: Emulator, app_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    scenario.load(
        emulator.state,
        estate_spec(
            breaks=[
                {
                    "cause": "image-not-found",
                    "registry": "acr1",
                    "repository": "team/app",
                    "tag": "latest",
                }
            ]
        ),
    )
    with caplog.at_level(logging.DEBUG):
        finding = run(emulator, "acr1.azurecr.io/team/app:latest")
    assert finding.status is Status.FAIL
    issued = [*emulator.state.acr_tokens, *emulator.state.tokens]
    assert len(issued) >= 3
    text = caplog.text + repr(finding.to_dict())
    assert caplog.records
    assert not [t for t in issued if t in text or t.split(".")[-1] in text]
