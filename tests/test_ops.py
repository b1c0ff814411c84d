"""torch.ops.asm.composition_pool / circular_pool against slow, obvious references."""

from __future__ import annotations

import math

import pytest
import torch

import asm.ops.pool  # noqa: F401  (registers torch.ops.asm)
from asm.ops import BOX_TOLERANCE
from asm.patterns import PATTERN_NAMES, get_pattern

pool = torch.ops.asm.composition_pool
circ = torch.ops.asm.circular_pool
pool_backward = torch.ops.asm.composition_pool_backward
CROSS = get_pattern("cross_rectangle").partition


# --------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------
def naive_pool(score_map: torch.Tensor, boxes: torch.Tensor, partition: torch.Tensor) -> torch.Tensor:
    """For each box, each cell, loop over the pixels it touches, weigh by overlap area, average."""
    m = score_map.double().tolist()
    part = partition.tolist()
    gh, gw = len(part), len(part[0])
    scores = []
    for b, x1, y1, x2, y2 in boxes.double().tolist():
        cw, ch = (x2 - x1) / gw, (y2 - y1) / gh
        cell_means = []
        for i in range(gh):
            for j in range(gw):
                cx0, cx1, cy0, cy1 = x1 + j * cw, x1 + (j + 1) * cw, y1 + i * ch, y1 + (i + 1) * ch
                channel = m[int(b)][part[i][j]]
                total = area = 0.0
                for r in range(math.floor(cy0), math.ceil(cy1)):
                    oy = min(cy1, r + 1) - max(cy0, r)
                    for c in range(math.floor(cx0), math.ceil(cx1)):
                        ox = min(cx1, c + 1) - max(cx0, c)
                        if ox > 0 and oy > 0:
                            total += ox * oy * channel[r][c]
                            area += ox * oy
                cell_means.append(total / area)
        scores.append(sum(cell_means) / len(cell_means))
    return torch.tensor(scores, dtype=torch.float64)


def dense_circular(score_map: torch.Tensor, box, partition: torch.Tensor, n: int = 32) -> float:
    """Supersampled integral over the ellipse inscribed in ``box``.

    The box is cut along every pixel edge and every cell edge, so each piece lies in one
    pixel and one cell; ``n x n`` midpoint samples per piece say how much of it is inside
    the ellipse. The score is the sample-area-weighted mean of the map over the ellipse.
    """
    b, x1, y1, x2, y2 = (float(v) for v in box)
    gh, gw = partition.shape
    w, h = x2 - x1, y2 - y1

    def edges(lo: float, size: float, cells: int) -> torch.Tensor:
        e = {lo, lo + size} | {lo + size * k / cells for k in range(cells)}
        e |= {float(v) for v in range(math.ceil(lo), math.floor(lo + size) + 1)}
        return torch.tensor(sorted(v for v in e if lo <= v <= lo + size), dtype=torch.float64)

    xe, ye = edges(x1, w, gw), edges(y1, h, gh)
    dx, dy = xe.diff(), ye.diff()
    s = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    u = (xe[:-1, None] + dx[:, None] * s - (x1 + x2) / 2) * 2 / w  # [nx, n], unit-disc coordinates
    v = (ye[:-1, None] + dy[:, None] * s - (y1 + y2) / 2) * 2 / h  # [ny, n]
    inside = (v[:, :, None, None] ** 2 + u[None, None] ** 2) <= 1  # [ny, n, nx, n]
    weight = inside.double().mean((1, 3)) * dy[:, None] * dx[None, :]
    xm, ym = (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2
    c, r = xm.floor().long(), ym.floor().long()
    j = ((xm - x1) / w * gw).floor().long().clamp(max=gw - 1)
    i = ((ym - y1) / h * gh).floor().long().clamp(max=gh - 1)
    values = score_map[int(b)].double()[partition[i[:, None], j[None, :]], r[:, None], c[None, :]]
    return float((weight * values).sum() / weight.sum())


def _disc_below_left(x: float, y: float) -> float:
    """Exact area of {(s, t) in the unit disc : s <= x, t <= y}."""
    x, y = min(1.0, max(-1.0, x)), min(1.0, max(-1.0, y))
    xi = math.sqrt(max(0.0, 1 - x * x))

    def a(t: float) -> float:  # antiderivative of sqrt(1 - t^2)
        return 0.5 * (t * math.sqrt(max(0.0, 1 - t * t)) + math.asin(t))

    def piece(lo: float, hi: float, full: bool) -> float:  # chord 2*sqrt or x + sqrt, t in [lo, hi]
        hi = min(hi, y)
        if hi <= lo:
            return 0.0
        return 2 * (a(hi) - a(lo)) if full else x * (hi - lo) + a(hi) - a(lo)

    if x >= 0:
        return piece(-1, -xi, True) + piece(-xi, xi, False) + piece(xi, 1, True)
    return piece(-xi, xi, False)


def exact_circular(score_map: torch.Tensor, box, partition: torch.Tensor) -> float:
    """Exact: area of (ellipse ∩ pixel ∩ cell) from the closed-form disc quadrant areas."""
    b, x1, y1, x2, y2 = (float(v) for v in box)
    gh, gw = partition.shape
    w, h = x2 - x1, y2 - y1
    xs = sorted({x1, x2} | {x1 + w * k / gw for k in range(gw)} | {float(v) for v in range(math.ceil(x1), math.floor(x2) + 1)})
    ys = sorted({y1, y2} | {y1 + h * k / gh for k in range(gh)} | {float(v) for v in range(math.ceil(y1), math.floor(y2) + 1)})
    xs, ys = [v for v in xs if x1 <= v <= x2], [v for v in ys if y1 <= v <= y2]
    g = [[_disc_below_left(2 * (xa - x1) / w - 1, 2 * (ya - y1) / h - 1) for xa in xs] for ya in ys]
    m = score_map[int(b)].double()
    total = 0.0
    for a in range(len(ys) - 1):
        ym = (ys[a] + ys[a + 1]) / 2
        r, i = int(ym), min(gh - 1, int((ym - y1) / h * gh))
        for c_ in range(len(xs) - 1):
            area = g[a + 1][c_ + 1] - g[a + 1][c_] - g[a][c_ + 1] + g[a][c_]
            xm = (xs[c_] + xs[c_ + 1]) / 2
            total += area * float(m[partition[i, min(gw - 1, int((xm - x1) / w * gw))], r, int(xm)])
    return total / math.pi


def random_boxes(n: int, batch: int, H: int, W: int, gen: torch.Generator, min_size: float = 0.2) -> torch.Tensor:
    """Fractional boxes of all sizes inside a ``H x W`` map, spread over ``batch`` items."""
    size = min_size + torch.rand(n, 2, generator=gen, dtype=torch.float64) * (torch.tensor([W, H]) - min_size)
    lo = torch.rand(n, 2, generator=gen, dtype=torch.float64) * (torch.tensor([W, H]) - size)
    b = torch.randint(0, batch, (n, 1), generator=gen).double()
    return torch.cat([b, lo, lo + size], 1)


def score_map_for(partition: torch.Tensor, B: int, H: int, W: int, gen: torch.Generator, dtype=torch.float64):
    L = int(partition.max()) + 1
    return torch.rand(B, L, H, W, generator=gen, dtype=torch.float64).to(dtype)


# --------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PATTERN_NAMES)
def test_matches_naive_reference_every_pattern(name):
    gen = torch.Generator().manual_seed(PATTERN_NAMES.index(name))
    part = get_pattern(name).partition
    B, H, W = 3, 9, 13
    m = score_map_for(part, B, H, W, gen) * 4 - 1  # signed values too
    boxes = random_boxes(12, B, H, W, gen)
    boxes[0] = torch.tensor([1, 0, 0, W, H], dtype=torch.float64)  # whole map
    boxes[1] = torch.tensor([2, 2, 3, 7, 8], dtype=torch.float64)  # integer edges
    boxes[2] = torch.tensor([0, 4.25, 1.5, 4.75, 1.75], dtype=torch.float64)  # inside one pixel
    got = pool(m, boxes, part)
    assert got.dtype == torch.float64 and got.shape == (12,)
    torch.testing.assert_close(got, naive_pool(m, boxes, part), rtol=0, atol=1e-6)


@pytest.mark.parametrize("grid", [(2, 7), (4, 4), (5, 3)])
def test_matches_naive_reference_any_partition(grid):
    """Tables other than the 8 patterns: random ones (same-partition cells meet diagonally,
    unused channels) for both ops."""
    gen = torch.Generator().manual_seed(grid[0] * 10 + grid[1])
    part = torch.randint(0, 4, grid, generator=gen)
    m = torch.rand(2, 5, 8, 11, generator=gen, dtype=torch.float64)
    boxes = random_boxes(10, 2, 8, 11, gen)
    torch.testing.assert_close(pool(m, boxes, part), naive_pool(m, boxes, part), rtol=0, atol=1e-6)
    torch.testing.assert_close(
        circ(m + 0.5, boxes[:3], part),
        torch.tensor([exact_circular(m + 0.5, b, part) for b in boxes[:3]], dtype=torch.float64),
        rtol=1e-3,
        atol=0,
    )


def test_float32_map_and_boxes():
    gen = torch.Generator().manual_seed(7)
    m = score_map_for(CROSS, 2, 16, 24, gen)
    boxes = random_boxes(50, 2, 16, 24, gen, min_size=1.0)
    ref = pool(m, boxes, CROSS)
    got = pool(m.float(), boxes.float(), CROSS)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-5)


def test_whole_map_box_closed_form():
    gen = torch.Generator().manual_seed(1)
    B, H, W = 2, 12, 18
    m = torch.rand(B, 12, H, W, generator=gen, dtype=torch.float64)
    whole = torch.tensor([[0, 0, 0, W, H], [1, 0, 0, W, H]], dtype=torch.float64)
    # grid1x1: the mean of the map
    torch.testing.assert_close(pool(m[:, :1], whole, get_pattern("grid1x1").partition), m[:, 0].mean((-1, -2)))
    # cross_rectangle on a map divisible by the 6x6 grid: each pixel reads its cell's channel
    pixel_partition = CROSS.repeat_interleave(H // 6, 0).repeat_interleave(W // 6, 1)
    expected = m.gather(1, pixel_partition.expand(B, 1, H, W)).mean((1, 2, 3))
    torch.testing.assert_close(pool(m, whole, CROSS), expected)


def test_constant_map_scores_the_constant():
    m = torch.full((1, 12, 7, 9), 0.37, dtype=torch.float64)
    boxes = random_boxes(20, 1, 7, 9, torch.Generator().manual_seed(2))
    torch.testing.assert_close(pool(m, boxes, CROSS), torch.full((20,), 0.37, dtype=torch.float64))
    torch.testing.assert_close(circ(m, boxes, CROSS), torch.full((20,), 0.37, dtype=torch.float64))


def test_subpixel_shift_changes_score_continuously():
    gen = torch.Generator().manual_seed(3)
    m = score_map_for(CROSS, 1, 20, 30, gen)
    x1, y1, w, h = 4.0, 3.0, 12.0, 9.0
    shifts = torch.linspace(0, 0.3, 31, dtype=torch.float64)
    boxes = torch.stack([torch.zeros(31), x1 + shifts, torch.full((31,), y1), x1 + w + shifts, torch.full((31,), y1 + h)], 1)
    for op in (pool, circ):
        s = op(m, boxes, CROSS)
        # a cell's mean moves by at most 2 * shift / cell_width * max|M|
        bound = 2 * 6 / w * float(m.abs().max())
        assert float((s[-1] - s[0]).abs()) <= bound * 0.3
        assert float((s[1:] - s[:-1]).abs().max()) <= bound * 0.01 + 1e-12
        assert float((s[-1] - s[0]).abs()) > 1e-6  # it does move
    torch.testing.assert_close(pool(m, boxes[[0, 30]], CROSS), naive_pool(m, boxes[[0, 30]], CROSS), rtol=0, atol=1e-6)


def test_boxes_slightly_outside_are_clamped():
    m = torch.rand(1, 12, 6, 8, dtype=torch.float64)
    eps = BOX_TOLERANCE / 2
    inside = torch.tensor([[0, 0, 0, 8, 6]], dtype=torch.float64)
    outside = torch.tensor([[0, -eps, -eps, 8 + eps, 6 + eps]], dtype=torch.float64)
    torch.testing.assert_close(pool(m, outside, CROSS), pool(m, inside, CROSS))


def test_empty_boxes():
    m = torch.rand(2, 12, 5, 5)
    out = pool(m, torch.empty(0, 5), CROSS)
    assert out.shape == (0,) and out.dtype == torch.float32
    assert circ(m.double(), torch.empty(0, 5, dtype=torch.float64), CROSS).shape == (0,)
    g = pool_backward(torch.empty(0), torch.empty(0, 5), CROSS, [2, 12, 5, 5], False)
    assert g.shape == (2, 12, 5, 5) and not g.any()


@pytest.mark.parametrize("op", [pool, circ], ids=["composition_pool", "circular_pool"])
def test_chunked_reads_match_one_chunk(op, monkeypatch):
    """The tensor code scores boxes in chunks that reuse work buffers: many small chunks (the
    last one shorter) give the same scores and gradients as one chunk."""
    monkeypatch.setattr(asm.ops.kernel, "library", lambda: None)  # the C kernel does not chunk
    gen = torch.Generator().manual_seed(11)
    m = score_map_for(CROSS, 2, 9, 13, gen).requires_grad_(True)
    boxes = random_boxes(37, 2, 9, 13, gen)
    one = op(m, boxes, CROSS)
    (g_one,) = torch.autograd.grad(one.sum(), m)
    monkeypatch.setattr(asm.ops.pool, "_CPU_CHUNK_READS", 1)  # one box per chunk and thread
    many = op(m, boxes, CROSS)
    (g_many,) = torch.autograd.grad(many.sum(), m)
    torch.testing.assert_close(many, one, rtol=0, atol=1e-12)
    torch.testing.assert_close(g_many, g_one, rtol=0, atol=1e-12)
    if op is pool:
        torch.testing.assert_close(one[:5], naive_pool(m.detach(), boxes[:5], CROSS), rtol=0, atol=1e-9)


# --------------------------------------------------------------------------------------
# circular crops
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["grid1x1", "grid3x1", "cross_rectangle", "multi_direction"])
def test_circular_matches_dense_integration(name):
    gen = torch.Generator().manual_seed(11 + PATTERN_NAMES.index(name))
    part = get_pattern(name).partition
    H, W = 16, 24
    m = score_map_for(part, 2, H, W, gen) + 0.5  # positive
    boxes = random_boxes(8, 2, H, W, gen, min_size=0.5)
    boxes[0] = torch.tensor([0, 0, 0, W, H], dtype=torch.float64)
    boxes[1] = torch.tensor([1, 3.3, 2.1, 15.7, 14.5], dtype=torch.float64)  # a square: a disc
    got = circ(m, boxes, part)
    ref = torch.tensor([dense_circular(m, b, part) for b in boxes], dtype=torch.float64)
    torch.testing.assert_close(got, ref, rtol=1e-3, atol=0)


def test_circular_matches_exact_disc_areas():
    """Against the exact integral (closed-form disc areas), on [0, 1] maps: well under 1e-3."""
    gen = torch.Generator().manual_seed(5)
    H, W = 12, 16
    for name in ("grid1x1", "grid1x3", "cross_rectangle"):
        part = get_pattern(name).partition
        m = score_map_for(part, 1, H, W, gen)
        boxes = random_boxes(6, 1, H, W, gen, min_size=0.3)
        got = circ(m, boxes, part)
        ref = torch.tensor([exact_circular(m, b, part) for b in boxes], dtype=torch.float64)
        torch.testing.assert_close(got, ref, rtol=6e-4, atol=0)


def test_circular_differs_from_rectangle_where_corners_differ():
    m = torch.zeros(1, 1, 10, 10, dtype=torch.float64)
    m[..., :2, :2] = 1.0  # only the top-left corner is bright; the disc misses most of it
    box = torch.tensor([[0, 0, 0, 10, 10]], dtype=torch.float64)
    one = get_pattern("grid1x1").partition
    assert float(pool(m, box, one)) == pytest.approx(0.04)
    # the disc (radius 5, centre (5, 5)) covers of [0, 2]^2 the area int_3^4 sqrt(25 - x^2) dx - 3
    F = lambda x: (x * math.sqrt(25 - x * x) + 25 * math.asin(x / 5)) / 2  # noqa: E731
    exact = (F(4) - F(3) - 3) / (25 * math.pi)
    assert exact_circular(m, box[0], one) == pytest.approx(exact, rel=1e-12)
    # all the mass sits on the disc's edge, the worst case for the strips: the error is still
    # a few 1e-5 of the map's range (1e-3 relative holds for maps spread over the disc)
    assert float(circ(m, box, one)) == pytest.approx(exact, abs=5e-5)


# --------------------------------------------------------------------------------------
# autograd, opcheck, compile, export
# --------------------------------------------------------------------------------------
def _small(dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    m = torch.rand(2, 12, 4, 5, generator=gen, dtype=torch.float64).to(dtype)
    boxes = torch.tensor([[0, 0.3, 0.2, 4.1, 3.7], [1, 1.5, 0.5, 4.2, 3.9], [1, 0, 0, 5, 4]], dtype=dtype)
    return m, boxes


@pytest.mark.parametrize("op", [pool, circ], ids=["composition_pool", "circular_pool"])
def test_gradcheck_and_gradgradcheck(op):
    m, boxes = _small()
    m.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: op(x, boxes, CROSS), (m,))
    # fast mode (random projections of the Jacobians) keeps the second order check quick
    assert torch.autograd.gradgradcheck(lambda x: op(x, boxes, CROSS), (m,), fast_mode=True)


@pytest.mark.parametrize("op", [pool, circ], ids=["composition_pool", "circular_pool"])
def test_no_gradient_to_boxes(op):
    m, boxes = _small()
    m.requires_grad_(True)
    boxes.requires_grad_(True)
    op(m, boxes, CROSS).sum().backward()
    assert boxes.grad is None
    assert m.grad is not None and m.grad.shape == m.shape
    # the scores are linear in the map: the gradient of the first score pools a one-hot
    g = torch.autograd.grad(op(m, boxes[:1].detach(), CROSS).sum(), m)[0]
    assert torch.equal(g[1], torch.zeros_like(g[1]))  # box 0 is in batch item 0 only


@pytest.mark.parametrize("path", ["kernel where built", "tensor code"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_opcheck(dtype, path, monkeypatch):
    if path == "tensor code":
        monkeypatch.setattr(asm.ops.kernel, "library", lambda: None)
    m, boxes = _small(dtype)
    for op in (pool, circ):
        torch.library.opcheck(op, (m, boxes, CROSS))
        torch.library.opcheck(op, (m.requires_grad_(True), boxes, CROSS))
        m = m.detach()
    grad = torch.rand(3, dtype=dtype)
    for circular in (False, True):
        torch.library.opcheck(pool_backward, (grad, boxes, CROSS, list(m.shape), circular))


def test_torch_compile_fullgraph_matches_eager():
    m, boxes = _small(torch.float32)

    def f(x, b):
        return pool(x.relu() * 2, b, CROSS).softmax(0) + circ(x, b, CROSS)

    torch._dynamo.reset()
    # inductor works too but needs ~40 s of C++ compilation on 2 cores; aot_eager traces the
    # same graph (dynamo + AOT autograd through the fake kernels) in well under a second
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(m, boxes), f(m, boxes))
    x = m.clone().requires_grad_(True)
    compiled(x, boxes).sum().backward()
    y = m.clone().requires_grad_(True)
    f(y, boxes).sum().backward()
    torch.testing.assert_close(x.grad, y.grad)


def test_torch_export_matches_eager():
    class Scorer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("partition", CROSS.clone())

        def forward(self, score_map, boxes):
            return pool(score_map, boxes, self.partition), circ(score_map, boxes, self.partition)

    m, boxes = _small(torch.float32)
    program = torch.export.export(Scorer(), (m, boxes))
    assert any("asm.composition_pool" in str(n.target) for n in program.graph.nodes)
    m2, boxes2 = _small(torch.float32, seed=1)
    for got, want in zip(program.module()(m2, boxes2), Scorer()(m2, boxes2)):
        torch.testing.assert_close(got, want)


# --------------------------------------------------------------------------------------
# argument errors
# --------------------------------------------------------------------------------------
def _args():
    return torch.rand(2, 12, 6, 8), torch.tensor([[0, 1.0, 1.0, 5.0, 4.0]]), CROSS.clone()


def _boxes(*row):
    return torch.tensor([row], dtype=torch.float32)


#: (change of the good arguments, error type, message pattern); also used by test_kernel.py
BAD_ARGUMENTS = [
    (lambda m, b, p: (m[0], b, p), ValueError, r"score_map must be \[B, L, H, W\]"),
    (lambda m, b, p: (m.long(), b, p), ValueError, "score_map must be float"),
    (lambda m, b, p: (m[..., :0], b, p), ValueError, "score_map must have a non-empty"),
    (lambda m, b, p: (m, b[0], p), ValueError, r"boxes must be \[K, 5\]"),
    (lambda m, b, p: (m, b[:, :4], p), ValueError, r"boxes must be \[K, 5\]"),
    (lambda m, b, p: (m, torch.cat([b, b[:, :1]], 1), p), ValueError, r"boxes must be \[K, 5\]"),
    (lambda m, b, p: (m, b.long(), p), ValueError, "boxes must be a floating-point"),
    (lambda m, b, p: (m, _boxes(2, 1, 1, 5, 4), p), IndexError, r"batch_index.*0\.\.1"),
    (lambda m, b, p: (m, _boxes(-1, 1, 1, 5, 4), p), IndexError, "batch_index"),
    (lambda m, b, p: (m, _boxes(0.5, 1, 1, 5, 4), p), ValueError, "batch_index.*whole numbers"),
    (lambda m, b, p: (m, _boxes(0, 5, 1, 5, 4), p), ValueError, "x2 > x1"),
    (lambda m, b, p: (m, _boxes(0, 5, 1, 4, 4), p), ValueError, "x2 > x1"),
    (lambda m, b, p: (m, _boxes(0, 1, 4, 5, 4), p), ValueError, "y2 > y1"),
    (lambda m, b, p: (m, _boxes(0, 1, 4.5, 5, 4), p), ValueError, "y2 > y1"),
    (lambda m, b, p: (m, _boxes(0, -0.5, 1, 5, 4), p), ValueError, r"boxes must lie inside the map \[0, 8\] x \[0, 6\]"),
    (lambda m, b, p: (m, _boxes(0, 1, 1, 8.5, 4), p), ValueError, "boxes must lie inside the map"),
    (lambda m, b, p: (m, _boxes(0, 1, 1, 5, 6.01), p), ValueError, "boxes must lie inside the map"),
    (lambda m, b, p: (m, _boxes(0, float("nan"), 1, 5, 4), p), ValueError, "boxes contain NaN"),
    (lambda m, b, p: (m, _boxes(0, 1, 1, float("inf"), 4), p), ValueError, "boxes contain NaN or infinite"),
    (lambda m, b, p: (m, b, p + 1), IndexError, r"partition values must lie in 0\.\.11"),
    (lambda m, b, p: (m, b, p - 1), IndexError, "partition values"),
    (lambda m, b, p: (m, b, p.int()), ValueError, "partition must be an int64"),
    (lambda m, b, p: (m, b, p.double()), ValueError, "partition must be an int64"),
    (lambda m, b, p: (m, b, p.flatten()), ValueError, r"partition must be a \[gh, gw\]"),
    (lambda m, b, p: (m, b, p[:0]), ValueError, "partition must have at least one cell"),
]


@pytest.mark.parametrize("change, error, match", BAD_ARGUMENTS)
@pytest.mark.parametrize("op", [pool, circ], ids=["composition_pool", "circular_pool"])
def test_argument_errors(op, change, error, match):
    with pytest.raises(error, match=match):
        op(*change(*_args()))


def test_error_names_the_offending_box():
    m, _, p = _args()
    boxes = torch.tensor([[0, 1, 1, 5, 4], [0, 1, 1, 5, 4], [0, 3, 1, 2, 4]], dtype=torch.float32)
    with pytest.raises(ValueError, match=r"box 2 is \[3\.0, 1\.0, 2\.0, 4\.0\]"):
        pool(m, boxes, p)


def test_device_mismatch():
    m, b, p = _args()
    other = torch.device("cuda") if torch.cuda.is_available() else torch.device("meta")
    with pytest.raises(ValueError, match="boxes is on"):
        pool(m, b.to(other), p)
    with pytest.raises(ValueError, match="partition is on"):
        pool(m, b, p.to(other))

