"""ASMNet: shapes, frozen BatchNorm, reflect padding, θ statistics; model files as Weights:
save/load round trip, the first file format, the builder."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from asm.data.shared import shared_dir
from asm.errors import InvalidModel, ModelNotFound
from asm.models import ASMNet, ASMNet_Weights, InferencePreset, Weights, WeightsMeta, asm_net, normalize, save_model, theta_avg, theta_std
from asm.models.asmnet import BACKBONES
from asm.patterns import PATTERN_NAMES, get_pattern
from conftest import TEST_PRESET

WEIGHTS = (shared_dir() or Path("/no-shared")) / "weights"


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_forward_shape_every_backbone(backbone):
    model = ASMNet(backbone).eval()
    with torch.no_grad():
        m = model(torch.randn(2, 3, 128, 192))
    assert m.shape == (2, 12, 16, 24)
    assert torch.isfinite(m).all()


@pytest.mark.parametrize("pattern", PATTERN_NAMES)
def test_channels_follow_pattern(pattern):
    model = ASMNet("mobilenet_v3_small", pattern=pattern).eval()
    with torch.no_grad():
        m = model(torch.randn(1, 3, 96, 128))
    assert m.shape[1] == get_pattern(pattern).num_partitions


@pytest.mark.parametrize("stride", [8, 16, 32])
def test_map_stride(stride):
    model = ASMNet("mobilenet_v3_small", map_stride=stride).eval()
    with torch.no_grad():
        m = model(torch.randn(1, 3, 256, 384))
    assert m.shape[-2:] == (256 // stride, 384 // stride) == model.map_size(256, 384)


def test_batchnorm_stays_frozen_in_train_mode():
    model = ASMNet("mobilenet_v3_small").train()
    bns = [m for m in model.stages.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not bn.training for bn in bns)
    assert all(not p.requires_grad for bn in bns for p in bn.parameters())
    before = bns[0].running_mean.clone()
    model(torch.randn(2, 3, 96, 96)).sum().backward()
    assert torch.equal(before, bns[0].running_mean)
    assert all(h.weight.grad is not None for h in model.heads)


def test_reflect_padding_is_applied_and_optional():
    convs = [m for m in ASMNet("mobilenet_v3_small").stages.modules() if isinstance(m, nn.Conv2d) and max(m.padding) > 0]
    assert convs and all(c.padding_mode == "reflect" for c in convs)
    convs = [m for m in ASMNet("mobilenet_v3_small", padding_mode="zeros").stages.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.padding_mode == "zeros" for c in convs)


def test_bad_arguments():
    with pytest.raises(ValueError, match="backbone"):
        ASMNet("vgg_nope")
    with pytest.raises(ValueError, match="pattern"):
        ASMNet("mobilenet_v3_small", pattern="nope")
    with pytest.raises(ValueError, match="map_stride"):
        ASMNet("mobilenet_v3_small", map_stride=4)
    with pytest.raises(ValueError, match="images"):
        ASMNet("mobilenet_v3_small")(torch.randn(3, 64, 64))


def test_theta_statistics_by_hand():
    m = torch.tensor([1.0, 3.0, 5.0, 7.0]).view(1, 4, 1, 1).expand(1, 4, 2, 3)
    assert torch.allclose(theta_avg(m), torch.full((1, 2, 3), 4.0))
    assert torch.allclose(theta_std(m), torch.full((1, 2, 3), 5.0**0.5))  # population std


def test_normalize_matches_imagenet_stats():
    x = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    assert torch.allclose(normalize(x), torch.zeros(1, 3, 4, 4), atol=1e-6)


@pytest.mark.parametrize("half", [False, True])
def test_save_load_round_trip(tmp_path, half):
    model = ASMNet("mobilenet_v3_small", pattern="grid3x3", map_stride=16).eval()
    for h in model.heads:
        nn.init.normal_(h.weight, std=0.5)
    path = tmp_path / "m.pt"
    meta = WeightsMeta(recipe="test", training={"epochs": 2, "input_size": (96, 128)}, data="synthetic",
                       val={"epoch": 2, "osie_kept": np.float64(0.5)})
    weights = save_model(model, path, half=half, preset=InferencePreset(160, 320), meta=meta)
    loaded = asm_net(weights=path)
    assert not loaded.training and loaded.config == model.config == weights.config
    assert weights.preset == InferencePreset(short_side=160, max_long_side=320)
    # structured values, as plain JSON values (tuples as lists, numpy numbers as floats)
    assert weights.meta == WeightsMeta("test", {"epochs": 2, "input_size": [96, 128]}, "synthetic", {"epoch": 2, "osie_kept": 0.5})
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert torch.allclose(a, b, atol=5e-2 if half else 1e-6)


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": 1}, path)
    with pytest.raises(InvalidModel, match="not an asm model"):
        asm_net(weights=path)
    with pytest.raises(ModelNotFound, match="no asm model at"):
        Weights(tmp_path / "missing.pt").preset


def test_reads_the_first_file_format(tmp_path):
    """``asm-model/1`` kept the preset, training config and figures as JSON strings in meta."""
    model = ASMNet("mobilenet_v3_small").eval()
    path = tmp_path / "old.pt"
    torch.save({"format": "asm-model/1", "config": dict(model.config), "state_dict": model.state_dict(),
                "meta": {"recipe": "gaze-v2", "config": '{"data": "osie", "epochs": 3}', "val": '{"epoch": 3}',
                         "preset": '{"short_side": 192, "max_long_side": 384}'}}, path)
    weights = Weights(path)
    assert weights.preset == InferencePreset(192, 384)
    assert weights.meta == WeightsMeta("gaze-v2", {"data": "osie", "epochs": 3}, "osie", {"epoch": 3})
    assert torch.equal(asm_net(weights=weights).heads[0].weight, model.heads[0].weight)


def test_a_file_without_preset_gets_the_default_preset(tmp_path):
    weights = save_model(ASMNet("mobilenet_v3_small"), tmp_path / "m.pt", TEST_PRESET)
    assert weights.preset == TEST_PRESET and weights.meta == WeightsMeta()


def test_the_builder_refuses_a_config_the_weights_do_not_fit(tmp_path):
    save_model(ASMNet("mobilenet_v3_small"), tmp_path / "m.pt", TEST_PRESET)
    assert asm_net(weights=tmp_path / "m.pt", backbone="mobilenet_v3_small").config["backbone"] == "mobilenet_v3_small"
    with pytest.raises(ValueError, match="not {'pattern': 'grid3x3'}"):
        asm_net(weights=tmp_path / "m.pt", pattern="grid3x3")
    assert asm_net(pattern="grid3x3", backbone="mobilenet_v3_small").num_partitions == get_pattern("grid3x3").num_partitions


def test_a_file_whose_weights_do_not_fit_its_config_is_an_invalid_model(tmp_path):
    path = tmp_path / "m.pt"
    save_model(ASMNet("mobilenet_v3_small"), path, TEST_PRESET)
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["backbone"] = "mobilenet_v2"
    torch.save(ckpt, path)
    with pytest.raises(InvalidModel, match="not an asm model file .RuntimeError"):
        asm_net(weights=path)


def test_the_shipped_weights_describe_themselves():
    weights = ASMNet_Weights.DEFAULT
    assert weights is ASMNet_Weights.GAZE_V2 and weights.file.name == "asm_default.pt"
    assert weights.config == {"backbone": "mobilenet_v2", "pattern": "cross_rectangle", "map_stride": 8, "padding_mode": "reflect"}
    assert weights.preset == InferencePreset(short_side=192, max_long_side=384)
    assert weights.meta.recipe == "gaze-v2" and weights.meta.training["input_size"] == [192, 256]
    assert weights.meta.val["epoch"] == 3 and round(weights.meta.val["osie_kept"], 3) == 0.867


@pytest.mark.skipif(not (WEIGHTS / "mobilenet_v2-imagenet.pth").is_file(), reason="needs ../shared/weights (ImageNet backbones)")
def test_loads_imagenet_backbone_weights():
    model = ASMNet("mobilenet_v2", backbone_weights=WEIGHTS / "mobilenet_v2-imagenet.pth")
    random = ASMNet("mobilenet_v2")
    first = model.stages[0][0][0].weight
    assert not torch.equal(first, random.stages[0][0][0].weight)
