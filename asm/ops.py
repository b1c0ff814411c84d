"""Composition-aware pooling (paper §3.1, eqs. 1-2; circular crops, eq. 9) as custom ops.

Registered through :mod:`torch.library`, so they work in eager mode, under
``torch.compile(fullgraph=True)``, in ``torch.export`` and on any device:

* ``torch.ops.asm.composition_pool(score_map, boxes, partition) -> Tensor[K]``
* ``torch.ops.asm.circular_pool(score_map, boxes, partition) -> Tensor[K]``

Conventions
-----------
``score_map`` is ``[B, L, H, W]`` (float32 or float64). Map pixel ``(r, c)`` covers the
continuous square ``[c, c+1) x [r, r+1)``. ``boxes`` is ``[K, 5]`` with rows
``(batch_index, x1, y1, x2, y2)`` in those continuous coordinates, fractional edges allowed,
inside ``[0, W] x [0, H]``. ``partition`` is the ``[gh, gw]`` int64 table of a
:class:`asm.patterns.Pattern`.

``composition_pool``: the box is cut into ``gh x gw`` equal cells; each cell's value is the
exact area-weighted mean of channel ``partition[i, j]`` over the cell (a pixel counts by the
fraction of it the cell covers); the score is the mean over cells.

``circular_pool``: the same, over the ellipse inscribed in the box (the disc inscribed in a
square box), each point keeping the partition index it has in the box; the score is the
area-weighted mean over the disc. The disc is integrated as thin horizontal strips, each
replaced by the rectangle of the same exact area (relative error well under 1e-3).

How
---
Let ``S`` be the summed-area table of ``M`` (``[B, L, H+1, W+1]``). The integral of the
piecewise-constant map from the origin to a real point ``(x, y)`` is exactly the bilinear
interpolation of ``S`` at ``(x, y)``, so the integral over any axis-aligned rectangle is
four bilinear reads of ``S``. One call costs one ``O(B L H W)`` table plus
``O(K * cells)`` gathers, whatever the crop sizes. Gradients flow to ``score_map``: the
scores are linear in ``M``, and the backward (itself a custom op) scatters the same
weights into ``S`` and undoes the cumulative sums. Boxes get no gradient.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["composition_pool", "circular_pool", "pool_boxes"]

#: Coordinates may overshoot the map by this much (float round-off of callers) and are clamped.
BOX_TOLERANCE = 1e-3
#: Strips per cell row used to integrate a disc (see module docstring).
STRIPS_PER_CELL_ROW = 12


# --------------------------------------------------------------------------------------
# Argument checks: shape checks run everywhere (also on fake tensors); value checks only
# where the data exist.
# --------------------------------------------------------------------------------------
def _check_shapes(score_map: Tensor, boxes: Tensor, partition: Tensor) -> None:
    if score_map.dim() != 4:
        raise ValueError(f"score_map must be [B, L, H, W], got shape {tuple(score_map.shape)}")
    if score_map.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"score_map must be float32 or float64, got {score_map.dtype}")
    if boxes.dim() != 2 or boxes.shape[1] != 5:
        raise ValueError(f"boxes must be [K, 5] rows (batch_index, x1, y1, x2, y2), got shape {tuple(boxes.shape)}")
    if not boxes.is_floating_point():
        raise ValueError(f"boxes must be a floating-point tensor, got {boxes.dtype}")
    if partition.dim() != 2:
        raise ValueError(f"partition must be a [gh, gw] table, got shape {tuple(partition.shape)}")
    if partition.dtype != torch.int64:
        raise ValueError(f"partition must be an int64 tensor, got {partition.dtype}")
    if partition.numel() == 0:
        raise ValueError("partition must have at least one cell")
    for name, t in (("boxes", boxes), ("partition", partition)):
        if t.device != score_map.device:
            raise ValueError(f"{name} is on {t.device} but score_map is on {score_map.device}")


def _check_values(score_map: Tensor, boxes: Tensor, partition: Tensor) -> None:
    B, L, H, W = score_map.shape
    if H == 0 or W == 0:
        raise ValueError(f"score_map must have a non-empty spatial size, got {H}x{W}")
    lo, hi = int(partition.min()), int(partition.max())
    if lo < 0 or hi >= L:
        raise IndexError(f"partition values must lie in 0..{L - 1} (score_map has L={L} channels), got {lo}..{hi}")
    if boxes.shape[0] == 0:
        return
    if not bool(torch.isfinite(boxes).all()):
        raise ValueError("boxes contain NaN or infinite values")
    b = boxes[:, 0]
    if not bool((b == b.round()).all()):
        raise ValueError("boxes[:, 0] (batch_index) must hold whole numbers")
    if int(b.min()) < 0 or int(b.max()) >= B:
        raise IndexError(f"boxes[:, 0] (batch_index) must lie in 0..{B - 1}, got {int(b.min())}..{int(b.max())}")
    x1, y1, x2, y2 = boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    if not bool(((x2 > x1) & (y2 > y1)).all()):
        k = int(torch.nonzero(~((x2 > x1) & (y2 > y1)))[0])
        raise ValueError(f"boxes must have x2 > x1 and y2 > y1; box {k} is {boxes[k, 1:].tolist()}")
    tol = BOX_TOLERANCE
    inside = (x1 >= -tol) & (y1 >= -tol) & (x2 <= W + tol) & (y2 <= H + tol)
    if not bool(inside.all()):
        k = int(torch.nonzero(~inside)[0])
        raise ValueError(f"boxes must lie inside the map [0, {W}] x [0, {H}]; box {k} is {boxes[k, 1:].tolist()}")


# --------------------------------------------------------------------------------------
# The maths
# --------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _template(gh: int, gw: int, circular: bool) -> tuple[Tensor, Tensor, float]:
    """Rectangles that tile a unit box's pooling region.

    Returns ``rects [R, 4]`` as box-relative ``(u0, v0, u1, v1)`` in ``[0, 1]``, the grid
    cell ``cells [R]`` (row-major index into the partition) of each, and the total area
    fraction (1 for the box, pi/4 for its inscribed disc).
    """
    rects, cells = [], []
    if not circular:
        for i in range(gh):
            for j in range(gw):
                rects.append((j / gw, i / gh, (j + 1) / gw, (i + 1) / gh))
                cells.append(i * gw + j)
    else:
        n = gh * STRIPS_PER_CELL_ROW
        pieces: dict[tuple[int, int], tuple[float, float, float, float, int]] = {}

        def g(t: float) -> float:  # antiderivative of 2*sqrt(1-t^2), up to a constant
            return t * math.sqrt(max(0.0, 1 - t * t)) + math.asin(t)

        for s in range(n):
            v0, v1 = s / n, (s + 1) / n
            t0, t1 = 2 * v0 - 1, 2 * v1 - 1
            half = (g(t1) - g(t0)) / (2 * (t1 - t0)) / 2  # exact mean half-chord, in u units
            lo, hi = 0.5 - half, 0.5 + half
            i = s // STRIPS_PER_CELL_ROW
            for j in range(gw):
                a, b = max(lo, j / gw), min(hi, (j + 1) / gw)
                if b <= a:
                    continue
                prev = pieces.get((i, j))
                if prev is not None and prev[0] == a and prev[2] == b and prev[3] == v0:
                    rects[prev[4]] = (a, prev[1], b, v1)  # a full-width piece grows the one above
                    pieces[(i, j)] = (a, prev[1], b, v1, prev[4])
                else:
                    pieces[(i, j)] = (a, v0, b, v1, len(rects))
                    rects.append((a, v0, b, v1))
                    cells.append(i * gw + j)
    rect_t = torch.tensor(rects, dtype=torch.float64)
    area = float(((rect_t[:, 2] - rect_t[:, 0]) * (rect_t[:, 3] - rect_t[:, 1])).sum())
    return rect_t, torch.tensor(cells, dtype=torch.int64), area


@lru_cache(maxsize=None)
def _edges(gh: int, gw: int, circular: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, float]:
    """The template as shared edges: distinct ``us``, ``vs``, and per rectangle the indices
    ``(iu0, iv0, iu1, iv1)`` into them and its grid cell, plus the area fraction."""
    rects, cells, area = _template(gh, gw, circular)
    us, u_inv = torch.unique(torch.cat([rects[:, 0], rects[:, 2]]), return_inverse=True)
    vs, v_inv = torch.unique(torch.cat([rects[:, 1], rects[:, 3]]), return_inverse=True)
    R = rects.shape[0]
    return us, vs, u_inv[:R], v_inv[:R], u_inv[R:], v_inv[R:], cells, area


def _corner_plan(boxes: Tensor, partition: Tensor, map_shape: list[int], circular: bool):
    """Where and how to read the bilinear table for every rectangle corner of every box.

    Returns ``idx [K, R, 4]`` (rows of the ``[B*L*H*W, 4]`` table of :func:`_bilinear_table`),
    ``fx, fy [K, R, 4]`` (the fractional position inside each map pixel) and ``scale [K]``.
    Corner ``c`` of a rectangle enters its integral with sign ``_SIGN[c]``.
    """
    B, L, H, W = map_shape
    gh, gw = int(partition.shape[0]), int(partition.shape[1])
    us, vs, iu0, iv0, iu1, iv1, cells, area_fraction = _edges(gh, gw, circular)
    dev = boxes.device
    bx = boxes.to(torch.float64)
    batch = bx[:, 0].round().long()
    x1, y1 = bx[:, 1].clamp(0, W), bx[:, 2].clamp(0, H)
    x2, y2 = bx[:, 3].clamp(0, W), bx[:, 4].clamp(0, H)
    # every distinct edge of the template, in map coordinates: [K, nu] and [K, nv]
    xs = x1[:, None] + (x2 - x1)[:, None] * us.to(dev)
    ys = y1[:, None] + (y2 - y1)[:, None] * vs.to(dev)
    c0 = xs.floor().clamp(0, W - 1)
    r0 = ys.floor().clamp(0, H - 1)
    fx_e, fy_e = xs - c0, ys - r0
    col_e, row_e = c0.long(), r0.long() * W
    # corners in the order (x1, y1), (x0, y1), (x1, y0), (x0, y0)
    cu = torch.stack([iu1, iu0, iu1, iu0], dim=-1).to(dev)  # [R, 4]
    cv = torch.stack([iv1, iv1, iv0, iv0], dim=-1).to(dev)
    plane = (batch[:, None] * L + partition.flatten()[cells.to(dev)][None, :]) * (H * W)  # [K, R]
    K, R = plane.shape
    cu, cv = cu.flatten(), cv.flatten()
    idx = plane[..., None] + (row_e.index_select(1, cv) + col_e.index_select(1, cu)).view(K, R, 4)
    fx = fx_e.index_select(1, cu).view(K, R, 4)
    fy = fy_e.index_select(1, cv).view(K, R, 4)
    scale = 1.0 / ((x2 - x1) * (y2 - y1) * area_fraction)
    return idx, fx, fy, scale


_SIGN = (1.0, -1.0, -1.0, 1.0)


def _bilinear_table(score_map: Tensor) -> Tensor:
    """``[B, L, H, W] -> [B*L*H*W, 4]`` float64 rows ``(S00, S01 - S00, S10 - S00, M)``.

    ``S`` is the summed-area table. For a point at fraction ``(fx, fy)`` inside pixel
    ``(r, c)``, the integral of the map from the origin is exactly
    ``S00 + fx (S01 - S00) + fy (S10 - S00) + fx fy M[r, c]``.
    """
    m = score_map.to(torch.float64)
    sat = torch.nn.functional.pad(m, (1, 0, 1, 0)).cumsum(-2).cumsum(-1)
    s00 = sat[..., :-1, :-1]
    table = torch.stack([s00, sat[..., :-1, 1:] - s00, sat[..., 1:, :-1] - s00, m], dim=-1)
    return table.reshape(-1, 4)


def _forward(score_map: Tensor, boxes: Tensor, partition: Tensor, circular: bool) -> Tensor:
    _check_shapes(score_map, boxes, partition)
    _check_values(score_map, boxes, partition)
    if boxes.shape[0] == 0:
        return score_map.new_empty(0)
    idx, fx, fy, scale = _corner_plan(boxes, partition, list(score_map.shape), circular)
    q = _bilinear_table(score_map).index_select(0, idx.flatten()).view(*idx.shape, 4)  # [K, R, 4, 4]
    f = q[..., 0] + fx * q[..., 1] + fy * (q[..., 2] + fx * q[..., 3])  # [K, R, 4]
    sign = f.new_tensor(_SIGN)
    return ((f * sign).sum((-1, -2)) * scale).to(score_map.dtype)


def _backward(grad: Tensor, boxes: Tensor, partition: Tensor, map_shape: list[int], circular: bool) -> Tensor:
    B, L, H, W = map_shape
    grad_table = torch.zeros(B * L * H * W, 4, dtype=torch.float64, device=grad.device)
    if boxes.shape[0] > 0:
        idx, fx, fy, scale = _corner_plan(boxes, partition, map_shape, circular)
        g = (grad.to(torch.float64) * scale)[:, None, None] * fx.new_tensor(_SIGN)  # [K, 1, 4]
        src = torch.stack([g.expand_as(fx), g * fx, g * fy, g * fx * fy], dim=-1)
        grad_table.index_add_(0, idx.flatten(), src.reshape(-1, 4))
    gt = grad_table.view(B, L, H, W, 4)
    # back through the rows (S00, S01 - S00, S10 - S00, M) to the summed-area table ...
    grad_sat = torch.zeros(B, L, H + 1, W + 1, dtype=torch.float64, device=grad.device)
    grad_sat[..., :-1, :-1] += gt[..., 0] - gt[..., 1] - gt[..., 2]
    grad_sat[..., :-1, 1:] += gt[..., 1]
    grad_sat[..., 1:, :-1] += gt[..., 2]
    # ... and through the table: S[r', c'] sums M[r < r', c < c'], so dM[r, c] = sum dS[r' > r, c' > c]
    grad_map = gt[..., 3] + grad_sat[..., 1:, 1:].flip(-2, -1).cumsum(-2).cumsum(-1).flip(-2, -1)
    return grad_map.to(grad.dtype).contiguous()


# --------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------
@torch.library.custom_op("asm::composition_pool", mutates_args=())
def composition_pool(score_map: Tensor, boxes: Tensor, partition: Tensor) -> Tensor:
    """Composition-aware scores of rectangular crops: ``[B, L, H, W], [K, 5], [gh, gw] -> [K]``."""
    return _forward(score_map, boxes, partition, circular=False)


@torch.library.custom_op("asm::circular_pool", mutates_args=())
def circular_pool(score_map: Tensor, boxes: Tensor, partition: Tensor) -> Tensor:
    """Composition-aware scores of the discs inscribed in the boxes: ``-> [K]``."""
    return _forward(score_map, boxes, partition, circular=True)


@torch.library.custom_op("asm::composition_pool_backward", mutates_args=())
def composition_pool_backward(
    grad: Tensor, boxes: Tensor, partition: Tensor, map_shape: list[int], circular: bool
) -> Tensor:
    """Gradient of either pool with respect to ``score_map``: ``[K] -> [B, L, H, W]``."""
    return _backward(grad, boxes, partition, map_shape, circular)


def _fake_pool(score_map: Tensor, boxes: Tensor, partition: Tensor) -> Tensor:
    _check_shapes(score_map, boxes, partition)
    return score_map.new_empty(boxes.shape[0])


composition_pool.register_fake(_fake_pool)
circular_pool.register_fake(_fake_pool)


@composition_pool_backward.register_fake
def _(grad: Tensor, boxes: Tensor, partition: Tensor, map_shape: list[int], circular: bool) -> Tensor:
    return grad.new_empty(map_shape)


def _make_autograd(circular: bool):
    def setup_context(ctx, inputs, output):
        score_map, boxes, partition = inputs
        ctx.save_for_backward(boxes, partition)
        ctx.map_shape = list(score_map.shape)

    def backward(ctx, grad):
        boxes, partition = ctx.saved_tensors
        return composition_pool_backward(grad, boxes, partition, ctx.map_shape, circular), None, None

    return setup_context, backward


for _op, _circular in ((composition_pool, False), (circular_pool, True)):
    _setup, _bwd = _make_autograd(_circular)
    _op.register_autograd(_bwd, setup_context=_setup)


def _backward_setup_context(ctx, inputs, output):
    grad, boxes, partition, map_shape, circular = inputs
    ctx.save_for_backward(boxes, partition)
    ctx.circular = circular


def _backward_backward(ctx, grad_grad_map):
    # the backward is linear in grad; its adjoint is the forward pool itself
    boxes, partition = ctx.saved_tensors
    pool = circular_pool if ctx.circular else composition_pool
    return pool(grad_grad_map, boxes, partition), None, None, None, None


composition_pool_backward.register_autograd(_backward_backward, setup_context=_backward_setup_context)


def pool_boxes(score_map: Tensor, boxes: Tensor, partition: Tensor, circular: bool = False) -> Tensor:
    """Call :func:`composition_pool` or :func:`circular_pool`, whichever ``circular`` names."""
    op = torch.ops.asm.circular_pool if circular else torch.ops.asm.composition_pool
    return op(score_map, boxes, partition)
