"""Image references parsed as kubelet/containerd parse them (distribution/reference)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.images import (
    ImageRef,
    InvalidImageReference,
    closest,
    is_reference,
    is_repository,
    parse_image,
)

SHA = "sha256:" + "a1" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", ImageRef("docker.io", "library/nginx", "latest")),
        ("nginx:1.27", ImageRef("docker.io", "library/nginx", "1.27")),
        ("docker.io/nginx", ImageRef("docker.io", "library/nginx", "latest")),
        ("index.docker.io/library/nginx:1", ImageRef("docker.io", "library/nginx", "1")),
        ("bitnami/redis:7.2", ImageRef("docker.io", "bitnami/redis", "7.2")),
        ("acrprod.azurecr.io/app:v1", ImageRef("acrprod.azurecr.io", "app", "v1")),
        ("ACRPROD.azurecr.io/team/app", ImageRef("acrprod.azurecr.io", "team/app", "latest")),
        (
            "acrprod.azurecr.io/a/b/c__d-e.f:V_1.0-rc",
            ImageRef("acrprod.azurecr.io", "a/b/c__d-e.f", "V_1.0-rc"),
        ),
        (f"acrprod.azurecr.io/app@{SHA}", ImageRef("acrprod.azurecr.io", "app", None, SHA)),
        (f"acrprod.azurecr.io/app:v1@{SHA}", ImageRef("acrprod.azurecr.io", "app", "v1", SHA)),
        ("localhost:5000/app:dev", ImageRef("localhost:5000", "app", "dev")),
        ("localhost/app", ImageRef("localhost", "app", "latest")),
        ("myregistry:5000/team/app", ImageRef("myregistry:5000", "team/app", "latest")),
        ("[::1]:5000/app:v1", ImageRef("[::1]:5000", "app", "v1")),
    ],
)
def test_parses_and_normalizes(text: str, expected: ImageRef) -> None:
    assert parse_image(text) == expected


def test_reference_is_digest_when_pinned() -> None:
    assert parse_image(f"acr.azurecr.io/app:v1@{SHA}").reference == SHA
    assert parse_image("acr.azurecr.io/app").reference == "latest"
    assert parse_image("acr.azurecr.io/app:v2").registry_name == "acr"
    assert parse_image("localhost:5000/app").registry_name == "localhost"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("acr.azurecr.io/App:v1", "lowercase"),
        ("Nginx", "lowercase"),
        ("MyOrg/app", "lowercase"),
        ("acr.azurecr.io/app:", "invalid tag"),
        ("acr.azurecr.io/app:-v1", "invalid tag"),
        ("acr.azurecr.io/app:" + "v" * 129, "invalid tag"),
        ("acr.azurecr.io/app@sha256:abc", "invalid digest"),
        ("acr.azurecr.io/app@sha256:" + "A1" * 32, "64 lower-case hex"),
        ("acr.azurecr.io/app@" + "a1" * 32, "invalid digest"),
        ("acr.azurecr.io//app", "invalid repository"),
        ("acr.azurecr.io/app-/x", "invalid repository"),
        ("-bad.azurecr.io/app", "invalid registry host"),
        ("acr.azurecr.io/" + "a" * 260, "longer than 255"),
    ],
)
def test_rejects_what_kubelet_rejects(text: str, problem: str) -> None:
    with pytest.raises(InvalidImageReference, match=problem):
        parse_image(text)


def test_validators() -> None:
    assert is_repository("team/app") and not is_repository("Team/app") and not is_repository("")
    assert is_reference("v1.0") and is_reference(SHA)
    assert not is_reference("sha256:" + "A1" * 32) and not is_reference("../x")


def test_closest_tag() -> None:
    tags = ["v1.2.1", "v2.0.0", "latest"]
    assert closest("v1.2.0", tags) == "v1.2.1"
    assert closest("lastest", tags) == "latest"
    assert closest("zzzzzz", tags) is None
    assert closest("v1", []) is None


@pytest.mark.parametrize(
    ("wanted", "meant"),
    [
        ("v1.2.O", "v1.2.0"),  # O for 0: plain edit distance ties with v1.2.1 and picked it
        ("V1.2.0", "v1.2.0"),
        ("v1.2.0-rc1", "v1.2.0-RC1"),
        ("re1ease", "release"),  # 1 for l
        ("v1.2.9", "v1.2.1"),  # the semantic-version neighbour, not the nearest string
        ("v2.0.1", "v2.0.0"),
    ],
)
def test_closest_tag_prefers_look_alikes_and_version_neighbours(wanted: str, meant: str) -> None:
    tags = ["v1.2.1", "v1.2.0", "v1.2.0-RC1", "v2.0.0", "v1.20.9", "release", "latest"]
    assert closest(wanted, tags) == meant


_component = st.from_regex(r"\A[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8}){0,2}\Z")


@given(
    host=st.sampled_from(
        ["acrprod.azurecr.io", "localhost:5000", "docker.io", "mcr.microsoft.com"]
    ),
    path=st.lists(_component, min_size=1, max_size=3),
    tag=st.one_of(st.none(), st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")),
    digest=st.one_of(st.none(), st.from_regex(r"\A[a-f0-9]{64}\Z").map(lambda h: f"sha256:{h}")),
)
def test_round_trips(host: str, path: list[str], tag: str | None, digest: str | None) -> None:
    text = (
        f"{host}/{'/'.join(path)}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    )
    parsed = parse_image(text)
    assert parse_image(str(parsed)) == parsed
    assert parsed.digest == digest
    assert parsed.reference == (digest or tag or "latest")
