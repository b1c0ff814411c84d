"""Training: pairs, a short run that lowers the loss, checkpoints and resume, 2-process DDP."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from asm.datasets import shared_dir
from asm.model import ASMNet, load_model
from asm.train import TrainConfig, _pairs, batch_loss, make_example, synthetic_samples, train

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


def test_example_targets_and_shapes():
    cfg = TrainConfig(**TINY)
    ex = make_example(synthetic_samples(1)[0], np.random.default_rng(0), cfg)
    n = cfg.groups * cfg.views
    assert ex["image"].shape == (3, 96, 128) and ex["boxes"].shape == (2 * n, 4)
    assert ex["kept"].shape == (2 * n,) and ((ex["kept"] >= 0) & (ex["kept"] <= 1 + 1e-6)).all()
    assert (ex["kept"][n:] >= ex["kept"][:n] - 1e-6).all()  # a wider view keeps at least as much
    b = ex["boxes"]
    assert (b[:, 0] >= -1e-4).all() and (b[:, 2] <= 128 + 1e-3).all() and (b[:, 3] <= 96 + 1e-3).all()
    assert ex["saliency"].max() == pytest.approx(1.0)


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
    history = train(cfg, train_set=data, val_set=data[:2], progress=False)
    after = probe_loss(load_model(tmp_path / "run" / "best.pt"))
    assert len(history) == 4 and history[-1]["loss"] < history[0]["loss"]
    assert after < before
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    assert load_model(tmp_path / "run" / "final.pt").config == load_model(tmp_path / "run" / "best.pt").config
    assert json.loads((tmp_path / "run" / "history.json").read_text())[-1]["epoch"] == 4


def test_resume_continues_from_last_checkpoint(tmp_path):
    cfg = TrainConfig(out=str(tmp_path / "run"), epochs=1, **TINY)
    data = synthetic_samples(4, seed=5)
    train(cfg, train_set=data, val_set=data[:2], progress=False)
    cfg.epochs = 2
    history = train(cfg, train_set=data, val_set=data[:2], resume=True, progress=False)
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
    run = subprocess.run([*torchrun, "-m", "asm.train", "--config", str(cfg), "--no-progress"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and (out / "best.pt").is_file()
