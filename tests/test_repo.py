"""The repository as a user meets it: ``python -m asm``, tests that run without ``../shared``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_python_m_asm_is_the_asm_command():
    run = subprocess.run([sys.executable, "-m", "asm", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("asm ")


def test_tests_find_the_shared_folder_through_shared_dir():
    """A test that builds ``<repo>/../shared`` by hand ignores ``$ASM_SHARED`` (and so cannot be
    checked for a clone without the folder); they all ask :func:`asm.data.shared.shared_dir`."""
    by_hand = re.compile(r"""(ROOT|REPO|parent|parents\[\d\])\s*/\s*["']shared["']""")
    found = [p.name for p in (ROOT / "tests").rglob("*.py") if by_hand.search(p.read_text())]
    assert found == []


def test_tests_that_need_shared_data_skip_without_it():
    """``make test`` on a clone with no ``../shared`` beside it: what needs the shared data skips, with a reason."""
    files = ["tests/test_data.py", "tests/test_evaluation_metrics.py", "tests/test_fastgaze.py"]
    env = {**os.environ, "ASM_SHARED": str(ROOT / "no-such-shared-folder")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *files], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "skipped" in run.stdout and "shared" in run.stdout
