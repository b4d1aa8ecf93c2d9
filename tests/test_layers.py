"""The layers are enforced: import-linter's contracts (pyproject.toml) pass on
the code as it is, and break when a module imports upwards."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("studio", "templates_catalog", "generation")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of the code and its contracts, to break on purpose."""
    tree = tmp_path_factory.mktemp("layers")
    shutil.copy(ROOT / "pyproject.toml", tree)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tree


def test_the_code_keeps_every_contract(tree):
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "upward", "contract"),
    [
        # The event log reaching up into the runner, as it once did.
        ("generation/events/log.py", "from generation.text import runner", "generation in layers"),
        # Even hidden inside a function.
        (
            "generation/lifecycle/transitions.py",
            "def _later():\n    from generation.services import generation_cancel",
            "generation in layers",
        ),
        # The catalogue importing the generation app.
        (
            "templates_catalog/views.py",
            "import generation.reports.history",
            "Apps import downwards",
        ),
        # Two modules of one package importing each other.
        ("templates_catalog/choices.py", "import templates_catalog.forms", "No import cycles"),
    ],
)
def test_an_upward_import_breaks_a_contract(tree, module, upward, contract):
    path = tree / module
    original = path.read_text()
    path.write_text(original + "\n\n" + upward + "\n")
    try:
        result = lint_imports(tree)
    finally:
        path.write_text(original)
    assert result.returncode == 1
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout
