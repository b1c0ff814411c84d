"""Saliency maps for the saliency-aware loss (paper eq. 7) and fixation maps for evaluation.

* :func:`spectral_residual`: Hou & Zhang (CVPR 2007), the unsupervised saliency the paper
  trains with. numpy FFT + OpenCV resizing/blur (OpenCV's contrib saliency module is not a
  dependency).
* :func:`fixation_density`: OSIE's fixation map recipe (Gaussian blur of the fixation points,
  sigma 24 px).
* :func:`cached` / :func:`image_saliency`: compute once per training image, keep on disk.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "spectral_residual",
    "fixation_density",
    "cached",
    "image_cache_key",
    "image_saliency",
    "load_rgb",
]

#: Width of the image the spectral residual is computed on (Hou & Zhang: 64 px).
SR_WIDTH = 64
#: Gaussian blur of the 64-px saliency map. Hou & Zhang's MATLAB code uses
#: ``fspecial('gaussian', [10 10], 2.5)``.
SR_BLUR_SIGMA = 2.5


def _box3_replicate(a: np.ndarray) -> np.ndarray:
    """3x3 mean filter with a replicated border, on the unshifted spectrum (DC in the corner).

    This is what Hou & Zhang's reference MATLAB code does
    (``imfilter(L, fspecial('average', 3), 'replicate')``). The replicated corner makes the
    DC term its own neighbour four times, which damps its residual. With a circular or
    mirrored border (OpenCV's version) the DC residual stays huge, its constant dominates the
    inverse transform, and the squared magnitude becomes a signed image (flat background at
    mid grey, objects dark or bright) rather than an energy map.
    """
    return cv2.blur(a, (3, 3), borderType=cv2.BORDER_REPLICATE)


def spectral_residual(
    rgb: np.ndarray,
    width: int = SR_WIDTH,
    blur_sigma: float = SR_BLUR_SIGMA,
    out_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Spectral-residual saliency (Hou & Zhang 2007).

    Grayscale, resize to ``width`` px wide (aspect kept), log amplitude spectrum minus its
    3x3 box-filtered version (replicated border, as the authors' code: see
    :func:`_box3_replicate`), inverse FFT with the original phase, squared magnitude,
    Gaussian blur (``blur_sigma`` px at that width), normalise to ``[0, 1]``, resize back.

    Args:
        rgb: ``H x W x 3`` uint8 RGB (``H x W`` grayscale also accepted).
        out_size: ``(H, W)`` of the result; default the input size.

    Returns:
        ``float32`` map in ``[0, 1]``; all zeros for a flat image.
    """
    a = np.asarray(rgb)
    if a.ndim == 3 and a.shape[2] == 3:
        gray = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
    elif a.ndim == 2:
        gray = a
    else:
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {a.shape}")
    if gray.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {gray.dtype}")
    h, w = gray.shape
    if h == 0 or w == 0:
        raise ValueError(f"empty image {a.shape}")
    oh, ow = out_size if out_size is not None else (h, w)

    sh = max(1, round(width * h / w))
    small = cv2.resize(gray.astype(np.float32) / 255.0, (width, sh), interpolation=cv2.INTER_AREA)
    spec = np.fft.fft2(small.astype(np.float64))
    amp = np.abs(spec)
    log_amp = np.log(np.maximum(amp, 1e-8 * max(float(amp.max()), 1e-30)))  # exact zeros: finite
    residual = log_amp - _box3_replicate(log_amp)
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spec)))) ** 2
    if blur_sigma > 0:
        sal = cv2.GaussianBlur(sal, (0, 0), blur_sigma, borderType=cv2.BORDER_REFLECT)
    lo, hi = float(sal.min()), float(sal.max())
    if not np.isfinite(hi) or hi - lo <= 1e-12 * max(1.0, abs(hi)) or float(small.max() - small.min()) < 1e-6:
        return np.zeros((oh, ow), np.float32)
    sal = ((sal - lo) / (hi - lo)).astype(np.float32)
    out = cv2.resize(sal, (ow, oh), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0)


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


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image file as ``H x W x 3`` uint8 RGB, EXIF orientation applied."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def image_saliency(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None, max_side: int = 256) -> np.ndarray:
    """Spectral-residual saliency of an image file, long side at most ``max_side``, cached.

    The map is returned (and stored) at reduced size: it carries 64-px detail anyway, and
    :func:`asm.losses.resize_saliency` brings it to any score-map size.
    """

    def compute() -> np.ndarray:
        rgb = load_rgb(path)
        h, w = rgb.shape[:2]
        s = min(1.0, max_side / max(h, w))
        return spectral_residual(rgb, out_size=(max(1, round(h * s)), max(1, round(w * s))))

    return cached(compute, image_cache_key(path, f"sr{max_side}"), cache_dir)
