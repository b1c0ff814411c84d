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
area-weighted mean over the disc. The disc is integrated as ``DISC_STRIPS`` horizontal
strips (thinner near the poles), each replaced by the centred rectangle of the same exact
area; against the exact integral the relative error stays under 1e-3 (about 4e-4 at worst
on random positive maps, sub-pixel to full-map boxes, every pattern).

How
---
Let ``S`` be the summed-area table of ``M`` (``[B, L, H+1, W+1]``). The integral of the
piecewise-constant map from the origin to a real point ``(x, y)`` is exactly the bilinear
interpolation of ``S`` at ``(x, y)``, so the integral over any axis-aligned rectangle is
four bilinear reads of ``S``. Neighbouring cells share corners, and where two cells of the
same partition meet their reads cancel, so a pattern needs few distinct signed reads per
box (``cross_rectangle``: 64 instead of 4 x 36; the disc: about 330). One call costs one
``O(B L H W)`` table plus ``O(K * reads)`` gathers, whatever the crop sizes; boxes are
processed in chunks whose work buffers stay in cache. This module is plain torch code, so
it runs unchanged on CUDA. On the CPU the forward runs the compiled C kernel of
:mod:`asm.ops.kernel` instead (the same maths in one fused pass, over a table laid out
channels-last) when it is built; ``ASM_NO_KERNEL=1`` forces the tensor code. Gradients
flow to ``score_map``: the scores are linear in ``M``, and the backward (itself a custom
op, tensor code on every device) scatters the same weights into ``S`` and undoes the
cumulative sums. Boxes get no gradient.

The maths shared with the torch-free entry point (the template of reads, the argument
checks) live in :mod:`asm.ops.reads`.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from asm.ops import kernel
from asm.ops.reads import DISC_STRIPS, check_shapes, check_values, partition_key, terms

__all__ = ["composition_pool", "circular_pool", "composition_pool_backward"]


# --------------------------------------------------------------------------------------
# Argument checks (asm.ops.reads): shapes everywhere (also on fake tensors); values only
# where the data exist.
# --------------------------------------------------------------------------------------
def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _check_shapes(score_map: Tensor, boxes: Tensor, partition: Tensor) -> None:
    check_shapes(tuple(score_map.shape), _dtype_name(score_map.dtype), tuple(boxes.shape), _dtype_name(boxes.dtype),
                 boxes.is_floating_point(), tuple(partition.shape), _dtype_name(partition.dtype))
    for name, t in (("boxes", boxes), ("partition", partition)):
        if t.device != score_map.device:
            raise ValueError(f"{name} is on {t.device} but score_map is on {score_map.device}")


def _host_copy(t: Tensor):
    t = t.detach().cpu()
    return (t.double() if t.is_floating_point() else t).numpy()


def _check_values(score_map: Tensor, boxes: Tensor, partition: Tensor) -> None:
    check_values(boxes, partition, tuple(score_map.shape), to_numpy=_host_copy)


# --------------------------------------------------------------------------------------
# The maths as tensor code (any device)
# --------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _terms(
    key: tuple[int, int, tuple[int, ...]], circular: bool, strips: int, device: torch.device
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, float]:
    """:func:`asm.ops.reads.terms` as tensors on ``device``: ``us, vs, tu, tv, tp, coef, area``."""
    *arrays, area = terms(key, circular, strips)
    return (*(torch.tensor(a, device=device) for a in arrays), area)


#: Table reads per chunk of boxes and per CPU thread: the chunk's work buffers (about 80
#: bytes a read) are reused from chunk to chunk and stay in cache. Other devices take all
#: boxes at once, up to ``_DEVICE_CHUNK_READS`` reads a chunk.
_CPU_CHUNK_READS = 1 << 16
_DEVICE_CHUNK_READS = 1 << 24


def _plan(boxes: Tensor, partition: Tensor, map_shape: list[int], circular: bool):
    """Yield, per chunk of boxes, where and how to read the summed-area table.

    Each item is ``(k0, k1, idx [T, k], fx [T, k], fy [T, k], coef [T], scale [k])``, read
    ``t`` of box ``k0 + j`` at ``[t, j]`` (reads-major: every step below is a contiguous
    pass or a copy of whole rows, the template's edges gathered per read by row):
    ``idx`` are flat indices into the ``[B, L, H+1, W+1]`` table of the top-left entry of
    the 2x2 around each read point (the others are at ``+1``, ``+(W+1)``, ``+(W+2)``),
    ``fx, fy`` the point's fraction inside that map pixel. The integral of the map from the
    origin to the point is exactly the bilinear interpolation of those four entries; the
    score of box ``k`` is ``scale[k] * sum_t coef[t] * integral[t, k]``. The yielded tensors
    are work buffers, overwritten by the next chunk.
    """
    B, L, H, W = map_shape
    dev = boxes.device
    us, vs, tu, tv, tp, coef, area_fraction = _terms(partition_key(partition), circular, DISC_STRIPS, dev)
    sy, sp = W + 1, (H + 1) * (W + 1)
    b, bx1, by1, bx2, by2 = boxes.to(torch.float64).t()  # [K] each
    x1, y1 = bx1.clamp(0, W), by1.clamp(0, H)
    bw, bh = bx2.clamp(0, W) - x1, by2.clamp(0, H) - y1
    # int32 indices where the table allows it (less memory traffic), int64 otherwise
    itype = torch.int32 if B * L * sp < 2**31 else torch.int64
    base = b.round().mul_(L * sp).to(itype)
    scale = 1.0 / (bw * bh * area_fraction)
    channel = (tp * sp).to(itype)[:, None]  # [T, 1]
    K, T, nu, nv = b.shape[0], tu.shape[0], us.shape[0], vs.shape[0]
    reads = _CPU_CHUNK_READS * torch.get_num_threads() if dev.type == "cpu" else _DEVICE_CHUNK_READS
    step = min(K, max(1, reads // T))

    def buf(rows: int, dtype: torch.dtype = torch.float64):  # [rows, n] views of one flat buffer
        flat = torch.empty(rows * step, dtype=dtype, device=dev)
        return lambda n: flat[: rows * n].view(rows, n)

    xs, ys, col, row = buf(nu), buf(nv), buf(nu, itype), buf(nv, itype)
    idx, fx, fy = buf(T, itype), buf(T), buf(T)
    for k0 in range(0, K, step):
        k1 = min(K, k0 + step)
        n = k1 - k0
        # every distinct edge of the template, in map coordinates: its pixel and the fraction
        x = torch.addcmul(x1[k0:k1], us[:, None], bw[k0:k1], out=xs(n))  # [nu, k]
        y = torch.addcmul(y1[k0:k1], vs[:, None], bh[k0:k1], out=ys(n))  # [nv, k]
        c, r = col(n), row(n)
        c.copy_(x.floor().clamp_(0, W - 1))
        r.copy_(y.floor().clamp_(0, H - 1))
        x.sub_(c)
        y.sub_(r)
        r.mul_(sy).add_(base[k0:k1])
        # ... and per read: rows of the edge tables
        i = torch.index_select(r, 0, tv, out=idx(n)).add_(torch.index_select(c, 0, tu)).add_(channel)
        yield k0, k1, i, torch.index_select(x, 0, tu, out=fx(n)), torch.index_select(y, 0, tv, out=fy(n)), coef, scale[k0:k1]


def _sat(score_map: Tensor) -> Tensor:
    """Summed-area table ``[B, L, H+1, W+1]`` (float64): ``S[r, c] = sum M[:r, :c]``."""
    B, L, H, W = score_map.shape
    sat = score_map.new_empty((B, L, H + 1, W + 1), dtype=torch.float64)
    sat[..., 0, :] = 0
    sat[..., 1:, 0] = 0
    sat[..., 1:, 1:] = score_map
    return sat.cumsum_(-2).cumsum_(-1)


def _forward(score_map: Tensor, boxes: Tensor, partition: Tensor, circular: bool) -> Tensor:
    _check_shapes(score_map, boxes, partition)
    if score_map.device.type == "cpu" and kernel.library() is not None:  # the C kernel, on the tensors' memory
        scores = kernel.pool_numpy(score_map.detach().numpy(), boxes.detach().to(torch.float64).numpy(),
                                   partition.numpy(), circular)
        return torch.from_numpy(scores).to(score_map.dtype)
    _check_values(score_map, boxes, partition)
    if boxes.shape[0] == 0:
        return score_map.new_empty(0)
    flat = _sat(score_map).view(-1)
    sy = score_map.shape[-1] + 1
    # the four entries around a read are one index into four shifted views of the table
    corners = (flat, flat[sy:], flat[1:], flat[sy + 1 :])  # top-left, bottom-left, top-right, bottom-right
    out = torch.empty(boxes.shape[0], dtype=torch.float64, device=score_map.device)
    q = None
    for k0, k1, idx, fx, fy, coef, scale in _plan(boxes, partition, list(score_map.shape), circular):
        if q is None:  # work buffer for the largest (first) chunk
            q = fx.new_empty((4, fx.numel()))
        n = idx.numel()
        for c, view in enumerate(corners):
            torch.index_select(view, 0, idx.view(-1), out=q[c, :n])
        quad = q[:, :n].view(2, 2, *fx.shape)  # [(left, right), (top, bottom), T, k]
        top, bottom = torch.lerp(quad[0], quad[1], fx).unbind(0)
        torch.mv(top.lerp_(bottom, fy).t(), coef, out=out[k0:k1]).mul_(scale)
    return out.to(score_map.dtype)


def _backward(grad: Tensor, boxes: Tensor, partition: Tensor, map_shape: list[int], circular: bool) -> Tensor:
    B, L, H, W = map_shape
    grad_sat = torch.zeros(B * L * (H + 1) * (W + 1), dtype=torch.float64, device=grad.device)
    if boxes.shape[0] > 0:
        g64 = grad.to(torch.float64)
        for k0, k1, idx, fx, fy, coef, scale in _plan(boxes, partition, map_shape, circular):
            # d integral / d (top-left, top-right, bottom-left, bottom-right) = bilinear weights
            gy = (g64[k0:k1] * scale) * coef[:, None] * torch.stack([1 - fy, fy])  # [2 (row), T, k]
            src = gy[:, None] * torch.stack([1 - fx, fx])[None]  # [2 (row), 2 (col), T, k]
            corners = torch.tensor([[0, 1], [W + 1, W + 2]], dtype=idx.dtype, device=idx.device)
            grad_sat.index_add_(0, (idx + corners[..., None, None]).flatten(), src.flatten())
    # S[r', c'] sums M[r < r', c < c'], so dM[r, c] = sum of dS[r' > r, c' > c]
    gs = grad_sat.view(B, L, H + 1, W + 1)[..., 1:, 1:]
    grad_map = gs.flip(-2, -1).cumsum(-2).cumsum(-1).flip(-2, -1)
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
