"""Speed of ``torch.ops.asm.composition_pool`` / ``circular_pool``, written to
``benchmarks/results/pool.md`` (run: ``.venv/bin/python benchmarks/bench_pool.py``).

Everything on 2 CPU threads, in one process, wall-clock medians of several repeats, so the
ratios compare like with like. The op runs on the CPU through the compiled C kernel
(``asm/ops/pool.c``, one thread); it is timed beside its own tensor code (what runs on other
devices and without the kernel) and beside ``asm.ops.pool_numpy`` (the torch-free entry, the
same kernel, and its numpy fallback). Baselines measured in the same run:

* a per-crop Python loop (the obvious implementation): slice the crop at whole pixels,
  ``adaptive_avg_pool2d`` it to the pattern's grid, read each cell's channel, average;
* ``torchvision.ops.ps_roi_align`` on the map expanded to one channel per cell (bilinear
  samples, an approximation of the per-cell means), with ``sampling_ratio=2`` and adaptive;
  timed with the expansion (what a caller with this map pays) and without it;
* the MobileNetV2 feature extractor on one 256x384 image, the forward pass that produces the
  score map in the first place (the op should score 10 000 crops in less time).
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting steal the CPU from the thread doing the work when
# the machine runs other jobs (then every op, even a tiny one, costs a scheduler tick of
# 4-8 ms at 2 threads). Passive waiting must be chosen before torch starts OpenMP; it
# applies to every method timed here alike.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's asm, as cuda_check.py

import asm.ops.pool  # noqa: E402,F401  (registers torch.ops.asm)
from asm.ops import kernel, pool_numpy  # noqa: E402
from asm.patterns import DEFAULT_PATTERN, get_pattern  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pool.md"
THREADS = 2
PATTERN = get_pattern(DEFAULT_PATTERN)
PART = PATTERN.partition
L = PATTERN.num_partitions
MAP = (256, 384)


BEST: dict[str, float] = {}  # fastest repeat of the last timeit() call, per name
SHUFFLE = random.Random(0)  # the order of the functions in each round of timeit()


def timeit(fns: dict, repeats: int = 7, warmup: int = 1) -> dict[str, float]:
    """Median wall time of each ``fns[name]()`` in milliseconds (the fastest in ``BEST``).

    The functions take turns, so a change in the machine's load hits all of them alike and
    the ratios between them stay fair; the order is shuffled each round, so no function
    always runs right after the same one (after the network's forward pass, say, whose
    memory traffic leaves the caches cold for whatever comes next).
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns.items())
    for _ in range(repeats):
        SHUFFLE.shuffle(order)
        for name, fn in order:
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    BEST.clear()
    BEST.update({name: min(ts) * 1e3 for name, ts in times.items()})
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def random_boxes(k: int, H: int, W: int, gen: torch.Generator, size: float | None = None) -> torch.Tensor:
    """``k`` boxes inside the map: random sizes from 8 px to the whole map, or all ``size`` px."""
    if size is None:
        wh = 8 + torch.rand(k, 2, generator=gen) * (torch.tensor([W, H]) - 8)
    else:
        wh = torch.full((k, 2), float(size))
    lo = torch.rand(k, 2, generator=gen) * (torch.tensor([W, H]) - wh)
    return torch.cat([torch.zeros(k, 1), lo, lo + wh], 1)


def loop_scores(score_map: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """The baseline: one crop at a time, whole-pixel edges, adaptive average pooling per cell."""
    gh, gw = PART.shape
    flat = PART.flatten()
    out = []
    for b, x1, y1, x2, y2 in boxes.tolist():
        r0, c0 = int(y1), int(x1)
        r1, c1 = max(r0 + 1, round(y2)), max(c0 + 1, round(x2))
        cells = F.adaptive_avg_pool2d(score_map[int(b), :, r0:r1, c0:c1], (gh, gw)).flatten(1)  # [L, cells]
        out.append(cells.gather(0, flat[None]).mean())
    return torch.stack(out)


def ps_roi_scores(score_map: torch.Tensor, boxes: torch.Tensor, sampling_ratio: int, expanded: bool = False) -> torch.Tensor:
    """ps_roi_align on the map with one channel per cell (channel of cell i is partition[i]);
    ``expanded``: ``score_map`` already has those channels."""
    if not expanded:
        score_map = score_map.index_select(1, PART.flatten())  # [B, cells, H, W]
    pooled = torchvision.ops.ps_roi_align(score_map, boxes, PART.shape, 1.0, sampling_ratio)  # [K, 1, gh, gw]
    return pooled.flatten(1).mean(1)


def without_kernel(fn):
    """``fn`` run as where the C kernel is not built: the op's tensor code, pool_numpy's numpy code."""
    def run():
        loaded = kernel.library
        kernel.library = lambda: None
        try:
            return fn()
        finally:
            kernel.library = loaded
    return run


def mobilenet():
    model = torchvision.models.mobilenet_v2(weights=None).features.eval()
    image = torch.rand(1, 3, *MAP)
    return lambda: model(image)


def _k(k: int) -> str:
    return f"{k:,}".replace(",", " ")


def main() -> None:
    torch.set_num_threads(THREADS)
    gen = torch.Generator().manual_seed(0)
    H, W = MAP
    score_map = torch.rand(1, L, H, W, generator=gen)
    op = torch.ops.asm.composition_pool
    circ = torch.ops.asm.circular_pool
    lines: list[str] = []
    mnet_times: list[float] = []

    def table(title: str, header: list[str], rows: list[list[str]], note: str = "") -> None:
        lines.extend([f"### {title}", ""])
        if note:
            lines.extend([note, ""])
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines.extend("| " + " | ".join(r) + " |" for r in rows)
        lines.append("")
        print("\n".join(lines[-len(rows) - 4 :]), flush=True)

    if kernel.library() is None:
        sys.exit(f"bench_pool: the C kernel is not built ({kernel.describe()}); run make install")
    with torch.inference_mode():
        mnet = mobilenet()
        # sanity: the baselines compute (approximately) the same thing
        check = random_boxes(200, H, W, gen)
        exact = op(score_map, check, PART)
        err_loop = float((loop_scores(score_map, check) - exact).abs().max())
        err_ps = float((ps_roi_scores(score_map, check, 2) - exact).abs().max())

        # 1. op vs the per-crop loop and ps_roi_align, growing K ------------------------
        rows = []
        expanded = score_map.index_select(1, PART.flatten())
        for k in (100, 1_000, 10_000):
            boxes = random_boxes(k, H, W, gen)
            sub = boxes[: min(k, 1_000)]  # the loop runs on at most 1 000 boxes, then extrapolates
            arrays = score_map.numpy(), boxes.double().numpy(), PART.numpy()
            t = timeit(
                {
                    "op": lambda: op(score_map, boxes, PART),
                    "tensor": without_kernel(lambda: op(score_map, boxes, PART)),
                    "np": lambda: pool_numpy(*arrays),
                    "loop": lambda: loop_scores(score_map, sub),
                    "ps2": lambda: ps_roi_scores(score_map, boxes, 2),
                    "ps2x": lambda: ps_roi_scores(expanded, boxes, 2, expanded=True),
                    "psa": lambda: ps_roi_scores(score_map, boxes, -1),
                    "mnet": mnet,
                },
                repeats=9 if k < 10_000 else 5,
            )
            mnet_times.append(t["mnet"])
            loop = t["loop"] * k / len(sub)
            rows.append(
                [
                    _k(k),
                    f"{t['op']:.2f}",
                    f"{t['tensor']:.2f} ({t['tensor'] / t['op']:.1f}x)",
                    f"{t['np']:.2f}",
                    f"{loop:.0f}" + (" (extrapolated from 1 000)" if len(sub) < k else ""),
                    f"**{loop / t['op']:.0f}x**",
                    f"{t['ps2']:.2f} ({t['ps2'] / t['op']:.2f}x)",
                    f"{t['ps2x']:.2f} ({t['ps2x'] / t['op']:.2f}x)",
                    f"{t['psa']:.1f} ({t['psa'] / t['op']:.1f}x)",
                    f"{t['mnet']:.1f} ({t['op'] / t['mnet']:.2f})",
                ]
            )
        table(
            f"Scoring K crops on a [1, {L}, {H}, {W}] map ({DEFAULT_PATTERN}), ms",
            ["K", "composition_pool (C kernel)", "its tensor code (its time / op's)", "pool_numpy", "per-crop loop", "loop / op",
             "ps_roi_align s=2 (its time / op's)", "ps_roi_align s=2, map already expanded (its time / op's)",
             "ps_roi_align adaptive (its time / op's)",
             "MobileNetV2 (op's time / its)"],
            rows,
            "Boxes: random positions, sides from 8 px to the whole map. composition_pool is the torch op on "
            "CPU tensors, which runs the C kernel (one thread); its tensor code is what runs without the kernel "
            "(2 threads); pool_numpy is the torch-free entry (numpy arrays, the same kernel). The per-crop loop is the "
            "baseline (slice at whole pixels, `adaptive_avg_pool2d` to 6x6, read each cell's "
            "channel, average). ps_roi_align times include expanding the map to one channel per "
            f"cell. Largest difference from the exact op on 200 such boxes: per-crop loop {err_loop:.3f}, "
            f"ps_roi_align s=2 {err_ps:.3f} (map values in [0, 1]). Last column: MobileNetV2 features "
            "on one 256x384 image, timed in turn with the others.",
        )

        # 1b. the cropper's own map: a 256x384 image at stride 8 ------------------------------
        rows = []
        h8, w8 = H // 8, W // 8
        small = torch.rand(1, L, h8, w8, generator=gen)
        small_expanded = small.index_select(1, PART.flatten())
        for k in (1_000, 5_000):
            boxes = random_boxes(k, h8, w8, gen)
            arrays = small.numpy(), boxes.double().numpy(), PART.numpy()
            t = timeit({"op": lambda: op(small, boxes, PART),
                        "tensor": without_kernel(lambda: op(small, boxes, PART)),
                        "np": lambda: pool_numpy(*arrays),
                        "npfb": without_kernel(lambda: pool_numpy(*arrays)),
                        "circ": lambda: circ(small, boxes, PART),
                        "ps2": lambda: ps_roi_scores(small, boxes, 2),
                        "ps2x": lambda: ps_roi_scores(small_expanded, boxes, 2, expanded=True)}, repeats=15)
            rows.append([_k(k), f"{t['op']:.2f}", f"{t['tensor']:.2f} ({t['tensor'] / t['op']:.1f}x)",
                         f"{t['np']:.2f} ({t['np'] / t['op']:.2f}x)", f"{t['npfb']:.2f} ({t['npfb'] / t['op']:.1f}x)",
                         f"{t['circ']:.2f}",
                         f"{t['ps2']:.2f} ({t['ps2'] / t['op']:.1f}x)", f"{t['ps2x']:.2f} ({t['ps2x'] / t['op']:.1f}x)"])
            search_np = 3 * t["np"]  # the last row: five aspects
        table(
            f"The cropper's map: [1, {L}, {h8}, {w8}] (a 256x384 image at stride 8), ms",
            ["K", "composition_pool (C kernel)", "its tensor code (its time / op's)", "pool_numpy (its time / op's)",
             "pool_numpy without the kernel: numpy (its time / op's)", "circular_pool (C kernel)",
             "ps_roi_align s=2 (its time / op's)", "ps_roi_align s=2, map already expanded (its time / op's)"],
            rows,
            "The search scores about 1 000 (one aspect) to 5 000 (five aspects) boxes per stage on this map, "
            f"three stages per image: five aspects cost about 3 x {t['np']:.2f} = **{search_np:.1f} ms** of pooling "
            "through pool_numpy.",
        )

        # 2. op vs K ---------------------------------------------------------------------
        rows = []
        for k in (100, 1_000, 10_000, 100_000):
            boxes = random_boxes(k, H, W, gen)
            t = timeit(
                {"op": lambda: op(score_map, boxes, PART), "circ": lambda: circ(score_map, boxes, PART),
                 "tensor": without_kernel(lambda: op(score_map, boxes, PART)), "mnet": mnet},
                repeats=15 if k < 100_000 else 7,
            )
            mnet_times.append(t["mnet"])
            rows.append([_k(k), f"{t['op']:.2f} ({BEST['op']:.2f})", f"{1e3 * t['op'] / k:.2f}",
                         f"{t['tensor']:.2f} ({t['tensor'] / t['op']:.1f}x)",
                         f"{t['mnet']:.1f} ({BEST['mnet']:.1f})", f"**{t['op'] / t['mnet']:.2f}**",
                         f"{t['circ']:.2f} ({BEST['circ']:.2f})", f"{t['circ'] / t['op']:.1f}"])
        table(
            f"Time vs K ([1, {L}, {H}, {W}] map)",
            ["K", "composition_pool ms", "us per crop", "its tensor code ms (its time / op's)", "MobileNetV2 ms",
             "op / MobileNetV2", "circular_pool ms", "circular / rect"],
            rows,
            "Median (fastest) of the repeats; MobileNetV2 features on one 256x384 image timed in turn.",
        )

        # 3. op vs map size ---------------------------------------------------------------
        rows = []
        k = 10_000
        for h, w in ((32, 48), (64, 96), (128, 192), (256, 384), (512, 768)):
            m = torch.rand(1, L, h, w, generator=gen)
            boxes = random_boxes(k, h, w, gen)
            t = timeit({"op": lambda: op(m, boxes, PART), "circ": lambda: circ(m, boxes, PART)}, repeats=11)
            rows.append([f"{h}x{w}", f"{t['op']:.2f}", f"{t['circ']:.2f}"])
        table(
            "Time vs map size (K = 10 000), ms",
            ["map H x W", "composition_pool", "circular_pool"],
            rows,
            "32x48 is the score map of a 256x384 image at the model's default stride 8. The summed-area "
            "table costs O(L H W); once it outgrows the caches, the random reads slow down.",
        )

        # 4. op vs crop size -----------------------------------------------------------------
        rows = []
        for size in (8, 32, 128, 256):
            boxes = random_boxes(k, H, W, gen, size=size)
            t = timeit(
                {
                    "op": lambda: op(score_map, boxes, PART),
                    "circ": lambda: circ(score_map, boxes, PART),
                    "loop": lambda: loop_scores(score_map, boxes[:300]),
                },
                repeats=7,
            )
            rows.append([f"{size}x{size}", f"{t['op']:.2f}", f"{t['circ']:.2f}", f"{t['loop'] * k / 300:.0f}"])
        table(
            f"Time vs crop size (K = 10 000, [1, {L}, {H}, {W}] map), ms",
            ["crop", "composition_pool", "circular_pool", "per-crop loop (extrapolated from 300)"],
            rows,
            "The op reads a fixed number of table entries per crop, whatever its size.",
        )

        # 5. the same on one thread (less exposed to other jobs on a shared machine) ----------
        torch.set_num_threads(1)
        rows = []
        for h, w in ((32, 48), (256, 384)):
            m = torch.rand(1, L, h, w, generator=gen)
            boxes = random_boxes(10_000, h, w, gen)
            t = timeit({"op": lambda: op(m, boxes, PART), "circ": lambda: circ(m, boxes, PART), "mnet": mnet}, repeats=15)
            rows.append([f"{h}x{w}", f"{t['op']:.2f}", f"{t['circ']:.2f}", f"{t['mnet']:.1f}", f"{t['op'] / t['mnet']:.2f}"])
        torch.set_num_threads(THREADS)
        table(
            "One thread, K = 10 000, ms",
            ["map H x W", "composition_pool", "circular_pool", "MobileNetV2 256x384", "op / MobileNetV2"],
            rows,
        )

    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?", "?", "?")
    head = [
        "# Pooling op benchmark",
        "",
        f"`{Path(sys.argv[0]).name}`: torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"{THREADS} threads (one in the last table), {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        "(the machine is shared, so absolute times are noisy; every ratio is taken within one run). "
        f"Wall-clock medians; float32 map; boxes carry fractional coordinates; the op's CPU path: {kernel.describe().split(' (')[0]}; "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} (see the script).",
        "",
        f"Reference line: MobileNetV2 features forward on one 256x384 image, {THREADS} threads: "
        f"**{statistics.median(mnet_times):.1f} ms** (median over the run).",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(head + lines))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
