"""End-to-end cropping speed and memory (``make bench``), written to ``benchmarks/results/crop.md``.

One 640x427 JPEG to JSON with the default model on 2 threads, split into decode /
preprocess / forward / search, for one aspect and for five; next to libvips' attention
smartcrop and smartcrop.py on the same bytes in the same run. Then the peak memory of
cropping photos of growing size (each in a fresh process), against the decoded image size.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning
# threads make every op wait for a core (see benchmarks/results/pool.md)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "crop.md"
FIVE = ["9:16", "3:4", "1:1", "4:3", "16:9"]


def _photo_bytes() -> bytes:
    """A real 640x427 photo if the shared data are there, else a synthetic one."""
    shared = ROOT.parent / "shared" / "data" / "photos" / "github-budgie-backgrounds"
    files = sorted(shared.glob("*.jpg")) if shared.is_dir() else []
    if files:
        img = Image.open(files[1]).convert("RGB").resize((640, 427), Image.LANCZOS)
    else:
        rng = np.random.default_rng(0)
        img = Image.fromarray((rng.random((427, 640, 3)) * 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _median_ms(fn, repeat: int = 15) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def speed_table(data: bytes) -> list[str]:
    from asm.cropper import Cropper, CropOptions
    from asm.faces import detect_faces
    from asm.io import load_image

    cropper = Cropper.from_pretrained()
    rows = ["| step | 1 aspect (ms) | 5 aspects (ms) |", "|---|---:|---:|"]
    totals = {}
    parts: dict[str, list[float]] = {}
    for label, aspects in (("1", ["16:9"]), ("5", FIVE)):
        opts = CropOptions.parse(aspects)
        rgb = load_image(data)
        prepared = cropper.prepare(rgb)
        m = cropper.score_maps([prepared])[0]
        parts.setdefault("decode (asm.io.load_image)", []).append(_median_ms(lambda: load_image(data)))
        parts.setdefault("preprocess (copy, resize, normalise)", []).append(_median_ms(lambda: cropper.prepare(rgb)))
        parts.setdefault("forward (score map)", []).append(_median_ms(lambda: cropper.score_maps([prepared])))
        parts.setdefault("search (2 stages, all aspects, faces on)", []).append(_median_ms(lambda: cropper.search(prepared, m, opts)))
        parts.setdefault("  of which face detection (asm.faces, YuNet)", []).append(_median_ms(lambda: detect_faces(prepared.image)))
        totals[label] = _median_ms(lambda: json.dumps(cropper.crop(data, aspect=aspects).to_json()))
    for name, (one, five) in parts.items():
        rows.append(f"| {name} | {one:.1f} | {five:.1f} |")
    rows.append(f"| **total, bytes to JSON** | **{totals['1']:.1f}** | **{totals['5']:.1f}** |")
    rows.append("")
    rows.append(f"Five aspects cost **{totals['5'] / totals['1']:.2f}x** one aspect (goal <= 1.3x): one forward pass serves all.")

    peers = ["", "| cropper, one 16:9 crop of the same JPEG bytes | ms | vs asm |", "|---|---:|---:|",
             f"| asm (decode + forward + search) | {totals['1']:.1f} | 1.00x |"]
    try:
        import pyvips

        def vips():
            im = pyvips.Image.new_from_buffer(data, "")
            w, h = (im.width, round(im.width * 9 / 16)) if im.width * 9 / 16 <= im.height else (round(im.height * 16 / 9), im.height)
            im.smartcrop(w, h, interesting="attention").write_to_memory()

        t = _median_ms(vips)
        peers.append(f"| libvips {pyvips.version(0)}.{pyvips.version(1)} smartcrop attention | {t:.1f} | {totals['1'] / t:.2f}x |")
    except Exception as e:  # optional peer
        peers.append(f"| libvips attention | n/a ({type(e).__name__}) | |")
    try:
        import smartcrop

        sc = smartcrop.SmartCrop()

        def scpy():
            im = Image.open(io.BytesIO(data)).convert("RGB")
            sc.crop(im, 640, 360)

        t = _median_ms(scpy, repeat=5)
        peers.append(f"| smartcrop.py {getattr(smartcrop, '__version__', '')} | {t:.1f} | {totals['1'] / t:.2f}x |")
    except Exception as e:
        peers.append(f"| smartcrop.py | n/a ({type(e).__name__}) | |")
    return rows + peers


_MEM_CHILD = r"""
import resource, sys, json
import torch; torch.set_num_threads(2)
from asm.cropper import Cropper
c = Cropper.from_pretrained(max_pixels=10**9)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c.crop(sys.argv[1], aspect="1:1")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kb": base, "peak_kb": peak}))
"""


def memory_table() -> list[str]:
    import tempfile

    rows = ["", "| photo | decoded RGB (MB) | RSS before (MB) | peak RSS (MB) | growth (MB) | growth / decoded |",
            "|---|---:|---:|---:|---:|---:|"]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in ((640, 427), (2000, 1333), (4000, 3000), (8000, 6000)):
            path = Path(tmp) / f"{w}x{h}.jpg"
            small = (rng.random((h // 8, w // 8, 3)) * 255).astype(np.uint8)
            Image.fromarray(small).resize((w, h)).save(path, "JPEG", quality=85)
            run = subprocess.run([sys.executable, "-c", _MEM_CHILD, str(path)], capture_output=True, text=True, cwd=ROOT)
            if run.returncode != 0:
                rows.append(f"| {w}x{h} | failed: {run.stderr.strip().splitlines()[-1][:80]} | | | | |")
                continue
            r = json.loads(run.stdout.strip().splitlines()[-1])
            base, peak = r["base_kb"] / 1024, r["peak_kb"] / 1024
            decoded = w * h * 3 / 2**20
            rows.append(f"| {w}x{h} | {decoded:.0f} | {base:.0f} | {peak:.0f} | {peak - base:.0f} | {(peak - base) / decoded:.1f}x |")
    rows.append("")
    rows.append("A fresh process per photo loads the model, then crops the JPEG file once; growth = peak RSS minus RSS "
                "before the crop. The network sees a resized copy; what grows with the photo is its decoding: PIL's "
                "decoded image (4 bytes per pixel) and the RGB array made from it exist together for a moment.")
    return rows


def main() -> None:
    torch.set_num_threads(2)
    data = _photo_bytes()
    lines = ["# Cropping speed and memory", "",
             f"Machine: {torch.get_num_threads()} threads, torch {torch.__version__}, CPU. One 640x427 JPEG, default model "
             "(MobileNetV2, cross_rectangle, input 256 px short side). Medians of 15 runs, all in one run of this script.", ""]
    lines += speed_table(data)
    lines += memory_table()
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
