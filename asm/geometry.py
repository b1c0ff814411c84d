"""Boxes against score maps and images, the maths the crop path, training and evaluation share.

* :func:`map_rows` -- image boxes as the pooling op's rows (batch index, box in map cells);
* :func:`density_kept`, :func:`fixations_kept` -- the share of where people look a box keeps;
* :func:`centre_crop` -- the largest box of an aspect in the middle of an image;
* :data:`VALIDATION_ASPECTS` -- the aspects crops are judged at (training and ``asm eval``).

Boxes are ``[N, 4]`` ``(x1, y1, x2, y2)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

from asm.search import candidates

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["map_rows", "as_boxes", "density_kept", "fixations_kept", "largest_box", "place_box", "centre_crop", "VALIDATION_ASPECTS"]

#: The aspects (label, width / height) at which crops are validated: square, the portrait and
#: landscape formats of social media and print.
VALIDATION_ASPECTS = (("1:1", 1.0), ("4:5", 0.8), ("2:3", 2 / 3), ("9:16", 9 / 16), ("3:2", 1.5), ("16:9", 16 / 9))

Boxes = TypeVar("Boxes", np.ndarray, "Tensor")


def map_rows(boxes: Boxes, image_size: tuple[float, float], map_size: tuple[float, float], batch: int = 0) -> Boxes:
    """``boxes [N, 4]`` in a ``(width, height)`` image -> rows ``[N, 5]`` ``(batch, x1, y1, x2,
    y2)`` in the cells of a ``(w, h)`` map covering it, as the pooling ops take them; numpy
    arrays (the search) and torch tensors (training) alike, in the boxes' dtype."""
    sx, sy = map_size[0] / image_size[0], map_size[1] / image_size[1]
    if isinstance(boxes, np.ndarray):
        scaled = boxes * np.array([sx, sy, sx, sy])
        return np.concatenate([np.full((len(boxes), 1), float(batch), dtype=scaled.dtype), scaled], axis=1)
    import torch

    scaled = boxes * boxes.new_tensor([sx, sy, sx, sy])
    return torch.cat([scaled.new_full((len(boxes), 1), float(batch)), scaled], 1)


def as_boxes(b: object) -> np.ndarray:
    """``b`` (arrays, tensors or lists) as float64 boxes ending in 4 coordinates."""
    if hasattr(b, "detach"):
        b = b.detach().cpu().numpy()  # type: ignore[union-attr]
    a = np.asarray(b, dtype=np.float64)
    if a.shape[-1:] != (4,):
        raise ValueError(f"boxes must end in 4 coordinates, got shape {a.shape}")
    return a


def density_kept(density: np.ndarray, boxes: object) -> np.ndarray:
    """Share of ``density [h, w]`` (non-negative, any scale) inside each box ``[N, 4]``, the
    boxes given in cells of the density (fractions of a cell count by their area), exactly."""
    import torch

    import asm.ops.pool  # noqa: F401  (registers torch.ops.asm)
    from asm.patterns import get_pattern

    d = torch.from_numpy(np.asarray(density, dtype=np.float64))[None, None]
    b = torch.from_numpy(as_boxes(boxes).reshape(-1, 4))
    size = (d.shape[-1], d.shape[-2])
    mean = torch.ops.asm.composition_pool(d, map_rows(b, size, size), get_pattern("grid1x1").partition)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return (mean * area).numpy() / max(float(d.sum()), 1e-300)


def fixations_kept(box: object, points: object) -> float:
    """Share of fixation points ``[N, 2]`` xy inside the box (edges included). ``nan`` for no point."""
    x1, y1, x2, y2 = as_boxes(box).reshape(4)
    p = np.asarray(points.detach().cpu().numpy() if hasattr(points, "detach") else points, dtype=np.float64).reshape(-1, 2)
    if len(p) == 0:
        return float("nan")
    inside = (p[:, 0] >= x1) & (p[:, 0] <= x2) & (p[:, 1] >= y1) & (p[:, 1] <= y2)
    return float(inside.mean())


def largest_box(width: int, height: int, ratio: float) -> tuple[int, int]:
    """``(w, h)`` of the largest integer box of ``ratio`` (w/h) inside ``width x height``
    (the same rounding as :func:`asm.search.candidates.snap_box`)."""
    if ratio <= 0 or width < 1 or height < 1:
        raise ValueError(f"need a positive ratio and image size, got {ratio} for {width}x{height}")
    bw, bh = candidates.largest_box(ratio, width, height)  # one side is the image's, exactly
    return max(1, min(width, round(bw))), max(1, min(height, round(bh)))


def place_box(left: float, top: float, w: int, h: int, width: int, height: int) -> list[int]:
    """The ``w x h`` box with its corner nearest ``(left, top)`` (rounded), kept inside the image:
    ``[x1, y1, x2, y2]`` integer pixels."""
    x = int(min(max(0, round(left)), width - w))
    y = int(min(max(0, round(top)), height - h))
    return [x, y, x + w, y + h]


def centre_crop(width: int, height: int, ratio: float) -> list[int]:
    """The largest box of ``ratio`` in the middle of a ``width x height`` image."""
    w, h = largest_box(width, height, ratio)
    return place_box((width - w) / 2, (height - h) / 2, w, h, width, height)
