"""Pictures of what asm decided: heatmap overlays, crops drawn on the photo, crop cut-outs.

All functions take and return ``[H, W, 3]`` uint8 RGB arrays (cut-outs of circular crops
are ``[h, w, 4]`` RGBA with a transparent outside).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from matplotlib import colormaps

from asm.cropper import Crop

__all__ = ["colorize", "overlay_heatmap", "draw_crops", "cut_crop", "PALETTE"]

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


def draw_crops(image: np.ndarray, crops: Sequence[Crop], thickness: int | None = None) -> np.ndarray:
    """The image with each crop outlined (rectangle or circle) and labelled "aspect score"."""
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    t = thickness or max(2, round(min(h, w) / 200))
    scale = max(0.4, min(h, w) / 700)
    for i, crop in enumerate(crops):
        colour = PALETTE[i % len(PALETTE)]
        x1, y1, x2, y2 = crop.box
        if crop.shape == "circle":
            cv2.circle(out, ((x1 + x2) // 2, (y1 + y2) // 2), (x2 - x1) // 2, colour, t, cv2.LINE_AA)
        else:
            cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), colour, t, cv2.LINE_AA)
        label = f"#{i + 1} {crop.aspect} {crop.score:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, t // 2))
        lx, ly = min(max(0, x1 + t), max(0, w - tw - 4)), min(max(th + 4, y1 + th + 2 * t + 2), h - base - 2)
        cv2.rectangle(out, (lx, ly - th - 4), (lx + tw + 4, ly + base), colour, -1)
        cv2.putText(out, label, (lx + 2, ly - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, t // 2), cv2.LINE_AA)
    return out


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
