"""The comparison sheet: validation photos with the top-1 crops of asm, the centre crop and
the peers at a few aspects, drawn with :mod:`asm.viz`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from asm.evaluation import peers as peer_mod
from asm.evaluation.report import _load, _peer_status

__all__ = ["comparison_sheet", "sheet_images", "SHEET_ASPECTS", "SHEET_METHODS"]

SHEET_ASPECTS = (("1:1", 1.0), ("9:16", 9 / 16), ("16:9", 16 / 9))
SHEET_METHODS = ("asm", "centre crop", "smartcrop.py", "libvips attention")


def _draw(rgb: np.ndarray, boxes: Sequence[tuple[str, list[int]]], target_h: int = 300) -> np.ndarray:
    """The photo ``target_h`` pixels tall with each ``(aspect, box)`` drawn by :func:`asm.viz.draw_crops`
    (colours in order, as the sheet's legend), labelled with its aspect."""
    import cv2

    from asm.results import Crop
    from asm.viz import draw_crops

    s = target_h / rgb.shape[0]
    img = cv2.resize(rgb, (max(1, round(rgb.shape[1] * s)), target_h), interpolation=cv2.INTER_AREA)
    crops = [Crop([int(round(v * s)) for v in box], 0.0, label) for label, box in boxes]
    return draw_crops(img, crops, labels=[c.aspect for c in crops])


def comparison_sheet(cropper, images: Sequence[tuple[str, str | os.PathLike]], out: str | os.PathLike,
                     methods: Sequence[str] = SHEET_METHODS, aspects=SHEET_ASPECTS, title: str = "",
                     status: dict | None = None) -> Path:
    """Draw a PNG grid: rows = ``images`` (``(label, path)``), columns = ``methods``; each cell
    the photo with the method's top-1 crop at each aspect outlined (one colour per aspect)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from asm.viz import PALETTE

    status = status or _peer_status()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    labels = [a for a, _ in aspects]
    cells: list[list[np.ndarray | str]] = []
    widths = []
    for _, path in images:
        rgb = _load(path)
        H, W = rgb.shape[:2]
        row: list[np.ndarray | str] = []
        for m in methods:
            if m == "asm":
                res = cropper.crop(rgb, aspect=labels)
                boxes = [(a, next(c.box for c in res.crops if c.aspect == a)) for a in labels]
            elif not status[m][0]:
                row.append(f"n/a\n{status[m][1]}")
                continue
            else:
                boxes = [(a, peer_mod.PEERS[m].place(rgb, r)) for a, r in aspects]
            row.append(_draw(rgb, boxes))
        widths.append(W / H)
        cells.append(row)
    n_rows, n_cols = len(cells), len(methods)
    aspect = max(widths) if widths else 4 / 3
    cell_w = 3.2
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell_w * n_cols, cell_w / aspect * n_rows + 1.0), squeeze=False)
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if isinstance(cell, str):
                ax.text(0.5, 0.5, cell, ha="center", va="center", fontsize=7, wrap=True)
            else:
                ax.imshow(cell)
            if r == 0:
                ax.set_title(methods[c], fontsize=11, fontweight="bold")
            if c == 0:
                ax.set_ylabel(images[r][0], fontsize=8)
    handles = [Patch(edgecolor=[v / 255 for v in PALETTE[i]], facecolor="none", linewidth=2, label=a) for i, a in enumerate(labels)]
    fig.legend(handles=handles, loc="lower center", ncol=len(labels), frameon=False, fontsize=10)
    fig.suptitle(title or "Top-1 crops: asm vs centre crop vs heuristic peers", fontsize=12)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def sheet_images(photos: Sequence[Path], fixation_sets: Sequence = (), rows: int = 6, per_set: int = 2) -> list[tuple[str, Path]]:
    """Validation images for the sheet: ``per_set`` from each fixation set (OSIE, crowds, scenes),
    evenly spread over its ids, then photo-folder validation photos up to ``rows`` in all (at least one)."""
    picks: list[tuple[str, Path]] = []
    for data in fixation_sets:
        for k in range(min(per_set, len(data))):
            image_id = data.ids[int((k + 0.5) * len(data) / per_set)]
            picks.append((f"{data.name} {image_id}", data.image_path(image_id)))
    n_photo = max(1, rows - len(picks))
    if photos:
        for k in range(min(n_photo, len(photos))):
            p = Path(photos[int((k + 0.5) * len(photos) / n_photo) if n_photo <= len(photos) else k])
            picks.append((f"{p.parent.name}\n{p.name}", p))
    return picks
