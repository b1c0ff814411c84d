"""Thumbor's smart crop with asm's detector against Thumbor's own face + feature detectors
(``make bench``), written to ``benchmarks/results/thumbor.md``.

One real Thumbor process per setting (``deploy/thumbor/thumbor.conf``, no storage, so every
request runs the detectors), the same photos (``examples/*.jpg``) and sizes, ``CONCURRENCY``
clients in a closed loop on loopback for ``--seconds``; requests/s and latency percentiles.
The plain resize (no ``/smart/``) is the floor.

    python benchmarks/bench_thumbor.py [--seconds 15] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "thumbor.md"
EXAMPLES = ROOT / "examples"
SIZES = ((300, 200), (200, 300), (100, 100))
THUMBOR_DETECTORS = ["thumbor.detectors.face_detector", "thumbor.detectors.feature_detector"]


def run_load(urls: list[str], seconds: float, concurrency: int) -> dict[str, float]:
    """Closed loop: ``concurrency`` clients, each asking the next URL as soon as it has an
    answer, for ``seconds``; requests/s, latency p50/p99 (ms) and the non-200 count."""
    from asm.integrations.thumbor_process import get

    for u in urls:  # warm-up: every URL once (model load, first decode)
        get(u, timeout=120)
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(k: int) -> None:
        i = k
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            status, _ = get(urls[i % len(urls)], timeout=120)
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                failures[0] += status != 200
            i += concurrency

    t0 = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, range(concurrency)))
    elapsed = time.monotonic() - t0
    ms = np.array(latencies) * 1000
    return {"rps": len(ms) / elapsed, "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "n": len(ms), "failed": failures[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    import cv2
    import thumbor

    from asm.integrations.thumbor_process import CONF, ThumborProcess

    photos = sorted(p.name for p in EXAMPLES.glob("*.jpg"))
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        own_conf = Path(tmp) / "thumbor-own.conf"  # the same settings, Thumbor's own detectors
        own_conf.write_text(f"exec(open({str(CONF)!r}).read())\nDETECTORS = {THUMBOR_DETECTORS!r}\n")
        settings = [("asm (asm.integrations.thumbor)", CONF, "smart/"),
                    ("Thumbor face + feature detectors", own_conf, "smart/"),
                    ("no smart crop (plain resize, floor)", CONF, "")]
        for name, conf, smart in settings:
            with ThumborProcess(Path(tmp) / name.split()[0], EXAMPLES, unsafe=True, conf=conf) as server:
                urls = [f"{server.base}/unsafe/{w}x{h}/{smart}{p}" for p in photos for w, h in SIZES]
                r = run_load(urls, args.seconds, args.concurrency)
                print(f"{name}: {r['rps']:.1f} req/s, p50 {r['p50']:.0f} ms, p99 {r['p99']:.0f} ms ({r['n']} requests)", flush=True)
                rows.append((name, r))
    lines = ["# Thumbor: asm's detector vs Thumbor's own", "",
             f"Machine: {os.cpu_count()} CPUs ({platform.machine()}), **busy**: shared with other engineers' jobs and a "
             f"training run (load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start), so the numbers are "
             "rough and only comparable within this table (the settings ran one after another in one run).",
             f"Thumbor {thumbor.__version__}, one process (Tornado; asm's crops on one worker thread), OpenCV {cv2.__version__}, "
             f"Python {platform.python_version()}; no storage and no result storage, so every request decodes the photo "
             "and runs the detectors.", "",
             f"Load: {args.concurrency} clients in a closed loop on loopback for {args.seconds:g} s per setting, cycling "
             f"through {len(photos)} photos (examples/, 533-800 px) x {len(SIZES)} sizes "
             f"({', '.join(f'{w}x{h}' for w, h in SIZES)}), after one warm-up pass.", "",
             "| detectors | requests/s | p50 (ms) | p99 (ms) | requests | not 200 |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['rps']:.1f} | {r['p50']:.0f} | {r['p99']:.0f} | {r['n']} | {r['failed']} |")
    lines += ["", "With Thumbor's default file storage the detectors run once per photo (their points are stored), so "
              "after the first request of a photo every setting costs what the plain resize costs.", "",
              f"`python benchmarks/bench_thumbor.py --seconds {args.seconds:g} --concurrency {args.concurrency}`"]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
