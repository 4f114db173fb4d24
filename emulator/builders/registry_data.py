"""Registry content for the ACR data plane: repositories, tags, manifests and blobs.

A registry spec may carry ``repositories``: repository -> tag -> platforms, for example::

    registries:
      - name: acrprodweu
        repositories:
          app: {v1: [linux/amd64, linux/arm64], v2: [linux/amd64]}
          win/api: {ltsc2022: [windows/amd64]}
          legacy: {"1.0": {platforms: [linux/amd64], format: docker}}

A platform is ``os/architecture[/variant][:os.version]`` (Windows gets the ltsc2022 build number
unless one is given). A tag with several platforms is pushed as an image index (a Docker manifest
list with ``format: docker``), a tag with one platform as a single manifest whose config blob
names the platform, as ``docker buildx`` and ``docker push`` do. Digests are the sha256 of the
exact bytes served, so they are stable across runs.

Breaks (``scenario.apply_break``): ``image-not-found`` (untag, or delete the repository when no
tag is given), ``arch-mismatch`` (re-push the tag for one architecture only: the one the cluster
lacks, or ``architecture``), ``os-mismatch`` (re-push the tag for one OS only: Linux when the
cluster has Windows pools, else Windows, or ``os``).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from typing import Any

from emulator.acr_data import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, digest_of
from emulator.scenario import REGISTRY_HOOKS, breaks, find_cluster, find_registry
from emulator.state import Json, State

# (index, manifest, config, layer) media types per format.
FORMATS = {
    "oci": (
        OCI_INDEX,
        OCI_MANIFEST,
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ),
    "docker": (
        DOCKER_LIST,
        DOCKER_MANIFEST,
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ),
}
WINDOWS_LTSC2022 = "10.0.20348.2762"
_PLATFORM = re.compile(
    r"^(?P<os>[a-z0-9]+)/(?P<architecture>[a-z0-9_]+)(?:/(?P<variant>[a-z0-9]+))?"
    r"(?::(?P<os_version>[0-9.]+))?$"
)
_REPOSITORY = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_CREATED = "2024-10-01T08:00:00Z"


def parse_platform(text: str) -> Json:
    match = _PLATFORM.match(str(text).strip())
    if match is None:
        raise ValueError(f"platform {text!r} is not os/architecture[/variant][:os.version]")
    platform: Json = {"architecture": match["architecture"], "os": match["os"]}
    if match["variant"]:
        platform["variant"] = match["variant"]
    if match["os_version"]:
        platform["os.version"] = match["os_version"]
    elif match["os"] == "windows":
        platform["os.version"] = WINDOWS_LTSC2022
    return platform


def _json_bytes(body: Json) -> bytes:
    # Registries serve manifests byte for byte as pushed; buildx indents with three spaces.
    return json.dumps(body, indent=3).encode()


def _layer(repository: str, tag: str, platform: Json) -> tuple[bytes, str]:
    """A real gzip'd tar with one file, so the diff id and the layer digest mean what they say."""
    content = f"{repository}:{tag} {platform['os']}/{platform['architecture']}\n".encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("etc/image-id")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), digest_of(tar_bytes)


def _single(store: Json, repository: str, tag: str, platform: Json, fmt: str) -> tuple[str, bytes]:
    _, manifest_type, config_type, layer_type = FORMATS[fmt]
    layer, diff_id = _layer(repository, tag, platform)
    config: Json = {
        "architecture": platform["architecture"],
        "os": platform["os"],
        **({"variant": platform["variant"]} if "variant" in platform else {}),
        **({"os.version": platform["os.version"]} if "os.version" in platform else {}),
        "created": _CREATED,
        "config": {"Cmd": ["/app"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": _CREATED, "created_by": "COPY app /app # buildkit"}],
    }
    config_bytes = _json_bytes(config)
    manifest: Json = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": config_type,
            "size": len(config_bytes),
            "digest": digest_of(config_bytes),
        },
        "layers": [{"mediaType": layer_type, "size": len(layer), "digest": digest_of(layer)}],
    }
    body = _json_bytes(manifest)
    store["blobs"][digest_of(config_bytes)] = config_bytes
    store["blobs"][digest_of(layer)] = layer
    store["manifests"][digest_of(body)] = {"mediaType": manifest_type, "body": body}
    return manifest_type, body


def push_image(
    state: State,
    registry_id: str,
    repository: str,
    tag: str,
    platforms: list[str],
    *,
    fmt: str = "oci",
) -> str:
    """Push ``repository:tag`` for ``platforms`` (as ``docker buildx build --push`` would); its digest."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of: {', '.join(FORMATS)}")
    if not _REPOSITORY.match(repository) or not _TAG.match(tag):
        raise ValueError(f"{repository}:{tag} is not a valid repository and tag")
    if not platforms:
        raise ValueError(f"{repository}:{tag} needs at least one platform")
    parsed = [parse_platform(p) for p in platforms]
    with state.lock:
        repositories = state.registry_repositories.setdefault(registry_id.lower(), {})
        store = repositories.setdefault(repository, {"tags": {}, "manifests": {}, "blobs": {}})
        if len(parsed) == 1:
            _, body = _single(store, repository, tag, parsed[0], fmt)
        else:
            entries = []
            for platform in parsed:
                child_type, child = _single(store, repository, tag, platform, fmt)
                entries.append(
                    {
                        "mediaType": child_type,
                        "size": len(child),
                        "digest": digest_of(child),
                        "platform": platform,
                    }
                )
            index_type = FORMATS[fmt][0]
            body = _json_bytes({"schemaVersion": 2, "mediaType": index_type, "manifests": entries})
            store["manifests"][digest_of(body)] = {"mediaType": index_type, "body": body}
        store["tags"][tag] = digest_of(body)
    return digest_of(body)


def index_children(state: State, registry_id: str, repository: str, digest: str) -> list[Json]:
    """The ``manifests`` entries of the index stored under ``digest`` (each child's digest and
    platform): what buildx pushed by digest, with no tag, before the index itself."""
    with state.lock:
        store = state.registry_repositories[registry_id.lower()][repository]
        body = store["manifests"][digest]["body"]
    entries: list[Json] = json.loads(body)["manifests"]
    return entries


def untag(state: State, registry_id: str, repository: str, tag: str) -> None:
    """``az acr repository untag``: the manifest stays, reachable by digest only."""
    with state.lock:
        store = state.registry_repositories.get(registry_id.lower(), {}).get(repository)
        if store is None or tag not in store["tags"]:
            raise KeyError(f"{repository}:{tag} is not in the registry")
        del store["tags"][tag]


def delete_repository(state: State, registry_id: str, repository: str) -> None:
    with state.lock:
        if state.registry_repositories.get(registry_id.lower(), {}).pop(repository, None) is None:
            raise KeyError(f"repository {repository!r} is not in the registry")


def build_repositories(state: State, registry: Json, spec: dict[str, Any]) -> None:
    for repository, tags in (spec.get("repositories") or {}).items():
        for tag, value in (tags or {}).items():
            if isinstance(value, dict):
                push_image(
                    state,
                    registry["id"],
                    repository,
                    str(tag),
                    list(value.get("platforms", [])),
                    fmt=value.get("format", "oci"),
                )
            else:
                push_image(state, registry["id"], repository, str(tag), list(value))


REGISTRY_HOOKS.append(build_repositories)


def _cluster_pools(state: State, spec: dict[str, Any]) -> list[Json]:
    if not spec.get("cluster"):
        return []
    return list(find_cluster(state, spec["cluster"])["properties"].get("agentPoolProfiles", []))


def _is_arm64(vm_size: str) -> bool:
    # Feature letters follow the vCPU count; "p" there means an Arm64 size (Standard_D4ps_v5).
    match = re.match(r"^[a-z]+_[a-z]+\d+(?:-\d+)?(?P<features>[a-z]*)", vm_size, re.IGNORECASE)
    return bool(match and "p" in match["features"].lower())


@breaks("image-not-found")
def remove_image(state: State, spec: dict[str, Any]) -> None:
    """The tag (or the whole repository when no tag is given) is gone from the registry."""
    registry = find_registry(state, spec["registry"])
    if spec.get("tag"):
        untag(state, registry["id"], spec["repository"], str(spec["tag"]))
    else:
        delete_repository(state, registry["id"], spec["repository"])


@breaks("arch-mismatch")
def push_single_architecture(state: State, spec: dict[str, Any]) -> None:
    """Someone pushed the tag again from a one-architecture build, over the multi-arch image."""
    architecture = spec.get("architecture")
    if architecture is None:
        linux = [p for p in _cluster_pools(state, spec) if p.get("osType", "Linux") == "Linux"]
        has_arm = any(_is_arm64(p.get("vmSize", "")) for p in linux)
        architecture = "amd64" if has_arm or not linux else "arm64"
    registry = find_registry(state, spec["registry"])
    push_image(
        state,
        registry["id"],
        spec["repository"],
        str(spec["tag"]),
        [f"linux/{architecture}"],
        fmt="docker",
    )


@breaks("os-mismatch")
def push_single_os(state: State, spec: dict[str, Any]) -> None:
    """The tag was pushed again for one OS only: Linux while the workload targets Windows nodes."""
    target_os = spec.get("os")
    if target_os is None:
        pools = _cluster_pools(state, spec)
        has_windows = any(p.get("osType") == "Windows" for p in pools)
        target_os = "linux" if has_windows or not pools else "windows"
    registry = find_registry(state, spec["registry"])
    push_image(
        state,
        registry["id"],
        spec["repository"],
        str(spec["tag"]),
        [f"{target_os}/amd64"],
        fmt="docker",
    )
