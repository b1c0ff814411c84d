"""The int8 twin against the float network (``make bench``), written to
``benchmarks/results/int8.md``.

1. Speed: the network's forward pass alone on ONNX Runtime, float twin vs int8 twin (and
   eager torch), on the inputs of up to 40 real photos as the cropper prepares them, on 1 and
   2 threads; medians, all in one run.
2. Quality on validation (needs ``../shared``): eye fixations kept by the top-1 crop on OSIE
   1401-1500 at six aspects (faces on, the default, and off), the border-free checks, and how
   many crops moved, float vs int8.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_crop.py

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results" / "int8.md"
ASPECTS = ["1:1", "4:5", "2:3", "9:16", "3:2", "16:9"]


def speed_table() -> list[str]:
    from bench_crop import _median_ms, _photo_set

    from asm.cropper import Cropper
    from asm.models import DEFAULT_MODEL_PATH, asm_net
    from asm.runtime import load_onnx_net

    prepare = Cropper.from_pretrained(runtime="onnx").prepare
    inputs = [prepare(data).input for data in _photo_set()]
    eager = asm_net(weights=DEFAULT_MODEL_PATH).eval()
    rows = ["| threads | float ONNX (ms) | int8 ONNX (ms) | int8 speed-up | eager torch (ms) |", "|---:|---:|---:|---:|---:|"]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        nets = {"float": load_onnx_net(DEFAULT_MODEL_PATH, threads=threads),
                "int8": load_onnx_net(DEFAULT_MODEL_PATH, threads=threads, precision="int8")}
        ms: dict[str, list[float]] = {"float": [], "int8": [], "torch": []}
        with torch.inference_mode():
            for x in inputs:  # each input through every runtime in turn, so load changes hit all alike
                for name, net in nets.items():
                    ms[name].append(_median_ms(lambda: net(x), repeat=7))
                ms["torch"].append(_median_ms(lambda: eager(torch.from_numpy(x)), repeat=3))
        f, q, t = (statistics.median(ms[k]) for k in ("float", "int8", "torch"))
        rows.append(f"| {threads} | {f:.1f} | {q:.1f} | **{f / q:.2f}x** | {t:.1f} |")
    torch.set_num_threads(2)
    shapes = sorted({tuple(x.shape[-2:]) for x in inputs})
    rows += ["", f"{len(inputs)} real photos (long side 768 px) prepared as the cropper prepares them (inputs "
             f"{', '.join(f'{h}x{w}' for h, w in shapes)}); per input the median of 7 runs, the table shows the median over inputs."]
    return rows


def quality_table() -> list[str]:
    from asm.cropper import Cropper
    from asm.data.fixations import OSIE
    from asm.evaluation import peers as peer_mod
    from asm.evaluation.border import border_bias, photo_vs_cut, validation_photos
    from asm.geometry import fixations_kept
    from asm.evaluation.report import _load
    from asm.options import CropOptions

    try:
        osie = OSIE(split="val")
        photos = validation_photos()
    except (FileNotFoundError, ValueError) as e:
        return [f"Quality: skipped ({str(e)[:100]})."]
    no_peers = {p: (False, "not measured here") for p in peer_mod.PEERS}
    images = [(osie[i], _load(osie[i].path)) for i in range(len(osie))]
    results, boxes = {}, {}
    for runtime in ("onnx", "int8"):
        cropper = Cropper.from_pretrained(runtime=runtime)
        analyses = [(item, cropper.analyse(rgb)) for item, rgb in images]
        row = {}
        for faces in (True, False):
            options = CropOptions.parse(ASPECTS, faces=faces)
            picked = [{c.aspect: c.box for c in a.crops(options).crops} for _, a in analyses]
            kept = np.array([[fixations_kept(p[asp], item.points) for asp in ASPECTS] for (item, _), p in zip(analyses, picked)])
            row[faces] = kept.mean(0)
            boxes[(runtime, faces)] = picked
        _, checks, maps = photo_vs_cut(cropper, photos, status=no_peers)
        _, border = border_bias(maps)
        results[runtime] = (row, checks["asm"]["share"], border["mean_abs"])
    rows = ["| network | faces | " + " | ".join(ASPECTS) + " | mean | photo > cut | border trend |",
            "|---|---|" + "---:|" * (len(ASPECTS) + 3)]
    for runtime, label in (("onnx", "float (ONNX)"), ("int8", "int8 twin")):
        row, share, trend = results[runtime]
        for faces in (True, False):
            rows.append(f"| {label} | {'on' if faces else 'off'} | " + " | ".join(f"{v:.3f}" for v in row[faces])
                        + f" | **{row[faces].mean():.4f}** | {share:.3f} | {trend:.3f} |")
    for faces in (True, False):
        delta = results["int8"][0][faces].mean() - results["onnx"][0][faces].mean()
        moved = sum(max(abs(a - b) for a, b in zip(p[asp], q[asp])) > 1
                    for p, q in zip(boxes[("onnx", faces)], boxes[("int8", faces)]) for asp in ASPECTS)
        rows.append(f"\nFaces {'on' if faces else 'off'}: int8 minus float **{delta:+.4f}** of the fixations kept (limit -0.005); "
                    f"{moved} of {len(images) * len(ASPECTS)} crops moved by more than 1 px.")
    rows += ["", f"OSIE 1401-1500 ({len(images)} photos), top-1 crop; photo > cut and border trend: the border-free checks of "
             f"`asm eval` on the {len(photos)} held-out photos (3 cuts each)."]
    return rows


def main() -> None:
    from asm.models import DEFAULT_MODEL_PATH
    from asm.runtime import load_onnx_net

    import onnxruntime

    twin = load_onnx_net(DEFAULT_MODEL_PATH, precision="int8")
    head = ["# The int8 twin vs the float network", "",
            f"Machine: {os.cpu_count()} CPUs ({platform.machine()}), load average {os.getloadavg()[0]:.1f} at the start; "
            f"ONNX Runtime {onnxruntime.__version__}, torch {torch.__version__}. Twin: `asm/weights/{twin.path.name}` "
            "(static quantisation, QLinearConv, per-channel int8 weights, uint8 activations; backbone only, the heads "
            "stay float), calibrated on 40 photos of the shared photos' training split (`asm export --int8`).", "",
            "## Forward pass", ""]
    text = head + speed_table() + ["", "## Quality on validation", ""] + quality_table()
    RESULTS.write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
