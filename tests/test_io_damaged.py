"""Damaged or forged JPEG, GIF, WebP and TIFF files are refused from their structure, before
the decoder allocates the pixels they claim (asm.io.truncation); honest files, however
compressible, still load. Every file is built here (asm.testing.forge, PIL)."""

from __future__ import annotations

import io
import struct
import types

import pytest
from PIL import Image

from asm.errors import InvalidImage
from asm.io import load_image, load_image_draft
from asm.io.truncation import check_structure, lzw_max_output
from asm.testing import forge
from tests.test_io import _forbid_decoding, _refused, _save


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_scan_too_short_for_its_frame(monkeypatch, progressive):
    data = forge.jpeg_short_scan(7000, 7000, progressive=progressive)
    assert len(data) < 4000
    _forbid_decoding(monkeypatch)
    for load in (load_image, lambda d: load_image_draft(d, (500, 500))):
        with pytest.raises(InvalidImage) as ei:
            load(data)
        _refused(ei, InvalidImage, "JPEG data end before its pixels", "7000x7000", "blocks")


@pytest.mark.parametrize("build, words", [
    (forge.gif_short_data, ("GIF data end before its pixels", "7000x7000", "LZW")),
    (forge.gif_frame_outside, ("outside its 64x64 screen",)),
    (forge.webp_claims, ("WebP data end before its pixels", "7000x7000", "macroblocks")),
    (forge.tiff_strips_past_end, ("strip 1 of 1 lies past the end",)),
    (forge.tiff_deflate_too_short, ("TIFF data end before its pixels", "7000x7000")),
])
def test_forgery_refused_before_its_pixels_are_allocated(monkeypatch, build, words):
    """GIF LZW data too short, a frame outside the screen, VP8 headers too short for the
    macroblocks, TIFF strips past the end or too short to inflate to the page."""
    _forbid_decoding(monkeypatch)
    with pytest.raises(InvalidImage) as ei:
        load_image(build(7000, 7000))
    assert len(_refused(ei, InvalidImage, *words)) < 250


def test_webp_chunks_that_do_not_add_up(monkeypatch):
    """libwebp's demuxer refuses these when the file is opened (asm.io.truncation checks again)."""
    _forbid_decoding(monkeypatch)
    real = forge.real("WEBP", 640, 480)
    for data in (forge.webp_bad_chunks(7000, 7000), real[: len(real) // 2]):  # a chunk past the RIFF end; a cut file
        with pytest.raises(InvalidImage) as ei:
            load_image(data)
        _refused(ei, InvalidImage, "cannot read the data as an image")


@pytest.mark.parametrize("data, words", [
    (forge.webp_bad_chunks(7000, 7000), "chunk sizes do not add up"),
    (forge.real("WEBP", 640, 480)[:5000], "cut short: its RIFF header says"),
    (forge.webp_frame_outside(7000, 7000), "outside its 64x48 canvas"),
])
def test_webp_structure_checks_by_themselves(data, words):
    """What libwebp already refuses at open, asm.io.truncation refuses too (in its own words)."""
    with pytest.raises(InvalidImage, match=words):
        check_structure(types.SimpleNamespace(format="WEBP"), io.BytesIO(data), len(data))


@pytest.mark.parametrize("fmt, save", [
    ("JPEG", {"quality": 5}), ("JPEG", {"quality": 5, "progressive": True}), ("JPEG", {"quality": 5, "subsampling": 0}),
    ("GIF", {}), ("WEBP", {"quality": 0}), ("WEBP", {"lossless": True}),
    ("TIFF", {"compression": "tiff_adobe_deflate"}), ("TIFF", {"compression": "tiff_lzw"}), ("TIFF", {"compression": "packbits"}),
])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_honest_files_as_compressible_as_they_come_still_load(fmt, save, mode):
    """All-black pictures compress the most; the bounds are the formats' own, so they pass."""
    data = _save(Image.new(mode, (3000, 2000)), fmt, **save)
    assert load_image(data, max_pixels=None).shape == (2000, 3000, 3)


def test_honest_animations_still_load():
    frames = [Image.new("RGB", (600, 400), colour) for colour in ((0, 0, 0), (255, 0, 0))]
    for fmt in ("GIF", "WEBP"):
        assert load_image(_save(frames[0], fmt, save_all=True, append_images=frames[1:])).shape == (400, 600, 3)


def test_lzw_bound_is_an_upper_bound():
    """What honest GIF encoders reach stays under it; the first codes give 1, 2, 3, ... symbols."""
    assert lzw_max_output(3 * 3, 2) == 1 + 2 + 3
    data = _save(Image.new("L", (3000, 2000)), "GIF")
    screen = struct.unpack("<HH", data[6:10])
    assert screen == (3000, 2000) and lzw_max_output(len(data) * 8, 8) >= 3000 * 2000
