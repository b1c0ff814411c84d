"""Candidate crops for the two-stage search (paper §3.3) and the aspect-ratio options.

Pure numpy functions on image-pixel coordinates. Boxes are ``[N, 4]`` float64 arrays
``(x1, y1, x2, y2)`` in the (EXIF-oriented) original image; each box also carries the
index of the aspect ratio it was made for, so one scoring call serves every aspect.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice

import numpy as np

from asm.errors import InvalidOption, echo

__all__ = [
    "Aspect",
    "largest_box",
    "parse_aspect",
    "parse_aspects",
    "coarse_candidates",
    "refine_candidates",
    "snap_box",
    "nms",
    "iter_nms",
    "unique_boxes",
    "first_rows",
    "box_iou",
    "random_cut",
]

#: Allowed aspect ratios (width / height) lie in [1 / MAX_RATIO, MAX_RATIO].
MAX_RATIO = 10.0
MAX_ASPECTS = 12
#: Anchors go down to crops of about this share of the image area...
MIN_AREA = 1 / 3
#: ...but always span at least sides 0.85..1 and never go below 0.58 of the largest box.
SCALE_RANGE = (0.58, 0.85)


@dataclass(frozen=True)
class Aspect:
    """A requested aspect ratio. ``ratio`` is width / height; ``None`` means free."""

    label: str
    ratio: float | None

    @property
    def free(self) -> bool:
        return self.ratio is None


_NUMBER = r"((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_ASPECT_RE = re.compile(rf"^\s*{_NUMBER}\s*[:x/]\s*{_NUMBER}\s*$", re.ASCII)  # ASCII digits only
_NUMBER_RE = re.compile(rf"^\s*[-+]?{_NUMBER}\s*$", re.ASCII)


def parse_aspect(value: object) -> Aspect:
    """``"16:9"``, ``"1.91:1"``, ``(4, 3)``, a positive number, or ``None``/``"free"``."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("free", "any", "")):
        return Aspect("free", None)
    if isinstance(value, str):
        m = _ASPECT_RE.match(value)
        if not m:
            raise InvalidOption(f"aspect {echo(value)} is not of the form W:H with positive numbers (e.g. 16:9)")
        w, h = float(m.group(1)), float(m.group(2))
        label = f"{_fmt(w)}:{_fmt(h)}"
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        if not all(_is_number(v) for v in value):
            raise InvalidOption(f"aspect {echo(value)} must be two numbers (width, height)")
        w, h = float(value[0]), float(value[1])
        label = f"{_fmt(w)}:{_fmt(h)}"
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        w, h = float(value), 1.0
        label = f"{_fmt(w)}:1"
    else:
        raise InvalidOption(f"aspect {echo(value)} must be a string like '16:9', a (w, h) pair or 'free'")
    if not (math.isfinite(w) and math.isfinite(h)) or w <= 0 or h <= 0:
        raise InvalidOption(f"aspect {echo(label)} must have a positive width and height")
    ratio = w / h
    if not (1 / MAX_RATIO <= ratio <= MAX_RATIO):
        raise InvalidOption(
            f"aspect {echo(label)} is too extreme; ratios from 1:{MAX_RATIO:g} to {MAX_RATIO:g}:1 are allowed"
        )
    return Aspect(label, ratio)


def parse_aspects(value: object) -> list[Aspect]:
    """One aspect or a list of them (a comma-separated string counts as a list), deduplicated."""
    if isinstance(value, str) and "," in value:
        value = [v for v in value.split(",") if v.strip()]
    items = value if isinstance(value, list) else [value]
    if not items:
        items = [None]
    if len(items) > MAX_ASPECTS:
        raise InvalidOption(f"at most {MAX_ASPECTS} aspect ratios per request, got {len(items)}")
    out: list[Aspect] = []
    for item in items:
        a = parse_aspect(item)
        if a not in out:
            out.append(a)
    return out


def _is_number(v: object) -> bool:
    """A real number, or a string of ASCII digits that reads as one (never ``bool``)."""
    if isinstance(v, bool):
        return False
    if isinstance(v, numbers.Real):
        return True
    return isinstance(v, str) and bool(_NUMBER_RE.match(v))


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def largest_box(ratio: float, width: float, height: float) -> tuple[float, float]:
    """Width and height of the largest box of ``ratio`` inside ``width x height``."""
    if width / height > ratio:
        return height * ratio, float(height)
    return float(width), width / ratio


def coarse_candidates(
    ratios: list[float], width: int, height: int, scales: int = 8, positions: int = 9,
    min_scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Anchors for each ratio: ``scales`` sizes from the largest box of that ratio down to
    about :data:`MIN_AREA` of the image (or down to ``min_scale`` of the largest box's side),
    on a grid of up to ``positions`` places along each axis with room to move.

    Returns ``boxes [N, 4]`` float64 and ``group [N]`` (index into ``ratios``).
    """
    largest, steps = [], []  # per ratio: the largest box (w, h) and its scales [scales]
    for ratio in ratios:
        bw, bh = largest_box(ratio, width, height)
        smallest = min(max((MIN_AREA * width * height / (bw * bh)) ** 0.5, SCALE_RANGE[0]), SCALE_RANGE[1])
        largest.append((bw, bh))
        steps.append(_scales(smallest if min_scale is None else min_scale, scales))
    wh = np.array(largest)[:, None, :] * np.array(steps)[:, :, None]  # [ratios, scales, 2]
    w, h = wh[..., 0].ravel(), wh[..., 1].ravel()  # of each anchor size
    g = np.repeat(np.arange(len(ratios)), scales)
    nx = np.clip(1 + np.round((width - w) / (0.05 * width)).astype(np.int64), 1, positions)
    ny = np.clip(1 + np.round((height - h) / (0.05 * height)).astype(np.int64), 1, positions)
    # every size's ny x nx grid of places (row-major), evenly spaced from 0 to the far edge
    size = np.repeat(np.arange(len(w)), nx * ny)
    place = np.arange(len(size)) - np.repeat(np.cumsum(nx * ny) - nx * ny, nx * ny)
    ix, iy = place % nx[size], place // nx[size]
    x = (width - w[size]) * ix / np.maximum(nx[size] - 1, 1)
    y = (height - h[size]) * iy / np.maximum(ny[size] - 1, 1)
    boxes = np.stack([x, y, x + w[size], y + h[size]], axis=1)
    return boxes, g[size]


@lru_cache(maxsize=64)
def _scales(smallest: float, scales: int) -> tuple[float, ...]:
    """``scales`` steps from 1 down to ``smallest``, in float32 as the anchors always had them
    (``torch.linspace(1.0, smallest, scales)`` to the last bit: the first half counted up
    from 1, the rest down from ``smallest``, each a fused multiply-add rounded once)."""
    if scales == 1:
        return (1.0,)
    start, end = np.float32(1.0), np.float32(smallest)
    step = np.float64((end - start) / np.float32(scales - 1))
    i = np.arange(scales)
    up, down = np.float64(start) + step * i, np.float64(end) - step * (scales - 1 - i)
    return tuple(np.where(i < scales // 2, up, down).astype(np.float32).tolist())


def refine_candidates(
    seeds: np.ndarray, seed_free: np.ndarray, width: int, height: int, steps: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Fine search around ``seeds [S, 4]``: shift the centre by up to ±6% of the box size,
    scale by ±8% and, where ``seed_free[S]``, stretch the aspect by ±10%.

    Returns ``boxes [S * P, 4]`` (kept inside the image, aspect preserved where fixed)
    and ``seed_index [S * P]``.
    """
    dx, dy, ds, da = _refine_steps(steps)  # [P] each
    x1, y1, x2, y2 = seeds.T[:, :, None]  # [S, 1] each
    free = seed_free[:, None]
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2 + dx * w
    cy = (y1 + y2) / 2 + dy * h
    stretch = np.sqrt(np.where(free, 1 + da, 1.0))
    keep = free | (da == 0)  # fixed aspects do not stretch
    nw = w * (1 + ds) * stretch
    nh = h * (1 + ds) / stretch
    # shrink uniformly where a box outgrew the image, then shift it inside (the reciprocal
    # first, as the search always did it: the boxes stay the same to the last bit)
    fit = np.minimum(1.0, np.minimum(1 / nw * width, 1 / nh * height))
    nw, nh = nw * fit, nh * fit
    left = np.minimum(np.maximum(cx - nw / 2, 0), width - nw)
    top = np.minimum(np.maximum(cy - nh / 2, 0), height - nh)
    boxes = np.stack([left, top, left + nw, top + nh], axis=-1)  # [S, P, 4]
    return boxes[keep], np.nonzero(keep)[0]


@lru_cache(maxsize=None)
def _refine_steps(steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The offsets :func:`refine_candidates` tries, ``(dx, dy, ds, da)``, ``[P]`` each (read-only)."""
    t = np.linspace(-1.0, 1.0, 2 * steps + 1)
    grid = np.meshgrid(t * 0.06, t * 0.06, [-0.08, 0.0, 0.08], [-0.1, 0.0, 0.1], indexing="ij")
    out = tuple(np.ascontiguousarray(v.ravel()) for v in grid)
    for v in out:
        v.flags.writeable = False
    return out  # type: ignore[return-value]


def snap_box(box: list[float], ratio: float | None, width: int, height: int) -> list[int]:
    """Round a float box to integer pixels inside the image, keeping ``ratio`` (w/h) to
    within one pixel of rounding; the box keeps its centre where it can."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w = max(1, min(width, round(x2 - x1)))
    h = max(1, min(height, round(y2 - y1)))
    if ratio is not None:  # w is exact, h = w / ratio to within half a pixel
        h = round(w / ratio)
        if h > height or h < 1:
            h = min(height, max(1, h))
            w = max(1, min(width, round(h * ratio)))
    left = min(max(0, round(cx - w / 2)), width - w)
    top = min(max(0, round(cy - h / 2)), height - h)
    return [int(left), int(top), int(left + w), int(top + h)]


def unique_boxes(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``boxes [N, 4]`` (in no particular order) and, for each box,
    the index of its row among them: ``boxes == distinct[inverse]`` (rows count as equal
    when their bits are).

    Rows are sorted by a 64-bit mix of their bits (one integer sort instead of comparing
    whole rows), so equal rows lie next to each other; two different rows whose keys
    collide may split a run of equal ones, which only lists that row twice.
    """
    rows = np.ascontiguousarray(boxes, dtype=np.float64)
    bits = rows.view(np.uint64)
    key = bits[:, 0] * _ROW_MIX[0]
    for c in range(1, 4):
        key += bits[:, c] * _ROW_MIX[c]  # wraps around
    order = np.argsort(key)
    ordered = bits[order]
    first = np.ones(len(rows), dtype=bool)
    for c in range(4):
        first[1:] &= ordered[1:, c] == ordered[:-1, c]
    first[1:] = ~first[1:]  # a row starts a run where some coordinate differs from the row before
    inverse = np.empty(len(rows), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return rows[order[first]], inverse


def first_rows(keys: np.ndarray) -> np.ndarray:
    """Indices of the first row holding each distinct value of ``keys [N]`` (int64, >= 0),
    ascending: ``[M]``."""
    k = np.asarray(keys)
    first = np.full(int(k.max()) + 1 if len(k) else 0, len(k), dtype=np.int64)
    np.minimum.at(first, k, np.arange(len(k)))
    first = first[first < len(k)]
    first.sort()
    return first


#: Odd 64-bit constants that mix a row's four coordinates into one sort key (:func:`unique_boxes`).
_ROW_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5], dtype=np.uint64)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression, as ``torchvision.ops.nms`` (which would import all of
    torchvision): indices of the kept ``boxes [N, 4]``, best ``scores [N]`` first; a box is
    dropped when its IoU with a better kept box is above ``iou_threshold``. Stops after
    ``max_keep`` boxes (see :func:`iter_nms`)."""
    return np.array(list(islice(iter_nms(boxes, scores, iou_threshold), max_keep)), dtype=np.int64)


def iter_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> Iterator[int]:
    """The indices :func:`nms` keeps, one at a time, as the caller asks for them, so a caller
    that needs the best few pays for those only (greedy suppression never revisits a kept
    box, so any prefix is the same).

    The best box comes without sorting; then the boxes are taken best first in windows
    (64, 128, ... boxes): the boxes kept so far suppress a window at once, and each box kept
    in it suppresses the rest of that window.
    """
    scores = np.asarray(scores)
    if scores.size == 0:
        return
    yield int(scores.argmax())  # the first of the best, as the stable sort below puts first
    order = np.argsort(-scores, kind="stable")  # best first, ties in input order
    b = np.ascontiguousarray(np.asarray(boxes, dtype=np.float64)[order].T)  # [4, N] best first
    area = (b[2] - b[0]) * (b[3] - b[1])
    kept = [0]  # positions in ``order``
    start, window = 1, 64
    while start < len(area):
        end = min(len(area), start + window)
        alive = ~_iou_above(b[:, kept], area[kept], b[:, start:end], area[start:end], iou_threshold).any(axis=0)
        for j in np.flatnonzero(alive).tolist():
            if alive[j]:
                i = start + j
                kept.append(i)
                yield int(order[i])
                alive[j + 1 :] &= ~_iou_above(b[:, i : i + 1], area[i : i + 1], b[:, i + 1 : end], area[i + 1 : end],
                                              iou_threshold)[0]
        start, window = end, 2 * window


def _iou_above(a: np.ndarray, area_a: np.ndarray, b: np.ndarray, area_b: np.ndarray, threshold: float) -> np.ndarray:
    """``[K, M]`` bool: the IoU of boxes ``a [4, K]`` (areas ``[K]``) with boxes ``b [4, M]``
    is above ``threshold``; 0 / 0 (empty boxes) is NaN, never above, as in torchvision."""
    wh = np.minimum(a[2:, :, None], b[2:, None, :]) - np.maximum(a[:2, :, None], b[:2, None, :])  # [2, K, M]
    np.maximum(wh, 0, out=wh)
    inter = wh[0] * wh[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area_a[:, None] + area_b - inter) > threshold


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a [N, 4]`` with every box of ``b [M, 4]``: ``[N, M]``, as
    ``torchvision.ops.box_iou``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.maximum(rb - lt, 0).prod(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area_a[:, None] + area_b[None, :] - inter)


def random_cut(rng, width: int, height: int, lo: float = 0.60, hi: float = 0.85) -> list[int]:
    """A random box of ``lo..hi`` of each side at a random place (``rng``: a numpy Generator):
    the re-framed cuts that a real photo should outscore."""
    w = max(1, int(round(width * rng.uniform(lo, hi))))
    h = max(1, int(round(height * rng.uniform(lo, hi))))
    x = int(rng.integers(0, width - w + 1))
    y = int(rng.integers(0, height - h + 1))
    return [x, y, x + w, y + h]
