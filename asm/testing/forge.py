"""Small image files that lie about their size: what the decoder's checks must refuse
before the pixels are allocated (tests, ``benchmarks/bench_damaged.py``, the fuzz seeds).

Each builder returns the bytes of a file of a few KB that claims ``width x height`` pixels.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

__all__ = ["real", "jpeg_short_scan", "gif_short_data", "gif_frame_outside", "webp_bad_chunks", "webp_claims", "webp_frame_outside",
           "tiff_strips_past_end", "tiff_deflate_too_short", "FORGERIES"]


def real(fmt: str, width: int = 64, height: int = 48, **save: object) -> bytes:
    """An honest ``width x height`` picture (gradients and noise) encoded as ``fmt``."""
    rng = np.random.default_rng(width * 7 + height)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x ^ y) & 255], axis=2)
    pixels = np.clip(pixels + rng.integers(-20, 20, pixels.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **save)
    return buf.getvalue()


# --------------------------------------------------------------------------- JPEG


def jpeg_short_scan(width: int = 7000, height: int = 7000, progressive: bool = False) -> bytes:
    """A 64x48 JPEG whose frame header (SOF) says ``width x height``: its scan data are far too
    short for that many blocks."""
    data = bytearray(real("JPEG", progressive=progressive, quality=80))
    i = 2
    while i + 4 <= len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            data[i + 5:i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise AssertionError("no SOF marker in Pillow's JPEG")


# --------------------------------------------------------------------------- GIF


def _gif(screen: tuple[int, int], frame: tuple[int, int, int, int], lzw: bytes, min_code_size: int = 2) -> bytes:
    """A GIF89a with a 4-colour global palette and one frame ``(left, top, w, h)`` holding ``lzw``."""
    head = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x81, 0, 0) + bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    blocks = b"".join(bytes([len(lzw[i:i + 255])]) + lzw[i:i + 255] for i in range(0, len(lzw), 255))
    return head + b"\x2c" + struct.pack("<HHHHB", *frame, 0) + bytes([min_code_size]) + blocks + b"\x00\x3b"


def gif_short_data(width: int = 7000, height: int = 7000) -> bytes:
    """A GIF whose one ``width x height`` frame has 2 KB of LZW data (a few hundred thousand
    pixels at the very most)."""
    return _gif((width, height), (0, 0, width, height), bytes(range(256)) * 8)


def gif_frame_outside(width: int = 7000, height: int = 7000) -> bytes:
    """A GIF with a 64x64 screen whose first frame lies at ``(width - 64, height - 64)``
    (Pillow would grow the canvas to ``width x height``)."""
    return _gif((64, 64), (width - 64, height - 64, 64, 64), bytes(range(256)) * 4)


# --------------------------------------------------------------------------- WebP


def _webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, i = [], 12
    while i + 8 <= len(data):
        kind, size = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])[0]
        out.append((kind, data[i + 8:i + 8 + size]))
        i += 8 + size + (size & 1)
    return out


def _riff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(k + struct.pack("<I", len(c)) + c + (b"\0" if len(c) & 1 else b"") for k, c in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def webp_claims(width: int = 7000, height: int = 7000) -> bytes:
    """A small lossy WebP whose VP8X canvas and VP8 frame both say ``width x height``
    (consistent chunks: nothing tells the lie before decoding)."""
    [(kind, vp8)] = _webp_chunks(real("WEBP", quality=80))
    assert kind == b"VP8 ", kind
    vp8 = bytearray(vp8)
    vp8[6:10] = struct.pack("<HH", width & 0x3FFF, height & 0x3FFF)
    vp8x = struct.pack("<I", 0) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return _riff([(b"VP8X", vp8x), (b"VP8 ", bytes(vp8))])


def webp_bad_chunks(width: int = 7000, height: int = 7000) -> bytes:
    """:func:`webp_claims` whose VP8 chunk says it is 1 MB long: the chunk sizes no longer add
    up to the RIFF size."""
    data = bytearray(webp_claims(width, height))
    i = data.index(b"VP8 ")
    data[i + 4:i + 8] = struct.pack("<I", 1_000_000)
    return bytes(data)


def webp_frame_outside(width: int = 7000, height: int = 7000) -> bytes:
    """An animated WebP with a 64x48 canvas whose first frame (64x48) lies at
    ``(width - 64, height - 48)``."""
    [(_, vp8)] = _webp_chunks(real("WEBP", quality=80))
    vp8x = struct.pack("<I", 0x02) + (63).to_bytes(3, "little") + (47).to_bytes(3, "little")
    anim = struct.pack("<IH", 0, 0)
    frame = (((width - 64) // 2).to_bytes(3, "little") + ((height - 48) // 2).to_bytes(3, "little")
             + (63).to_bytes(3, "little") + (47).to_bytes(3, "little") + (100).to_bytes(3, "little") + b"\0")
    frame += b"VP8 " + struct.pack("<I", len(vp8)) + vp8 + (b"\0" if len(vp8) & 1 else b"")
    return _riff([(b"VP8X", vp8x), (b"ANIM", anim), (b"ANMF", frame)])


# --------------------------------------------------------------------------- TIFF


def _tiff(width: int, height: int, compression: int, strip: bytes, byte_count: int) -> bytes:
    """A little-endian RGB TIFF with one strip ``strip`` whose byte count says ``byte_count``."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, None), (259, 3, 1, compression),
               (262, 3, 1, 2), (273, 4, 1, None), (277, 3, 1, 3), (278, 4, 1, height), (279, 4, 1, byte_count)]
    ifd_size = 2 + 12 * len(entries) + 4
    bps_at = 8 + ifd_size
    strip_at = bps_at + 6
    out = bytearray(b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        value = {258: bps_at, 273: strip_at}.get(tag, value)
        packed = struct.pack("<HI", value, 0)[:4] if kind == 3 and count == 1 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + packed
    out += struct.pack("<I", 0) + struct.pack("<HHH", 8, 8, 8) + strip
    return bytes(out)


def tiff_strips_past_end(width: int = 7000, height: int = 7000) -> bytes:
    """A deflate TIFF whose one strip's byte count runs 10 MB past the file's end."""
    return _tiff(width, height, 8, zlib.compress(b"\0" * 4096), 10_000_000)


def tiff_deflate_too_short(width: int = 7000, height: int = 7000) -> bytes:
    """A deflate TIFF whose strip (honestly counted) is far too short to inflate to its pixels."""
    strip = zlib.compress(b"\0" * 4096)
    return _tiff(width, height, 8, strip, len(strip))


#: ``name -> builder(width, height)`` of every forgery (a few KB claiming ``width x height``).
FORGERIES = {
    "jpeg_short_scan": jpeg_short_scan,
    "gif_short_data": gif_short_data,
    "gif_frame_outside": gif_frame_outside,
    "webp_bad_chunks": webp_bad_chunks,
    "webp_claims": webp_claims,
    "tiff_strips_past_end": tiff_strips_past_end,
    "tiff_deflate_too_short": tiff_deflate_too_short,
}
