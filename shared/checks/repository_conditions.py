"""ABAC repository conditions of registries in ``AbacRepositoryPermissions`` mode.

On such a registry a role assignment may carry a condition on the repository name
(``@Resource[Microsoft.ContainerRegistry/registries/repositories:name]``), so a grant holds only
for the repositories its condition allows. These helpers evaluate a condition for one repository
with :mod:`shared.abac`, and write the condition ``attach-acr`` puts on the grants it makes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.abac import ConditionNotEvaluable, ConditionSyntaxError, Request, evaluate
from shared.ports.rbac import REPOSITORY_READ_DATA_ACTION

REPOSITORY_NAME = "@Resource[Microsoft.ContainerRegistry/registries/repositories:name]"
REPOSITORY_METADATA_READ = "Microsoft.ContainerRegistry/registries/repositories/metadata/read"


@dataclass(frozen=True)
class Verdict:
    """Does a condition let the holder pull ``repository``? ``allowed`` is None when it cannot
    be told, with the reason."""

    allowed: bool | None
    reason: str = ""


def allows_repository(condition: str, repository: str | None) -> Verdict:
    """Evaluate ``condition`` for a pull (content read) of ``repository``."""
    if repository is None:
        return Verdict(
            None, "no image was given, so the repository the condition is about is unknown"
        )
    request = Request(
        action=REPOSITORY_READ_DATA_ACTION, attributes={REPOSITORY_NAME: [repository]}
    )
    try:
        return Verdict(evaluate(condition, request))
    except ConditionSyntaxError as exc:
        return Verdict(None, f"the condition cannot be read ({exc})")
    except ConditionNotEvaluable as exc:
        return Verdict(None, f"the condition cannot be evaluated ({exc})")


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def repositories_condition(repositories: Iterable[str]) -> str:
    """A condition that lets content and metadata reads through only for ``repositories``.

    The documented shape: actions the condition names are allowed only when the expression
    holds; ``StringEquals`` per repository, joined with ``OR``."""
    names = sorted({r for r in repositories if r})
    if not names:
        raise ValueError("a repository condition needs at least one repository")
    allowed = " OR ".join(f"{REPOSITORY_NAME} StringEquals {_quoted(n)}" for n in names)
    return (
        f"((!(ActionMatches{{'{REPOSITORY_READ_DATA_ACTION}'}}) AND "
        f"!(ActionMatches{{'{REPOSITORY_METADATA_READ}'}})) OR ({allowed}))"
    )
