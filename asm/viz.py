"""Pictures of what asm decided: heatmap overlays, crops drawn on the photo, crop cut-outs.

All functions take and return ``[H, W, 3]`` uint8 RGB arrays (cut-outs of circular crops
are ``[h, w, 4]`` RGBA with a transparent outside).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from matplotlib import colormaps

from asm.results import Crop

__all__ = ["colorize", "overlay_heatmap", "draw_crops", "label_boxes", "cut_crop", "PALETTE"]

#: Distinct colours for crops (matplotlib's tab10), RGB uint8.
PALETTE = [tuple(int(255 * c) for c in colormaps["tab10"](i)[:3]) for i in range(10)]


def colorize(heat: np.ndarray, cmap: str = "inferno") -> np.ndarray:
    """``[H, W]`` float -> ``[H, W, 3]`` uint8 through a matplotlib colormap (min-max scaled)."""
    heat = np.asarray(heat, dtype=np.float32)
    lo, hi = float(np.nanmin(heat)), float(np.nanmax(heat))
    norm = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)
    return (colormaps[cmap](norm)[..., :3] * 255).astype(np.uint8)


def overlay_heatmap(image: np.ndarray, heat: np.ndarray, alpha: float = 0.55, cmap: str = "inferno") -> np.ndarray:
    """Blend a coloured heatmap over the image; a heatmap of another size (e.g. the score
    map's) is coloured first and the colours upsampled once (uint8, so a large photo costs
    one more RGB image, not float maps)."""
    colours = colorize(heat, cmap)
    if colours.shape[:2] != image.shape[:2]:
        colours = cv2.resize(colours, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.addWeighted(colours, alpha, image, 1 - alpha, 0)


def draw_crops(image: np.ndarray, crops: Sequence[Crop], thickness: int | None = None,
               labels: Sequence[str] | None = None) -> np.ndarray:
    """The image with each crop outlined (rectangle or circle, the i-th in ``PALETTE[i]``) and
    labelled (``labels``, by default "#i aspect score"); labels never cover each other (see
    :func:`label_boxes`)."""
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    t = thickness or max(2, round(min(h, w) / 200))
    scale = max(0.4, min(h, w) / 700)
    if labels is None:
        labels = [f"#{i + 1} {crop.aspect} {crop.score:.2f}" for i, crop in enumerate(crops)]
    boxes = label_boxes(crops, labels, w, h, t, scale)
    for i, (crop, label, (lx, ly, lx2, ly2)) in enumerate(zip(crops, labels, boxes)):
        colour = PALETTE[i % len(PALETTE)]
        x1, y1, x2, y2 = crop.box
        if crop.shape == "circle":
            cv2.circle(out, ((x1 + x2) // 2, (y1 + y2) // 2), (x2 - x1) // 2, colour, t, cv2.LINE_AA)
        else:
            cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), colour, t, cv2.LINE_AA)
    for i, (label, (lx, ly, lx2, ly2)) in enumerate(zip(labels, boxes)):  # labels over every outline
        _, base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, t // 2))
        cv2.rectangle(out, (lx, ly), (lx2, ly2), PALETTE[i % len(PALETTE)], -1)
        cv2.putText(out, label, (lx + 2, ly2 - base - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    max(1, t // 2), cv2.LINE_AA)
    return out


def draw_regions(image: np.ndarray, faces: Sequence[Sequence[float]] = (), keep: Sequence[Sequence[float]] = (),
                 focus: Sequence[float] | None = None) -> np.ndarray:
    """The image with detected ``faces`` (white, thin), the user's ``keep`` boxes (green)
    and ``focus`` point (a green cross) drawn; boxes ``x1, y1, x2, y2`` in image pixels."""
    out = np.ascontiguousarray(image.copy())
    t = max(1, round(min(out.shape[:2]) / 400))
    for colour, boxes in (((255, 255, 255), faces), ((40, 200, 80), keep)):
        for box in boxes:
            x1, y1, x2, y2 = (int(round(v)) for v in box[:4])
            cv2.rectangle(out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), colour, t, cv2.LINE_AA)
    if focus is not None:
        x, y, r = int(round(focus[0])), int(round(focus[1])), 6 * t + 4
        cv2.drawMarker(out, (x, y), (40, 200, 80), cv2.MARKER_CROSS, 2 * r, 2 * t, cv2.LINE_AA)
    return out


def label_boxes(crops: Sequence[Crop], labels: Sequence[str], width: int, height: int, thickness: int,
                scale: float) -> list[tuple[int, int, int, int]]:
    """Where each label goes, ``(x1, y1, x2, y2)``: inside its crop's top-left corner, moved
    down (then up) in label-height steps past labels already placed."""
    placed: list[tuple[int, int, int, int]] = []
    for crop, label in zip(crops, labels):
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, thickness // 2))
        bw, bh = tw + 4, th + base + 4
        x1, y1 = crop.box[:2]
        lx = min(max(0, x1 + thickness), max(0, width - bw))
        top = min(max(0, y1 + thickness), max(0, height - bh))
        tries = [top + k * bh for k in range(max(1, height // bh))] + [top - k * bh for k in range(1, max(1, height // bh))]
        box = (lx, top, lx + bw, top + bh)
        for y in tries:
            if 0 <= y <= height - bh:
                cand = (lx, y, lx + bw, y + bh)
                if not any(_overlap(cand, p) for p in placed):
                    box = cand
                    break
        placed.append(box)
    return placed


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def cut_crop(image: np.ndarray, crop: Crop) -> np.ndarray:
    """The crop's pixels; a circular crop as RGBA with a transparent (anti-aliased) outside."""
    x1, y1, x2, y2 = crop.box
    patch = np.ascontiguousarray(image[y1:y2, x1:x2])
    if crop.shape != "circle":
        return patch
    h, w = patch.shape[:2]
    ss = 4  # supersampled mask for a smooth edge
    mask = np.zeros((h * ss, w * ss), np.uint8)
    cv2.ellipse(mask, (w * ss // 2, h * ss // 2), (w * ss // 2, h * ss // 2), 0, 0, 360, 255, -1, cv2.LINE_AA)
    alpha = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA)
    return np.dstack([patch, alpha])
