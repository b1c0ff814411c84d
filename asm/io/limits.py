"""Limits on untrusted images, checked before their pixels are decoded.

This package never changes PIL's global settings by itself (``ImageFile.LOAD_TRUNCATED_IMAGES``
stays as it is, ``Image.MAX_IMAGE_PIXELS`` too, unless an application calls
:func:`allow_pixels`). Our own ``max_pixels`` is the limit that counts; PIL's
``DecompressionBombWarning`` is silenced while the header is read and its
``DecompressionBombError`` (above ``2 * Image.MAX_IMAGE_PIXELS``, ~179 MP by default) becomes
:class:`~asm.errors.ImageTooLarge` -- so ``max_pixels`` above ~179 MP only works if the
application also raises ``Image.MAX_IMAGE_PIXELS`` (:func:`allow_pixels`).
"""

from __future__ import annotations

import io
import re
import struct
from typing import Any

import numpy as np
from PIL import Image

from asm.errors import ImageTooLarge, ImageTooSmall, InvalidImage, InvalidOption
from asm.io.truncation import DEFLATE_MAX_RATIO, check_structure

__all__ = ["allow_pixels", "DEFAULT_MAX_PIXELS", "DEFAULT_MIN_SIDE"]

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MIN_SIDE = 32


def allow_pixels(max_pixels: int) -> None:
    """Raise PIL's own hard limit so that ``max_pixels`` (ours) is the one that counts.

    For applications (the CLI, the TorchServe handler): PIL refuses images above
    ``2 * Image.MAX_IMAGE_PIXELS`` (~179 MP) whatever ``load_image`` is told; this lifts that
    limit to ``max_pixels`` when it is higher, and never lowers it.
    """
    if Image.MAX_IMAGE_PIXELS is not None and 2 * Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _check_options(max_pixels: Any, min_side: Any) -> None:
    if max_pixels is not None and (
        isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1
    ):
        raise InvalidOption(f"The max_pixels option must be a positive integer or None, got {max_pixels!r}.")
    if isinstance(min_side, bool) or not isinstance(min_side, (int, np.integer)) or min_side < 1:
        raise InvalidOption(f"The min_side option must be a positive integer, got {min_side!r}.")


def _check_size(w: int, h: int, max_pixels: int | None, min_side: int) -> None:
    if w <= 0 or h <= 0:
        raise InvalidImage(f"The image has no pixels ({w}x{h}).")
    if max_pixels is not None and w * h > max_pixels:
        raise ImageTooLarge(
            f"The image is too large: {w}x{h} is {w * h:,} pixels; "
            f"the limit is {max_pixels:,} pixels.",
            width=w,
            height=h,
            max_pixels=max_pixels,
        )
    if w < min_side or h < min_side:
        raise ImageTooSmall(
            f"The image is too small: {w}x{h} pixels; each side must be at least {min_side} pixels.",
            width=w,
            height=h,
            min_side=min_side,
        )


def _too_large_for_pil(e: BaseException, max_pixels: int | None) -> ImageTooLarge:
    """PIL's hard limit (``2 * Image.MAX_IMAGE_PIXELS``) in the words of :func:`_check_size`."""
    m = re.search(r"\((\d+) pixels\)", str(e))
    size = f"{int(m.group(1)):,} pixels" if m else f"more than {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels"
    limit = min(max_pixels or 2 * (Image.MAX_IMAGE_PIXELS or 0), 2 * (Image.MAX_IMAGE_PIXELS or 0))
    return ImageTooLarge(f"The image is too large: it has {size}; the limit is {limit:,} pixels.", max_pixels=limit)


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _check_data_length(im: Image.Image) -> None:
    """Refuse, before decoding allocates the pixels, files whose data end before the pixels do.

    PNG: the IDAT chunks must be able to inflate to the scanlines the header declares
    (deflate expands at most ~1032x). Uncompressed tiles (BMP, PPM, raw TIFF): the file must
    reach the tile's offset plus at least one bit per pixel. JPEG, GIF, WebP and compressed
    TIFF: :mod:`asm.io.truncation`, where the format gives a bound.
    """
    fp = getattr(im, "fp", None)
    if fp is None:
        return
    try:
        pos = fp.tell()
        fp.seek(0, io.SEEK_END)
        end = fp.tell()
        fp.seek(pos)
        w, h = im.size
        check_structure(im, fp, end)
        if im.format == "PNG":
            have, need = _png_pixel_bytes(fp), None
            fp.seek(pos)
            if have is None:
                return
            depth, colour = have[1], have[2]
            need = h * (1 + (w * depth * _PNG_CHANNELS.get(colour, 1) + 7) // 8)
            if have[0] * DEFLATE_MAX_RATIO + 4096 < need:
                raise InvalidImage(
                    f"The PNG data end before its pixels do: the header declares {w}x{h} pixels but the file "
                    f"holds only {have[0]:,} bytes of compressed pixel data (truncated or forged)."
                )
        elif im.tile and all(t[0] == "raw" for t in im.tile):
            offset = min(t[2] for t in im.tile)
            if end < offset + h * ((w + 7) // 8):
                raise InvalidImage(
                    f"The image data end before its pixels do: the header declares {w}x{h} pixels but the "
                    f"file has only {max(0, end - offset):,} bytes of pixel data (truncated or forged)."
                )
    except InvalidImage:
        raise
    except Exception:  # an unusual stream: leave it to the decoder
        return


def _png_pixel_bytes(fp: Any) -> tuple[int, int, int] | None:
    """``(bytes in the first frame's IDAT chunks, bit depth, colour type)`` by walking the chunks."""
    fp.seek(8)
    total, depth, colour, seen_idat = 0, 8, 2, False
    while True:
        head = fp.read(8)
        if len(head) < 8:
            break
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IHDR":
            ihdr = fp.read(13)
            depth, colour = ihdr[8], ihdr[9]
            fp.seek(length - 13 + 4, io.SEEK_CUR)
            continue
        if kind == b"IDAT":
            seen_idat = True
            data_start = fp.tell()
            fp.seek(0, io.SEEK_END)
            total += min(length, fp.tell() - data_start)  # a cut chunk counts only what is there
            fp.seek(data_start + length + 4)
            continue
        if seen_idat or kind == b"IEND":
            break
        fp.seek(length + 4, io.SEEK_CUR)
    return total, depth, colour
