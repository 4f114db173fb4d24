"""The registry data plane (Docker Registry HTTP API v2 and ACR's token service): images, not ARM.

A missing repository or manifest is data the image-not-found check needs, so it has its own
errors (:class:`RepositoryUnknown`, :class:`ManifestUnknown`); they are :class:`NotFound`, so a
check that does not catch them reports UNKNOWN like for any unreadable resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.errors import NotFound
from shared.images import ImageRef

__all__ = [
    "ImageRef",
    "ManifestInfo",
    "ManifestUnknown",
    "Platform",
    "RegistryDataPort",
    "RepositoryUnknown",
    "TagList",
]

# Reading tags and manifests: Reader's registries/pull/read, or on registries in ABAC
# repository-permissions mode (where pull/read no longer counts) these data actions.
IMAGE_READS = (
    "Microsoft.ContainerRegistry/registries/pull/read",
    "Microsoft.ContainerRegistry/registries/repositories/metadata/read",
    "Microsoft.ContainerRegistry/registries/repositories/content/read",
)
INDEX_MEDIA_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


@dataclass(frozen=True)
class Platform:
    """``os/architecture[/variant]`` as in an image index or an image config."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


@dataclass(frozen=True)
class ManifestInfo:
    """What a tag or digest resolves to: an index of platforms, or one platform's manifest."""

    digest: str
    media_type: str
    platforms: tuple[Platform, ...]
    # An index's ``manifests[].digest``: the platform manifests (and attestations) it references.
    children: tuple[str, ...] = ()

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def operating_systems(self) -> frozenset[str]:
        return frozenset(p.os.lower() for p in self.platforms)

    def architectures(self, os: str) -> frozenset[str]:
        return frozenset(
            p.architecture.lower() for p in self.platforms if p.os.lower() == os.lower()
        )


@dataclass(frozen=True)
class TagList:
    """One page of ``GET /v2/<name>/tags/list``; ``next_link`` is the ``Link rel="next"`` path."""

    repository: str
    tags: tuple[str, ...]
    next_link: str | None = None


class RepositoryUnknown(NotFound):
    """The registry has no such repository (``NAME_UNKNOWN``)."""


class ManifestUnknown(NotFound):
    """The repository exists but has no manifest for that tag or digest (``MANIFEST_UNKNOWN``)."""


class RegistryDataPort(Protocol):
    def get_manifest_platforms(
        self, login_server: str, repository: str, reference: str
    ) -> ManifestInfo:
        """Resolve a tag or digest; raises :class:`RepositoryUnknown` / :class:`ManifestUnknown`."""
        ...

    def list_tags(self, login_server: str, repository: str) -> tuple[str, ...]:
        """Every tag of the repository, in the registry's (lexical) order."""
        ...

    def registry_token_ok(
        self, login_server: str, username: str, password: str, repository: str
    ) -> bool:
        """Whether the token service grants a pull token for these credentials (a docker login)."""
        ...
