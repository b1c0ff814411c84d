"""PIL images of any colour mode and numpy arrays -> ``HxWx3`` uint8 RGB.

Alpha is composited over :data:`BACKGROUND` (mid-grey).

Numpy input policy (documented because it is a choice):

* shapes ``HxW``, ``HxWx1`` (grey), ``HxWx3`` (RGB), ``HxWx4`` (RGBA, composited over grey);
* ``uint8`` as is; ``bool`` -> 0 / 255; ``uint16`` scaled like a 16-bit PNG (65535 -> 255);
  other integer dtypes accepted when every value is in ``[0, 255]``;
  floating dtypes must be finite and in ``[0, 1]`` (scaled by 255 and rounded);
  anything else (out of range, NaN, complex, object) is :class:`~asm.errors.InvalidImage`;
* the result is always a new C-contiguous array (never a view of the caller's data).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from asm.errors import InvalidImage
from asm.io.limits import _check_size

__all__ = ["BACKGROUND"]

#: RGB colour transparent pixels are composited over.
BACKGROUND = (128, 128, 128)


def _pil_to_rgb(im: Image.Image) -> np.ndarray:
    """Any PIL mode -> ``HxWx3`` uint8 RGB, alpha composited over :data:`BACKGROUND`."""
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im)
        grey = _high_depth_grey_to_uint8(arr, mode, im.format)
        t = im.info.get("transparency")
        if isinstance(t, (int, float)) and not isinstance(t, bool) and mode != "F":
            alpha = np.where(arr == t, 0, 255).astype(np.uint8)
            return _composite(np.repeat(grey[:, :, None], 3, axis=2), alpha)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if im.has_transparency_data or mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        if mode == "La":
            im = im.convert("LA")
        rgba = np.asarray(im.convert("RGBA"))
        return _composite(rgba[:, :, :3], rgba[:, :, 3])
    if mode == "RGB":
        return np.array(im, dtype=np.uint8, copy=True)
    return np.array(im.convert("RGB"), dtype=np.uint8, copy=True)


def _high_depth_grey_to_uint8(arr: np.ndarray, mode: str, fmt: str | None) -> np.ndarray:
    """Grey ``HxW`` of mode I;16* / I / F -> uint8, scaled (never clipped) to 8 bits.

    * ``I;16*``: 16-bit range, ``round(v * 255 / 65535)``;
    * ``I``: from PNG/PPM files (16-bit data) or when values exceed 255 but fit in 16 bits,
      the 16-bit range; values within ``[0, 255]`` otherwise as is; anything else stretched
      linearly from its min..max to 0..255;
    * ``F``: values in ``[0, 1]`` scaled by 255, in ``[0, 255]`` as is, otherwise stretched;
      NaN/inf are treated as 0 / the extremes.
    """
    if mode.startswith("I;16"):
        return _u16_to_u8(arr.astype(np.uint16, copy=False))
    if mode == "I":
        a = arr.astype(np.int64, copy=False)
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo >= 0 and hi <= 65535 and (fmt in ("PNG", "PPM") or hi > 255):
            return _u16_to_u8(a.astype(np.uint16))
        if lo >= 0 and hi <= 255:
            return a.astype(np.uint8)
        return _stretch(a.astype(np.float64))
    # "F"
    a = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=np.finfo(np.float64).max, neginf=np.finfo(np.float64).min)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo >= 0.0 and hi <= 1.0:
        return np.rint(a * 255.0).astype(np.uint8)
    if lo >= 0.0 and hi <= 255.0:
        return np.rint(a).astype(np.uint8)
    return _stretch(np.clip(a, -1e300, 1e300))


def _u16_to_u8(a: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 with rounding: ``round(v * 255 / 65535)`` (65535 -> 255, 257 -> 1)."""
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _stretch(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.rint((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _composite(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``HxWx3`` uint8 over :data:`BACKGROUND` with ``HxW`` uint8 alpha -> ``HxWx3`` uint8."""
    a = alpha.astype(np.uint32)[:, :, None]
    bg = np.asarray(BACKGROUND, np.uint32)
    out = (rgb.astype(np.uint32) * a + bg * (255 - a) + 127) // 255
    return out.astype(np.uint8)


# --------------------------------------------------------------------------- numpy input

def _load_array(arr: np.ndarray, max_pixels: int | None, min_side: int) -> np.ndarray:
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise InvalidImage(_array_shape_message(arr.shape))
    h, w = int(arr.shape[0]), int(arr.shape[1])
    _check_size(w, h, max_pixels, min_side)
    a = _array_to_uint8(arr)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1:
        return np.repeat(a, 3, axis=2)
    if a.shape[2] == 4:
        return _composite(a[:, :, :3], a[:, :, 3])
    return np.array(a, dtype=np.uint8, order="C", copy=True)


def _array_shape_message(shape: tuple[int, ...]) -> str:
    return (
        f"An image array must have shape HxW, HxWx1, HxWx3 or HxWx4; got {tuple(int(s) for s in shape)}."
    )


def _array_to_uint8(arr: Any) -> np.ndarray:
    """Apply the module's numpy dtype policy; returns uint8 with the same shape."""
    if not isinstance(arr, np.ndarray):
        raise InvalidImage(f"Expected a numpy array, got {type(arr).__name__}.")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise InvalidImage(_array_shape_message(arr.shape))
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidImage("The image array is empty (a side of 0 pixels).")
    dt = arr.dtype
    if dt == np.uint8:
        return arr
    if dt == np.bool_:
        return arr.astype(np.uint8) * np.uint8(255)
    if dt == np.uint16:
        return _u16_to_u8(arr)
    if np.issubdtype(dt, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise InvalidImage(
                f"An integer image array ({dt}) must hold values from 0 to 255; found {lo}..{hi}."
            )
        return arr.astype(np.uint8)
    if np.issubdtype(dt, np.floating):
        a = arr.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise InvalidImage("A float image array must not contain NaN or infinite values.")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            raise InvalidImage(
                f"A float image array must hold values from 0 to 1; found {lo:.4g}..{hi:.4g}. "
                "(Pass uint8 for 0..255 data.)"
            )
        return np.rint(a * 255.0).astype(np.uint8)
    raise InvalidImage(f"Unsupported image array dtype {dt}; use uint8 (or uint16, bool, float in [0, 1]).")
