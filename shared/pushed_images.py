"""Which image an ImagePushed event is about, as a pod would name it.

Multi-platform builds (``docker buildx build --push``, ``oras``, ACR Tasks) push each platform's
manifest by digest, with no tag, and then the index that references them under a tag. A child
manifest is one platform: checking it as if it were the image flags every node pool of another
architecture. So a digest-only push is resolved to a tag whose index references it, and when no
index does (yet: it usually arrives a moment later, with its own event), it is skipped.
"""

from __future__ import annotations

import logging

from shared.errors import ReadError
from shared.ports import Estate
from shared.signals import RegistryImageEvent

log = logging.getLogger(__name__)

# Tags read to find the index of a child manifest; the newest are last in ACR's lexical order
# only by accident, so this bounds the reads rather than choosing the likely tags.
MAX_TAGS_READ = 100


def pushed_image(estate: Estate, login_server: str, event: RegistryImageEvent) -> str | None:
    """``login/repo:tag`` or ``login/repo@digest`` to check; None for a child no index references."""
    login = login_server.lower()
    if event.tag or not event.digest:
        return event.image(login)
    repository, digest = event.repository, event.digest
    try:
        pushed = estate.get_manifest_platforms(login, repository, digest)
        if pushed.is_index:
            return event.image(login)  # an index pushed by digest is a whole image
        for tag in estate.list_tags(login, repository)[-MAX_TAGS_READ:]:
            found = estate.get_manifest_platforms(login, repository, tag)
            if found.is_index and digest in found.children:
                log.info(
                    "%s/%s@%s is a platform manifest of %s:%s; checking the index",
                    login,
                    repository,
                    digest,
                    repository,
                    tag,
                )
                return f"{login}/{repository}:{tag}"
    except ReadError as exc:
        # The checks read the registry again and report what they cannot read as UNKNOWN.
        log.info("cannot resolve %s/%s@%s: %s", login, repository, digest, exc.reason)
        return event.image(login)
    log.info(
        "%s/%s@%s is a platform manifest pushed by digest that no tagged index references: "
        "skipped (the index's own push is checked)",
        login,
        repository,
        digest,
    )
    return None
