"""Check ``torch.ops.asm.composition_pool`` / ``circular_pool`` on CUDA against the CPU, and time them.

Run: ``python benchmarks/cuda_check.py`` on a machine with a CUDA GPU. Without CUDA it says
so and exits with status 0. Checks, for both ops and every pattern:

* forward: CUDA scores == CPU scores (float32 and float64 maps);
* backward: the CUDA gradient of the map == the CPU gradient;
* ``torch.autograd.gradcheck`` / ``gradgradcheck`` on small float64 inputs, on CUDA;

then times both ops on CUDA and on the CPU (K = 1 000 and 100 000 boxes on a
``[1, 12, 256, 384]`` map) next to ``torchvision.ops.ps_roi_align`` (sampling ratio 2, the map
expanded to 36 channels). Exits with status 1 if a check fails. ``--device cpu`` runs the
same script against the CPU itself (a dry run of the script, where there is no GPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the other benchmarks (see bench_pool.py)

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asm.ops.pool  # noqa: E402,F401  (registers torch.ops.asm)
from asm.patterns import DEFAULT_PATTERN, PATTERN_NAMES, get_pattern  # noqa: E402

OPS = {"composition_pool": torch.ops.asm.composition_pool, "circular_pool": torch.ops.asm.circular_pool}


def random_boxes(k: int, H: int, W: int, gen: torch.Generator, dtype=torch.float32) -> torch.Tensor:
    wh = 0.5 + torch.rand(k, 2, generator=gen, dtype=torch.float64) * (torch.tensor([W, H]) - 0.5)
    lo = torch.rand(k, 2, generator=gen, dtype=torch.float64) * (torch.tensor([W, H]) - wh)
    batch = torch.randint(0, 2, (k, 1), generator=gen).double()
    return torch.cat([batch, lo, lo + wh], 1).to(dtype)


def check(failures: list[str], dev: str) -> None:
    gen = torch.Generator().manual_seed(0)
    for name in PATTERN_NAMES:
        part = get_pattern(name).partition
        L = int(part.max()) + 1
        for dtype in (torch.float32, torch.float64):
            m = torch.rand(2, L, 40, 56, generator=gen, dtype=torch.float64).to(dtype)
            boxes = random_boxes(300, 40, 56, gen, dtype)
            for op_name, op in OPS.items():
                want = op(m, boxes, part)
                got = op(m.to(dev), boxes.to(dev), part.to(dev)).cpu()
                tol = 1e-5 if dtype == torch.float32 else 1e-10
                err = float((got - want).abs().max())
                if not err <= tol * max(1.0, float(want.abs().max())):
                    failures.append(f"forward {op_name} {name} {dtype}: max difference {err:.3g}")
                # backward
                mc, mg = m.detach().clone().requires_grad_(), m.detach().to(dev).clone().requires_grad_()
                w = torch.rand(boxes.shape[0], generator=gen, dtype=torch.float64).to(dtype)
                (op(mc, boxes, part) * w).sum().backward()
                (op(mg, boxes.to(dev), part.to(dev)) * w.to(dev)).sum().backward()
                gerr = float((mg.grad.cpu() - mc.grad).abs().max())
                if not gerr <= tol * max(1.0, float(mc.grad.abs().max())):
                    failures.append(f"backward {op_name} {name} {dtype}: max difference {gerr:.3g}")
        print(f"  {name}: forward and backward agree" if not failures else f"  {name}: {len(failures)} failure(s) so far", flush=True)
    part = get_pattern(DEFAULT_PATTERN).partition.to(dev)
    m = torch.rand(1, int(part.max()) + 1, 6, 7, dtype=torch.float64, device=dev, requires_grad=True)
    boxes = random_boxes(5, 6, 7, gen, torch.float64).to(dev)
    boxes[:, 0] = 0
    for op_name, op in OPS.items():
        try:
            # CUDA's atomic index_add sums in a varying order: a float64 backward repeats to ~1e-16,
            # not bit for bit (seen on an H200), so allow that much non-determinism
            ok = torch.autograd.gradcheck(lambda x: op(x, boxes, part), (m,), nondet_tol=1e-12)
            ok &= torch.autograd.gradgradcheck(lambda x: op(x, boxes, part), (m,), fast_mode=True, nondet_tol=1e-12)
        except Exception as e:  # gradcheck raises with the details
            failures.append(f"gradcheck {op_name}: {str(e)[:300]}")
            continue
        if not ok:
            failures.append(f"gradcheck {op_name} failed")
    print(f"  gradcheck / gradgradcheck on {dev}: " + ("ok" if not any("gradcheck" in f for f in failures) else "FAILED"))


def _time(fn, sync: bool, repeats: int = 20) -> float:
    fn()
    if sync:
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def timing(dev: str) -> list[str]:
    import torchvision

    gen = torch.Generator().manual_seed(1)
    part = get_pattern(DEFAULT_PATTERN).partition
    L = int(part.max()) + 1
    m = torch.rand(1, L, 256, 384, generator=gen)
    rows = ["| K | device | composition_pool ms | circular_pool ms | ps_roi_align s=2 ms (map already expanded) |",
            "|---|---|---:|---:|---:|"]
    for k in (1_000, 100_000):
        boxes = random_boxes(k, 256, 384, gen)
        boxes[:, 0] = 0
        for where in dict.fromkeys(("cpu", dev)):
            mm, bb, pp = m.to(where), boxes.to(where), part.to(where)
            expanded = mm.index_select(1, pp.flatten())
            with torch.inference_mode():
                sync, repeats = where == "cuda", 5 if where == "cpu" and k > 1000 else 20
                t = {name: _time(lambda op=op: op(mm, bb, pp), sync, repeats) for name, op in OPS.items()}
                ps = _time(lambda: torchvision.ops.ps_roi_align(expanded, bb, tuple(pp.shape), 1.0, 2), sync, repeats)
            rows.append(f"| {k:,} | {where} | {t['composition_pool']:.2f} | {t['circular_pool']:.2f} | {ps:.2f} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="device to check against the CPU (default cuda; cpu: a dry run)")
    dev = parser.parse_args().device
    if dev.startswith("cuda") and not torch.cuda.is_available():
        print("cuda_check: no CUDA device here (torch.cuda.is_available() is False); nothing to check.")
        return 0
    name = torch.cuda.get_device_name(0) if dev.startswith("cuda") else dev
    print(f"cuda_check: {name}, torch {torch.__version__}, CPU threads {torch.get_num_threads()}")
    failures: list[str] = []
    check(failures, dev)
    for line in timing(dev):
        print(line)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"all checks on {dev} passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
