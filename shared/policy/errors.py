"""Policy problems: every one names where it is in the file (path and line) and what is allowed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.errors import ConfigurationError


@dataclass(frozen=True, order=True)
class Problem:
    line: int  # 1-based; 0 when unknown
    path: str  # e.g. "scopes[1].actions.attach-acr"; "" for the document itself
    message: str

    def __str__(self) -> str:
        where = self.path or "(document)"
        if self.line:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


class PolicyError(ConfigurationError):
    """The policy file is invalid; :attr:`problems` lists all of them, in file order."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(sorted(set(problems)))
        count = len(self.problems)
        lines = [f"policy {source} is invalid ({count} problem{'s' if count != 1 else ''}):"]
        lines += [f"  {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))
