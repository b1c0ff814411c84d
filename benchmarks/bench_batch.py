"""``asm batch`` throughput on this machine (``make bench``), written to ``benchmarks/results/batch.md``.

The same folder of JPEG photos (640x427, the size of the crop benchmark) cropped with one
aspect by 1 worker (all cores' torch threads) and by 2 workers (one thread each), local
engine, alternating runs. Images/s are counted in the steady state (from the first record
written to the last), so process start-up and model loading are reported apart.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench_crop.py: idle threads sleep

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "batch.md"
IMAGES = int(os.environ.get("BENCH_BATCH_IMAGES", 96))
ROUNDS = 2

from asm.batch import Progress, run_batch  # noqa: E402
from asm.batch.local import cpu_count  # noqa: E402


def _photos(folder: Path, n: int) -> None:
    """``n`` photos: the shared ones if present, else synthetic gradients with a subject."""
    shared = ROOT.parent / "shared" / "data" / "photos"
    sources = sorted(shared.rglob("*.jpg"))[:n] if shared.is_dir() else []
    rng = np.random.default_rng(0)
    for i in range(n):
        if sources:
            img = Image.open(sources[i % len(sources)]).convert("RGB").resize((640, 427))
        else:
            y, x = np.mgrid[0:427, 0:640].astype(np.float32)
            cx, cy = rng.uniform(100, 540), rng.uniform(80, 340)
            disc = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 5000)
            img = Image.fromarray(np.clip(np.stack([x / 640, y / 427, disc], 2) * 220 + rng.normal(0, 8, (427, 640, 3)), 0, 255).astype(np.uint8))
        img.save(folder / f"p{i:04d}.jpg", quality=90)


class _Clock(Progress):
    """Progress that remembers when records arrived (no output)."""

    def __init__(self, total: int) -> None:
        super().__init__(total, stream=open(os.devnull, "w"), interval=1e9, bar=False)
        self.times: list[tuple[float, int]] = []

    def update(self, records) -> None:
        super().update(records)
        self.times.append((time.monotonic(), self.count))


def _run(folder: Path, workers: int | None, engine: str = "local") -> tuple[float, float]:
    """``(steady images/s, seconds to the first record)``."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = _Clock(IMAGES)
        start = time.monotonic()
        summary = run_batch([str(folder)], Path(tmp) / "r.jsonl", workers=workers, progress=clock, engine=engine)
        assert summary.done == IMAGES, summary
    (t0, n0), (t1, n1) = clock.times[0], clock.times[-1]
    return (n1 - n0) / (t1 - t0), t0 - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _photos(folder, IMAGES)
        runs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
        for _ in range(ROUNDS):
            for workers in (1, 2):
                runs[workers].append(_run(folder, workers))
                print(f"workers {workers}: {runs[workers][-1][0]:.2f} images/s", flush=True)
        try:  # the same job on a local Ray runtime (optional extra)
            import ray  # noqa: F401

            ray_run = _run(folder, None, engine="ray")
        except ImportError:
            ray_run = None
    rate = {w: statistics.median(r[0] for r in rs) for w, rs in runs.items()}
    startup = {w: statistics.median(r[1] for r in rs) for w, rs in runs.items()}
    busy = os.environ.get("BENCH_NOTE", "")
    lines = [
        "# asm batch throughput",
        "",
        f"`python benchmarks/bench_batch.py` ({platform.machine()}, {cpu_count()} cores, threads per worker = "
        f"cores / workers). {IMAGES} JPEG photos 640x427, one aspect (free), default model, local engine, "
        f"{ROUNDS} alternating rounds, median. Steady state: from the first record written to the last.",
        "",
        "| workers | images/s (steady) | vs 1 worker | start-up to the first record (s) |",
        "|---:|---:|---:|---:|",
    ]
    for w in (1, 2):
        lines.append(f"| {w} | {rate[w]:.2f} | {rate[w] / rate[1]:.2f}x | {startup[w]:.1f} |")
    if ray_run is not None:
        lines.append(f"| Ray Data, local runtime (actors: the engine's default) | {ray_run[0]:.2f} | {ray_run[0] / rate[1]:.2f}x | "
                     f"{ray_run[1]:.1f} |")
    lines += ["", "Per round (images/s): " + "; ".join(f"{w} worker(s): " + ", ".join(f"{r[0]:.2f}" for r in runs[w]) for w in (1, 2))]
    if busy:
        lines += ["", busy]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
