"""Fuzz asm.io's decoder: mutated small images of every format read, and forgeries."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from asm.io import image_size, load_image, load_image_draft
from asm.testing import forge
from tests.fuzz.harness import fuzz, guarded

MAX_PIXELS = 4_000_000  # keeps each call small; the limit itself is part of what is tested


def _seeds() -> list[bytes]:
    """Small honest files of every format read, plus the forgeries at a 3000x3000 claim."""
    out = [forge.real(fmt, 48, 40, **save) for fmt, save in (
        ("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True}), ("GIF", {}), ("WEBP", {}), ("WEBP", {"lossless": True}),
        ("BMP", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_adobe_deflate"}), ("TIFF", {"compression": "tiff_lzw"}),
        ("TIFF", {"compression": "packbits"}), ("PPM", {}))]
    frames = [Image.new("RGB", (40, 32), c) for c in ((0, 0, 0), (200, 30, 30))]
    for fmt in ("GIF", "WEBP", "PNG"):
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:])
        out.append(buf.getvalue())
    for mode in ("L", "P", "RGBA", "I;16", "1", "CMYK"):
        buf = io.BytesIO()
        Image.new(mode, (40, 32)).save(buf, "TIFF" if mode == "CMYK" else "PNG")
        out.append(buf.getvalue())
    out += [build(3000, 3000) for build in forge.FORGERIES.values()]
    return out


SEEDS = _seeds()
FIELDS = [b"\0\0", b"\xff\xff", b"\x7f\xff", b"\x1b\x58", b"\0\1", b"\0\0\0\0", b"\xff\xff\xff\xff", b"\x00\x00\x1b\x58"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed with up to 6 edits: bit flips, byte sets, cuts, inserts, size-like fields, repeats."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        op, i = draw(st.integers(0, 5)), draw(st.integers(0, len(data) - 1))
        if op == 0:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            data[i] = draw(st.integers(0, 255))
        elif op == 2:
            del data[i:]
        elif op == 3:
            data[i:i] = draw(st.binary(max_size=16))
        elif op == 4:
            field = draw(st.sampled_from(FIELDS))
            data[i:i + len(field)] = field
        else:
            j, n = draw(st.integers(0, len(data) - 1)), draw(st.integers(1, 64))
            data[i:i] = data[j:j + n]
    return bytes(data)


def _check_array(out: np.ndarray | None) -> None:
    if out is not None:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.flags.c_contiguous
        assert 1 <= out.shape[0] * out.shape[1] <= MAX_PIXELS


@fuzz(st.one_of(mutated(), st.binary(max_size=512)))
def test_fuzz_decoder(data: bytes) -> None:
    """load_image / load_image_draft / image_size on mutated files: an RGB array or InvalidImage."""
    _check_array(guarded("decoder: load_image", load_image, data, max_pixels=MAX_PIXELS))
    _check_array(guarded("decoder: load_image_draft", load_image_draft, data, (64, 64), max_pixels=MAX_PIXELS))
    size = guarded("decoder: image_size", image_size, data)
    assert size is None or (isinstance(size[0], int) and isinstance(size[1], int))
