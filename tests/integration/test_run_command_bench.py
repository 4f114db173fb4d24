"""The short form of `make bench`'s private-cluster part: one Run Command for every read of a
diagnosis, one more for the probe (wall time is for the bench, not for a test)."""

from __future__ import annotations

from typing import Any

from scripts.bench import run_command_bench


def test_one_run_command_for_all_reads_and_one_for_the_probe(
    app_env: Any, monkeypatch: Any
) -> None:
    # As `make bench` runs it: outside the tests' enforce-mode environment.
    monkeypatch.setenv("REMEDIATION_MODE", "dry-run")
    results = run_command_bench(latency=0.3)
    assert results["reads"][0] == 1
    assert results["reads + probe"][0] == 2
