"""Untrusted image input in, encoded pictures out.

* :mod:`asm.io.decode` -- :func:`load_image` (path / bytes / file-like / PIL / numpy ->
  ``HxWx3`` uint8 RGB), :func:`load_image_draft`, :func:`image_size`;
* :mod:`asm.io.pixels` -- colour modes and numpy arrays -> RGB (the numpy input policy);
* :mod:`asm.io.limits` -- the pixel limit and the minimum side, checked from the header
  before anything is decoded, and :func:`allow_pixels` for applications;
* :mod:`asm.io.truncation` -- JPEG, GIF, WebP and TIFF files whose data cannot cover the
  pixels they declare, refused from their structure before decoding;
* :mod:`asm.io.encode` -- :func:`encode_png` / :func:`encode_jpeg`.
"""

from asm.io.decode import ImageSource, image_size, load_image, load_image_draft
from asm.io.encode import encode_jpeg, encode_png
from asm.io.limits import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE, allow_pixels
from asm.io.pixels import BACKGROUND

__all__ = [
    "load_image",
    "load_image_draft",
    "image_size",
    "encode_png",
    "encode_jpeg",
    "allow_pixels",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "BACKGROUND",
    "ImageSource",
]
