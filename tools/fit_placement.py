"""Fit :data:`asm.search.placement.KEEP_OFFSET`: how far back to the image centre a fixed-aspect
crop is drawn.

For each share in ``--keeps``, the shipped defaults (faces on, the largest box) crop every
*training* photo of OSIE, EyeCrowd and NUS Scene (:mod:`asm.data.fixations`) at the six
validation aspects; the share that keeps the most eye fixations, averaged over the three
sets, is the fit. The validation photos are cropped too and reported beside it, never used to
choose. Each photo's score map is computed once; only the placement changes between shares.

    python tools/fit_placement.py [--model M.pt] [--keeps 0.6,0.7,0.8,0.9,1] [--out benchmarks/results/placement.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

from asm.cropper import Cropper
from asm.data.fixations import fixation_set
from asm.geometry import VALIDATION_ASPECTS, centre_crop, fixations_kept
from asm.io import load_image
from asm.options import CropOptions
from asm.search import placement

SETS = ("osie", "eyecrowd", "nus")


def kept_by_share(cropper: Cropper, name: str, split: str, keeps: list[float]) -> dict[str, np.ndarray]:
    """``{"centre": [A], share: [A], ...}``: mean fixations kept at each aspect over the photos."""
    data = fixation_set(name, split=split)
    options = CropOptions.parse([a for a, _ in VALIDATION_ASPECTS])
    kept: dict[str, list[list[float]]] = {"centre": [], **{f"{k:g}": [] for k in keeps}}
    saved = placement.KEEP_OFFSET
    try:
        for i in range(len(data)):
            item = data[i]
            rgb = load_image(Path(item.path))
            H, W = rgb.shape[:2]
            analysis = cropper.analyse(rgb)
            kept["centre"].append([fixations_kept(centre_crop(W, H, r), item.points) for _, r in VALIDATION_ASPECTS])
            for k in keeps:
                placement.KEEP_OFFSET = k
                boxes = {c.aspect: c.box for c in analysis.crops(options).crops}
                kept[f"{k:g}"].append([fixations_kept(boxes[a], item.points) for a, _ in VALIDATION_ASPECTS])
    finally:
        placement.KEEP_OFFSET = saved
    return {m: np.nanmean(np.array(v, dtype=np.float64), axis=0) for m, v in kept.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="weights file (default: the shipped model)")
    p.add_argument("--keeps", default="0.6,0.7,0.8,0.9,1", help="shares of the offset to try, comma-separated")
    p.add_argument("--out", help="write the markdown table here (default: print it)")
    args = p.parse_args(argv)
    keeps = [float(k) for k in args.keeps.split(",")]
    cropper = Cropper.from_pretrained(args.model) if args.model else Cropper.from_pretrained()
    results: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    start = time.time()
    for split in ("train", "val"):
        for name in SETS:
            results[name, split] = kept_by_share(cropper, name, split, keeps)
            print(f"{name} {split}: done ({time.time() - start:.0f} s)", file=sys.stderr, flush=True)
    train_mean = {k: float(np.mean([results[n, "train"][f"{k:g}"].mean() for n in SETS])) for k in keeps}
    best = max(keeps, key=lambda k: train_mean[k])
    labels = [a for a, _ in VALIDATION_ASPECTS]
    lines = [
        "# Placement: how far back to the centre a fixed-aspect crop is drawn",
        "",
        f"`python tools/fit_placement.py --keeps {args.keeps}` ({date.today().isoformat()}; model "
        f"`{Path(args.model).name if args.model else 'asm_default.pt'}`, faces on, the largest box). "
        "Mean share of eye fixations kept over the six aspects. A share of 1 is the search's own place; "
        "0 would be the centre crop. The fit is the share with the highest mean over the three *training* "
        f"splits: **{best:g}** (`asm.search.placement.KEEP_OFFSET`). Validation is shown beside it, "
        "never used to choose.",
        "",
        "| share kept | " + " | ".join(f"{n} train" for n in SETS) + " | mean train | "
        + " | ".join(f"{n} val" for n in SETS) + " |",
        "|---:|" + "---:|" * (2 * len(SETS) + 1),
    ]
    for m in ["centre", *[f"{k:g}" for k in keeps]]:
        tr = [results[n, "train"][m].mean() for n in SETS]
        va = [results[n, "val"][m].mean() for n in SETS]
        name = "centre crop" if m == "centre" else (f"**{m}**" if float(m) == best else m)
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in tr) + f" | {np.mean(tr):.4f} | "
                     + " | ".join(f"{v:.4f}" for v in va) + " |")
    lines += ["", f"Per aspect at the fitted share, against the centre crop (validation splits):", "",
              "| set | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for n in SETS:
        fit, centre = results[n, "val"][f"{best:g}"], results[n, "val"]["centre"]
        lines.append(f"| {n} val | " + " | ".join(f"{f:.3f} ({f - c:+.3f})" for f, c in zip(fit, centre)) + " |")
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
