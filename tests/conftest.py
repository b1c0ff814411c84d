"""Fixtures shared by several test modules."""

import pytest
import torch

from asm.model import ASMNet, save_model


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    """A small random model with non-flat scores, saved as a model file."""
    torch.manual_seed(0)
    model = ASMNet("mobilenet_v3_small")
    for h in model.heads:
        torch.nn.init.normal_(h.weight, std=0.3)
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_model(model, path)
    return path
