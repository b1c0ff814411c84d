"""Draw ``docs/free_crops.png``: asm's free crops next to how people crop.

Top row: the shared GAICD images as outlines only (their photos are not openly licensed, so
no pixel of them is drawn): the photo's frame, the best-rated crop people chose (green), the
whole photo's IoU with it, and asm's free crop (blue) with its IoU. Bottom row: asm's top-3
free crops on the example photos (open licences, examples/README.md), best in blue.

    python tools/free_sheet.py [--out docs/free_crops.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "free_crops.png")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from asm.cropper import Cropper
    from asm.data.annotations import best_rated, read_gaicd_json
    from asm.data.shared import data_dir
    from asm.evaluation.metrics import iou
    from asm.io import load_image
    from asm.viz import PALETTE

    cropper = Cropper.from_pretrained()
    root = data_dir("gaicd")
    crops = read_gaicd_json(root / "hcic_image_crop.json")
    gaicd = [p for p in sorted((root / "images").glob("*.jpg")) if p.name in crops]
    examples = [ROOT / "examples" / n for n in ("osprey.jpg", "desert-hike.jpg", "otters.jpg", "dogs-window.jpg")]
    cols = max(len(gaicd), len(examples))
    fig, axes = plt.subplots(2, cols, figsize=(3.4 * cols, 6.4), squeeze=False)
    colour = [tuple(v / 255 for v in c) for c in PALETTE]
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_visible(False)
    for ax, path in zip(axes[0], gaicd):
        ax.set_visible(True)
        result = cropper.crop(path, aspect="free")
        W, H = result.width, result.height
        best = best_rated(*crops[path.name])[0].tolist()
        box = result.crops[0].box
        ax.add_patch(Rectangle((0, 0), W, H, facecolor="0.92", edgecolor="0.4"))
        for b, c, label in ((best, "tab:green", "people's best-rated"), (box, colour[0], "asm free")):
            ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, edgecolor=c, linewidth=2.5, label=label))
        ax.set_xlim(-5, W + 5)
        ax.set_ylim(H + 5, -5)
        ax.set_aspect("equal")
        ax.set_title(f"GAICD {path.stem}: IoU asm {iou(box, best):.2f}, whole photo {iou([0, 0, W, H], best):.2f}", fontsize=8)
        ax.legend(fontsize=7, loc="lower center")
    for ax, path in zip(axes[1], examples):
        ax.set_visible(True)
        rgb = load_image(path)
        result = cropper.crop(rgb, aspect="free", top_k=3)
        ax.imshow(rgb)
        for i, c in reversed(list(enumerate(result.crops))):
            b = c.box
            ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, edgecolor=colour[i], linewidth=2.5 if i == 0 else 1.5))
        ax.set_title(f"{path.name}: top-3 free crops", fontsize=8)
    fig.suptitle("Free crops: asm's shape and size next to people's (top), top-3 on the examples (bottom; best in blue)", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"written: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
