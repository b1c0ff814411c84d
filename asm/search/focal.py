"""asm's *content focal point*: one point per image that serves every aspect.

Image proxies (imgproxy, imagor, imgix, Cloudinary, Cloudflare Images, Thumbor) take one
point and crop the largest box of the requested aspect centred on it, pushed back inside
the image where it would stick out. The content focal point is the point that, used that
way, best reproduces asm's own crops: asm's top-1 largest-box crop (``min_scale=1``, faces
as asm handles them) at each of the six validation aspects
(:data:`asm.geometry.VALIDATION_ASPECTS`), and on each axis the centre whose
clamped boxes put their edges nearest (least squares) to asm's boxes. Measured against the
alternatives in ``benchmarks/results/focal.md``.

>>> fp = content_focal_point(cropper.analyse("photo.jpg"))
>>> fp.to_json()    # {"x": 412, "y": 233, "x_norm": 0.515, "y_norm": 0.3883}

Every shell's answer carries it as ``"focal_point"``: ``Analysis.crops(options, focal_point=True)``.

numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from asm.geometry import VALIDATION_ASPECTS
from asm.results import FocalPoint
from asm.search.candidates import largest_box

if TYPE_CHECKING:
    from asm import Analysis, CropOptions

__all__ = ["FocalPoint", "FOCAL_ASPECTS", "content_focal_point", "focal_from_boxes", "fit_centre", "box_at"]

#: The aspects whose crops the focal point reproduces (labels and width / height).
FOCAL_ASPECTS: tuple[tuple[str, float], ...] = VALIDATION_ASPECTS
#: The fit tries centres every this many pixels along each axis.
STEP = 0.5


def box_at(x: float, y: float, ratio: float, width: int, height: int) -> list[float]:
    """The largest box of ``ratio`` (w/h) centred on ``x, y`` and pushed inside the image,
    as a proxy crops it: ``[x1, y1, x2, y2]`` (float)."""
    w, h = largest_box(ratio, width, height)
    left = min(max(x - w / 2, 0.0), width - w)
    top = min(max(y - h / 2, 0.0), height - h)
    return [left, top, left + w, top + h]


def fit_centre(starts: Sequence[float], sizes: Sequence[float], extent: float) -> float:
    """The centre ``c`` along one axis of length ``extent`` whose clamped boxes
    ``clamp(c - size/2, 0, extent - size)`` start nearest (least squares) to ``starts``.

    Boxes that fill the axis say nothing and are left out; ties (a range of centres equally
    good, e.g. every box against one edge) go to the centre nearest the mean of the boxes'
    own centres. With no box that has room, the middle."""
    s = np.asarray(starts, dtype=np.float64)
    n = np.asarray(sizes, dtype=np.float64)
    room = n < extent - 1e-9
    if not room.any():
        return extent / 2
    s, n = s[room], n[room]
    grid = np.arange(0.0, extent + STEP / 2, STEP)  # [G]
    placed = np.clip(grid[:, None] - n[None, :] / 2, 0.0, extent - n[None, :])  # [G, A]
    err = ((placed - s[None, :]) ** 2).sum(axis=1)
    best = np.flatnonzero(err <= err.min() + 1e-6)
    mean_centre = float((s + n / 2).mean())
    return float(grid[best[np.argmin(np.abs(grid[best] - mean_centre))]])


def focal_from_boxes(boxes: Sequence[Sequence[float]], width: int, height: int) -> FocalPoint:
    """The content focal point from asm's largest-box crops ``[x1, y1, x2, y2]`` (one per
    aspect) of a ``width x height`` image."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0:
        return FocalPoint(width / 2, height / 2, width, height)
    x = fit_centre(b[:, 0], b[:, 2] - b[:, 0], width)
    y = fit_centre(b[:, 1], b[:, 3] - b[:, 1], height)
    return FocalPoint(x, y, width, height)


def content_focal_point(analysis: Analysis, options: CropOptions | None = None) -> FocalPoint:
    """The content focal point of an analysed image: one search at the six aspects, with the
    faces, keep-regions and focus point of ``options`` (default: faces on, as asm crops)."""
    from asm import CropOptions  # numpy only either way

    base = CropOptions() if options is None else options
    six = CropOptions.parse([label for label, _ in FOCAL_ASPECTS]).aspects
    result = analysis.crops(replace(base, aspects=six, circular=False, top_k=1, min_scale=1.0))
    return focal_from_boxes([c.box for c in result.crops], analysis.width, analysis.height)
