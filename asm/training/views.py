"""Views of a training photo, the share of where people look each keeps, and ranking pairs.

For each photo we draw groups of views of one size and aspect; within a group the view that
keeps more of the target density ranks higher (eqs. 3-4, margin on the kept share ``delta``),
and each view is also ranked against a wider view around it (scale).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from asm.data.gaze import GazeSample
from asm.geometry import density_kept
from asm.search.candidates import largest_box, random_cut
from asm.training.config import TrainConfig, serving_preset

__all__ = ["make_example", "input_size", "VIEW_RATIOS", "SERVED_SCALES"]

#: Aspect ratios (w/h) of the view groups.
VIEW_RATIOS = (9 / 16, 2 / 3, 3 / 4, 4 / 5, 1.0, 5 / 4, 4 / 3, 3 / 2, 16 / 9)
#: Scales (side of the largest box) the search serves: its coarse anchors go down to 0.58.
SERVED_SCALES = (0.58, 1.0)


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


def input_size(width: int, height: int, cfg: TrainConfig) -> tuple[int, int]:
    """``(h, w)`` of the network input for a ``width x height`` image: as the trained model will
    be served (:func:`~asm.training.config.serving_preset`, aspect kept) when ``cfg.keep_aspect``,
    else ``cfg.input_size = (short, long)`` in the image's orientation (squashed to that aspect)."""
    if cfg.keep_aspect:
        w, h = serving_preset(cfg).input_size(width, height)
        return h, w
    short, long = cfg.input_size
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
    ih, iw = input_size(pw, ph, cfg)
    small = cv2.resize(np.ascontiguousarray(image), (iw, ih), interpolation=cv2.INTER_AREA)
    boxes, group, wider = _views(rng, pw, ph, cfg)  # photo pixels, real aspects
    both = np.concatenate([boxes, wider])
    kept = density_kept(np.ascontiguousarray(target), both * np.array([cw / pw, ch / ph] * 2))
    teacher = np.ascontiguousarray(teacher)
    x1, y1, x2, y2 = random_cut(rng, pw, ph)  # re-framed as an image of its own
    ch_, cw_ = input_size(x2 - x1, y2 - y1, cfg)
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
