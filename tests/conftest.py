"""Fixtures shared by several test modules."""

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
