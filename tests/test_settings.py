"""``CropperSettings``: the one way the shells build a cropper; ``asm batch --runtime`` is honoured."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asm.cli import main
from asm.cropper import Cropper
from asm.errors import InvalidOption, ModelNotFound
from asm.io import DEFAULT_MAX_PIXELS
from asm.options import CropOptions
from asm.settings import CropperSettings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def built(monkeypatch):
    """The runtimes of every Cropper built through ``Cropper.from_pretrained`` during the test."""
    runtimes: list[str] = []
    real = Cropper.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        cropper = real(cls, *args, **kwargs)
        runtimes.append(cropper.runtime)
        return cropper

    monkeypatch.setattr(Cropper, "from_pretrained", classmethod(spy))
    return runtimes


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(tmp_path / f"p{i}.jpg")
    return tmp_path


def test_defaults_and_validation():
    s = CropperSettings()
    assert (s.model, s.runtime, s.max_pixels, s.threads, s.device) == (None, "auto", DEFAULT_MAX_PIXELS, None, "cpu")
    for bad in ({"runtime": "tensorrt"}, {"max_pixels": 0}, {"threads": 0}):
        with pytest.raises(InvalidOption):
            CropperSettings(**bad)


def test_from_mapping_takes_its_own_keys_and_defaults_for_none():
    args = argparse.Namespace(model=None, runtime="torch", max_pixels=None, aspect=["1:1"], out="x")
    assert CropperSettings.from_mapping(vars(args)) == CropperSettings(runtime="torch")


def test_build_sets_runtime_max_pixels_and_threads(model_path):
    from asm.cpu_session import cpu_threads

    cropper = CropperSettings(model_path, runtime="torch", max_pixels=1234, threads=1).build()
    assert (cropper.runtime, cropper.max_pixels, cpu_threads()) == ("torch", 1234, 1)


def test_check_model_reads_no_weights(tmp_path):
    with pytest.raises(ModelNotFound):
        CropperSettings(tmp_path / "nope.pt").check_model()
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    CropperSettings(tmp_path / "junk.pt").check_model()  # exists and is readable: the workers say the rest


def test_batch_honours_runtime_and_builds_one_cropper(photos, model_path, built, tmp_path):
    """``asm batch --runtime`` was parsed and dropped, and a whole Cropper was built only to check
    ``--model``: the one worker's cropper is the only one, on the runtime asked for."""
    out = tmp_path / "r.jsonl"
    assert main(["batch", str(photos), "--out", str(out), "--model", str(model_path), "--runtime", "torch",
                 "--workers", "1"]) == 0
    assert built == ["torch"]
    assert len(out.read_text().splitlines()) == 2


def test_ray_actors_build_from_the_settings(model_path, built):
    from asm.batch.ray_engine import _CropActor

    actor = _CropActor(CropperSettings(str(model_path), runtime="torch"), 1, CropOptions())
    assert actor.cropper.runtime == "torch" and built == ["torch"]


def test_crop_help_states_the_default_max_pixels():
    parser = argparse.ArgumentParser()
    importlib.import_module("asm.cli.crop").add_parser(parser.add_subparsers())
    (command,) = parser._subparsers._group_actions[0].choices.values()
    action = next(a for a in command._actions if a.dest == "max_pixels")
    assert action.default is None and f"(default {DEFAULT_MAX_PIXELS:,})" in action.help


def test_the_pixel_limit_is_written_once():
    """``asm.io.DEFAULT_MAX_PIXELS`` is the one default; no shell repeats the number."""
    literal = re.compile(r"\b50_?000_?000\b")
    found = [str(p.relative_to(REPO)) for folder in ("asm", "handler", "gradio_demo")
             for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".yaml") and literal.search(p.read_text())]
    assert found == ["asm/io/limits.py"]


# --------------------------------------------------------------------------- the preset travels with the model


def test_a_cropper_needs_its_preset(make_random_model, model_path):
    """``Cropper(model)`` served at InferencePreset's class defaults (256/512) whatever the model
    trained at: now the preset is required, and a model file's is the one served."""
    from asm.models.weights import InferencePreset, Weights

    with pytest.raises(TypeError):
        Cropper(make_random_model())
    with pytest.raises(TypeError):
        InferencePreset()
    assert CropperSettings(model_path, runtime="torch").build().preset == Weights(model_path).preset


def test_the_preset_resizes_and_normalises():
    from asm.models.weights import InferencePreset

    rgb = np.full((300, 400, 3), 255, np.uint8)
    x = InferencePreset(192, 384).network_input(rgb, 400, 300)
    assert x.shape == (1, 3, 192, 256) and x.dtype == np.float32
    assert np.allclose(x[0, :, 0, 0], (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]), atol=1e-5)


def test_train_config_defaults_are_the_shipped_recipe():
    """TrainConfig's defaults are stage 1 of the shipped recipe: configs list only overrides,
    and the default run is served at the shipped model's scale."""
    import json

    from asm.models.weights import ASMNet_Weights
    from asm.training.config import TrainConfig, serving_preset

    assert serving_preset(TrainConfig()) == ASMNet_Weights.DEFAULT.preset
    defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(TrainConfig()).items()}
    for name in ("default.json", "finetune.json", "human3.json"):
        overrides = json.loads((REPO / "configs" / name).read_text())
        assert overrides and all(defaults[k] != v for k, v in overrides.items()), name
        TrainConfig.from_file(REPO / "configs" / name)
