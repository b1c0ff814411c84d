"""Turn untrusted image input into ``HxWx3`` uint8 RGB arrays.

* :func:`load_image` -- path / bytes / file-like / PIL image / numpy array -> ``HxWx3`` uint8
  RGB. EXIF orientation applied; every colour mode (CMYK, L, I;16, I, F, P, 1, alpha modes)
  converted; alpha composited over mid-grey ``(128, 128, 128)``; animations give their first
  frame. The pixel limit and the minimum side are checked from the *header*, before anything
  is decoded, so decompression bombs are refused cheaply (:mod:`asm.io.limits`). Anything that
  goes wrong is an :class:`asm.errors.InvalidImage` (or its subclasses
  :class:`~asm.errors.ImageTooLarge`, :class:`~asm.errors.ImageTooSmall`); no raw PIL / OS
  error escapes.
* :func:`load_image_draft` -- the same, decoding a JPEG at a reduced scale when a smaller
  picture is enough.
* :func:`image_size` -- ``(width, height)`` after EXIF orientation, without decoding pixels.

Only common raster formats are read from files/bytes (JPEG/MPO, PNG/APNG, GIF, WebP, BMP,
TIFF, PPM/PGM/PBM, and AVIF/HEIF when the installed Pillow has them); exotic or risky
plugins (EPS, which runs Ghostscript; TGA, which has no magic number; ...) are never tried.
Colour modes and numpy arrays become RGB in :mod:`asm.io.pixels` (its docstring gives the
numpy input policy).
"""

from __future__ import annotations

import io
import os
import stat
import threading
import warnings
from typing import IO, Any, Union

import numpy as np
from PIL import Image, ImageOps

from asm.errors import InvalidImage, echo
from asm.io.limits import (DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE, _check_data_length, _check_options, _check_size,
                           _too_large_for_pil)
from asm.io.pixels import _array_shape_message, _load_array, _pil_to_rgb

__all__ = ["load_image", "load_image_draft", "image_size", "ImageSource"]

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
    try:  # (only where a tag asks: exif_transpose copies the image even when it has nothing to do)
        oriented = ImageOps.exif_transpose(im) if im.getexif().get(_EXIF_ORIENTATION, 1) != 1 else None
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


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    w, h = im.size
    try:
        orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:
        orientation = 1
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return int(w), int(h)


def _short(e: BaseException, limit: int = 200) -> str:
    text = str(e).strip() or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
