"""Fuzz harnesses (hypothesis): marked ``fuzz``; their executions are printed at the end."""

from __future__ import annotations

import pytest

from tests.fuzz.harness import EXECUTIONS


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/fuzz/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.fuzz)


def pytest_terminal_summary(terminalreporter):
    if EXECUTIONS:
        terminalreporter.write_sep("-", "fuzz executions")
        for name, count in sorted(EXECUTIONS.items()):
            terminalreporter.write_line(f"{name}: {count:,}")
        terminalreporter.write_line(f"total: {sum(EXECUTIONS.values()):,}")
