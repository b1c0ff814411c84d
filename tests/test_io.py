"""Tests for asm.io / asm.errors: every image is generated here (PIL / numpy / hand-made PNGs)."""

from __future__ import annotations

import io
import pickle
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from asm.errors import AsmError, ImageTooLarge, ImageTooSmall, InvalidImage, InvalidOption
from asm.io import BACKGROUND, encode_jpeg, encode_png, image_size, load_image

GREY = np.array(BACKGROUND, np.uint8)
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


# --------------------------------------------------------------------------- helpers


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: list[bytes]) -> bytes:
    """Hand-made PNG (filter 0 on every row); ``rows`` are the raw scanlines."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\x00" + r for r in rows))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _bomb_png(width: int, height: int) -> bytes:
    """A real 64x64 PNG whose IHDR is patched (CRC fixed) to declare ``width x height``."""
    data = bytearray(_save(Image.new("RGB", (64, 64), RED), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _exif_jpeg(orientation: int) -> bytes:
    """Stored 60 wide x 40 tall, white, with a red 10x10 marker in the stored top-left."""
    a = np.full((40, 60, 3), 255, np.uint8)
    a[:10, :10] = RED
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(Image.fromarray(a), "JPEG", quality=95, exif=exif.tobytes())


def _refused(excinfo: pytest.ExceptionInfo, cls: type[AsmError], *words: str) -> str:
    """The error is exactly ``cls`` with its code, and a readable, informative message."""
    e = excinfo.value
    assert type(e) is cls, f"expected {cls.__name__}, got {type(e).__name__}: {e}"
    msg = str(e)
    assert 10 <= len(msg) <= 400 and "Traceback" not in msg and "\n" not in msg
    assert msg[0].isupper()
    for w in words:
        assert w.lower() in msg.lower(), msg
    assert e.to_dict() == {"error": cls.code, "message": msg}
    return msg


def _close(a: np.ndarray, colour, tol: int = 6) -> bool:
    return bool(np.all(np.abs(a.astype(int) - np.array(colour)) <= tol))


# --------------------------------------------------------------------------- errors


def test_error_hierarchy_and_codes():
    assert issubclass(InvalidImage, AsmError) and issubclass(InvalidImage, ValueError)
    assert issubclass(ImageTooLarge, InvalidImage) and issubclass(ImageTooSmall, InvalidImage)
    assert issubclass(InvalidOption, AsmError) and issubclass(InvalidOption, ValueError)
    codes = {c.code for c in (InvalidImage, ImageTooLarge, ImageTooSmall, InvalidOption)}
    assert codes == {"invalid_image", "image_too_large", "image_too_small", "invalid_option"}
    statuses = {c: c.http_status for c in (AsmError, InvalidImage, ImageTooLarge, ImageTooSmall, InvalidOption)}
    assert statuses == {AsmError: 400, InvalidImage: 400, ImageTooLarge: 413, ImageTooSmall: 422, InvalidOption: 400}
    e = ImageTooSmall("The image is too small.", width=3, height=4)
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is ImageTooSmall and str(e2) == str(e) and e2.details == {"width": 3, "height": 4}
    assert e.to_dict(with_details=True)["details"] == {"width": 3, "height": 4}


def test_import_does_not_enable_truncated_loading():
    import asm.io  # noqa: F401

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --------------------------------------------------------------------------- orientation


def test_exif_orientation_6_rotates_clockwise():
    data = _exif_jpeg(6)
    out = load_image(data)
    assert out.shape == (60, 40, 3) and out.dtype == np.uint8
    assert image_size(data) == (40, 60)
    assert _close(out[2:8, -8:-2], RED, 40)  # stored top-left -> displayed top-right
    assert _close(out[2:8, 2:8], (255, 255, 255), 40)


def test_exif_orientation_8_rotates_counterclockwise():
    data = _exif_jpeg(8)
    out = load_image(data)
    assert out.shape == (60, 40, 3)
    assert image_size(data) == (40, 60)
    assert _close(out[-8:-2, 2:8], RED, 40)  # stored top-left -> displayed bottom-left
    assert _close(out[2:8, 2:8], (255, 255, 255), 40)


def test_no_exif_keeps_orientation():
    out = load_image(_exif_jpeg(1))
    assert out.shape == (40, 60, 3) and _close(out[2:8, 2:8], RED, 40)


# --------------------------------------------------------------------------- colour modes


def test_cmyk_jpeg():
    data = _save(Image.new("CMYK", (48, 40), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = load_image(data)
    assert out.shape == (40, 48, 3) and _close(out[20, 20], RED, 12)


def test_grey_l():
    out = load_image(_save(Image.new("L", (40, 40), 77), "PNG"))
    assert out.shape == (40, 40, 3) and np.all(out == 77)


def test_i16_png_is_scaled_not_clipped():
    a = np.zeros((40, 40), np.uint16)
    a[0, 0], a[0, 1], a[0, 2] = 65535, 257 * 100, 32768
    data = _save(Image.fromarray(a), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    out = load_image(data)
    assert out.dtype == np.uint8 and out.shape == (40, 40, 3)
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == (100, 100, 100)
    assert tuple(out[0, 2]) == (128, 128, 128)
    assert tuple(out[5, 5]) == (0, 0, 0)


def test_16bit_rgb_png():
    px = struct.pack(">HHH", 65535, 0, 0x8000)
    data = _raw_png(40, 40, 16, 2, [px * 40] * 40)
    out = load_image(data)
    assert tuple(out[3, 3]) == (255, 0, 128)


def test_mode_i_and_f_pil_inputs():
    i16 = Image.fromarray(np.full((40, 40), 65535, np.int32), mode="I")
    assert np.all(load_image(i16) == 255)
    i8 = Image.fromarray(np.full((40, 40), 200, np.int32), mode="I")
    assert np.all(load_image(i8) == 200)
    f01 = Image.fromarray(np.full((40, 40), 0.5, np.float32), mode="F")
    assert np.all(load_image(f01) == 128)


def test_palette_with_transparency():
    im = Image.new("P", (40, 40), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (0, 0, 20, 40))  # left half blue, right half index 0 (red, transparent)
    data = _save(im, "PNG", transparency=0)
    out = load_image(data)
    assert tuple(out[5, 5]) == BLUE
    assert tuple(out[5, 30]) == BACKGROUND
    # without transparency the palette colour is used
    assert tuple(load_image(_save(im, "PNG"))[5, 30]) == RED


def test_rgba_alpha_composited_over_grey():
    a = np.zeros((40, 40, 4), np.uint8)
    a[..., 0] = 255  # red everywhere
    a[:, :10, 3] = 0
    a[:, 10:20, 3] = 255
    a[:, 20:, 3] = 128
    out = load_image(_save(Image.fromarray(a, "RGBA"), "PNG"))
    assert tuple(out[0, 0]) == BACKGROUND
    assert tuple(out[0, 15]) == RED
    assert _close(out[0, 30], (192, 64, 64), 1)


def test_la_alpha():
    a = np.zeros((40, 40, 2), np.uint8)
    a[:, :20] = (255, 0)  # white, transparent -> grey
    a[:, 20:] = (0, 255)  # black, opaque
    out = load_image(_save(Image.fromarray(a, "LA"), "PNG"))
    assert tuple(out[0, 0]) == BACKGROUND and tuple(out[0, 30]) == (0, 0, 0)


def test_one_bit():
    im = Image.new("1", (40, 40), 0)
    im.paste(1, (0, 0, 20, 40))
    out = load_image(_save(im, "PNG"))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[0, 30]) == (0, 0, 0)
    assert set(np.unique(out)) <= {0, 255}


# --------------------------------------------------------------------------- animations


def _frames():
    return [Image.new("RGB", (40, 40), c) for c in (RED, GREEN, BLUE)]


def test_animated_gif_first_frame():
    f = _frames()
    data = _save(f[0], "GIF", save_all=True, append_images=f[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert _close(load_image(data), RED, 2)


def test_apng_first_frame():
    f = _frames()
    data = _save(f[0], "PNG", save_all=True, append_images=f[1:], duration=50)
    assert _close(load_image(data), RED, 0)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_animated_webp_first_frame():
    f = _frames()
    data = _save(f[0], "WEBP", save_all=True, append_images=f[1:], duration=50, lossless=True)
    assert _close(load_image(data), RED, 2)


# --------------------------------------------------------------------------- size limits


@pytest.mark.parametrize("w,h", [(100_000, 100_000), (10_000, 10_000), (8_000, 8_000)])
def test_decompression_bomb_refused_before_decoding(w, h):
    # 1e10 px trips PIL's hard limit, 1e8 px only its warning, 6.4e7 px only ours.
    data = _bomb_png(w, h)
    assert len(data) < 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning may leak out
        with pytest.raises(ImageTooLarge) as ei:
            load_image(data)
    _refused(ei, ImageTooLarge, "too large")


def test_header_size_is_cheap_and_limit_configurable():
    assert image_size(_bomb_png(10_000, 10_000)) == (10_000, 10_000)
    data = _save(Image.new("RGB", (40, 40)), "PNG")
    with pytest.raises(ImageTooLarge) as ei:
        load_image(data, max_pixels=1000)
    msg = _refused(ei, ImageTooLarge, "40x40", "1,000")
    assert ei.value.details == {"width": 40, "height": 40, "max_pixels": 1000}
    assert "1,600" in msg
    assert load_image(data, max_pixels=1600).shape == (40, 40, 3)
    assert load_image(data, max_pixels=None).shape == (40, 40, 3)
    with pytest.raises(ImageTooLarge):
        load_image(np.zeros((40, 40, 3), np.uint8), max_pixels=1000)


@pytest.mark.parametrize("size", [(1, 1), (31, 100), (100, 31)])
def test_too_small(size):
    with pytest.raises(ImageTooSmall) as ei:
        load_image(_save(Image.new("RGB", size), "PNG"))
    _refused(ei, ImageTooSmall, f"{size[0]}x{size[1]}", "32")


def test_min_side_configurable_and_boundary():
    assert load_image(_save(Image.new("RGB", (32, 32)), "PNG")).shape == (32, 32, 3)
    assert load_image(Image.new("RGB", (1, 1)), min_side=1).shape == (1, 1, 3)
    with pytest.raises(ImageTooSmall):
        load_image(Image.new("RGB", (40, 40)), min_side=41)


@pytest.mark.parametrize("kw", [{"max_pixels": 0}, {"max_pixels": -5}, {"max_pixels": 1.5},
                                {"min_side": 0}, {"min_side": "32"}, {"min_side": True}])
def test_invalid_options(kw):
    with pytest.raises(InvalidOption) as ei:
        load_image(Image.new("RGB", (40, 40)), **kw)
    _refused(ei, InvalidOption, next(iter(kw)))


# --------------------------------------------------------------------------- broken input


def test_truncated_jpeg():
    rng = np.random.default_rng(0)
    data = _save(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(InvalidImage) as ei:
        load_image(data[: len(data) // 2])
    _refused(ei, InvalidImage, "truncated")


def test_truncated_png():
    rng = np.random.default_rng(1)
    data = _save(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "PNG")
    with pytest.raises(InvalidImage) as ei:
        load_image(data[: len(data) // 2])
    _refused(ei, InvalidImage)


@pytest.mark.parametrize("src", [b"", bytearray(), memoryview(b""), io.BytesIO()])
def test_empty_input(src):
    with pytest.raises(InvalidImage) as ei:
        load_image(src)
    _refused(ei, InvalidImage, "empty")


def test_empty_file(tmp_path: Path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(InvalidImage) as ei:
        load_image(p)
    _refused(ei, InvalidImage, "empty")


@pytest.mark.parametrize(
    "data",
    [
        b"Hello, this is definitely not an image.\n" * 3,
        b"<svg xmlns='http://www.w3.org/2000/svg' width='100' height='100'/>",
        np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    ],
    ids=["text", "svg", "random"],
)
def test_not_an_image(data):
    with pytest.raises(InvalidImage) as ei:
        load_image(data)
    _refused(ei, InvalidImage, "not an image", "PNG")


@pytest.mark.parametrize("fmt", ["TGA", "ICO", "PCX"])
def test_unsupported_format(fmt):
    data = _save(Image.new("RGB", (48, 48), RED), fmt)
    assert Image.open(io.BytesIO(data)).size == (48, 48)  # PIL itself would read it
    with pytest.raises(InvalidImage) as ei:
        load_image(data)
    _refused(ei, InvalidImage, "supported format")


def test_missing_file_and_directory(tmp_path: Path):
    with pytest.raises(InvalidImage) as ei:
        load_image(tmp_path / "nope.png")
    _refused(ei, InvalidImage, "no such file")
    with pytest.raises(InvalidImage) as ei:
        load_image(str(tmp_path))
    _refused(ei, InvalidImage, "directory")


@pytest.mark.parametrize("src", [42, None, [1, 2, 3], io.StringIO("abc")])
def test_unsupported_input_type(src):
    with pytest.raises(InvalidImage) as ei:
        load_image(src)
    _refused(ei, InvalidImage)


# --------------------------------------------------------------------------- source kinds


def _photo() -> np.ndarray:
    a = np.zeros((40, 50, 3), np.uint8)
    a[:, :25] = RED
    a[:, 25:] = BLUE
    return a


def test_path_str_pathlike_filelike_and_stream(tmp_path: Path):
    a = _photo()
    p = tmp_path / "x.png"
    Image.fromarray(a).save(p)
    for src in (p, str(p)):
        assert np.array_equal(load_image(src), a)
    with open(p, "rb") as f:
        assert np.array_equal(load_image(f), a)
    assert np.array_equal(load_image(io.BytesIO(p.read_bytes())), a)
    assert np.array_equal(load_image(bytearray(p.read_bytes())), a)
    assert np.array_equal(load_image(memoryview(p.read_bytes())), a)

    class Stream:  # non-seekable, read() only (e.g. a socket / request body)
        def __init__(self, data: bytes):
            self._b = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self._b.read(n)

    assert np.array_equal(load_image(Stream(p.read_bytes())), a)


def test_pil_input():
    a = _photo()
    assert np.array_equal(load_image(Image.fromarray(a)), a)
    rgba = Image.fromarray(a).convert("RGBA")
    rgba.putalpha(0)
    assert np.all(load_image(rgba) == GREY)
    assert image_size(Image.fromarray(a)) == (50, 40)


def test_numpy_inputs():
    a = _photo()
    out = load_image(a)
    assert np.array_equal(out, a) and out is not a and not np.shares_memory(out, a)
    assert out.flags.c_contiguous
    assert np.array_equal(load_image(np.asfortranarray(a)), a)
    assert np.array_equal(load_image(a[:, ::-1]), a[:, ::-1])

    grey = np.full((40, 40), 9, np.uint8)
    assert load_image(grey).shape == (40, 40, 3) and np.all(load_image(grey) == 9)
    assert np.all(load_image(grey[:, :, None]) == 9)

    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 1] = 255
    rgba[:20, :, 3] = 255
    out = load_image(rgba)
    assert tuple(out[0, 0]) == GREEN and tuple(out[30, 0]) == BACKGROUND

    assert image_size(grey) == (40, 40)


def test_numpy_dtype_policy():
    f = np.full((40, 40, 3), 0.5)
    assert np.all(load_image(f) == 128)
    assert np.all(load_image(f.astype(np.float32) * 2) == 255)
    assert np.all(load_image(np.full((40, 40), 65535, np.uint16)) == 255)
    assert np.all(load_image(np.ones((40, 40), bool)) == 255)
    assert np.all(load_image(np.full((40, 40, 3), 200, np.int64)) == 200)

    bad = {
        "float range": np.full((40, 40, 3), 255.0),
        "nan": np.full((40, 40, 3), np.nan),
        "int range": np.full((40, 40), 300, np.int32),
        "negative": np.full((40, 40), -1, np.int16),
        "complex": np.zeros((40, 40), np.complex64),
        "object": np.full((40, 40), None, object),
        "2 channels": np.zeros((40, 40, 2), np.uint8),
        "4d": np.zeros((1, 40, 40, 3), np.uint8),
        "1d": np.zeros(40, np.uint8),
    }
    for name, arr in bad.items():
        with pytest.raises(InvalidImage) as ei:
            load_image(arr)
        _refused(ei, InvalidImage)
        assert type(ei.value) is InvalidImage, name
    with pytest.raises(InvalidImage) as ei:
        load_image(np.zeros((0, 40, 3), np.uint8))
    _refused(ei, InvalidImage, "no pixels")


# --------------------------------------------------------------------------- encoders


def test_encode_png_roundtrip():
    a = _photo()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(a)))), a)
    rgba = np.dstack([a, np.full(a.shape[:2], 77, np.uint8)])
    im = Image.open(io.BytesIO(encode_png(rgba)))
    assert im.mode == "RGBA" and np.array_equal(np.asarray(im), rgba)
    g = np.arange(40 * 40, dtype=np.uint32).reshape(40, 40).astype(np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(g)))), g)
    assert np.array_equal(load_image(encode_png(a)), a)
    with pytest.raises(InvalidImage):
        encode_png(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(InvalidOption):
        encode_png(a, compress_level=11)


def test_encode_jpeg_roundtrip():
    a = _photo()
    data = encode_jpeg(a)
    assert data[:2] == b"\xff\xd8"
    back = load_image(data)
    assert back.shape == a.shape and np.abs(back.astype(int) - a).mean() < 6
    small = encode_jpeg(a, quality=10)
    assert len(small) < len(encode_jpeg(a, quality=95))
    rgba = np.dstack([a, np.zeros(a.shape[:2], np.uint8)])  # fully transparent -> grey
    assert _close(load_image(encode_jpeg(rgba)), BACKGROUND, 3)
    for q in (0, 101, 9.5, True):
        with pytest.raises(InvalidOption) as ei:
            encode_jpeg(a, quality=q)
        _refused(ei, InvalidOption, "quality")


# --------------------------------------------------------------------------- issue 14: safety and messages


def _forbid_decoding(monkeypatch):
    """Any pixel decoding (and so the allocation of the declared size) fails the test."""

    def load(self):
        raise AssertionError(f"decoded {self.size} although the data end before the pixels do")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


@pytest.mark.parametrize("size", [(7000, 7000), (2000, 1500)])
def test_forged_png_refused_before_its_pixels_are_allocated(monkeypatch, size):
    """A ~70-byte PNG that claims millions of pixels is refused from its chunk sizes alone."""
    ihdr = struct.pack(">IIBBBBB", *size, 8, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))
    assert len(data) < 140
    _forbid_decoding(monkeypatch)
    with pytest.raises(InvalidImage) as ei:
        load_image(data, max_pixels=None)
    _refused(ei, InvalidImage, "end before its pixels", f"{size[0]}x{size[1]}")


@pytest.mark.parametrize("fmt", ["BMP", "PPM"])
def test_truncated_uncompressed_image_refused_before_decoding(monkeypatch, fmt):
    data = _save(Image.new("RGB", (3000, 2000), RED), fmt)
    _forbid_decoding(monkeypatch)
    with pytest.raises(InvalidImage) as ei:
        load_image(data[:5000])
    _refused(ei, InvalidImage, "end before its pixels", "3000x2000")


def test_highly_compressed_real_pngs_still_load():
    """The bound is deflate's own maximum ratio: all-black PNGs (the most compressible) pass."""
    for mode in ("RGB", "1"):
        data = _save(Image.new(mode, (6000, 6000)), "PNG", compress_level=9)
        assert load_image(data).shape == (6000, 6000, 3)


def test_pils_limit_is_told_in_asms_words():
    with pytest.raises(ImageTooLarge) as ei:
        load_image(_bomb_png(100_000, 100_000), max_pixels=None)
    msg = _refused(ei, ImageTooLarge, "too large", "10,000,000,000 pixels", "the limit is")
    assert "DOS" not in msg and "decompression bomb" not in msg


def test_damaged_png_header_is_damaged_not_foreign():
    data = bytearray(_save(Image.new("RGB", (64, 64), RED), "PNG"))
    data[29] ^= 0xFF  # IHDR CRC
    with pytest.raises(InvalidImage) as ei:
        load_image(bytes(data))
    msg = _refused(ei, InvalidImage, "PNG", "damaged")
    assert "not an image" not in msg


def test_device_is_not_a_regular_file():
    with pytest.raises(InvalidImage) as ei:
        load_image("/dev/zero")
    msg = _refused(ei, InvalidImage, "not a regular file")
    assert "no such file" not in msg


def test_long_path_is_echoed_short(tmp_path: Path):
    with pytest.raises(InvalidImage) as ei:
        load_image(tmp_path / ("x" * 200 + ".png"))
    assert len(_refused(ei, InvalidImage, "no such file")) < 200
