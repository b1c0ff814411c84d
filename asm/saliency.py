"""Fixation maps and a small on-disk cache of per-image results.

* :func:`fixation_density`: OSIE's fixation map recipe (Gaussian blur of the fixation points,
  sigma 24 px): where people looked, as a map.
* :func:`cached` / :func:`image_cache_key`: compute a per-image array once, keep it on disk
  (the FastGaze teacher's labels, :mod:`asm.data.gaze`).

The saliency model itself is :mod:`asm.models.fastgaze`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

__all__ = ["fixation_density", "cached", "image_cache_key"]


def fixation_density(
    points: np.ndarray,
    size: tuple[int, int],
    sigma: float = 24.0,
    normalize: str | None = "max",
) -> np.ndarray:
    """Fixation map: the fixation points blurred with a Gaussian (OSIE's recipe, sigma 24 px).

    Args:
        points: ``(N, 2)`` ``x, y`` in pixel-edge coordinates (pixel ``(r, c)`` covers
            ``[c, c+1) x [r, r+1)``, so ``x = c + 0.5`` is the centre of column ``c``);
            points outside the image are ignored. Repeated points add up.
        size: ``(H, W)``.
        normalize: ``"max"`` (default; peak 1, OSIE's own maps are peak 255),
            ``"sum"`` (a probability distribution, sums to 1) or ``None`` (raw blurred counts).

    Returns:
        ``H x W`` float32; all zeros if there is no point inside.
    """
    if normalize not in ("max", "sum", None):
        raise ValueError(f"normalize must be 'max', 'sum' or None, got {normalize!r}")
    H, W = int(size[0]), int(size[1])
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    counts = np.zeros((H, W), np.float32)
    if len(pts):
        c = np.floor(pts[:, 0]).astype(np.int64)
        r = np.floor(pts[:, 1]).astype(np.int64)
        ok = (c >= 0) & (c < W) & (r >= 0) & (r < H)
        np.add.at(counts, (r[ok], c[ok]), 1.0)
    if sigma > 0 and counts.any():
        k = 2 * int(np.ceil(3 * sigma)) + 1
        counts = cv2.GaussianBlur(counts, (k, k), sigma, borderType=cv2.BORDER_CONSTANT)
    total = float(counts.sum()) if normalize == "sum" else float(counts.max())
    if normalize is not None and total > 0:
        counts = counts / total
    return counts.astype(np.float32)


# --------------------------------------------------------------------------------------
# Caching
# --------------------------------------------------------------------------------------
_SAFE_KEY = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


def _key_file(key: str) -> str:
    if _SAFE_KEY.match(key) and key not in (".", ".."):
        return key + ".npy"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[-60:].strip("._") or "key"
    return f"{stem}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:16]}.npy"


def cached(fn: Callable[[], np.ndarray], key: str, cache_dir: str | os.PathLike | None) -> np.ndarray:
    """``fn()`` stored as ``<cache_dir>/<key>.npy`` (``np.save``); later calls load it.

    Keys that are not plain file names (paths, spaces...) are hashed into one. The file is
    written to a temporary name and renamed, so concurrent workers never read half a file.
    ``cache_dir=None`` just calls ``fn()``.
    """
    if cache_dir is None:
        return np.asarray(fn())
    d = Path(cache_dir)
    path = d / _key_file(key)
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            pass  # damaged: recompute
    arr = np.asarray(fn())
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{path.name}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        np.save(f, arr, allow_pickle=False)
    os.replace(tmp, path)
    return arr


def image_cache_key(path: str | os.PathLike, tag: str = "sr") -> str:
    """A cache key for a per-image result: file name + hash of (absolute path, size, mtime) + tag."""
    p = Path(path).resolve()
    st = p.stat()
    h = hashlib.sha1(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", p.stem)[:60] or "img"
    return f"{stem}-{h}-{tag}"
