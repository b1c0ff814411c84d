"""Training ASM-Net from human eye fixations (``asm train``).

No annotated cropping images exist offline, so the ranking pairs come from a human signal
that does: where 15 viewers looked in OSIE photographs. For each training image we draw
groups of candidate views of one size and aspect at random places; within a group a view
that keeps more of the fixation density ranks higher (eqs. 3-4 with a margin ``delta`` on
the kept share). Equal-size views carry no size cue, and every view is scored from one
score map through ``torch.ops.asm.composition_pool``. The saliency-aware loss (eq. 7)
uses the fixation density as the saliency map ``S``.

Guards against the spatial-bias shortcut (paper §4.5): reflect padding in the backbone,
a random outer crop (85-100 %) and flip of each photo as the training image, and views
that are compared only with views of the same size.

Runs on one CPU, one GPU, or several processes via ``torchrun`` (DistributedDataParallel,
gloo on CPU). Checkpoints every epoch (``last.pt`` resumes; ``best.pt`` is the epoch with
the most validation fixations kept; ``final.pt``, written at the end, is the last epoch and
what ships), a progress bar, per-epoch metrics in ``history.json`` and ``curves.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn import functional as F

import asm.ops  # noqa: F401  (registers torch.ops.asm, used below)
from asm.candidates import largest_box
from asm.losses import pair_ranking_loss, saliency_loss
from asm.model import ASMNet, normalize, save_model
from asm.saliency import fixation_density

__all__ = ["TrainConfig", "FixationSample", "osie_samples", "train", "add_parser"]

#: Aspect ratios (w/h) of the view groups.
VIEW_RATIOS = (9 / 16, 3 / 4, 1.0, 4 / 3, 16 / 9)


@dataclass
class TrainConfig:
    """Every knob of a run (``asm train --config FILE.json`` takes these keys)."""

    out: str = "runs/default"
    backbone: str = "mobilenet_v2"
    backbone_weights: str | None = None
    pattern: str = "cross_rectangle"
    map_stride: int = 8
    epochs: int = 8
    batch_size: int = 8
    input_size: tuple[int, int] = (224, 288)  # (h, w) of the network input
    lr: float = 1e-3  # heads
    backbone_lr: float = 1e-4
    weight_decay: float = 1e-4
    lam: float = 0.1  # weight of the saliency-aware loss
    margin: float = 1.0
    delta: float = 0.05  # minimum difference of kept fixation share for a pair
    nested: bool = True  # also rank each view against a wider view around it (learns scale)
    groups: int = 6  # view groups per image
    views: int = 8  # views per group
    min_view_scale: float = 0.5
    max_view_scale: float = 0.9
    outer_crop: float = 0.85  # random outer crop keeps at least this much of each side
    data: str = "osie"  # or "synthetic" (smoke tests)
    train_split: str = "train"
    val_split: str = "val"
    limit: int | None = None  # use only the first N training images (smoke tests)
    seed: int = 0
    half: bool = True  # store best.pt weights as float16

    @classmethod
    def from_file(cls, path: str | os.PathLike, **overrides) -> TrainConfig:
        data = json.loads(Path(path).read_text())
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        if "input_size" in data:
            data["input_size"] = tuple(data["input_size"])
        return cls(**data)


@dataclass
class FixationSample:
    """A photo and where people looked at it."""

    image: np.ndarray  # [H, W, 3] uint8
    points: np.ndarray  # [N, 2] float32 x, y in pixels


def synthetic_samples(n: int, seed: int = 0, size: tuple[int, int] = (180, 240)) -> list[FixationSample]:
    """``n`` generated photos (noise with one bright disc) whose "fixations" sit on the disc:
    a tiny data set for smoke tests and the DDP check, no files needed."""
    rng = np.random.default_rng(seed)
    H, W = size
    out = []
    for _ in range(n):
        img = (rng.random((H, W, 3)) * 90).astype(np.uint8)
        cx, cy, r = rng.uniform(0.2 * W, 0.8 * W), rng.uniform(0.2 * H, 0.8 * H), rng.uniform(0.08, 0.15) * H
        cv2.circle(img, (int(cx), int(cy)), int(r), tuple(int(v) for v in rng.integers(150, 255, 3)), -1)
        pts = np.stack([cx + rng.normal(0, r / 2, 60), cy + rng.normal(0, r / 2, 60)], 1).astype(np.float32)
        out.append(FixationSample(img, pts))
    return out


def load_samples(data: str, split: str, limit: int | None) -> list[FixationSample]:
    """Training data by name: ``"osie"`` (shared OSIE photos) or ``"synthetic"``."""
    if data == "synthetic":
        return synthetic_samples(limit or 16, seed=0 if split == "train" else 1)
    if data == "osie":
        return osie_samples(split, limit)
    raise ValueError(f"unknown training data {data!r}; use 'osie' or 'synthetic'")


def osie_samples(split: str, limit: int | None = None, root: str | os.PathLike | None = None) -> list[FixationSample]:
    """OSIE photos of ``split`` ("train": ids 1001-1400, "val": 1401-1500) with their fixations."""
    from asm.datasets import OSIE
    from asm.io import load_image

    data = OSIE(root, split=split)
    items = [data[i] for i in range(len(data) if limit is None else min(limit, len(data)))]
    return [FixationSample(load_image(it.path), it.points) for it in items]


# ------------------------------------------------------------------------------ sampling
def _views(rng: np.random.Generator, width: int, height: int, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``cfg.groups`` groups of ``cfg.views`` equal-size views, and for each view a wider
    view around the same centre (same aspect, 1.15-1.5x the side, kept inside the image).

    Returns ``boxes [G*V, 4]``, ``group [G*V]`` and ``wider [G*V, 4]``.
    """
    boxes, group = [], []
    for g in range(cfg.groups):
        ratio = VIEW_RATIOS[rng.integers(len(VIEW_RATIOS))]
        bw, bh = largest_box(ratio, width, height)
        s = rng.uniform(cfg.min_view_scale, cfg.max_view_scale)
        w, h = bw * s, bh * s
        x = rng.uniform(0, width - w, cfg.views)
        y = rng.uniform(0, height - h, cfg.views)
        boxes.append(np.stack([x, y, x + w, y + h], 1))
        group.append(np.full(cfg.views, g))
    boxes_a = np.concatenate(boxes)
    w, h = boxes_a[:, 2] - boxes_a[:, 0], boxes_a[:, 3] - boxes_a[:, 1]
    grow = np.minimum(rng.uniform(1.15, 1.5, len(boxes_a)), np.minimum(width / w, height / h))
    ww, wh = w * grow, h * grow
    cx, cy = (boxes_a[:, 0] + boxes_a[:, 2]) / 2, (boxes_a[:, 1] + boxes_a[:, 3]) / 2
    x1 = np.clip(cx - ww / 2, 0, width - ww)
    y1 = np.clip(cy - wh / 2, 0, height - wh)
    return boxes_a, np.concatenate(group), np.stack([x1, y1, x1 + ww, y1 + wh], 1)


def _kept_share(density: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Share of the (sum-normalised) ``density [H, W]`` inside each box, exactly."""
    from asm.patterns import get_pattern

    d = torch.from_numpy(density.astype(np.float64))[None, None]
    rows = torch.cat([torch.zeros(len(boxes), 1, dtype=torch.float64), torch.from_numpy(boxes)], 1)
    mean = torch.ops.asm.composition_pool(d, rows, get_pattern("grid1x1").partition)
    area = (rows[:, 3] - rows[:, 1]) * (rows[:, 4] - rows[:, 2])
    return (mean * area).numpy() / max(float(density.sum()), 1e-12)


def make_example(sample: FixationSample, rng: np.random.Generator, cfg: TrainConfig) -> dict:
    """One augmented training image with its views, targets and saliency map."""
    H, W = sample.image.shape[:2]
    ch = int(round(H * rng.uniform(cfg.outer_crop, 1.0)))
    cw = int(round(W * rng.uniform(cfg.outer_crop, 1.0)))
    y0, x0 = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
    image = sample.image[y0 : y0 + ch, x0 : x0 + cw]
    pts = sample.points - np.array([x0, y0], np.float32)
    if rng.random() < 0.5:
        image = image[:, ::-1]
        pts = pts * np.array([-1, 1], np.float32) + np.array([cw, 0], np.float32)
    ih, iw = cfg.input_size
    small = cv2.resize(np.ascontiguousarray(image), (iw, ih), interpolation=cv2.INTER_AREA)
    pts_small = pts * np.array([iw / cw, ih / ch], np.float32)
    density = fixation_density(pts_small, (ih, iw), sigma=24.0 * iw / W, normalize="sum")
    boxes, group, wider = _views(rng, iw, ih, cfg)
    kept = _kept_share(density, np.concatenate([boxes, wider]))
    return {
        "image": torch.from_numpy(small).permute(2, 0, 1).float().div(255),
        "boxes": torch.from_numpy(np.concatenate([boxes, wider])).float(),
        "group": torch.from_numpy(group),
        "kept": torch.from_numpy(kept).float(),
        "saliency": torch.from_numpy(density / max(float(density.max()), 1e-12)).float(),
    }


def _pairs(kept: Tensor, group: Tensor, delta: float, nested: bool = True) -> tuple[Tensor, Tensor]:
    """Index pairs ``(better, worse)``.

    ``kept`` holds the kept fixation share of the ``N = len(group)`` equal-size views, then
    of their ``N`` wider versions. Pairs: (1) views of one group whose kept shares differ by
    ``>= delta``; (2) where ``nested``, each view against its wider version: the wider one
    wins if it keeps ``>= delta`` more, the tighter one wins if widening adds less than
    ``delta / 4`` (only space nobody looked at), otherwise no pair.
    """
    n = len(group)
    k = kept[:n]
    diff = k[:, None] - k[None, :]
    same = group[:, None] == group[None, :]
    better, worse = torch.nonzero(same & (diff >= delta), as_tuple=True)
    if not nested:
        return better, worse
    gain = kept[n:] - k
    idx = torch.arange(n)
    wide_wins, tight_wins = gain >= delta, gain < delta / 4
    better = torch.cat([better, idx[wide_wins] + n, idx[tight_wins]])
    worse = torch.cat([worse, idx[wide_wins], idx[tight_wins] + n])
    return better, worse


def batch_loss(model: torch.nn.Module, examples: list[dict], cfg: TrainConfig) -> tuple[Tensor, dict]:
    """``L_rank + lam * L_sal`` for a batch; every view of an image scored from its one map."""
    images = normalize(torch.stack([e["image"] for e in examples]))
    device = next(model.parameters()).device
    score_map = model(images.to(device))  # [B, L, h, w]
    B, L, h, w = score_map.shape
    ih, iw = images.shape[-2:]
    partition = (model.module if hasattr(model, "module") else model).pattern.partition.to(device)
    rows, better, worse, offset = [], [], [], 0
    for b, e in enumerate(examples):
        boxes = e["boxes"] * torch.tensor([w / iw, h / ih, w / iw, h / ih])
        rows.append(torch.cat([torch.full((len(boxes), 1), float(b)), boxes], 1))
        i, j = _pairs(e["kept"], e["group"], cfg.delta, cfg.nested)
        better.append(i + offset)
        worse.append(j + offset)
        offset += len(boxes)
    rows_t = torch.cat(rows).to(device)
    scores = torch.ops.asm.composition_pool(score_map, rows_t, partition)
    better_t, worse_t = torch.cat(better).to(device), torch.cat(worse).to(device)
    rank = pair_ranking_loss(scores[better_t], scores[worse_t], cfg.margin)
    sal_maps = torch.stack([e["saliency"] for e in examples])[:, None]
    sal = F.interpolate(sal_maps, size=(h, w), mode="area")[:, 0].to(device)
    sal_l = saliency_loss(score_map, sal)
    loss = rank + cfg.lam * sal_l
    with torch.no_grad():
        acc = (scores[better_t] > scores[worse_t]).float().mean().item() if len(better_t) else float("nan")
    return loss, {"loss": loss.item(), "rank": rank.item(), "sal": sal_l.item(), "pair_acc": acc, "pairs": len(better_t)}


# ------------------------------------------------------------------------------ loop
def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _plot(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    keys = [k for k in ("loss", "val_pair_acc", "val_kept_1x1", "val_kept_9x16") if k in history[0]]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    for ax, k in zip(np.atleast_1d(axes), keys):
        ax.plot(epochs, [h[k] for h in history], marker="o")
        if k == "loss" and "train_pair_acc" in history[0]:
            ax.set_title("train loss")
        else:
            ax.set_title(k.replace("_", " "))
        for base in ("centre_kept_1x1", "centre_kept_9x16"):
            if k.endswith(base[-3:]) and k.startswith("val_kept") and base in history[-1]:
                ax.axhline(history[-1][base], color="grey", ls="--", label="centre crop")
                ax.legend()
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def validate(model: ASMNet, val: list[FixationSample], cfg: TrainConfig, seed: int = 1234) -> dict:
    """Held-out pair accuracy (same sampling, fixed seed) and the share of fixations kept by
    the model's best 1:1 and 9:16 crops vs the centre crop."""
    from asm.cropper import Cropper
    from asm.metrics import fixations_kept
    from asm.peers import centre_crop

    model.eval()
    rng = np.random.default_rng(seed)
    accs = []
    with torch.no_grad():
        for s in val:
            _, stats = batch_loss(model, [make_example(s, rng, cfg)], cfg)
            if not math.isnan(stats["pair_acc"]):
                accs.append(stats["pair_acc"])
    cropper = Cropper(model)
    out = {"val_pair_acc": float(np.mean(accs)) if accs else float("nan")}
    for label, ratio in (("1x1", 1.0), ("9x16", 9 / 16)):
        kept, centre = [], []
        for s in val:
            H, W = s.image.shape[:2]
            crop = cropper.crop(s.image, aspect=label.replace("x", ":")).crops[0]
            kept.append(fixations_kept(crop.box, s.points))
            centre.append(fixations_kept(centre_crop(W, H, ratio), s.points))
        out[f"val_kept_{label}"] = float(np.mean(kept))
        out[f"centre_kept_{label}"] = float(np.mean(centre))
    model.train()
    return out


def train(cfg: TrainConfig, train_set: list[FixationSample] | None = None, val_set: list[FixationSample] | None = None,
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
        train_set = load_samples(cfg.data, cfg.train_split, cfg.limit)
    if val_set is None and rank == 0:
        val_set = load_samples(cfg.data, cfg.val_split, None if cfg.limit is None else max(4, cfg.limit // 4))

    model = ASMNet(cfg.backbone, cfg.pattern, cfg.backbone_weights, cfg.map_stride).to(device).train()
    head_params = list(model.heads.parameters())
    backbone_params = [p for p in model.stages.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": head_params, "lr": cfg.lr}, {"params": backbone_params, "lr": cfg.backbone_lr}],
        weight_decay=cfg.weight_decay,
    )
    steps_per_epoch = max(1, math.ceil(len(train_set) / world / cfg.batch_size))
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
        rng = np.random.default_rng(cfg.seed * 1000 + epoch * world + rank)
        order = np.random.default_rng(cfg.seed + epoch).permutation(len(train_set))[rank::world]
        t0 = time.time()
        sums: dict[str, float] = {}
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress or rank != 0, unit="step")
        for step in bar:
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            if len(idx) == 0:
                idx = order[: cfg.batch_size]
            loss, stats = batch_loss(net, [make_example(train_set[i], rng, cfg) for i in idx], cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + (0.0 if math.isnan(v) else v)
            bar.set_postfix(loss=f"{stats['loss']:.3f}", acc=f"{stats['pair_acc']:.2f}")
        record = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1)}
        record.update({k if k != "pair_acc" else "train_pair_acc": v / steps_per_epoch for k, v in sums.items()})
        if rank == 0:
            record.update(validate(model, val_set, cfg))
            history.append(record)
            print(json.dumps(record), flush=True)
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "epoch": epoch + 1, "history": json.dumps(history)}, out / "last.pt")
            best = max(history, key=lambda h: h.get("val_kept_1x1", 0) + h.get("val_kept_9x16", 0))
            if best is record:
                save_model(model, out / "best.pt", half=cfg.half, meta={"recipe": "osie-fixation-pairs", "config": json.dumps(asdict(cfg)), "val": json.dumps(record)})
            (out / "history.json").write_text(json.dumps(history, indent=2))
            _plot(history, out / "curves.png")
        if world > 1:
            dist.barrier()
    if rank == 0 and history:  # the shipped model is the last epoch: no choice made on validation data
        save_model(model, out / "final.pt", half=cfg.half,
                   meta={"recipe": "osie-fixation-pairs", "config": json.dumps(asdict(cfg)), "val": json.dumps(history[-1])})
    if world > 1:
        dist.destroy_process_group()
    return history


# ------------------------------------------------------------------------------ CLI
def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from human eye fixations (OSIE)",
        description="Train ASM-Net on ranking pairs from OSIE eye fixations (see asm/train.py). "
        "Runs on CPU, GPU, or several processes with torchrun. Every TrainConfig field can be set "
        "in a JSON --config file; flags override it.",
    )
    p.add_argument("--config", type=Path, help="JSON file with TrainConfig fields")
    p.add_argument("--out", help="output folder (checkpoints, history.json, curves.png)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, dest="batch_size")
    p.add_argument("--backbone")
    p.add_argument("--backbone-weights", dest="backbone_weights", help="torchvision ImageNet state dict of the backbone")
    p.add_argument("--pattern")
    p.add_argument("--lam", type=float, help="weight of the saliency-aware loss (default 0.1)")
    p.add_argument("--limit", type=int, help="use only the first N training images")
    p.add_argument("--data", choices=["osie", "synthetic"], help="training data (default osie)")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    overrides = {k: getattr(args, k) for k in ("out", "epochs", "batch_size", "backbone", "backbone_weights", "pattern", "lam", "limit", "seed", "data")}
    cfg = TrainConfig.from_file(args.config, **overrides) if args.config else TrainConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    train(cfg, resume=args.resume, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    import sys

    parser = argparse.ArgumentParser(prog="asm")
    add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(["train", *sys.argv[1:]])
    sys.exit(ns.func(ns))
