"""The training samples and validation sets of a run (``TrainConfig.data``)."""

from __future__ import annotations

import cv2
import numpy as np

from asm.data.gaze import GazeSample
from asm.training.config import TrainConfig

__all__ = ["load_gaze", "synthetic_samples", "FIXATION_DATA"]

#: Training data by name -> the eye-fixation sets (:mod:`asm.data.fixations`) it trains on
#: (their ``train`` splits; their ``val`` splits validate). "gaze" adds the teacher-labelled photos.
FIXATION_DATA = {"gaze": ("osie", "eyecrowd", "nus"), "fixations": ("osie", "eyecrowd", "nus"), "osie": ("osie",)}


def synthetic_samples(n: int, seed: int = 0, size: tuple[int, int] = (180, 240)) -> list[GazeSample]:
    """``n`` generated photos (noise with one bright disc) whose looks sit on the disc:
    a tiny data set for smoke tests and the DDP check, no files needed."""
    from asm.data.gaze import MAP_STRIDE

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
        from asm.data.pack import load_pack

        sets = load_pack(cfg.data)
        train_set = sets.pop("train")
        if cfg.limit:  # a pack lists its sources one after the other: draw from all of them
            keep = np.random.default_rng(cfg.seed).permutation(len(train_set))[: cfg.limit]
            train_set = [train_set[i] for i in sorted(keep)]
        return train_set, sets
    if cfg.data not in FIXATION_DATA:
        raise ValueError(f"unknown training data {cfg.data!r}; use {', '.join(map(repr, FIXATION_DATA))}, 'synthetic' or a pack file (.pkl)")
    from asm.data.photos import photo_folder, split_by_source
    from asm.models.fastgaze import FastGaze
    from asm.data.gaze import default_cache_dir, fixation_gaze, photo_gaze, teacher_path

    teacher = FastGaze.from_file(teacher_path(cfg.teacher))
    cache = default_cache_dir()
    side = cfg.store_side
    train_set: list[GazeSample] = []
    val: dict[str, list[GazeSample]] = {}
    for name in FIXATION_DATA[cfg.data]:
        train_set += fixation_gaze(name, "train", teacher, cfg.limit, cache, progress, side)
        val[name] = fixation_gaze(name, "val", teacher, None if cfg.limit is None else max(4, cfg.limit // 4), cache, progress, side)
    if cfg.data == "gaze":
        train_photos, val_photos = split_by_source(photo_folder())
        lim = (lambda xs: xs) if cfg.limit is None else (lambda xs: xs[: cfg.limit])
        train_set += photo_gaze(lim(train_photos), teacher, cache, progress, store_side=side)
        val["photos"] = photo_gaze(lim(val_photos), teacher, cache, progress, store_side=side)
    return train_set, val
