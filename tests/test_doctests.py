"""The ``>>>`` examples run (as kornia's do): the README's Python API and the docstrings of the
modules a user starts with, on examples/dogs-window.jpg. Outputs use ``...`` where a number
would pin the model."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["asm.cropper", "asm.analysis", "asm.settings"]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _run(tests: list[doctest.DocTest]) -> None:
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} of {result.attempted} examples failed (see above)"


@pytest.mark.parametrize("module", MODULES)
def test_module_examples_run(module, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples name examples/dogs-window.jpg
    _run([t for t in doctest.DocTestFinder().find(importlib.import_module(module)) if t.examples])


def test_readme_python_examples_run(monkeypatch):
    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"```python\n(>>> .*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "the README's Python API block is written as >>> examples"
    parser = doctest.DocTestParser()
    _run([parser.get_doctest(block, {}, f"README.md[{i}]", str(ROOT / "README.md"), 0) for i, block in enumerate(blocks)])
