"""End-to-end cropping speed, memory and start-up (``make bench``), written to
``benchmarks/results/crop.md``.

1. One 640x427 JPEG to JSON with the default model on 2 threads, split into decode /
   preprocess / forward (ONNX Runtime int8 and float, and torch) / search (with and without face detection),
   for one aspect and for five; next to libvips' attention smartcrop and smartcrop.py on the
   same bytes in the same run.
2. One photo to a crop box on one thread each, decode included, over up to 40 real photos of
   about 768 px: asm (int8 and float ONNX Runtime, and torch) next to libvips attention.
3. The peak memory of cropping photos of growing size (each in a fresh process), against the
   decoded image size.
4. Start-up: ``import asm``, ``asm --help``, ``asm crop one.jpg`` in fresh processes.
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
    from asm.cropper import Cropper
    from asm.io import load_image
    from asm.options import CropOptions
    from asm.search.faces import detect_faces
    from asm.search.search import search

    cropper = Cropper.from_pretrained()  # the default: the int8 twin on ONNX Runtime
    float_cropper = Cropper.from_pretrained(runtime="onnx")
    torch_cropper = Cropper.from_pretrained(runtime="torch")
    rows = ["| step | 1 aspect (ms) | 5 aspects (ms) |", "|---|---:|---:|"]
    totals = {}
    parts: dict[str, list[float]] = {}
    for label, aspects in (("1", ["16:9"]), ("5", FIVE)):
        opts = CropOptions.parse(aspects)
        rgb = load_image(data)
        prepared = cropper.prepare(rgb)
        scorer = cropper.scorer(cropper.score_maps([prepared])[0])
        parts.setdefault("decode (asm.io.load_image)", []).append(_median_ms(lambda: load_image(data)))
        parts.setdefault("preprocess (copy, resize, normalise)", []).append(_median_ms(lambda: cropper.prepare(rgb)))
        parts.setdefault(f"forward (score map), int8 twin, ONNX Runtime {_ort_version()} (default)", []).append(
            _median_ms(lambda: cropper.score_maps([prepared])))
        parts.setdefault("forward (score map), float twin, ONNX Runtime", []).append(_median_ms(lambda: float_cropper.score_maps([prepared])))
        parts.setdefault("forward (score map), torch eager, for comparison", []).append(
            _median_ms(lambda: torch_cropper.score_maps([prepared])))
        def search_detecting() -> object:  # a Prepared keeps its faces: detect them anew, as a new image would
            prepared.faces = None
            return search(scorer, prepared, opts)

        parts.setdefault("search (2 stages, all aspects, faces on)", []).append(_median_ms(search_detecting))
        no_faces = CropOptions.parse(aspects, faces=False)
        parts.setdefault("  search without face detection (faces off)", []).append(
            _median_ms(lambda: search(scorer, prepared, no_faces)))
        parts.setdefault("  of which face detection (asm.search.faces, YuNet)", []).append(_median_ms(lambda: detect_faces(prepared.preview, size=(prepared.width, prepared.height))))
        totals[label] = _median_ms(lambda: json.dumps(cropper.crop(data, aspect=aspects).to_json()))
    for name, (one, five) in parts.items():
        rows.append(f"| {name} | {one:.1f} | {five:.1f} |")
    rows.append(f"| **total, bytes to JSON (default: int8 twin)** | **{totals['1']:.1f}** | **{totals['5']:.1f}** |")
    rows.append("")
    rows.append(f"Five aspects cost **{totals['5'] / totals['1']:.2f}x** one aspect (goal <= 1.2x): one forward pass serves all.")

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


def _model_line() -> str:
    from asm.cropper import Cropper

    c = Cropper.from_pretrained()
    return f"{c.model.config.get('backbone')}, {c.model.config.get('pattern')}, input {c.preset.short_side} px short side"


def _ort_version() -> str:
    try:
        import onnxruntime

        return onnxruntime.__version__
    except ImportError:
        return "(not installed)"


def _photo_set(n: int = 40, side: int = 768) -> list[bytes]:
    """Up to ``n`` real photos (the shared photo folders), long side ``side``, as JPEG bytes."""
    shared = ROOT.parent / "shared" / "data" / "photos"
    files: list[Path] = []
    if shared.is_dir():
        folders = sorted(p for p in shared.iterdir() if p.is_dir())
        per = max(1, -(-n // max(1, len(folders))))
        for folder in folders:
            files += sorted(folder.glob("*.jpg"))[:per]
    out = []
    for f in files[:n]:
        img = Image.open(f).convert("RGB")
        scale = side / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out or [_photo_bytes()]


def one_thread_table() -> list[str]:
    """Photo bytes -> one 16:9 crop box, one thread each, decode included, over a photo set."""
    from asm.cropper import Cropper

    photos = _photo_set()
    torch.set_num_threads(1)
    fast = Cropper.from_pretrained()  # the int8 twin on ONNX Runtime, one thread (it takes torch's count)
    exact = Cropper.from_pretrained(runtime="onnx")
    slow = Cropper.from_pretrained(runtime="torch")
    methods = {"asm (default: int8 twin, ONNX Runtime)": lambda d: fast.crop(d, aspect="16:9").crops[0].box,
               "asm, float twin, ONNX Runtime": lambda d: exact.crop(d, aspect="16:9").crops[0].box,
               "asm, torch eager": lambda d: slow.crop(d, aspect="16:9").crops[0].box,
               "asm (default), five aspects": lambda d: fast.crop(d, aspect=FIVE),
               "asm (default), faces off": lambda d: fast.crop(d, aspect="16:9", faces=False).crops[0].box}
    try:
        import pyvips

        pyvips.concurrency_set(1)

        def vips(data: bytes):
            im = pyvips.Image.new_from_buffer(data, "")
            w, h = (im.width, round(im.width * 9 / 16)) if im.width * 9 / 16 <= im.height else (round(im.height * 16 / 9), im.height)
            return im.smartcrop(w, h, interesting="attention").write_to_memory()

        methods[f"libvips {pyvips.version(0)}.{pyvips.version(1)} smartcrop attention"] = vips
    except Exception:  # optional peer
        pass
    per_photo: dict[str, list[float]] = {name: [] for name in methods}
    for data in photos:  # every method on the same photo in turn, so load changes hit all alike
        for name, fn in methods.items():
            per_photo[name].append(_median_ms(lambda: fn(data), repeat=5))
    torch.set_num_threads(2)
    ms = {name: statistics.median(v) for name, v in per_photo.items()}
    vips_name = next((n for n in ms if n.startswith("libvips")), None)
    rows = ["", f"### One photo to a crop box, one thread each, decode included ({len(photos)} photos, long side 768 px)", "",
            "| cropper | ms per photo (median) | vs libvips attention |", "|---|---:|---:|"]
    for name, t in ms.items():
        rows.append(f"| {name} | {t:.1f} | " + (f"{t / ms[vips_name]:.2f}x" if vips_name else "n/a") + " |")
    rows += ["", f"Each photo: median of 5 runs per method, methods in turn; the table shows the median over photos. "
             f"Five aspects cost {ms['asm (default), five aspects'] / ms['asm (default: int8 twin, ONNX Runtime)']:.2f}x one."]
    return rows


_STARTUP_CHILD = r"""
import sys, time
t = time.perf_counter()
exec(sys.argv[1])
took = time.perf_counter() - t
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(f"RESULT {took:.3f} {peak / 1024:.0f}")
"""


def startup_table(photo: Path) -> list[str]:
    """Wall time and peak RSS of fresh processes: import, help, one crop from the shell."""
    cases = {
        "`import asm`": "import asm",
        "`asm --help`": "from asm.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        "`asm crop --help`": "from asm.cli import main\ntry:\n    main(['crop', '--help'])\nexcept SystemExit:\n    pass",
        "`asm crop one.jpg --json` (ONNX Runtime)": f"from asm.cli import main\nmain(['crop', {str(photo)!r}, '--json'])",
        "`asm crop one.jpg --json --runtime torch`": f"from asm.cli import main\nmain(['crop', {str(photo)!r}, '--json', '--runtime', 'torch'])",
    }
    rows = ["", "### Start-up (fresh process each, warm file cache)", "",
            "| command | wall s (process) | of which in Python after start | peak RSS (MB) |", "|---|---:|---:|---:|"]
    for name, code in cases.items():
        walls, inner, peak = [], [], 0
        for _ in range(3):
            t = time.perf_counter()
            run = subprocess.run([sys.executable, "-c", _STARTUP_CHILD, code], capture_output=True, text=True, cwd=ROOT)
            walls.append(time.perf_counter() - t)
            line = next((x for x in run.stdout.splitlines() if x.startswith("RESULT")), None)
            if run.returncode != 0 or line is None:
                rows.append(f"| {name} | failed: {(run.stderr.strip().splitlines() or ['?'])[-1][:80]} | | |")
                break
            inner.append(float(line.split()[1]))
            peak = max(peak, int(line.split()[2]))
        else:
            rows.append(f"| {name} | {statistics.median(walls):.2f} | {statistics.median(inner):.2f} | {peak} |")
    rows += ["", "Medians of 3 runs; the first crop of a new model also exports its ONNX twin once (to ~/.cache/asm), "
             "which these runs do not include (the benchmark crops first)."]
    return rows


_MEM_CHILD = r"""
import io, sys, json
import numpy as np
import torch; torch.set_num_threads(2)
from PIL import Image
from asm.cropper import Cropper
def status(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key + ":")) / 1024
c = Cropper.from_pretrained(max_pixels=10**9)
warm = io.BytesIO(); Image.fromarray(np.zeros((600, 800, 3), np.uint8)).save(warm, "JPEG")
c.crop(warm.getvalue(), aspect="1:1")  # the network's own buffers are not the photo's cost
open("/proc/self/clear_refs", "w").write("5")  # peak RSS (VmHWM) starts again from here
base = status("VmRSS")
c.crop(sys.argv[1], aspect="1:1")
print(json.dumps({"base_mb": base, "peak_mb": status("VmHWM"), "runtime": c.runtime}))
"""


def memory_table() -> list[str]:
    import tempfile

    rows = ["", "### Peak memory, one photo to JSON", "",
            "| photo | decoded RGB (MB) | RSS before (MB) | peak RSS (MB) | growth (MB) | growth / decoded |",
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
            base, peak = r["base_mb"], r["peak_mb"]
            decoded = w * h * 3 / 2**20
            rows.append(f"| {w}x{h} | {decoded:.0f} | {base:.0f} | {peak:.0f} | {peak - base:.0f} | {(peak - base) / decoded:.2f}x |")
    rows.append("")
    rows.append("A fresh process per photo loads the model (ONNX Runtime), crops a small JPEG once, then the photo's JPEG "
                "file once, JSON only; growth = peak RSS (VmHWM, reset before the crop through /proc/self/clear_refs) "
                "minus RSS before it. Only the network needs pixels: a JPEG is decoded in the DCT domain at the "
                "smallest scale that keeps 4x the network input (an 8000x6000 photo at 1/4), and the full-size "
                "pixels are never decoded when no crop is cut. Goal: growth <= 0.5x the decoded size.")
    return rows


def main() -> None:
    torch.set_num_threads(2)
    data = _photo_bytes()
    lines = ["# Cropping speed and memory", "",
             f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; torch {torch.__version__}, "
             f"ONNX Runtime {_ort_version()}. Default model ({_model_line()}). "
             "All figures and ratios from one run of this script.", "",
             "### One 640x427 JPEG, 2 threads (medians of 15 runs)", ""]
    from asm.models import DEFAULT_MODEL_PATH
    from asm.runtime import load_onnx_net

    load_onnx_net(DEFAULT_MODEL_PATH)  # the ONNX twin exists before anything is timed
    lines += speed_table(data)
    lines += one_thread_table()
    lines += memory_table()
    with __import__("tempfile").TemporaryDirectory() as tmp:
        photo = Path(tmp) / "one.jpg"
        photo.write_bytes(data)
        lines += startup_table(photo)
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
