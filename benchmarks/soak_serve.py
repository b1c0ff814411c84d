"""Soak run against TorchServe (a benchmark, not a test): N minutes at concurrency C, written
to ``benchmarks/results/soak.md``.

Per minute: requests, req/s, p50 / p99 latency and errors (plain requests, never sent again,
so every failure counts), and the workers' and the frontend's RSS (sampled every 5 s from
/proc). After the warm-up, worker RSS should stay flat (issue 25: at most 5 % growth), p99
stable and errors 0.

It uses the server ``make serve`` started (found through ``--build``, default build/serve)
or, when none runs, starts one as ``make serve`` would (the shipped model-config.yaml, its
archive built in a temp dir, stopped at the end).

    .venv/bin/python benchmarks/soak_serve.py [--minutes 10] [--concurrency 8] [--warmup 60] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.bench_serve import Server, load_images, summarize  # noqa: E402
from handler.launcher import TorchServe  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "soak.md"
SAMPLE_S = 5.0
GOAL_RSS_GROWTH = 0.05  # issue 25


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def roles(srv: TorchServe) -> tuple[list[int], list[int]]:
    """``(worker pids, frontend pids)`` of the server."""
    workers, frontend = [], []
    for pid in srv.pids():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"model_service_worker" in cmd:
            workers.append(pid)
        elif cmd.split(b"\0")[0].endswith(b"java"):
            frontend.append(pid)
    return workers, frontend


def soak(srv: TorchServe, images: list[bytes], seconds: float, concurrency: int) -> tuple[list, list]:
    """``(requests, samples)``: ``(end time, latency s, outcome)`` per request (outcome "200",
    another status or an error's name) and ``(time, worker RSS MB, worker pids, frontend RSS MB)``
    every :data:`SAMPLE_S` seconds; times from the start."""
    start = time.monotonic()
    end = start + seconds
    requests: list[tuple[float, float, str]] = []
    samples: list[tuple[float, float, tuple[int, ...], float]] = []
    lock, stop = threading.Lock(), threading.Event()
    key = srv.key()

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.ports.inference, timeout=120)
        n = i
        while time.monotonic() < end:
            t = time.monotonic()
            try:
                conn.request("POST", "/predictions/asm", body=images[n % len(images)],
                             headers={"Content-Type": "image/jpeg", "Authorization": f"Bearer {key}"})
                resp = conn.getresponse()
                resp.read()
                outcome = str(resp.status)
            except (OSError, http.client.HTTPException) as e:
                outcome = type(e).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", srv.ports.inference, timeout=120)
            with lock:
                requests.append((time.monotonic() - start, time.monotonic() - t, outcome))
            n += concurrency
        conn.close()

    def sampler() -> None:
        while not stop.is_set():
            workers, frontend = roles(srv)
            samples.append((time.monotonic() - start, sum(map(rss_mb, workers)), tuple(workers), sum(map(rss_mb, frontend))))
            stop.wait(SAMPLE_S)

    watch = threading.Thread(target=sampler, daemon=True)
    watch.start()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, range(concurrency)))
    stop.set()
    watch.join()
    return requests, samples


def report(requests: list, samples: list, seconds: float, warmup: float, concurrency: int, setup: str, note: str) -> str:
    """The markdown table and verdict."""
    rows = ["| minute | requests | req/s | p50 ms | p99 ms | errors | worker RSS MB (end) | frontend RSS MB (end) |",
            "|---|---|---|---|---|---|---|---|"]
    minutes = int(-(-seconds // 60))
    p99s = []
    for m in range(minutes):
        lo, hi = 60 * m, min(60 * (m + 1), seconds)
        last = m == minutes - 1  # also the requests that were in flight at the end
        these = [r for r in requests if lo <= r[0] and (last or r[0] < hi)]
        ok = [lat for _, lat, outcome in these if outcome == "200"]
        errors = len(these) - len(ok)
        s = summarize(ok, hi - lo, errors)
        at = [x for x in samples if x[0] < hi]
        w, f = (at[-1][1], at[-1][3]) if at else (float("nan"), float("nan"))
        tag = " (warm-up)" if hi <= warmup else ""
        if hi > warmup:
            p99s.append(s["p99"])
        rows.append(f"| {m + 1}{tag} | {len(these)} | {s['rps']:.1f} | {s['p50']:.0f} | {s['p99']:.0f} | {errors} | {w:.0f} | {f:.0f} |")
    after = [x for x in samples if x[0] >= warmup]
    errors = sum(1 for r in requests if r[2] != "200")
    kinds = sorted({r[2] for r in requests if r[2] != "200"})
    lines = [f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: {seconds / 60:g} min at concurrency "
             f"{concurrency}, {setup}. {note}", "", *rows, ""]
    if after:
        first, last = after[0], after[-1]
        growth = (last[1] - first[1]) / first[1] if first[1] else float("nan")
        restarted = set(first[2]) != set(last[2])
        lines.append(f"* Worker RSS after the {warmup:g} s warm-up: {first[1]:.0f} MB -> {last[1]:.0f} MB "
                     f"({100 * growth:+.1f} %; goal <= {100 * GOAL_RSS_GROWTH:.0f} %)"
                     + (" -- a worker was restarted during the run, so the sum compares different processes" if restarted else "")
                     + f"; highest {max(x[1] for x in after):.0f} MB.")
    if p99s:
        lines.append(f"* p99 per minute after warm-up: {min(p99s):.0f}-{max(p99s):.0f} ms.")
    lines.append(f"* Errors: {errors} of {len(requests)} requests" + (f" ({', '.join(kinds)})" if kinds else "") + ".")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--warmup", type=float, default=60, help="seconds left out of the RSS growth and the p99 range")
    ap.add_argument("--build", type=Path, default=ROOT / "build" / "serve", help="make serve's build folder")
    ap.add_argument("--note", default="", help="a sentence for the table (the machine, its load)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    images, what = load_images()
    with ExitStack() as stack:
        srv = TorchServe.from_state(args.build)
        if srv is not None and srv.pids():
            setup = f"the running `make serve` (127.0.0.1:{srv.ports.inference})"
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="asm-soak-")))
            print("soak: no make serve running; starting TorchServe as make serve would...", flush=True)
            srv = stack.enter_context(Server(tmp, {}))
            setup = "TorchServe started as `make serve` would (shipped model-config.yaml)"
        workers, _ = roles(srv)
        setup += f", {len(workers)} workers, {what}"
        print(f"soak: {args.minutes:g} min at concurrency {args.concurrency} against 127.0.0.1:{srv.ports.inference}", flush=True)
        requests, samples = soak(srv, images, 60 * args.minutes, args.concurrency)
    text = report(requests, samples, 60 * args.minutes, args.warmup, args.concurrency, setup, args.note)
    print(text)
    if not args.no_write:
        RESULTS.write_text("# Soak: TorchServe under steady load (benchmarks/soak_serve.py)\n\n" + text)
        print(f"written to {os.path.relpath(RESULTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
