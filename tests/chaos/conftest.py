"""Prints the fault suite's tally at the end of the session (`make chaos`, and `make test`)."""

from __future__ import annotations

from typing import Any

from tests.chaos.harness import TALLY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = TALLY.summary()
    if lines:
        terminalreporter.section("chaos")
        for line in lines:
            terminalreporter.write_line(line)
