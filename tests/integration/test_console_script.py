"""The project installs as a package with an ``acr-pull-doctor`` console script.

The wheel is built as ``make`` installs the project (no build isolation: offline), installed
into a throwaway directory, and its script is run from elsewhere: it must find ``shared`` in
the installed copy, not in this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_installs_a_working_console_script(tmp_path: Path) -> None:
    source = tmp_path / "src"
    # A copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".azurite", ".tools", "node_modules", "__pycache__", "*_cache"
        ),
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(source),
            "-w",
            str(wheels),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = wheels.glob("acr_pull_remediator-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "shared/cli.py" in names
    assert "shared/report/templates/fleet.html.j2" in names  # package data: the report template
    assert not any(n.startswith(("tests/", "emulator/", "functions/", "scripts/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "acr-pull-doctor = shared.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [str(target / "bin" / "acr-pull-doctor"), "classify", "--json", "pull QPS exceeded"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cause"] == "6"
    where = subprocess.run(
        [sys.executable, "-c", "import shared; print(shared.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(target))
