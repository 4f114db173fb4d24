"""Mistyped registry hosts: ``shopreg.azureacr.io`` for ``shopreg.azurecr.io``.

A pod whose image host is not a registry in scope is usually someone else's registry, but when
the host is one slip away from a login server in scope (the ``azureacr.io`` typo of the guide's
cause 2, a missing, extra, swapped or wrong letter), it is a pull of that registry that cannot
work, and image-not-found must say so. Only an unambiguous match pairs: a host as near to two
login servers names neither.
"""

from __future__ import annotations

from collections.abc import Iterable

# Edits allowed in the domain (``azureacr.io``, ``azurcr.io``, ``azurecr.com``): the registry
# name must then match exactly.
DOMAIN_EDITS = 2
# Edits allowed in the registry name, with the domain exact: a one-letter slip.
NAME_EDITS = 1
SHORTEST_NAME = 5  # registry names are 5-50 characters
# Real registry domains of the Azure clouds: a host in one of them is a registry, not a typo.
ACR_DOMAINS = frozenset({"azurecr.io", "azurecr.cn", "azurecr.us"})


def look_alike(host: str, login_servers: Iterable[str]) -> str | None:
    """The login server ``host`` is a near miss of, or None (exact, unrelated, or ambiguous)."""
    host = host.lower()
    name, _, domain = host.partition(".")
    found = set()
    for server in {s.lower() for s in login_servers}:
        if server == host:
            return None  # not a typo at all
        their_name, _, their_domain = server.partition(".")
        if not domain or not their_domain:
            continue
        mistyped_domain = (
            name == their_name
            and domain not in ACR_DOMAINS
            and edits(domain, their_domain, DOMAIN_EDITS) <= DOMAIN_EDITS
        )
        mistyped_name = (
            domain == their_domain
            and len(their_name) >= SHORTEST_NAME
            and edits(name, their_name, NAME_EDITS) <= NAME_EDITS
        )
        if mistyped_domain or mistyped_name:
            found.add(server)
    return found.pop() if len(found) == 1 else None


def edits(left: str, right: str, limit: int) -> int:
    """Optimal string alignment distance (a swap of neighbours is one edit), capped at limit+1."""
    if abs(len(left) - len(right)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(right) + 1))
    for i, a in enumerate(left, 1):
        current = [i] + [0] * len(right)
        for j, b in enumerate(right, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b))
            if i > 1 and j > 1 and a == right[j - 2] and left[i - 2] == b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)
