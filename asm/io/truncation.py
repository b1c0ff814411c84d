"""JPEG, GIF, WebP and TIFF files whose data cannot cover the pixels their header declares,
found from the file's structure before the decoder allocates those pixels.

Each check reads markers, chunks or tags only (a few reads and seeks) and raises
:class:`~asm.errors.InvalidImage` where the format gives a hard bound; where it gives none
(arithmetic-coded JPEG, lossless WebP, LZW-less TIFF compressions) it says nothing and the
pixel limit (:mod:`asm.io.limits`) bounds the allocation.

* JPEG (Huffman-coded, baseline or progressive): every 8x8 block of the first scan costs at
  least one bit (a Huffman code is 1-16 bits long).
* GIF: the first frame must lie inside the logical screen (Pillow would grow the canvas to
  hold it), and its LZW data must be able to decode to its pixels.
* WebP: the chunk sizes must add up within the RIFF size and the file; an animation frame
  must lie inside the canvas; a lossy (VP8) frame's first partition must hold at least
  1.5 bits per 16x16 macroblock (key-frame intra modes use fixed probabilities: at least
  0.82 bits for the luma mode and 0.85 for the chroma mode).
* TIFF: every strip or tile must lie inside the file; deflate, PackBits and LZW data must
  be able to expand to the page's bytes.
"""

from __future__ import annotations

import struct
from typing import Any

from PIL import Image

from asm.errors import InvalidImage

__all__ = ["check_structure", "lzw_max_output", "DEFLATE_MAX_RATIO"]

#: deflate expands its input at most ~1032 times.
DEFLATE_MAX_RATIO = 1032
#: PackBits: 2 bytes make at most 128.
_PACKBITS_MAX_RATIO = 64
#: The fewest bits a VP8 key frame's first partition spends per macroblock (module docstring).
_VP8_BITS_PER_MACROBLOCK = 1.5
_HUFFMAN_SOF = (0xC0, 0xC1, 0xC2)


def check_structure(im: Image.Image, fp: Any, end: int) -> None:
    """Raise :class:`~asm.errors.InvalidImage` if ``im``'s file (``fp``, ``end`` bytes long) is
    too short or inconsistent for the pixels it declares; leaves ``fp``'s position alone."""
    check = _CHECKS.get(im.format or "")
    if check is None:
        return
    pos = fp.tell()
    try:
        check(im, fp, end)
    finally:
        fp.seek(pos)


def _short(fmt: str, w: int, h: int, have: str) -> InvalidImage:
    return InvalidImage(f"The {fmt} data end before its pixels do: the header declares {w}x{h} pixels but the file "
                        f"holds only {have} (truncated or forged).")


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _read(fp: Any, at: int, n: int) -> bytes:
    fp.seek(at)
    return fp.read(n)


# --------------------------------------------------------------------------- JPEG


def _check_jpeg(im: Image.Image, fp: Any, end: int) -> None:
    frame = scan = None
    at = 2
    while at + 4 <= end:
        head = _read(fp, at, 2)
        if len(head) < 2 or head[0] != 0xFF:
            return  # not where a marker should be: leave it to the decoder
        marker = head[1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        if marker == 0xD9:
            return
        length = struct.unpack(">H", _read(fp, at + 2, 2))[0]
        segment = _read(fp, at + 4, length - 2)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and frame is None:
            if marker not in _HUFFMAN_SOF or len(segment) < 6:
                return  # arithmetic, lossless or hierarchical: no bound
            height, width, count = struct.unpack(">HHB", segment[1:6])
            comps = {segment[6 + 3 * i]: (segment[7 + 3 * i] >> 4, segment[7 + 3 * i] & 15)
                     for i in range(count) if 8 + 3 * i < len(segment)}
            frame = (width, height, comps)
        elif marker == 0xDA:
            count = segment[0] if segment else 0
            ids = [segment[1 + 2 * i] for i in range(count) if 1 + 2 * i < len(segment)]
            spectral_start = segment[1 + 2 * count] if 1 + 2 * count < len(segment) else 0
            scan = (ids, spectral_start, at + 2 + length)
            break
        at += 2 + length
    if frame is None or scan is None:
        return
    width, height, comps = frame
    ids, spectral_start, data_at = scan
    if not width or not height or spectral_start != 0 or not comps or not all(0 < h <= 4 and 0 < v <= 4 for h, v in comps.values()):
        return  # size from a DNL marker, an AC scan first, or odd sampling: no bound
    hmax, vmax = max(h for h, _ in comps.values()), max(v for _, v in comps.values())
    in_scan = [comps[i] for i in ids if i in comps]
    if not in_scan:
        return
    if len(in_scan) == 1:  # non-interleaved: the component's own blocks
        h, v = in_scan[0]
        blocks = _ceil(_ceil(width * h, hmax), 8) * _ceil(_ceil(height * v, vmax), 8)
    else:
        blocks = _ceil(width, 8 * hmax) * _ceil(height, 8 * vmax) * sum(h * v for h, v in in_scan)
    have = max(0, end - data_at)
    if have * 8 < blocks:
        raise _short("JPEG", width, height, f"{have:,} bytes of scan data for {blocks:,} blocks of at least one bit")


# --------------------------------------------------------------------------- GIF


def lzw_max_output(bits: int, root_bits: int) -> int:
    """The most symbols ``bits`` bits of variable-width LZW codes (``root_bits``-bit symbols,
    codes growing to 12 bits) can decode to: the k-th code after a clear gives at most k
    symbols, and once the table is full no code gives more than the longest entry."""
    width, next_code = root_bits + 1, (1 << root_bits) + 2
    out = codes = 0
    while bits >= width and next_code < 4096:
        bits -= width
        codes += 1
        out += codes
        if codes >= 2:
            next_code += 1
            if next_code == 1 << width and width < 12:
                width += 1
    if next_code >= 4096:
        out += (bits // 12) * (codes + 1)
    return out


def _check_gif(im: Image.Image, fp: Any, end: int) -> None:
    head = _read(fp, 0, 13)
    if len(head) < 13:
        return
    screen_w, screen_h, flags = struct.unpack("<HHB", head[6:11])
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while at < end:
        kind = _read(fp, at, 1)
        if kind == b"\x21":  # extension: label, then sub-blocks
            at = _skip_blocks(fp, at + 2, end)[0]
        elif kind == b"\x2c":
            desc = _read(fp, at + 1, 9)
            if len(desc) < 9:
                return
            left, top, w, h, flags = struct.unpack("<HHHHB", desc)
            if screen_w and screen_h and (left + w > screen_w or top + h > screen_h):
                raise InvalidImage(f"The GIF's first frame ({w}x{h} at {left},{top}) lies outside its "
                                   f"{screen_w}x{screen_h} screen (damaged or forged).")
            at += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            root = _read(fp, at, 1)
            if not root or not 2 <= root[0] <= 8:
                return
            _, data = _skip_blocks(fp, at + 1, end)
            if lzw_max_output(data * 8, root[0]) < w * h:
                raise _short("GIF", w, h, f"{data:,} bytes of LZW data")
            return
        else:
            return


def _skip_blocks(fp: Any, at: int, end: int) -> tuple[int, int]:
    """``(position after the sub-blocks starting at at, bytes of data they hold)``; a block
    cut by the end of the file counts what is there."""
    data = 0
    while at < end:
        size = _read(fp, at, 1)
        if not size or size[0] == 0:
            return at + 1, data
        data += min(size[0], end - at - 1)
        at += 1 + size[0]
    return at, data


# --------------------------------------------------------------------------- WebP


def _check_webp(im: Image.Image, fp: Any, end: int) -> None:
    head = _read(fp, 0, 12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WEBP":
        return
    riff_end = 8 + struct.unpack("<I", head[4:8])[0]
    if riff_end > end:
        raise InvalidImage(f"The WebP file is cut short: its RIFF header says {riff_end:,} bytes, the file has {end:,} "
                           "(truncated or forged).")
    canvas = None
    for kind, at, size in _riff_chunks(fp, 12, riff_end, "WebP"):
        if kind == b"VP8X" and size >= 10:
            d = _read(fp, at + 4, 6)
            canvas = (1 + int.from_bytes(d[:3], "little"), 1 + int.from_bytes(d[3:], "little"))
        elif kind == b"ANMF" and size >= 16:
            d = _read(fp, at, 12)
            x, y = 2 * int.from_bytes(d[:3], "little"), 2 * int.from_bytes(d[3:6], "little")
            w, h = 1 + int.from_bytes(d[6:9], "little"), 1 + int.from_bytes(d[9:12], "little")
            if canvas is not None and (x + w > canvas[0] or y + h > canvas[1]):
                raise InvalidImage(f"A WebP animation frame ({w}x{h} at {x},{y}) lies outside its "
                                   f"{canvas[0]}x{canvas[1]} canvas (damaged or forged).")
            for sub, sub_at, sub_size in _riff_chunks(fp, at + 16, at + size, "WebP frame"):
                if sub == b"VP8 ":
                    _check_vp8(fp, sub_at, sub_size)
            return  # the first frame is the one decoded
        elif kind == b"VP8 ":
            _check_vp8(fp, at, size)
            return


def _riff_chunks(fp: Any, at: int, stop: int, what: str):
    """``(fourcc, data offset, size)`` of the chunks from ``at`` to ``stop``; sizes that run past
    ``stop`` are refused."""
    while at + 8 <= stop:
        head = _read(fp, at, 8)
        kind, size = head[:4], struct.unpack("<I", head[4:])[0]
        if at + 8 + size > stop:
            raise InvalidImage(f"The {what} chunk sizes do not add up: chunk {kind!r} of {size:,} bytes runs past "
                               f"the end ({stop:,} bytes; damaged or forged).")
        yield kind, at + 8, size
        at += 8 + size + (size & 1)


def _check_vp8(fp: Any, at: int, size: int) -> None:
    head = _read(fp, at, 10)
    if len(head) < 10 or head[3:6] != b"\x9d\x01\x2a" or head[0] & 1:  # not a key frame: the decoder says
        return
    first_partition = (head[0] | head[1] << 8 | head[2] << 16) >> 5
    w, h = (struct.unpack("<H", head[6:8])[0] & 0x3FFF), (struct.unpack("<H", head[8:10])[0] & 0x3FFF)
    if first_partition > size - 10:
        raise InvalidImage(f"The WebP (VP8) frame is cut short: its first partition says {first_partition:,} bytes, "
                           f"the chunk holds {size - 10:,} (truncated or forged).")
    macroblocks = _ceil(w, 16) * _ceil(h, 16)
    if first_partition * 8 + 64 < macroblocks * _VP8_BITS_PER_MACROBLOCK:
        raise _short("WebP", w, h, f"{first_partition:,} bytes of macroblock headers for {macroblocks:,} macroblocks")


# --------------------------------------------------------------------------- TIFF


def _check_tiff(im: Image.Image, fp: Any, end: int) -> None:
    tags = getattr(im, "tag_v2", None)
    if tags is None:
        return
    offsets, counts = tags.get(273), tags.get(279)
    if offsets is None or counts is None:
        offsets, counts = tags.get(324), tags.get(325)
    if not offsets or not counts:
        return
    offsets = offsets if isinstance(offsets, tuple) else (offsets,)
    counts = counts if isinstance(counts, tuple) else (counts,)
    part = "tile" if 324 in tags else "strip"
    for i, (offset, count) in enumerate(zip(offsets, counts)):
        if offset + count > end:
            raise InvalidImage(f"The TIFF's {part} {i + 1} of {len(offsets)} lies past the end of the file: bytes "
                               f"{offset:,} to {offset + count:,} of {end:,} (truncated or forged).")
    w, h = im.size
    bits = tags.get(258, (1,))
    bits = sum(bits) if isinstance(bits, tuple) else int(bits)
    need = h * _ceil(w * bits, 8)
    total = sum(counts[: len(offsets)])
    compression = tags.get(259, 1)
    if compression in (8, 32946):
        most = total * DEFLATE_MAX_RATIO + 4096 * len(offsets)
    elif compression == 32773:
        most = total * _PACKBITS_MAX_RATIO + 128 * len(offsets)
    elif compression == 5:  # every strip is an LZW stream of its own; one stream of all their bits bounds them all
        most = lzw_max_output(total * 8, 8) + 4096 * len(offsets)
    else:
        return
    if most < need:
        raise _short("TIFF", w, h, f"{total:,} bytes of compressed pixel data")


_CHECKS = {"JPEG": _check_jpeg, "MPO": _check_jpeg, "GIF": _check_gif, "WEBP": _check_webp, "TIFF": _check_tiff}

