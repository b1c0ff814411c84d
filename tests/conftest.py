"""Fixtures shared by several test modules, and a guard: no test writes a tracked file."""

import os
import subprocess
from pathlib import Path

import pytest
import torch

from asm.cropper import Cropper
from asm.models import ASMNet, save_model
from asm.models.weights import InferencePreset

#: The scale the tests' random models are served at (a model file carries its own; a network
#: built in a test has none, so the tests name one).
TEST_PRESET = InferencePreset(256, 512)


def _random_model() -> ASMNet:
    """A small ASMNet with random but not flat scores (seeded: the same model every time)."""
    torch.manual_seed(0)
    model = ASMNet("mobilenet_v3_small")
    for h in model.heads:
        torch.nn.init.normal_(h.weight, std=0.3)
    return model


@pytest.fixture(scope="session")
def make_random_model():
    """Makes the random model, a fresh one per call (for croppers with their own preset)."""
    return _random_model


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    """The random model saved as a model file."""
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_model(_random_model(), path, TEST_PRESET)
    return path


@pytest.fixture(scope="module")
def cropper():
    """A Cropper (torch, default preset) over the random model; modules may define their own."""
    return Cropper(_random_model(), TEST_PRESET)


@pytest.fixture(autouse=True)
def _cpu_threads_as_found(monkeypatch):
    """A test that runs a batch worker in this process sets asm's thread count
    (``asm.cpu_session.set_cpu_threads``); the next test starts without it."""
    import asm.cpu_session

    monkeypatch.setattr(asm.cpu_session, "_threads", asm.cpu_session._threads)


# --------------------------------------------------------------------------- no test writes a tracked file

ROOT = Path(__file__).resolve().parents[1]
#: Tracked folders a test could be tempted to write (screenshots, results, weights, examples).
GUARDED = ("docs", "benchmarks/results", "asm/weights", "examples", "configs", "tests/golden")


def _guarded_files() -> dict[str, tuple[int, int]]:
    """``{path: (mtime_ns, size)}`` of the tracked files under :data:`GUARDED`; {} outside git."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", *GUARDED], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    state = {}
    for name in filter(None, out.decode().split("\0")):
        try:
            st = os.stat(ROOT / name)
        except FileNotFoundError:
            continue
        state[name] = (st.st_mtime_ns, st.st_size)
    return state


def pytest_sessionstart(session):
    session.config._asm_guarded = _guarded_files()


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_asm_guarded", {})
    changed = sorted(n for n, s in _guarded_files().items() if n in before and before[n] != s)
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"FAILED: tests wrote tracked files (write to tmp_path instead): {', '.join(changed)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
