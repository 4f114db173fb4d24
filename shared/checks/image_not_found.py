"""Cause 2: the image name is wrong: registry host (``azureacr.io``), repository or tag/digest.

Without an image reference there is nothing to look up, and a PASS ("no image given") would
read as "the image exists": the check says UNKNOWN instead, with that reason. An invalid
reference (kubelet's ``InvalidImageName``) is a FAIL: the name is wrong by construction.
"""

from __future__ import annotations

from typing import Any

from shared.checks.base import Check, CheckMeta, Finding, Status, Target
from shared.errors import ReadError
from shared.images import ImageRef, InvalidImageReference, closest, parse_image
from shared.ports import Estate
from shared.ports.registries import Registry
from shared.ports.registry_data import IMAGE_READS, ManifestUnknown, RepositoryUnknown
from shared.resource_id import ResourceId

SHOWN_TAGS = 20


def target_registry(target: Target, estate: Estate, ref: ImageRef) -> Registry:
    """The target's registry, or the one the image's host names in the cluster's subscription."""
    if target.registry_id:
        return estate.get_registry(target.registry_id)
    subscription = target.cluster.resource.subscription_id
    return estate.find_registry(ref.registry, subscription_ids=(subscription,))


def locate(target: Target, estate: Estate) -> tuple[ImageRef, Registry]:
    """The image and its registry, or a ReadError (UNKNOWN) saying why they cannot be read."""
    if not target.image:
        raise ReadError("no image reference to check")
    try:
        ref = parse_image(target.image)
    except InvalidImageReference as exc:
        raise ReadError(f"{target.image[:200]!r} is not a valid image reference ({exc})") from exc
    registry = target_registry(target, estate, ref)
    if ref.registry != registry.login_server.lower():
        raise ReadError(
            f"{ref} is not in registry {registry.name} ({registry.login_server}); "
            "image-not-found reports the host"
        )
    return ref, registry


def names(target: Target) -> tuple[str, str, str]:
    """(registry name, repository, image) for commands, with placeholders for what is missing."""
    image, acr, repository = target.image or "<image>", "<acr>", "<repository>"
    try:
        ref = parse_image(image)
        acr, repository, image = ref.registry_name, ref.repository, str(ref)
    except InvalidImageReference:
        pass
    if target.registry_id:
        acr = ResourceId.parse(target.registry_id).name
    return acr, repository, image


class ImageNotFound(Check):
    meta = CheckMeta(
        id="image-not-found",
        family="2",
        title="The image reference names an existing registry, repository and tag",
        guide_section="Cause 2: Image not found error; Solution: Make sure image name is correct",
        severity="high",
        reads=(
            "Microsoft.ContainerRegistry/registries/read",
            *IMAGE_READS,
        ),
        action_id=None,
    )

    def evaluate(self, target: Target, estate: Estate) -> Finding:
        if not target.image:
            return self.finding(
                Status.UNKNOWN, "No image reference to check.", target, {}, fixable=False
            )
        try:
            ref = parse_image(target.image)
        except InvalidImageReference as exc:
            return self.finding(
                Status.FAIL,
                f"{target.image[:200]!r} is not a valid image reference ({exc}); kubelet "
                "rejects it with InvalidImageName.",
                target,
                {"image": target.image[:300], "problem": str(exc)},
                fixable=False,
            )
        registry = target_registry(target, estate, ref)
        login = registry.login_server.lower()
        evidence: dict[str, Any] = {
            "image": str(ref),
            "registry": registry.id,
            "loginServer": login,
        }
        if ref.registry != login:
            typo = (
                " (azureacr.io is a common typo of azurecr.io)"
                if "azureacr." in ref.registry
                else ""
            )
            return self.finding(
                Status.FAIL,
                f"{ref} names host {ref.registry}, but registry {registry.name} is {login}{typo}.",
                target,
                {
                    **evidence,
                    "imageHost": ref.registry,
                    "expectedHost": login,
                    "suggestion": str(ref.with_registry(login)),
                },
                fixable=False,
            )
        try:
            info = estate.get_manifest_platforms(login, ref.repository, ref.reference)
        except RepositoryUnknown:
            return self.finding(
                Status.FAIL,
                f"Registry {registry.name} has no repository {ref.repository}.",
                target,
                {**evidence, "missing": "repository", "repository": ref.repository},
                fixable=False,
            )
        except ManifestUnknown:
            return self._missing_reference(target, estate, ref, login, evidence)
        return self.finding(
            Status.PASS,
            f"{ref} exists in {registry.name} ({info.digest}).",
            target,
            {
                **evidence,
                "digest": info.digest,
                "mediaType": info.media_type,
                "platforms": [str(p) for p in info.platforms],
            },
        )

    def _missing_reference(
        self, target: Target, estate: Estate, ref: ImageRef, login: str, evidence: dict[str, Any]
    ) -> Finding:
        tags = estate.list_tags(login, ref.repository)
        kind = "digest" if ref.digest else "tag"
        suggestion = closest(ref.tag, tags) if ref.tag and not ref.digest else None
        hint = f"; the closest tag is {suggestion}" if suggestion else ""
        return self.finding(
            Status.FAIL,
            f"{ref.repository} in {login} has no {kind} {ref.reference}{hint}.",
            target,
            {
                **evidence,
                "missing": kind,
                "reference": ref.reference,
                "closestTag": suggestion,
                "availableTags": list(tags[:SHOWN_TAGS]),
                "tagCount": len(tags),
                **({"suggestion": f"{login}/{ref.repository}:{suggestion}"} if suggestion else {}),
            },
            fixable=False,
        )

    def commands(self, target: Target) -> tuple[str, ...]:
        acr, repository, image = names(target)
        return (
            f"az acr repository list -n {acr} -o table",
            f"az acr repository show-tags -n {acr} --repository {repository} -o table",
            f"az acr manifest list-metadata -r {acr} -n {repository} -o table",
            f"docker manifest inspect {image}",
        )
