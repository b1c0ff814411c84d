"""Evaluation metrics: GAICD ranking (SRCC, Acc_K/N), best-crop (IoU, displacement), where a
box sits, and saliency (NSS, AUC). The shares of fixations a box keeps are in :mod:`asm.geometry`
(training uses them too).

All functions take numpy arrays, tensors or lists and return Python floats (or dicts of them).
Boxes are ``x1, y1, x2, y2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from asm.geometry import as_boxes

__all__ = [
    "rankdata",
    "ks_distance",
    "srcc",
    "gaicd_acc",
    "gaicd_evaluate",
    "iou",
    "boundary_displacement",
    "placement_offset",
    "nss",
    "auc_all_pixels",
]


def _np(x, dtype=np.float64) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def rankdata(x) -> np.ndarray:
    """Ranks 1..n of a 1-D array, ties getting the average of their ranks (like ``scipy.stats.rankdata``)."""
    a = _np(x).reshape(-1)
    n = len(a)
    order = np.argsort(a, kind="stable")
    sorted_a = a[order]
    # start of each run of equal values
    starts = np.r_[True, sorted_a[1:] != sorted_a[:-1]] if n else np.zeros(0, bool)
    run_id = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], n] - 1
    avg = (first + last) / 2.0 + 1.0
    ranks = np.empty(n, np.float64)
    ranks[order] = avg[run_id]
    return ranks


def srcc(pred, target) -> float:
    """Spearman rank correlation (ties averaged). ``nan`` if either side is constant or has < 2 values."""
    p, t = _np(pred).reshape(-1), _np(target).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"pred has {p.size} values, target {t.size}")
    if p.size < 2:
        return float("nan")
    rp, rt = rankdata(p), rankdata(t)
    rp -= rp.mean()
    rt -= rt.mean()
    den = np.sqrt((rp * rp).sum() * (rt * rt).sum())
    if den == 0:
        return float("nan")
    return float(np.clip((rp * rt).sum() / den, -1.0, 1.0))


def gaicd_acc(pred_scores, gt_scores) -> dict[str, float]:
    """GAICD top-K accuracy of one image, in percent.

    ``Acc_K/N`` = share of the K best predicted crops whose annotated score is at least the
    N-th best annotated score (so crops tied at the N-th place count, as in the official
    evaluation code), for K = 1..4 and N = 5, 10; ``Acc5`` / ``Acc10`` are the means over K.
    Predicted ties keep the annotation order (stable sort). With fewer than N crops, all
    crops are the top N.

    Returns keys ``Acc1/5 .. Acc4/5, Acc5, Acc1/10 .. Acc4/10, Acc10``.
    """
    p, g = _np(pred_scores).reshape(-1), _np(gt_scores).reshape(-1)
    if p.shape != g.shape:
        raise ValueError(f"pred_scores has {p.size} values, gt_scores {g.size}")
    if p.size == 0:
        raise ValueError("gaicd_acc needs at least one crop")
    pred_order = np.argsort(-p, kind="stable")
    gt_sorted = np.sort(g)[::-1]
    out: dict[str, float] = {}
    for n in (5, 10):
        thr = gt_sorted[min(n, len(g)) - 1]
        accs = []
        for k in range(1, 5):
            top = pred_order[:k]
            acc = 100.0 * float(np.mean(g[top] >= thr))
            out[f"Acc{k}/{n}"] = acc
            accs.append(acc)
        out[f"Acc{n}"] = float(np.mean(accs))
    return out


def gaicd_evaluate(preds: Sequence, gts: Sequence) -> dict[str, float]:
    """Per-image ``SRCC`` and :func:`gaicd_acc` averaged over images (NaN SRCCs skipped); plus ``images``."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} images")
    if not len(preds):
        raise ValueError("gaicd_evaluate needs at least one image")
    rows = [gaicd_acc(p, g) for p, g in zip(preds, gts)]
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    s = np.array([srcc(p, g) for p, g in zip(preds, gts)])
    out["SRCC"] = float(np.nanmean(s)) if np.isfinite(s).any() else float("nan")
    out["images"] = float(len(rows))
    return out


def iou(box_a, box_b):
    """Intersection over union of ``x1y1x2y2`` boxes; broadcasts over leading dims.

    A float for single boxes, an array otherwise. Empty union gives 0.
    """
    a, b = as_boxes(box_a), as_boxes(box_b)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
    union = area(a) + area(b) - inter
    r = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return float(r) if r.ndim == 0 else r


def boundary_displacement(pred, gt, width: float, height: float):
    """Mean of ``|dx1|/W, |dx2|/W, |dy1|/H, |dy2|/H`` (Disp of Chen et al. 2017); broadcasts."""
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive, got {width} x {height}")
    p, g = as_boxes(pred), as_boxes(gt)
    d = np.abs(p - g) / np.array([width, height, width, height], dtype=np.float64)
    r = d.mean(-1)
    return float(r) if r.ndim == 0 else r


def _points(points) -> np.ndarray:
    p = _np(points).reshape(-1, 2)
    return p


def placement_offset(box, width: int, height: int) -> float:
    """Where a box sits along the axis it has most room on: ``-1`` / ``+1`` at the left/top
    and right/bottom ends, ``0`` centred; ``nan`` if it fills the image."""
    x1, y1, x2, y2 = (float(v) for v in as_boxes(box).reshape(4))
    room_x, room_y = width - (x2 - x1), height - (y2 - y1)
    if max(room_x, room_y) <= 0:
        return float("nan")
    if room_x >= room_y:
        return (x1 + x2 - width) / room_x
    return (y1 + y2 - height) / room_y


def _values_at(saliency: np.ndarray, points) -> np.ndarray:
    m = np.asarray(saliency, dtype=np.float64)
    p = _points(points)
    c = np.clip(np.floor(p[:, 0]).astype(np.int64), 0, m.shape[1] - 1)
    r = np.clip(np.floor(p[:, 1]).astype(np.int64), 0, m.shape[0] - 1)
    return m[r, c]


def nss(saliency: np.ndarray, points) -> float:
    """Normalised scanpath saliency: mean of the standardised ``[H, W]`` map at the fixated
    pixels ``(N, 2)`` xy; ``nan`` for no point or a flat map."""
    m = np.asarray(saliency, dtype=np.float64)
    if len(_points(points)) == 0 or m.std() == 0:
        return float("nan")
    return float(((_values_at(m, points) - m.mean()) / m.std()).mean())


def auc_all_pixels(saliency: np.ndarray, points) -> float:
    """AUC of a ``[H, W]`` map separating the fixated pixels ``(N, 2)`` xy from every pixel of
    the image: the chance that a fixation's value is above a random pixel's (ties count half)."""
    if len(_points(points)) == 0:
        return float("nan")
    flat = np.sort(np.asarray(saliency, dtype=np.float64).ravel())
    v = _values_at(saliency, points)
    below = np.searchsorted(flat, v, "left")
    ties = np.searchsorted(flat, v, "right") - below
    return float(((below + 0.5 * ties) / len(flat)).mean())


def ks_distance(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov distance: the largest gap between the empirical CDFs of ``a`` and ``b``."""
    a, b = np.sort(_np(a).reshape(-1)), np.sort(_np(b).reshape(-1))
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    grid = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b)).max())
