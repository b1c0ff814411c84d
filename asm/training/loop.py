"""The training loop: one CPU, one GPU, or several processes via ``torchrun``
(DistributedDataParallel, gloo on CPU). Checkpoints every epoch (``last.pt`` resumes;
``best.pt`` is the epoch with the most validation fixations kept; ``final.pt``, written at the
end, is the last epoch and what ships), a progress bar, per-epoch metrics in ``history.json``
and ``curves.png``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from asm.data.gaze import GazeSample
from asm.models import ASMNet, Weights, WeightsMeta, save_model
from asm.training.config import TrainConfig, serving_preset
from asm.training.objective import batch_loss
from asm.training.samples import load_gaze
from asm.training.validation import validate
from asm.training.views import make_example

__all__ = ["train", "plot_history", "CURVES"]


class _Examples(torch.utils.data.Dataset):
    """The batches of one epoch: batch ``i`` holds :func:`make_example` of the photos
    ``order[i * B : (i + 1) * B]``, drawn with a generator seeded by ``(seed, i)``, so a
    batch is the same whichever worker process makes it."""

    def __init__(self, samples: list[GazeSample], order: np.ndarray, cfg: TrainConfig, seed: tuple) -> None:
        self.samples, self.order, self.cfg, self.seed = samples, order, cfg, seed

    def __len__(self) -> int:
        return max(1, math.ceil(len(self.order) / self.cfg.batch_size))

    def __getitem__(self, i: int) -> list[dict]:
        idx = self.order[i * self.cfg.batch_size : (i + 1) * self.cfg.batch_size]
        if len(idx) == 0:
            idx = self.order[: self.cfg.batch_size]
        rng = np.random.default_rng([*self.seed, i])
        return [make_example(self.samples[j], rng, self.cfg) for j in idx]


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


#: What the curves show: history key -> (title, and the centre crop's history key or the target drawn beside it).
CURVES = {
    "loss": ("train loss", None),
    "train_pair_acc": ("train pair accuracy", None),
    "osie_kept": ("OSIE val: fixations kept", "osie_centre"),
    "photos_kept": ("photo val: teacher x centre kept", "photos_centre"),
    "photo_beats_cut": ("photo val: photo beats its cut", 0.80),
    "border_trend": ("photo val: map border trend", 0.30),
}


def plot_history(history: list[dict], path: str | Path, stages: list[int] | None = None) -> None:
    """Training curves (one panel per recorded key of :data:`CURVES`) to an image. ``stages``:
    the epoch numbers (1-based, over the whole history) where a new training stage began."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = list(range(1, len(history) + 1))
    keys = [k for k in CURVES if any(k in h for h in history)]
    rows = 1 if len(keys) <= 4 else 2
    cols = -(-len(keys) // rows)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax, k in zip(axes.flat, keys):
        title, base = CURVES[k]
        ax.plot([e for e, h in zip(epochs, history) if k in h], [h[k] for h in history if k in h], marker="o", label="asm")
        ax.set_title(title, fontsize=10)
        if isinstance(base, str) and base in history[-1]:
            ax.axhline(history[-1][base], color="grey", ls="--", label="centre crop")
        elif isinstance(base, float):
            ax.axhline(base, color="tab:red", ls=":", label="target")
        for s in stages or []:
            ax.axvline(s - 0.5, color="black", lw=0.8, alpha=0.5)
        if base is not None:
            ax.legend(fontsize=8)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _meta(cfg: TrainConfig, record: dict) -> WeightsMeta:
    return WeightsMeta(recipe="gaze-v2", training=asdict(cfg), data=cfg.data, val=record)


def train(cfg: TrainConfig, train_set: list[GazeSample] | None = None, val_sets: dict[str, list[GazeSample]] | None = None,
          resume: bool = False, progress: bool = True) -> list[dict]:
    """Train (or resume) a model; returns the per-epoch history. Under ``torchrun`` every
    process trains on its share of the images and rank 0 validates and writes files."""
    from tqdm import tqdm

    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = _dist_info()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    if train_set is None:
        train_set, loaded_val = load_gaze(cfg, progress=progress and rank == 0)
        val_sets = loaded_val if val_sets is None else val_sets
    val_sets = val_sets or {}
    train_set = [s for s in train_set for _ in range(cfg.fixation_repeats if s.points is not None else 1)]

    model = ASMNet(cfg.backbone, cfg.pattern, cfg.backbone_weights, cfg.map_stride)
    if cfg.init:
        model.load_state_dict(Weights(cfg.init).get_state_dict())
    model = model.to(device).train()
    head_params = [*model.heads.parameters(), model.prior_weight]
    backbone_params = [p for p in model.stages.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": head_params, "lr": cfg.lr}, {"params": backbone_params, "lr": cfg.backbone_lr}],
        weight_decay=cfg.weight_decay,
    )
    steps_per_epoch = len(_Examples(train_set, np.arange(len(train_set))[rank::world], cfg, seed=()))
    history: list[dict] = []
    start_epoch = 0
    if resume and (out / "last.pt").is_file():
        state = torch.load(out / "last.pt", map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history = json.loads(state["history"])
        start_epoch = state["epoch"]
    # the schedule is a function of the step, so a resumed run (even with more epochs) picks it up
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[cfg.lr, cfg.backbone_lr], total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15,
        last_epoch=start_epoch * steps_per_epoch - 1,
    )
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    for epoch in range(start_epoch, cfg.epochs):
        order = np.random.default_rng(cfg.seed + epoch).permutation(len(train_set))[rank::world]
        t0 = time.time()
        sums: dict[str, float] = {}
        batches = _Examples(train_set, order, cfg, seed=(cfg.seed, epoch, rank))
        loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False, num_workers=cfg.workers,
                                             persistent_workers=False, prefetch_factor=4 if cfg.workers else None)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress or rank != 0,
                   unit="step", mininterval=2.0)
        for examples in bar:
            loss, stats = batch_loss(net, examples, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + (0.0 if math.isnan(v) else v)
            bar.set_postfix(loss=f"{stats['loss']:.3f}", acc=f"{stats['pair_acc']:.2f}")
        record = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1)}
        record.update({k if k != "pair_acc" else "train_pair_acc": v / len(batches) for k, v in sums.items()})
        if rank == 0:
            record.update(validate(model, val_sets, cfg))
            history.append(record)
            print(json.dumps(record), flush=True)
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "epoch": epoch + 1, "history": json.dumps(history)}, out / "last.pt")
            best = max(history, key=lambda h: sum(v for k, v in h.items() if k.endswith("_kept")))
            if best is record:
                save_model(model, out / "best.pt", serving_preset(cfg), cfg.half, _meta(cfg, record))
            (out / "history.json").write_text(json.dumps(history, indent=2))
            plot_history(history, out / "curves.png")
        if world > 1:
            dist.barrier()
    if rank == 0 and history:  # the shipped model is the last epoch: no choice made on validation data
        save_model(model, out / "final.pt", serving_preset(cfg), cfg.half, _meta(cfg, history[-1]))
    if world > 1:
        dist.destroy_process_group()
    return history
