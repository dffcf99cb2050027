"""The layer rules of docs/ARCHITECTURE.md, checked by import-linter over the real source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.processes import REPO

PACKAGES = ("orchestrator", "worker", "device_pool")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` on the packages under ``root`` (its pyproject.toml holds the contracts)."""
    script = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}  # the tree under test, not an installed copy
    return subprocess.run(
        [str(script), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_layer_contracts_hold() -> None:
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_forbidden_import_breaks_a_contract(tmp_path: Path) -> None:
    """The check can fail: the same tree with one forbidden import (the API reaching into the worker)."""
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    route = tmp_path / "orchestrator" / "api" / "tasks.py"
    route.write_text(route.read_text() + "\nimport worker.run.drive  # noqa: E402, F401\n")

    result = _lint_imports(tmp_path)

    assert result.returncode != 0
    assert "orchestrator.api.tasks -> worker.run.drive" in result.stdout
