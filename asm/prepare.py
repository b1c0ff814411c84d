"""Preparing an image for the network: decode (safely, :func:`asm.io.load_image`), orient and
resize to the preset's input size (:class:`~asm.models.weights.InferencePreset`).

Files and bytes are decoded at the network's size (a JPEG in the DCT domain, at up to 1/8 of
its size); the full-size pixels only when :attr:`Prepared.image` is first read.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from asm.errors import InvalidImage
from asm.io import image_size, load_image, load_image_draft
from asm.models.weights import InferencePreset

__all__ = ["Prepared", "prepare", "DRAFT_MARGIN"]

#: A JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that keeps this many times the
#: network's input on each side; the area resize does the rest (the measurements behind 4:
#: benchmarks/results/settings.md).
DRAFT_MARGIN = 4


class Prepared:
    """An image's network input ``[1, 3, h, w]`` (float32 numpy) and its size; ``preview``: the pixels the
    input was made from (``[h', w', 3]`` uint8 RGB, the JPEG's DCT-scaled decode or the full
    image), enough for face detection; the full-size pixels (``image``, ``[H, W, 3]``,
    EXIF-oriented) are decoded on first use. ``faces``: the faces detected in it (``[F, 5]``),
    kept by the search the first time it looks, so every later question of the image reuses them."""

    def __init__(self, input: np.ndarray, width: int, height: int, image: np.ndarray | None = None,
                 source: object = None, max_pixels: int | None = None, preview: np.ndarray | None = None) -> None:
        self.input = input
        self.width = int(width)
        self.height = int(height)
        self.preview = preview if preview is not None else image
        self._image = image
        self._source = source
        self._max_pixels = max_pixels
        self.faces: np.ndarray | None = None

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            rgb = load_image(self._source, max_pixels=self._max_pixels)  # type: ignore[arg-type]
            if rgb.shape[:2] != (self.height, self.width):
                raise InvalidImage("The image changed while it was being read; try again.")
            self._image, self._source = rgb, None
        return self._image


def prepare(image: object, preset: InferencePreset, max_pixels: int | None) -> Prepared:
    """``image`` (path, bytes, file object, PIL image or ``[H, W, 3]`` uint8 array) decoded
    and resized to ``preset.input_size``; images over ``max_pixels`` are refused before decoding."""
    if isinstance(image, (np.ndarray, Image.Image)):
        rgb = load_image(image, max_pixels=max_pixels)
        full, (W, H) = rgb, (rgb.shape[1], rgb.shape[0])
    else:
        if hasattr(image, "read") and not isinstance(image, io.TextIOBase):  # read once, kept for Prepared.image
            try:
                image = image.read()  # type: ignore[union-attr]
            except Exception as e:  # closed, unreadable, ...
                raise InvalidImage(f"Cannot read the image stream: {str(e)[:100]}") from e
        W, H = image_size(image)  # type: ignore[arg-type]
        w, h = preset.input_size(W, H)
        rgb = load_image_draft(image, (DRAFT_MARGIN * w, DRAFT_MARGIN * h), max_pixels=max_pixels)  # type: ignore[arg-type]
        full = None
        if rgb.shape[1] == W and rgb.shape[0] == H:  # decoded in full anyway: keep it
            full, image = rgb, None
    return Prepared(preset.network_input(rgb, W, H), W, H, image=full, source=image, max_pixels=max_pixels, preview=rgb)
