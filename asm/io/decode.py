"""Turn untrusted image input into ``HxWx3`` uint8 RGB arrays, and encode crops back.

* :func:`load_image` -- path / bytes / file-like / PIL image / numpy array -> ``HxWx3`` uint8
  RGB. EXIF orientation applied; every colour mode (CMYK, L, I;16, I, F, P, 1, alpha modes)
  converted; alpha composited over mid-grey ``(128, 128, 128)``; animations give their first
  frame. The pixel limit and the minimum side are checked from the *header*, before anything
  is decoded, so decompression bombs are refused cheaply. Anything that goes wrong is an
  :class:`asm.errors.InvalidImage` (or its subclasses :class:`~asm.errors.ImageTooLarge`,
  :class:`~asm.errors.ImageTooSmall`); no raw PIL / OS error escapes.
* :func:`image_size` -- ``(width, height)`` after EXIF orientation, without decoding pixels.
* :func:`encode_png` / :func:`encode_jpeg` -- ``HxW`` / ``HxWx3`` / ``HxWx4`` uint8 -> bytes.

Only common raster formats are read from files/bytes (JPEG/MPO, PNG/APNG, GIF, WebP, BMP,
TIFF, PPM/PGM/PBM, and AVIF/HEIF when the installed Pillow has them); exotic or risky
plugins (EPS, which runs Ghostscript; TGA, which has no magic number; ...) are never tried.

This module never changes PIL's global settings (``ImageFile.LOAD_TRUNCATED_IMAGES`` stays
as it is, ``Image.MAX_IMAGE_PIXELS`` too). Our own ``max_pixels`` is the limit that counts;
PIL's ``DecompressionBombWarning`` is silenced while the header is read and its
``DecompressionBombError`` (above ``2 * Image.MAX_IMAGE_PIXELS``, ~179 MP by default) becomes
:class:`~asm.errors.ImageTooLarge` -- so ``max_pixels`` above ~179 MP only works if the
application also raises ``Image.MAX_IMAGE_PIXELS``.

Numpy input policy (documented because it is a choice):

* shapes ``HxW``, ``HxWx1`` (grey), ``HxWx3`` (RGB), ``HxWx4`` (RGBA, composited over grey);
* ``uint8`` as is; ``bool`` -> 0 / 255; ``uint16`` scaled like a 16-bit PNG (65535 -> 255);
  other integer dtypes accepted when every value is in ``[0, 255]``;
  floating dtypes must be finite and in ``[0, 1]`` (scaled by 255 and rounded);
  anything else (out of range, NaN, complex, object) is :class:`~asm.errors.InvalidImage`;
* the result is always a new C-contiguous array (never a view of the caller's data).
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import threading
import warnings
from typing import IO, Any, Union

import numpy as np
from PIL import Image, ImageOps

from asm.errors import ImageTooLarge, ImageTooSmall, InvalidImage, InvalidOption, echo

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

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MIN_SIDE = 32
#: RGB colour transparent pixels are composited over.
BACKGROUND = (128, 128, 128)

ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Image.Image, np.ndarray]

# Formats tried when reading files / bytes (only those the installed Pillow registers).
_WANTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "PPM", "AVIF", "HEIF")
_FRIENDLY_FORMATS = "JPEG, PNG, GIF, WebP, BMP or TIFF"
_formats_cache: tuple[str, ...] | None = None

# ``warnings.catch_warnings`` swaps a process-global filter list; serialise our own use of it
# (only around header parsing, which is cheap) so concurrent calls cannot leak filters.
_OPEN_LOCK = threading.Lock()

_EXIF_ORIENTATION = 0x0112


# --------------------------------------------------------------------------- public API


def load_image(
    source: ImageSource,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
) -> np.ndarray:
    """Decode untrusted ``source`` into an ``HxWx3`` uint8 RGB array (new, C-contiguous).

    Args:
        source: a path (``str`` / ``os.PathLike``), encoded bytes (``bytes`` / ``bytearray`` /
            ``memoryview``), a binary file-like object, a ``PIL.Image.Image``, or a numpy
            array ``HxW`` / ``HxWx1`` / ``HxWx3`` / ``HxWx4`` (see the module docstring for
            accepted dtypes).
        max_pixels: largest ``width * height`` accepted, checked from the header before
            decoding; ``None`` disables our limit (PIL's own hard limit still applies).
        min_side: shortest side accepted, in pixels (after EXIF orientation).

    Returns:
        ``np.ndarray`` of shape ``(H, W, 3)``, dtype ``uint8``; ``H, W`` are the displayed
        (EXIF-oriented) height and width.

    Raises:
        ImageTooLarge: more than ``max_pixels`` pixels.
        ImageTooSmall: a side shorter than ``min_side``.
        InvalidImage: anything else unreadable (empty, truncated, corrupt, unsupported,
            missing file, wrong input type).
        InvalidOption: ``max_pixels`` / ``min_side`` themselves are invalid.
    """
    _check_options(max_pixels, min_side)
    if isinstance(source, np.ndarray):
        return _load_array(source, max_pixels, min_side)
    if isinstance(source, Image.Image):
        return _load_pil(source, max_pixels, min_side)
    with _open(source, max_pixels) as im:
        return _load_pil(im, max_pixels, min_side)


def load_image_draft(
    source: ImageSource,
    size: tuple[int, int],
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
) -> np.ndarray:
    """:func:`load_image` for when a picture of about ``size = (width, height)`` is enough.

    A JPEG is decoded at 1/2, 1/4 or 1/8 of its size in the DCT domain (Pillow's ``draft``;
    far less memory and time), as small as keeps both (EXIF-oriented) sides at least
    ``size``'s; other sources are decoded in full. The limits are checked against the full
    size from the header, as in :func:`load_image`. The result covers the whole image; its
    own shape says the scale.
    """
    _check_options(max_pixels, min_side)
    if isinstance(source, (np.ndarray, Image.Image)):
        return load_image(source, max_pixels, min_side)
    with _open(source) as im:
        _check_size(im.size[0], im.size[1], max_pixels, min_side)
        if im.format == "JPEG":
            w, h = size
            if _oriented_size(im) != im.size:  # EXIF turns it by 90 degrees: ask in stored axes
                w, h = h, w
            try:
                im.draft(None, (max(1, int(w)), max(1, int(h))))
            except Exception:  # an unusual JPEG the plugin cannot scale: decode it in full
                pass
        return _load_pil(im, max_pixels, min_side)


def image_size(source: ImageSource) -> tuple[int, int]:
    """``(width, height)`` as displayed (after EXIF orientation), without decoding pixels.

    Accepts the same sources as :func:`load_image`; a numpy array gives
    ``(shape[1], shape[0])``. Raises :class:`~asm.errors.InvalidImage` if the header cannot be
    read (and :class:`~asm.errors.ImageTooLarge` for images beyond PIL's hard limit).
    """
    if isinstance(source, np.ndarray):
        if source.ndim not in (2, 3):
            raise InvalidImage(_array_shape_message(source.shape))
        return int(source.shape[1]), int(source.shape[0])
    if isinstance(source, Image.Image):
        return _oriented_size(source)
    with _open(source) as im:
        return _oriented_size(im)


def allow_pixels(max_pixels: int) -> None:
    """Raise PIL's own hard limit so that ``max_pixels`` (ours) is the one that counts.

    For applications (the CLI, the TorchServe handler): PIL refuses images above
    ``2 * Image.MAX_IMAGE_PIXELS`` (~179 MP) whatever ``load_image`` is told; this lifts that
    limit to ``max_pixels`` when it is higher, and never lowers it.
    """
    if Image.MAX_IMAGE_PIXELS is not None and 2 * Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


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


# --------------------------------------------------------------------------- opening


def _allowed_formats() -> tuple[str, ...]:
    global _formats_cache
    if _formats_cache is None:
        Image.init()  # registers every plugin Pillow has (idempotent)
        _formats_cache = tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)
    return _formats_cache


def _open(source: Any, max_pixels: int | None = None) -> Image.Image:
    """``Image.open`` on a path / bytes / file-like with every failure mapped to our errors.

    Lazy: reads the header only. The caller must close the result (use it as a context
    manager).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise InvalidImage("The image is empty (0 bytes).")
        fp: Any = io.BytesIO(data)
        what = "data"
    elif isinstance(source, (str, os.PathLike)):
        fp = os.fspath(source)
        if isinstance(fp, bytes):
            fp = os.fsdecode(fp)
        try:
            mode = os.stat(fp).st_mode
        except OSError as e:
            reason = "no such file" if isinstance(e, FileNotFoundError) else (e.strerror or type(e).__name__).lower()
            raise InvalidImage(f"Cannot read image file {echo(fp)}: {reason}.") from None
        if not stat.S_ISREG(mode):
            reason = "it is a directory" if stat.S_ISDIR(mode) else "it is not a regular file (a device, pipe or socket)"
            raise InvalidImage(f"Cannot read image file {echo(fp)}: {reason}.")
        if os.path.getsize(fp) == 0:
            raise InvalidImage(f"The image file {echo(fp)} is empty (0 bytes).")
        what = f"file {echo(fp)}"
    elif hasattr(source, "read"):
        if isinstance(source, io.TextIOBase):
            raise InvalidImage("The image must be read in binary mode, not as text.")
        fp = source
        what = "data"
    else:
        raise InvalidImage(
            f"Unsupported image input of type {type(source).__name__}; expected a path, bytes, "
            "a binary file object, a PIL image or a numpy array."
        )

    formats = _allowed_formats()
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fp, formats=list(formats))
    except Image.DecompressionBombError as e:
        raise _too_large_for_pil(e, max_pixels) from e
    except Image.UnidentifiedImageError as e:
        empty = _is_empty_stream(fp)
        if empty:
            raise InvalidImage("The image is empty (0 bytes).") from e
        kind = _sniff(fp)
        if kind in formats:  # the right magic number, but the plugin gave up: damaged, not foreign
            raise InvalidImage(f"The {what} looks like a {kind} image but is damaged and cannot be read.") from e
        raise InvalidImage(
            f"The {what} is not an image in a supported format (expected {_FRIENDLY_FORMATS})."
        ) from e
    except MemoryError:
        raise
    except Exception as e:  # OSError, SyntaxError, struct.error, ValueError, ... from plugins
        raise InvalidImage(f"Cannot read the {what} as an image: {_short(e)}") from e


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
          (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def _sniff(fp: Any) -> str | None:
    """The format named by the first bytes of ``fp`` (a path or a stream), if any."""
    try:
        if isinstance(fp, str):
            with open(fp, "rb") as f:
                head = f.read(16)
        else:
            pos = fp.tell()
            fp.seek(0)
            head = fp.read(16)
            fp.seek(pos)
    except Exception:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def _is_empty_stream(fp: Any) -> bool:
    try:
        pos = fp.tell()
        fp.seek(0, io.SEEK_END)
        end = fp.tell()
        fp.seek(pos)
        return end == 0
    except Exception:
        return False


# --------------------------------------------------------------------------- PIL -> array


def _load_pil(im: Image.Image, max_pixels: int | None, min_side: int) -> np.ndarray:
    # 1. header checks -- nothing decoded yet (PIL's open is lazy). Orientation swaps the
    #    sides but changes neither the pixel count nor the shorter side.
    w, h = im.size
    _check_size(w, h, max_pixels, min_side)
    _check_data_length(im)

    # 2. decode (first frame of animations: Image.open leaves us on frame 0)
    try:
        im.load()
    except Image.DecompressionBombError as e:
        raise _too_large_for_pil(e, max_pixels) from e
    except MemoryError:
        raise
    except Exception as e:  # truncated / corrupt data
        raise InvalidImage(f"The image data is corrupt or truncated and cannot be decoded ({_short(e)}).") from e
    if im.size != (w, h):  # some plugins pick another size at load time; re-check
        w, h = im.size
        _check_size(w, h, max_pixels, min_side)

    # 3. EXIF orientation (a broken EXIF block must not make a readable image unreadable)
    try:
        oriented = ImageOps.exif_transpose(im)
    except MemoryError:
        raise
    except Exception:
        oriented = None
    if oriented is not None:
        im = oriented

    # 4. colour conversion
    try:
        out = _pil_to_rgb(im)
    except (InvalidImage, MemoryError):
        raise
    except Exception as e:
        raise InvalidImage(f"The image uses a colour mode ({im.mode}) that cannot be converted to RGB.") from e
    _check_size(out.shape[1], out.shape[0], max_pixels, min_side)
    return out


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


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    w, h = im.size
    try:
        orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:
        orientation = 1
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return int(w), int(h)


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


# --------------------------------------------------------------------------- checks


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


#: deflate (PNG) expands its input at most ~1032 times.
_DEFLATE_MAX_RATIO = 1032
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _check_data_length(im: Image.Image) -> None:
    """Refuse, before decoding allocates the pixels, files whose data end before the pixels do.

    PNG: the IDAT chunks must be able to inflate to the scanlines the header declares
    (deflate expands at most ~1032x). Uncompressed tiles (BMP, PPM, raw TIFF): the file must
    reach the tile's offset plus at least one bit per pixel. Other formats (JPEG, GIF, WebP,
    compressed TIFF) have no such bound; their decoders find the truncation.
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
        if im.format == "PNG":
            have, need = _png_pixel_bytes(fp), None
            fp.seek(pos)
            if have is None:
                return
            depth, colour = have[1], have[2]
            need = h * (1 + (w * depth * _PNG_CHANNELS.get(colour, 1) + 7) // 8)
            if have[0] * _DEFLATE_MAX_RATIO + 4096 < need:
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


def _short(e: BaseException, limit: int = 200) -> str:
    text = str(e).strip() or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
