"""Image references as kubelet and containerd read them, and the closest-tag suggestion.

The grammar is the one of ``github.com/distribution/reference``: an optional registry host (a
first component with a ``.`` or ``:``, or ``localhost``), a lower-case repository path, an
optional ``:tag`` and an optional ``@algorithm:hex`` digest. A name without a host is a Docker Hub
name (``nginx`` is ``docker.io/library/nginx``); a name without tag or digest means ``latest``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
_LEGACY_HUB_HOSTS = ("index.docker.io", "registry-1.docker.io")
MAX_NAME_LENGTH = 255

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST = re.compile(
    r"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256 = re.compile(r"^sha256:[a-f0-9]{64}$")


class InvalidImageReference(ValueError):
    """The string is not an image reference kubelet would accept (``InvalidImageName``)."""


@dataclass(frozen=True)
class ImageRef:
    """A parsed, normalized image reference; :attr:`reference` is what a registry is asked for."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """The manifest reference to resolve: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def registry_name(self) -> str:
        """The first label of the host: the registry name for ``<name>.azurecr.io``."""
        return self.registry.split(".", 1)[0].split(":", 1)[0]

    def with_registry(self, registry: str) -> ImageRef:
        return ImageRef(registry, self.repository, self.tag, self.digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image(text: str) -> ImageRef:
    """Parse ``[host[:port]/]path[:tag][@digest]``; raise :class:`InvalidImageReference`."""
    value = text.strip()
    if not value:
        raise InvalidImageReference("the image reference is empty")
    name, digest = value, None
    if "@" in value:
        name, digest = value.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidImageReference(f"invalid digest {digest[:80]!r}")
        if digest.startswith("sha256:") and not _SHA256.match(digest):
            raise InvalidImageReference("a sha256 digest has 64 lower-case hex characters")
    tag = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidImageReference(f"invalid tag {tag[:80]!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidImageReference(
            f"the repository name is longer than {MAX_NAME_LENGTH} characters"
        )
    host, path = _split_host(name)
    components = path.split("/")
    for component in components:
        if _COMPONENT.match(component):
            continue
        if _COMPONENT.match(component.lower()):
            raise InvalidImageReference(f"repository name must be lowercase: {path[:120]!r}")
        raise InvalidImageReference(f"invalid repository name {path[:120]!r}")
    if host == DOCKER_HUB and len(components) == 1:
        path = f"library/{path}"
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(registry=host, repository=path, tag=tag, digest=digest)


def _split_host(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if not _HOST.match(first):
            raise InvalidImageReference(f"invalid registry host {first[:120]!r}")
        host = first.lower()
        return (DOCKER_HUB if host in _LEGACY_HUB_HOSTS else host), rest
    return DOCKER_HUB, name


def is_repository(name: str) -> bool:
    """A valid repository path (lower-case components separated by ``/``)."""
    return 0 < len(name) <= MAX_NAME_LENGTH and all(_COMPONENT.match(c) for c in name.split("/"))


def is_reference(reference: str) -> bool:
    """A valid tag or digest to ask a registry for."""
    if ":" not in reference:
        return bool(_TAG.match(reference))
    return bool(_DIGEST.match(reference)) and (
        not reference.startswith("sha256:") or bool(_SHA256.match(reference))
    )


def is_host(host: str) -> bool:
    return bool(_HOST.match(host))


# Characters people and fonts confuse in tags: compared as one (after folding case).
_LOOK_ALIKE = str.maketrans({"o": "0", "l": "1", "i": "1"})
_VERSION = re.compile(r"v?(\d+(?:\.\d+){1,3})")


def _fold(text: str) -> str:
    return text.lower().translate(_LOOK_ALIKE)


def closest(wanted: str, candidates: Iterable[str], *, cutoff: float = 0.5) -> str | None:
    """The candidate a person most likely meant by ``wanted``, or None when nothing is close.

    Ranked: a look-alike spelling of the same tag (``v1.2.O`` / ``V1.2.0`` for ``v1.2.0``), then
    the nearest semantic-version neighbour (same major.minor, nearest patch), then plain edit
    distance (difflib ratio) over the folded spellings.
    """
    tags = list(dict.fromkeys(candidates))
    folded = _fold(wanted)
    same = [t for t in tags if _fold(t) == folded]
    if same:
        return min(same, key=lambda t: sum(a != b for a, b in zip(t, wanted, strict=False)))
    neighbour = _version_neighbour(folded, tags)
    if neighbour is not None:
        return neighbour
    by_fold: dict[str, str] = {}
    for tag in tags:
        by_fold.setdefault(_fold(tag), tag)
    matches = difflib.get_close_matches(folded, list(by_fold), n=1, cutoff=cutoff)
    return by_fold[matches[0]] if matches else None


def _version_neighbour(folded: str, tags: list[str]) -> str | None:
    wanted = _VERSION.fullmatch(folded)
    if wanted is None:
        return None
    want = [int(x) for x in wanted[1].split(".")]
    best: tuple[tuple[int, int], str] | None = None
    for tag in tags:
        found = _VERSION.fullmatch(_fold(tag))
        if found is None:
            continue
        have = [int(x) for x in found[1].split(".")]
        if len(have) != len(want) or have[:-1] != want[:-1]:
            continue
        key = (abs(have[-1] - want[-1]), -have[-1])  # nearest; on a tie, the newer
        if best is None or key < best[0]:
            best = (key, tag)
    return best[1] if best else None
