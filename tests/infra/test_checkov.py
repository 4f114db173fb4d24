"""checkov's Bicep scan of infra/ passes, and every suppression says why.

checkov runs from its own venv (`make tools` installs it into .tools/checkov): it pins many
packages that must not share the app's environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
# checkov's Bicep parser (pycep) predates Bicep extensions: it cannot read the Microsoft Graph
# module (`extension microsoftGraphV1`), which holds no Azure resource checkov has a check for.
# tests/infra/bicep_types.py checks that module against the Graph extension's own types instead.
SKIP_PATHS = ["--skip-path", "graph-app-roles.bicep"]
SKIP = re.compile(r"checkov:skip=(CKV2?_[A-Z]+_\d+)")
SKIP_WITH_REASON = re.compile(r"^\s*// checkov:skip=(CKV2?_[A-Z]+_\d+): (\S.{19,})$")


@pytest.fixture(scope="module")
def scan() -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(
            f"checkov is not installed at {CHECKOV.relative_to(ROOT)}: run `make tools` "
            "(`make test` does it first)"
        )
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [
            str(CHECKOV),
            "--framework",
            "bicep",
            "--directory",
            str(INFRA),
            "--skip-download",
            *SKIP_PATHS,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
        check=False,
    )
    try:
        report: Any = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {result.returncode}):\n{result.stderr[-3000:]}")
    if isinstance(report, list):
        (report,) = [r for r in report if r.get("check_type") == "bicep"]
    report["exit_code"] = result.returncode
    return dict(report)


def test_checkov_finds_no_failure(scan: dict[str, Any]) -> None:
    summary = scan["summary"]
    failed = [
        f"{c['check_id']} {c['check_name']} ({c['file_path']}: {c['resource']})"
        for c in scan["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0, scan["results"]["parsing_errors"]
    assert summary["passed"] > 0, "checkov checked nothing"
    assert scan["exit_code"] == 0


def test_every_skip_has_a_reason() -> None:
    for path in sorted(INFRA.rglob("*.bicep")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" in line:
                assert SKIP_WITH_REASON.match(line), (
                    f"{path.relative_to(ROOT)}:{number}: write `// checkov:skip=CKV_AZURE_N: why`"
                )


def test_every_skip_is_used(scan: dict[str, Any]) -> None:
    """A suppression for a check that no longer fires hides nothing and misleads readers."""
    used = {(Path(c["file_path"]).name, c["check_id"]) for c in scan["results"]["skipped_checks"]}
    written = {
        (path.name, match.group(1))
        for path in INFRA.rglob("*.bicep")
        for match in SKIP.finditer(path.read_text())
    }
    assert written, "no suppression found: did the skip syntax change?"
    assert written <= used, f"suppressions checkov never applied: {sorted(written - used)}"
