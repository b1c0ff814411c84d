"""Encode ``HxW`` / ``HxWx3`` / ``HxWx4`` uint8 arrays (crops, overlays) as PNG or JPEG bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from asm.errors import InvalidOption
from asm.io.pixels import _array_to_uint8, _composite

__all__ = ["encode_png", "encode_jpeg"]


def encode_png(array: np.ndarray, compress_level: int = 6) -> bytes:
    """Encode ``HxW`` (grey), ``HxWx3`` (RGB) or ``HxWx4`` (RGBA, e.g. circular crops) to PNG.

    The array should be uint8; other dtypes follow :func:`load_image`'s numpy policy.
    Alpha is kept.
    """
    if not (isinstance(compress_level, int) and 0 <= compress_level <= 9):
        raise InvalidOption(f"PNG compress_level must be an integer from 0 to 9, got {compress_level!r}.")
    arr = _array_to_uint8(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def encode_jpeg(array: np.ndarray, quality: int = 92) -> bytes:
    """Encode ``HxW`` / ``HxWx3`` uint8 to JPEG (``HxWx4`` is composited over grey first).

    Args:
        array: the image; other dtypes follow :func:`load_image`'s numpy policy.
        quality: 1..100 (PIL advises at most 95).
    """
    if not (isinstance(quality, (int, np.integer)) and not isinstance(quality, bool) and 1 <= quality <= 100):
        raise InvalidOption(f"JPEG quality must be an integer from 1 to 100, got {quality!r}.")
    arr = _array_to_uint8(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = _composite(arr[:, :, :3], arr[:, :, 3])
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()
