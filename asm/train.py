"""Training ASM-Net on where people look (``asm train``), recipe v2.

No annotated cropping images exist offline, so ranking pairs come from where people look
(:mod:`asm.train_data`): human eye fixations on OSIE photos, and the FastGaze teacher's
density times the centre prior on ~1 100 more photos. For each training photo we draw
groups of views of one size and aspect; within a group the view that keeps more of the
target density ranks higher (eqs. 3-4, margin on the kept share ``delta``). Most groups
are what the search serves: the largest box of an aspect, or a box of the scales the
search uses, at places spread over the whole free range (so boxes touching two borders
are seen as often as they are served); the rest float inside the photo at 50-90 % of the
largest box. Each view is also ranked against a wider view around it (scale).

A crop's score is ``composition_pool(M, box) + w * centre_prior(box)``: the map sees
content, and the centre bias of human looks is one explicit, learnt weight ``w``
(:mod:`asm.prior`). Losses: the ranking hinge, the saliency-aware loss (eq. 7) with the
teacher's density as ``S``, and optionally a distillation of the teacher's density into
θ_avg (standardised maps, squared error).

Guards against the spatial-bias shortcut (paper §4.5): reflect padding in the backbone,
a random outer crop (85-100 %) and flip of each photo, views compared only with views of
the same size, and the centre prior outside the map.

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
from asm.candidates import largest_box, random_cut
from asm.losses import pair_ranking_loss, saliency_loss
from asm.metrics import VALIDATION_ASPECTS as VAL_ASPECTS, border_trend, density_kept
from asm.model import ASMNet, normalize, save_model
from asm.prior import centre_prior
from asm.train_data import GazeSample

__all__ = ["TrainConfig", "train", "add_parser", "make_example", "batch_loss", "synthetic_samples", "VAL_ASPECTS"]

#: Aspect ratios (w/h) of the view groups.
VIEW_RATIOS = (9 / 16, 2 / 3, 3 / 4, 4 / 5, 1.0, 5 / 4, 4 / 3, 3 / 2, 16 / 9)
#: Scales (side of the largest box) the search serves: its coarse anchors go down to 0.58.
SERVED_SCALES = (0.58, 1.0)


@dataclass
class TrainConfig:
    """Every knob of a run (``asm train --config FILE.json`` takes these keys)."""

    out: str = "runs/default"
    backbone: str = "mobilenet_v2"
    backbone_weights: str | None = None
    init: str | None = None  # start from this asm model file (a second training stage)
    pattern: str = "cross_rectangle"
    map_stride: int = 8
    epochs: int = 8
    batch_size: int = 8
    input_size: tuple[int, int] = (224, 288)  # (short, long) sides of the network input
    lr: float = 1e-3  # heads
    backbone_lr: float = 1e-4
    weight_decay: float = 1e-4
    lam: float = 0.1  # weight of the saliency-aware loss
    distill: float = 0.0  # weight of the teacher-density distillation into θ_avg
    framing: float = 0.0  # weight of "the whole photo outscores a re-framed cut of it" (view finding)
    border: float = 0.0  # weight of the penalty on each map channel's image-border trend
    margin: float = 1.0
    delta: float = 0.03  # minimum difference of kept share for a pair
    nested: bool = True  # also rank each view against a wider view around it (learns scale)
    groups: int = 6  # view groups per image
    views: int = 8  # views per group
    served: float = 0.67  # share of groups drawn as the search serves them
    largest: float = 0.5  # ...of which the largest box of the aspect
    min_view_scale: float = 0.5  # floating views
    max_view_scale: float = 0.9
    outer_crop: float = 0.85  # random outer crop keeps at least this much of each side
    data: str = "gaze"  # "gaze" (OSIE fixations + teacher-labelled photos), "osie" (fixations only), "synthetic", or a pack file (.pkl)
    limit: int | None = None  # train on N images: the first N of each source, or N drawn at random (seeded) from a pack
    teacher: str | None = None  # FastGaze weights (default: the shared weights folder)
    fixation_repeats: int = 1  # photos with human fixations appear this many times per epoch
    workers: int = 1  # processes preparing batches beside the training loop (0: none)
    seed: int = 0
    half: bool = True  # store model files with float16 weights

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


def synthetic_samples(n: int, seed: int = 0, size: tuple[int, int] = (180, 240)) -> list[GazeSample]:
    """``n`` generated photos (noise with one bright disc) whose looks sit on the disc:
    a tiny data set for smoke tests and the DDP check, no files needed."""
    from asm.train_data import MAP_STRIDE

    rng = np.random.default_rng(seed)
    H, W = size
    out = []
    for i in range(n):
        img = (rng.random((H, W, 3)) * 90).astype(np.uint8)
        cx, cy, r = rng.uniform(0.2 * W, 0.8 * W), rng.uniform(0.2 * H, 0.8 * H), rng.uniform(0.08, 0.15) * H
        cv2.circle(img, (int(cx), int(cy)), int(r), tuple(int(v) for v in rng.integers(150, 255, 3)), -1)
        gy, gx = np.mgrid[0:H:MAP_STRIDE, 0:W:MAP_STRIDE] + MAP_STRIDE / 2
        d = np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * r * r)).astype(np.float32)
        d /= d.sum()
        out.append(GazeSample(img, d, d.copy(), f"synthetic/{i}"))
    return out


def load_gaze(cfg: TrainConfig, progress: bool = False) -> tuple[list[GazeSample], dict[str, list[GazeSample]]]:
    """Training samples and validation sets by name (``cfg.data``)."""
    if cfg.data == "synthetic":
        n = cfg.limit or 16
        return synthetic_samples(n, 0), {"synthetic": synthetic_samples(max(4, n // 4), 1)}
    if cfg.data.endswith(".pkl"):  # a pack written by --write-pack
        from asm.train_data import load_pack

        sets = load_pack(cfg.data)
        train_set = sets.pop("train")
        if cfg.limit:  # a pack lists its sources one after the other: draw from all of them
            keep = np.random.default_rng(cfg.seed).permutation(len(train_set))[: cfg.limit]
            train_set = [train_set[i] for i in sorted(keep)]
        return train_set, sets
    if cfg.data not in ("gaze", "osie"):
        raise ValueError(f"unknown training data {cfg.data!r}; use 'gaze', 'osie', 'synthetic' or a pack file (.pkl)")
    from asm.datasets import photo_folder, split_by_source
    from asm.fastgaze import FastGaze
    from asm.train_data import default_cache_dir, osie_gaze, photo_gaze, teacher_path

    teacher = FastGaze.from_file(teacher_path(cfg.teacher))
    cache = default_cache_dir()
    train_set = osie_gaze("train", teacher, cfg.limit, cache, progress)
    val = {"osie": osie_gaze("val", teacher, None if cfg.limit is None else max(4, cfg.limit // 4), cache, progress)}
    if cfg.data == "gaze":
        train_photos, val_photos = split_by_source(photo_folder())
        lim = (lambda xs: xs) if cfg.limit is None else (lambda xs: xs[: cfg.limit])
        train_set += photo_gaze(lim(train_photos), teacher, cache, progress)
        val["photos"] = photo_gaze(lim(val_photos), teacher, cache, progress)
    return train_set, val


# ------------------------------------------------------------------------------ sampling
def _spread(rng: np.random.Generator, room: float, n: int) -> np.ndarray:
    """``n`` places in ``[0, room]``, one per stratum, so both ends are reached."""
    return (np.arange(n) + rng.random(n)) / n * room if room > 0 else np.zeros(n)


def _views(rng: np.random.Generator, width: float, height: float, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``cfg.groups`` groups of ``cfg.views`` equal-size views of a ``width x height`` photo,
    and for each view a wider view around the same centre (same aspect, 1.15-1.5x the side,
    kept inside the photo).

    A group is served (probability ``cfg.served``): the largest box of its aspect
    (probability ``cfg.largest``) or of a scale in :data:`SERVED_SCALES`, at places spread
    over the whole free range; or floating: ``min_view_scale..max_view_scale`` of the
    largest box at uniform places.

    Returns ``boxes [G*V, 4]``, ``group [G*V]`` and ``wider [G*V, 4]``.
    """
    boxes, group = [], []
    for g in range(cfg.groups):
        ratio = VIEW_RATIOS[rng.integers(len(VIEW_RATIOS))]
        bw, bh = largest_box(ratio, width, height)
        if rng.random() < cfg.served:
            s = 1.0 if rng.random() < cfg.largest else rng.uniform(*SERVED_SCALES)
            w, h = bw * s, bh * s
            x, y = _spread(rng, width - w, cfg.views), _spread(rng, height - h, cfg.views)
            y = rng.permutation(y)
        else:
            s = rng.uniform(cfg.min_view_scale, cfg.max_view_scale)
            w, h = bw * s, bh * s
            x, y = rng.uniform(0, width - w, cfg.views), rng.uniform(0, height - h, cfg.views)
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


def input_size(width: int, height: int, sides: tuple[int, int]) -> tuple[int, int]:
    """``(h, w)`` of the network input for a photo: ``sides = (short, long)`` in its orientation."""
    short, long = sides
    return (short, long) if width >= height else (long, short)


def make_example(sample: GazeSample, rng: np.random.Generator, cfg: TrainConfig) -> dict:
    """One augmented training image (random outer crop and flip) with its views, their kept
    shares of the target density, and the teacher's density."""
    H, W = sample.image.shape[:2]
    gh, gw = sample.target.shape
    fy0, fx0 = rng.uniform(cfg.outer_crop, 1.0), rng.uniform(cfg.outer_crop, 1.0)
    # the outer crop in grid cells (whole cells), then in photo pixels
    ch, cw = max(2, int(round(gh * fy0))), max(2, int(round(gw * fx0)))
    gy0, gx0 = int(rng.integers(0, gh - ch + 1)), int(rng.integers(0, gw - cw + 1))
    sy, sx = H / gh, W / gw
    y0, y1 = int(round(gy0 * sy)), min(H, int(round((gy0 + ch) * sy)))
    x0, x1 = int(round(gx0 * sx)), min(W, int(round((gx0 + cw) * sx)))
    image = sample.image[y0:y1, x0:x1]
    target = sample.target[gy0 : gy0 + ch, gx0 : gx0 + cw]
    teacher = sample.teacher[gy0 : gy0 + ch, gx0 : gx0 + cw]
    if rng.random() < 0.5:
        image, target, teacher = image[:, ::-1], target[:, ::-1], teacher[:, ::-1]
    ph, pw = image.shape[:2]
    ih, iw = input_size(pw, ph, cfg.input_size)
    small = cv2.resize(np.ascontiguousarray(image), (iw, ih), interpolation=cv2.INTER_AREA)
    boxes, group, wider = _views(rng, pw, ph, cfg)  # photo pixels, real aspects
    both = np.concatenate([boxes, wider])
    kept = density_kept(np.ascontiguousarray(target), both * np.array([cw / pw, ch / ph] * 2))
    teacher = np.ascontiguousarray(teacher)
    x1, y1, x2, y2 = random_cut(rng, pw, ph)  # re-framed as an image of its own
    ch_, cw_ = input_size(x2 - x1, y2 - y1, cfg.input_size)
    cut = cv2.resize(np.ascontiguousarray(image[y1:y2, x1:x2]), (cw_, ch_), interpolation=cv2.INTER_AREA)
    return {
        "cut": torch.from_numpy(cut).permute(2, 0, 1).float().div(255),
        "image": torch.from_numpy(small).permute(2, 0, 1).float().div(255),
        "boxes": torch.from_numpy(both * np.array([iw / pw, ih / ph] * 2)).float(),  # input pixels
        "group": torch.from_numpy(group),
        "kept": torch.from_numpy(kept).float(),
        "teacher": torch.from_numpy(teacher / max(float(teacher.max()), 1e-12)).float(),
    }


def _pairs(kept: Tensor, group: Tensor, delta: float, nested: bool = True, grown: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Index pairs ``(better, worse)``.

    ``kept`` holds the kept share of the ``N = len(group)`` equal-size views, then of their
    ``N`` wider versions. Pairs: (1) views of one group whose kept shares differ by
    ``>= delta``; (2) where ``nested``, each view against its wider version (where
    ``grown[N]``, i.e. the wider one is really wider): the wider one wins if it keeps
    ``>= delta`` more, the tighter one wins if widening adds less than ``delta / 4`` (only
    space nobody looked at), otherwise no pair.
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
    ok = torch.ones(n, dtype=torch.bool) if grown is None else grown
    wide_wins, tight_wins = ok & (gain >= delta), ok & (gain < delta / 4)
    better = torch.cat([better, idx[wide_wins] + n, idx[tight_wins]])
    worse = torch.cat([worse, idx[wide_wins], idx[tight_wins] + n])
    return better, worse


def _grown(boxes: Tensor, n: int) -> Tensor:
    """``[n]``: the wider view (rows ``n..2n``) is at least 5 % wider than its view."""
    w = boxes[:, 2] - boxes[:, 0]
    return w[n:] > 1.05 * w[:n]


def _standardise(x: Tensor) -> Tensor:
    """Per image ``[B, h, w]``: zero mean, unit std."""
    flat = x.flatten(1)
    return ((flat - flat.mean(1, keepdim=True)) / (flat.std(1, keepdim=True) + 1e-6)).view_as(x)


def whole_frame_scores(score_map: Tensor, partition: Tensor) -> Tensor:
    """``[B]`` scores of the whole frame of each map ``[B, L, h, w]`` (its centre prior is 0)."""
    B, _, h, w = score_map.shape
    rows = score_map.new_zeros(B, 5)
    rows[:, 0] = torch.arange(B, dtype=score_map.dtype, device=score_map.device)
    rows[:, 3], rows[:, 4] = w, h
    return torch.ops.asm.composition_pool(score_map, rows, partition)


def cut_scores(model: torch.nn.Module, cuts: list[Tensor]) -> Tensor:
    """``[N]`` whole-frame scores of the ``[3, h, w]`` re-framed cuts, in order (one pass per size)."""
    core = model.module if hasattr(model, "module") else model
    device = next(model.parameters()).device
    partition = core.pattern.partition.to(device)
    by_size: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(cuts):
        by_size.setdefault(tuple(t.shape), []).append(i)
    out = torch.empty(len(cuts), device=device)
    for idx in by_size.values():
        out[idx] = whole_frame_scores(model(normalize(torch.stack([cuts[i] for i in idx])).to(device)), partition)
    return out


def distill_loss(score_map: Tensor, teacher: Tensor) -> Tensor:
    """Squared error between the standardised θ_avg ``[B, h, w]`` and the standardised teacher
    density, area-resized to the map."""
    t = F.interpolate(teacher[:, None], size=score_map.shape[-2:], mode="area")[:, 0]
    return F.mse_loss(_standardise(score_map.mean(1)), _standardise(t))


def batch_loss(model: torch.nn.Module, examples: list[dict], cfg: TrainConfig) -> tuple[Tensor, dict]:
    """``L_rank + lam * L_sal + distill * L_distill`` for a batch; every view of an image
    scored from its one map. Examples of different input sizes (orientations) are forwarded
    in one pass per size."""
    core = model.module if hasattr(model, "module") else model
    device = next(model.parameters()).device
    partition = core.pattern.partition.to(device)
    by_size: dict[tuple[int, ...], list[dict]] = {}
    for e in examples:
        by_size.setdefault(tuple(e["image"].shape), []).append(e)
    scores, better, worse, sal, dst, brd, whole, whole_of, offset = [], [], [], [], [], [], [], [], 0
    for group in by_size.values():
        images = normalize(torch.stack([e["image"] for e in group])).to(device)
        score_map = model(images)  # [B, L, h, w]
        _, _, h, w = score_map.shape
        ih, iw = images.shape[-2:]
        rows, prior = [], []
        for b, e in enumerate(group):
            boxes = e["boxes"].to(device)
            rows.append(torch.cat([torch.full((len(boxes), 1), float(b), device=device), boxes * boxes.new_tensor([w / iw, h / ih] * 2)], 1))
            prior.append(centre_prior(boxes, iw, ih))
            n = len(e["group"])
            i, j = _pairs(e["kept"], e["group"], cfg.delta, cfg.nested, _grown(e["boxes"], n))
            better.append(i + offset)
            worse.append(j + offset)
            offset += len(boxes)
        pooled = torch.ops.asm.composition_pool(score_map, torch.cat(rows), partition)
        scores.append(pooled + core.prior_weight * torch.cat(prior))
        teacher = torch.stack([F.interpolate(e["teacher"][None, None], size=(h, w), mode="area")[0, 0] for e in group]).to(device)
        sal.append(saliency_loss(score_map, teacher) * len(group))
        dst.append(distill_loss(score_map, teacher) * len(group) if cfg.distill > 0 else score_map.new_zeros(()))
        brd.append(border_trend(score_map).pow(2).mean() * len(group) if cfg.border > 0 else score_map.new_zeros(()))
        if cfg.framing > 0:
            whole.append(whole_frame_scores(score_map, partition))
            whole_of.extend(group)
    s = torch.cat(scores)
    better_t, worse_t = torch.cat(better).to(device), torch.cat(worse).to(device)
    rank = pair_ranking_loss(s[better_t], s[worse_t], cfg.margin)
    sal_l = torch.stack(sal).sum() / len(examples)
    dst_l = torch.stack(dst).sum() / len(examples)
    brd_l = torch.stack(brd).sum() / len(examples)
    frame_l = s.new_zeros(())
    if cfg.framing > 0:  # the photo's whole frame above the whole frame of a re-framed cut of it
        frame_l = pair_ranking_loss(torch.cat(whole), cut_scores(model, [e["cut"] for e in whole_of]), cfg.margin)
    loss = rank + cfg.lam * sal_l + cfg.distill * dst_l + cfg.border * brd_l + cfg.framing * frame_l
    with torch.no_grad():
        acc = (s[better_t] > s[worse_t]).float().mean().item() if len(better_t) else float("nan")
    return loss, {"loss": loss.item(), "rank": rank.item(), "sal": sal_l.item(), "distill": dst_l.item(),
                  "border": brd_l.item(), "framing": frame_l.item(),
                  "pair_acc": acc, "pairs": len(better_t)}


# ------------------------------------------------------------------------------ loop
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


def _plot(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    keys = [k for k in ("loss", "train_pair_acc", "osie_kept", "photos_kept") if k in history[0]]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    for ax, k in zip(np.atleast_1d(axes), keys):
        ax.plot(epochs, [h[k] for h in history], marker="o", label="asm")
        ax.set_title({"loss": "train loss", "train_pair_acc": "train pair accuracy",
                      "osie_kept": "OSIE val: fixations kept", "photos_kept": "photo val: teacher x centre kept"}[k])
        base = k.replace("_kept", "_centre")
        if k.endswith("_kept") and base in history[-1]:
            ax.axhline(history[-1][base], color="grey", ls="--", label="centre crop")
            ax.legend()
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def serving_preset(cfg: TrainConfig) -> dict:
    """How the trained model is served: at the scale it trained at."""
    return {"short_side": cfg.input_size[0], "max_long_side": 2 * cfg.input_size[0]}


def validate(model: ASMNet, val: dict[str, list[GazeSample]], cfg: TrainConfig) -> dict:
    """Share of the target kept by the model's top-1 crop at each of :data:`VAL_ASPECTS`, and
    by the centre crop, per validation set (human fixation points where known, else the
    target density); ``<set>_kept`` / ``<set>_centre`` are the means over the aspects."""
    from asm.cropper import Cropper
    from asm.metrics import fixations_kept
    from asm.peers import centre_crop

    model.eval()
    cropper = Cropper(model, **serving_preset(cfg), device=next(model.parameters()).device)
    labels = [a for a, _ in VAL_ASPECTS]
    out: dict[str, float] = {}
    for name, samples in val.items():
        kept: dict[str, list[float]] = {a: [] for a in labels}
        centre: dict[str, list[float]] = {a: [] for a in labels}
        for s in samples:
            H, W = s.image.shape[:2]
            result = cropper.crop(s.image, aspect=labels)
            for (a, ratio), crop in zip(VAL_ASPECTS, result.crops):
                for store, box in ((kept, crop.box), (centre, centre_crop(W, H, ratio))):
                    if s.points is not None:
                        store[a].append(fixations_kept(box, s.points))
                    else:
                        cells = np.asarray(box, np.float64) * np.array([s.target.shape[1] / W, s.target.shape[0] / H] * 2)
                        store[a].append(float(density_kept(s.target, cells[None])[0]))
        for a in labels:
            out[f"{name}_kept_{a}"] = float(np.mean(kept[a]))
            out[f"{name}_centre_{a}"] = float(np.mean(centre[a]))
        out[f"{name}_kept"] = float(np.mean([out[f"{name}_kept_{a}"] for a in labels]))
        out[f"{name}_centre"] = float(np.mean([out[f"{name}_centre_{a}"] for a in labels]))
    photos = val.get("photos") or next(iter(val.values()), [])
    rng = np.random.default_rng(0)
    wins, trends = [], []
    for s in photos:  # checks (a) and (b) of asm eval on the held-out photos
        H, W = s.image.shape[:2]
        analysis = cropper.analyse(s.image)
        whole = float(analysis.score([[0, 0, W, H]])[0])
        trends.append(border_trend(analysis.score_map)[0].abs().mean().item())
        for _ in range(3):
            x1, y1, x2, y2 = random_cut(rng, W, H)
            cut = np.ascontiguousarray(s.image[y1:y2, x1:x2])
            wins.append(float(whole > float(cropper.score(cut, [[0, 0, x2 - x1, y2 - y1]])[0])))
    out["photo_beats_cut"] = float(np.mean(wins)) if wins else float("nan")
    out["border_trend"] = float(np.mean(trends)) if trends else float("nan")
    out["prior_weight"] = model.prior_weight.item()
    model.train()
    return out


def _meta(cfg: TrainConfig, record: dict) -> dict:
    return {"recipe": "gaze-v2", "config": json.dumps(asdict(cfg)), "val": json.dumps(record),
            "preset": json.dumps(serving_preset(cfg))}


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
        from asm.model import load_model

        model.load_state_dict(load_model(cfg.init).state_dict())
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
                save_model(model, out / "best.pt", half=cfg.half, meta=_meta(cfg, record))
            (out / "history.json").write_text(json.dumps(history, indent=2))
            _plot(history, out / "curves.png")
        if world > 1:
            dist.barrier()
    if rank == 0 and history:  # the shipped model is the last epoch: no choice made on validation data
        save_model(model, out / "final.pt", half=cfg.half, meta=_meta(cfg, history[-1]))
    if world > 1:
        dist.destroy_process_group()
    return history


# ------------------------------------------------------------------------------ CLI
def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on where people look (OSIE fixations + FastGaze teacher)",
        description="Train ASM-Net on ranking pairs from where people look (see asm/train.py). "
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
    p.add_argument("--distill", type=float, help="weight of the teacher-density distillation into θ_avg")
    p.add_argument("--limit", type=int, help="use only the first N training images of each source")
    p.add_argument("--data", help="training data: gaze (default: OSIE fixations + teacher-labelled photos), osie, synthetic, "
                   "or a pack file written by --write-pack")
    p.add_argument("--write-pack", type=Path, metavar="FILE.pkl",
                   help="only load the training and validation data and write them to one file (photos as WebP), then stop")
    p.add_argument("--teacher", help="FastGaze weights (default: the shared weights folder)")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    overrides = {k: getattr(args, k) for k in ("out", "epochs", "batch_size", "backbone", "backbone_weights", "pattern", "lam", "distill", "limit", "seed", "data", "teacher")}
    cfg = TrainConfig.from_file(args.config, **overrides) if args.config else TrainConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    if args.write_pack:
        from asm.train_data import save_pack

        train_set, val_sets = load_gaze(cfg, progress=not args.no_progress)
        save_pack({"train": train_set, **val_sets}, args.write_pack)
        print(f"wrote {args.write_pack}: {len(train_set)} training samples, "
              + ", ".join(f"{k} {len(v)}" for k, v in val_sets.items()))
        return 0
    train(cfg, resume=args.resume, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    import sys

    parser = argparse.ArgumentParser(prog="asm")
    add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(["train", *sys.argv[1:]])
    sys.exit(ns.func(ns))
