"""asm.training: pairs, a short run that lowers the loss, checkpoints and resume, 2-process DDP."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from asm.data.pack import load_pack, save_pack
from asm.data.shared import shared_dir
from asm.models import ASMNet, InferencePreset, Weights, asm_net
from asm.training.config import TrainConfig
from asm.training.loop import train
from asm.training.objective import batch_loss
from asm.training.samples import load_gaze, synthetic_samples
from asm.training.views import _pairs, _views, make_example
from conftest import TEST_PRESET

TINY = dict(backbone="mobilenet_v3_small", input_size=(96, 128), batch_size=4, groups=3, views=6, data="synthetic", half=False)


def test_pairs_by_hand():
    # 4 equal-size views in 2 groups, then their 4 wider versions
    kept = torch.tensor([0.5, 0.3, 0.9, 0.88, 0.8, 0.31, 0.95, 0.9])
    group = torch.tensor([0, 0, 1, 1])
    better, worse = _pairs(kept, group, delta=0.1)
    pairs = set(zip(better.tolist(), worse.tolist()))
    # group 0: view 0 keeps 0.2 more than view 1; group 1 differs by 0.02 (< delta): no pair
    # wider vs tighter: view 0 gains 0.3 -> wider (4) wins; view 1 gains 0.01 -> tighter wins;
    # view 2 gains 0.05 (between delta/4 and delta): no pair; view 3 gains 0.02 -> tighter wins
    assert pairs == {(0, 1), (4, 0), (1, 5), (3, 7)}
    assert len(_pairs(kept, group, 0.1, nested=False)[0]) == 1
    # a wider view that could not grow (the largest box) forms no pair
    grown = torch.tensor([True, False, True, True])
    assert set(zip(*(t.tolist() for t in _pairs(kept, group, 0.1, grown=grown)))) == {(0, 1), (4, 0), (3, 7)}


def test_served_views_reach_both_ends_of_the_free_range():
    cfg = TrainConfig(groups=40, views=8, served=1.0, largest=1.0)
    boxes, group, wider = _views(np.random.default_rng(0), 800, 600, cfg)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert np.allclose(np.maximum(w / 800, h / 600), 1.0)  # every box is the largest of its aspect
    room = np.where(w < 800 - 1e-6, 800 - w, 600 - h)
    start = np.where(w < 800 - 1e-6, boxes[:, 0], boxes[:, 1])
    moves = room > 1  # the 4:3 box is the whole photo
    offset = start[moves] / room[moves]
    groups = len(np.unique(group[moves]))
    assert groups > 25
    # one view per group in each end stratum of the free range
    assert (offset < 1 / 8).sum() == groups and (offset > 7 / 8).sum() == groups
    assert np.allclose(wider, boxes)  # the largest box cannot grow


def test_example_targets_and_shapes():
    cfg = TrainConfig(**TINY)
    ex = make_example(synthetic_samples(1)[0], np.random.default_rng(0), cfg)
    n = cfg.groups * cfg.views
    assert ex["image"].shape == (3, 96, 128) and ex["boxes"].shape == (2 * n, 4)
    assert ex["kept"].shape == (2 * n,)
    assert (ex["kept"][n:] >= ex["kept"][:n] - 1e-6).all()  # a wider view keeps at least as much
    b = ex["boxes"]
    assert (b[:, 0] >= -1e-4).all() and (b[:, 2] <= 128 + 1e-3).all() and (b[:, 3] <= 96 + 1e-3).all()
    assert ex["teacher"].max() == pytest.approx(1.0)
    # where people look everywhere alike, a view keeps its share of the (cropped, resized) photo's area
    sample = synthetic_samples(1)[0]
    flat = dataclasses.replace(sample, target=np.full_like(sample.target, 1 / sample.target.size))
    ex = make_example(flat, np.random.default_rng(0), cfg)
    b = ex["boxes"].double()
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / (96 * 128)
    assert ex["kept"].double().numpy() == pytest.approx(area.numpy(), abs=1e-5)


def test_portrait_photos_get_a_portrait_input():
    cfg = TrainConfig(**TINY)
    sample = synthetic_samples(1, size=(240, 180))[0]
    assert make_example(sample, np.random.default_rng(0), cfg)["image"].shape == (3, 128, 96)


def test_training_inputs_keep_the_aspect_as_served():
    """keep_aspect: a 16:9 photo trains at the size the cropper serves it (short side 96 ->
    160x96 here); without it, squashed to input_size. Its re-framed cut keeps its aspect too."""
    from asm.cropper import Cropper
    from asm.models import ASMNet
    from asm.training.config import serving_preset

    sample = synthetic_samples(1, size=(180, 320))[0]  # (H, W)
    cfg = TrainConfig(**{**TINY, "outer_crop": 1.0, "keep_aspect": True})
    served = Cropper(ASMNet(backbone="mobilenet_v3_small"), serving_preset(cfg))
    ex = make_example(sample, np.random.default_rng(0), cfg)
    assert ex["image"].shape == (3, 96, 160) and served.input_size(320, 180) == (160, 96)
    cut_h, cut_w = ex["cut"].shape[1:]
    assert cut_h == 96 and cut_w >= 96  # a landscape cut, short side as served
    squashed = make_example(sample, np.random.default_rng(0), dataclasses.replace(cfg, keep_aspect=False))
    assert squashed["image"].shape == (3, 96, 128) and squashed["cut"].shape[1:] == (96, 128)


def test_limit_on_a_pack_draws_from_every_source(tmp_path):
    # a pack lists its sources one after the other (OSIE first): --limit must not take only the first
    samples = synthetic_samples(12, size=(48, 64))
    samples = [dataclasses.replace(s, name=f"{'osie' if i < 6 else 'photo'}/{i}") for i, s in enumerate(samples)]
    save_pack({"train": samples, "val": samples[:2]}, tmp_path / "p.pkl")
    cfg = TrainConfig(data=str(tmp_path / "p.pkl"), limit=4, seed=0)
    train_set, val = load_gaze(cfg)
    names = [s.name for s in train_set]
    assert len(names) == 4 and {n.split("/")[0] for n in names} == {"osie", "photo"}
    assert names == sorted(names, key=lambda n: int(n.split("/")[1]))  # pack order kept
    assert names == [s.name for s in load_gaze(cfg)[0]]  # seeded
    assert list(val) == ["val"]


def test_pack_round_trip(tmp_path):
    samples = synthetic_samples(3)
    samples[0].points = np.array([[10.5, 20.5]], np.float32)
    save_pack({"train": samples[:2], "val": samples[2:]}, tmp_path / "p.pkl")
    back = load_pack(tmp_path / "p.pkl")
    assert [s.name for s in back["train"]] == [s.name for s in samples[:2]] and len(back["val"]) == 1
    a, b = samples[1], back["train"][1]
    assert b.image.shape == a.image.shape and b.image.dtype == np.uint8
    # lossy WebP, but the colours stay in RGB order (the disc is one bright colour)
    assert np.abs(b.image.reshape(-1, 3).mean(0) - a.image.reshape(-1, 3).mean(0)).max() < 3
    assert np.allclose(b.target, a.target, atol=1e-4) and b.target.sum() == pytest.approx(1, abs=1e-5)
    assert np.array_equal(back["train"][0].points, samples[0].points) and back["train"][1].points is None


SHARED = shared_dir()
V3_WEIGHTS = SHARED / "weights" / "mobilenet_v3_small-imagenet.pth" if SHARED else None


@pytest.mark.skipif(V3_WEIGHTS is None or not V3_WEIGHTS.is_file(),
                    reason="needs ../shared/weights: a randomly initialised backbone with frozen BatchNorm has vanishing features")
def test_short_training_lowers_the_loss(tmp_path):
    torch.manual_seed(0)
    cfg = TrainConfig(out=str(tmp_path / "run"), epochs=4, lr=1e-2, backbone_lr=1e-3, backbone_weights=str(V3_WEIGHTS), **TINY)
    data = synthetic_samples(8, seed=3)
    probe = [make_example(s, np.random.default_rng(7), cfg) for s in data]

    def probe_loss(model):
        model.eval()
        with torch.no_grad():
            return batch_loss(model, probe, cfg)[0].item()

    torch.manual_seed(0)
    before = probe_loss(ASMNet(cfg.backbone, cfg.pattern, cfg.backbone_weights))
    history = train(cfg, train_set=data, val_sets={"synthetic": data[:2]}, progress=False)
    after = probe_loss(asm_net(weights=tmp_path / "run" / "best.pt"))
    assert len(history) == 4 and history[-1]["loss"] < history[0]["loss"]
    assert after < before
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    final = Weights(tmp_path / "run" / "final.pt")
    assert final.config == Weights(tmp_path / "run" / "best.pt").config
    assert final.preset == InferencePreset(cfg.input_size[0], 2 * cfg.input_size[0])  # served at the trained scale
    assert final.meta.recipe == "gaze-v2" and final.meta.training["epochs"] == 4 and final.meta.val == history[-1]
    assert json.loads((tmp_path / "run" / "history.json").read_text())[-1]["epoch"] == 4


def test_resume_continues_from_last_checkpoint(tmp_path):
    cfg = TrainConfig(out=str(tmp_path / "run"), epochs=1, **TINY)
    data = synthetic_samples(4, seed=5)
    train(cfg, train_set=data, val_sets={"synthetic": data[:2]}, progress=False)
    cfg.epochs = 2
    history = train(cfg, train_set=data, val_sets={"synthetic": data[:2]}, resume=True, progress=False)
    assert [h["epoch"] for h in history] == [1, 2]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["epoch"] == 2


def test_config_file_and_unknown_keys(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 3, "input_size": [64, 96]}))
    cfg = TrainConfig.from_file(path, lam=0.5)
    assert cfg.epochs == 3 and cfg.input_size == (64, 96) and cfg.lam == 0.5
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({"epochz": 3})


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({**TINY, "input_size": [96, 128], "epochs": 1, "limit": 8, "out": str(out)}))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([*torchrun, "-m", "asm.training", "--config", str(cfg), "--no-progress"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and (out / "best.pt").is_file()


def test_border_trend_sees_a_ring_and_ignores_a_flat_map():
    from asm.models import border_trend

    m = torch.zeros(1, 2, 6, 8)
    m[0, 0, 0, :] = m[0, 0, -1, :] = m[0, 0, :, 0] = m[0, 0, :, -1] = 1.0  # channel 0 rises at the border
    t = border_trend(m)
    assert t[0, 0] > 1.5 and t[0, 1] == 0


def test_framing_and_border_losses_join_the_batch_loss():
    cfg = TrainConfig(**TINY, framing=1.0, border=1.0)
    torch.manual_seed(0)
    model = ASMNet(cfg.backbone, cfg.pattern)
    examples = [make_example(s, np.random.default_rng(i), cfg) for i, s in enumerate(synthetic_samples(2))]
    loss, stats = batch_loss(model, examples, cfg)
    assert stats["framing"] > 0 and stats["border"] > 0  # a random model's maps are not flat at the border
    parts = stats["rank"] + cfg.lam * stats["sal"] + stats["border"] + stats["framing"]
    assert loss.item() == pytest.approx(parts, rel=1e-5)
    without, off = batch_loss(model, examples, dataclasses.replace(cfg, border=0.0))
    assert off["border"] == 0 and loss.item() - without.item() == pytest.approx(stats["border"], rel=1e-4)
    loss.backward()
    assert model.prior_weight.grad is not None


def test_init_starts_from_a_model_file(tmp_path):
    from asm.models import save_model

    torch.manual_seed(0)
    start = ASMNet("mobilenet_v3_small")
    torch.nn.init.constant_(start.heads[0].bias, 0.5)
    save_model(start, tmp_path / "start.pt", TEST_PRESET)
    cfg = TrainConfig(out=str(tmp_path / "run"), epochs=1, init=str(tmp_path / "start.pt"), lr=0.0, backbone_lr=0.0, **TINY)
    data = synthetic_samples(4, seed=5)
    train(cfg, train_set=data, val_sets={"synthetic": data[:2]}, progress=False)
    assert torch.allclose(asm_net(weights=tmp_path / "run" / "final.pt").heads[0].bias, torch.full((12,), 0.5))


@pytest.mark.skipif(SHARED is None or not (SHARED / "data" / "osie").is_dir() or not (SHARED / "weights" / "fastgaze-saliency.pth").is_file(),
                    reason="needs ../shared: OSIE photos and the FastGaze weights")
def test_store_side_sets_the_size_photos_are_kept_at():
    from asm.training.samples import load_gaze

    for side in (256, 640):
        train, val = load_gaze(TrainConfig(data="osie", limit=2, store_side=side))
        assert {max(s.image.shape[:2]) for s in train + val["osie"]} == {side}  # OSIE photos are 800x600


@pytest.mark.skipif(SHARED is None or not (SHARED / "data" / "osie").is_dir() or not (SHARED / "weights" / "fastgaze-saliency.pth").is_file(),
                    reason="needs ../shared: OSIE photos and the FastGaze weights")
def test_write_pack_from_the_command_line_keeps_store_side(tmp_path):
    """`make train` writes stage 2's pack as stage 1's data stored larger: --store-side on stage 1's config."""
    from asm.cli import main

    config = tmp_path / "stage1.json"
    config.write_text(json.dumps({"data": "osie", "limit": 2}))
    pack = tmp_path / "packs" / "pack-640.pkl"
    assert main(["train", "--config", str(config), "--store-side", "640", "--write-pack", str(pack), "--no-progress"]) == 0
    sets = load_pack(pack)
    assert sets["train"] and {max(s.image.shape[:2]) for s in sets["train"] + sets["osie"]} == {640}


@pytest.mark.parametrize("options, message", [
    ({"store_side": -5}, "store_side must be a whole number >= 32"),
    ({"epochs": 0}, "epochs must be a whole number >= 1"),
    ({"limit": 0}, "limit must be a whole number >= 1"),
    ({"input_size": [16, 256]}, "input_size must be two whole numbers >= 32"),
    ({"lam": float("nan")}, "lam must be a number >= 0"),
    ({"epoch": 3}, "unknown training option"),
    ({"data": "nonsense"}, "unknown training data"),
])
def test_a_bad_training_option_is_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(options)


def test_asm_train_answers_a_bad_config_in_one_line(tmp_path, capsys):
    from asm.cli import main

    bad = tmp_path / "bad.json"
    for text, message in (('{"epochs": 3', "is not a JSON object"), ("[1, 2]", "is not a JSON object"),
                          ('{"store_side": -5}', "store_side must be")):
        bad.write_text(text)
        assert main(["train", "--config", str(bad), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("asm: train: ") and message in err and "\n" not in err and len(err) < 260
    assert main(["train", "--config", str(tmp_path / "missing.json")]) == 2
    assert "No such file" in capsys.readouterr().err
