"""A Thumbor detector: with ``DETECTORS = ['asm.integrations.thumbor']`` in ``thumbor.conf``,
Thumbor's ``/WxH/smart/<image>`` crops are asm's.

Thumbor crops the largest box of the requested aspect centred on the weighted centre of the
focal points its detectors return, pushed inside the image (``Transformer.auto_crop``), and
caches those points per image, not per size, whenever a storage is configured. So:

* ``box`` points: one point that makes ``auto_crop`` cut asm's own crop of the requested
  aspect (``asm crop --aspect W:H --min-scale 1``: the largest box, placed by asm), found by
  inverting ``auto_crop``'s arithmetic; inside a manual crop (``/AxB:CxD/``) asm crops that
  region, as Thumbor does. Right only while the points are not reused for other sizes.
* ``content`` points: asm's content focal point (:mod:`asm.search.focal`), which serves every
  aspect of the image (``benchmarks/results/focal.md``).

``ASM_FOCAL_POINTS = 'auto'`` (the default) gives ``box`` points when the detector data is not
stored (``STORAGE = 'thumbor.storages.no_storage'``, or a mixed storage whose detector storage
is that) and ``content`` points otherwise. Other settings (``thumbor.conf``): ``ASM_MODEL`` (a
model file; default asm's), ``ASM_RUNTIME`` (``auto``), ``ASM_FACES`` (True: faces found by
YuNet and kept whole, asm's face policy), ``ASM_WORKERS`` (1: crops at once per process).

The model loads once per Thumbor process; every crop runs on a small thread pool, off
Tornado's event loop. As Thumbor's own detectors, this one calls the next detector in the
chain only when it has no points: an image asm cannot read, or an error, is passed on (and
logged), never a 500. Placed after Thumbor's face detector, it runs where that found none.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from thumbor.detectors import BaseDetector
from thumbor.point import FocalPoint as ThumborPoint

__all__ = ["Detector", "crop_size", "auto_crop_start", "focal_for_start", "focal_for_box", "MODES"]

logger = logging.getLogger(__name__)

MODES = ("auto", "box", "content")
NO_STORAGE = "thumbor.storages.no_storage"

_lock = threading.Lock()
_croppers: dict[Any, Any] = {}  # CropperSettings -> Cropper
_pools: dict[int, ThreadPoolExecutor] = {}


# ------------------------------------------------------------ Thumbor's auto_crop, inverted
def crops_at_all(source: tuple[float, float], target: tuple[float, float]) -> bool:
    """Whether ``auto_crop`` crops a ``source`` (w, h) image for a ``target`` size at all
    (it does not when the two ratios agree to 2 decimals)."""
    return round(source[0] / source[1], 2) != round(target[0] / target[1], 2)


def crop_size(source: tuple[int, int], target: tuple[float, float]) -> tuple[int, int]:
    """The box ``auto_crop`` cuts from a ``source`` (w, h) image for a ``target`` (w, h)."""
    (sw, sh), (tw, th) = source, target
    if tw / sw > th / sh:
        return sw, int(round(sw * th / tw))
    return int(round(math.ceil(tw * sh / th))), sh


def auto_crop_start(focal: float, size: int, extent: int) -> int:
    """Where ``auto_crop`` starts a box of ``size`` along an axis of ``extent`` for the
    weighted centre ``focal`` of the focal points."""
    return int(round(min(max(focal - size / 2, 0.0), extent - size)))


def focal_for_start(start: float, size: int, extent: int) -> int:
    """A whole-pixel focal coordinate that makes ``auto_crop`` start its box at ``start``
    (rounded and pushed inside the axis); the weighted centre is whole pixels too (Thumbor
    floors it)."""
    goal = int(min(max(round(start), 0), extent - size))
    base = goal + size // 2
    for f in (base, base + 1, base - 1):
        if auto_crop_start(f, size, extent) == goal:
            return int(min(max(f, 0), extent))
    return base


def focal_for_box(box: list[int], source: tuple[int, int], target: tuple[float, float]) -> tuple[int, int]:
    """The focal point for which ``auto_crop`` cuts, for ``target``, the box of its own size
    centred where asm's ``box`` is (the same box where the sizes agree, as they do to a pixel
    for asm's largest boxes)."""
    cw, ch = crop_size(source, target)
    x1, y1, x2, y2 = box
    return (focal_for_start((x1 + x2) / 2 - cw / 2, cw, source[0]),
            focal_for_start((y1 + y2) / 2 - ch / 2, ch, source[1]))


# ------------------------------------------------------------ the request, as Thumbor reads it
def target_size(request: Any, source: tuple[int, int]) -> tuple[float, float] | None:
    """The requested size (w, h) when ``auto_crop`` will crop for it, else None (no size,
    one side proportional, fit-in, stretch, or the image's own ratio)."""
    w, h = request.width, request.height
    if request.fit_in or request.stretch or not w or not h:
        return None
    target = (float(source[0] if w == "orig" else w), float(source[1] if h == "orig" else h))
    return target if crops_at_all(source, target) else None


def within_ratios(target: tuple[float, float]) -> bool:
    """Whether asm crops at the aspect of ``target`` (extreme ones get the content focal point)."""
    from asm.search.candidates import MAX_RATIO

    return 1 / MAX_RATIO <= target[0] / target[1] <= MAX_RATIO


def manual_region(request: Any, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The manual crop ``(left, top, right, bottom)`` as Thumbor applies it (pushed inside the
    image; None when there is none or nothing is left)."""
    if not request.should_crop:
        return None
    c = request.crop
    left, right = (min(max(int(c[k]), 0), width) for k in ("left", "right"))
    top, bottom = (min(max(int(c[k]), 0), height) for k in ("top", "bottom"))
    return (left, top, right, bottom) if left < right and top < bottom else None


def caches_points(context: Any) -> bool:
    """Whether Thumbor stores detector output (then it serves every later size)."""
    storage = getattr(context.modules, "storage", None)
    if storage is None or type(storage).__module__ == NO_STORAGE:
        return False
    if type(storage).__module__ == "thumbor.storages.mixed_storage":
        return getattr(context.config, "MIXED_STORAGE_DETECTOR_STORAGE", None) != NO_STORAGE
    return True


def setting(context: Any, name: str, default: Any) -> Any:
    """``ASM_*`` from thumbor.conf, or ``default``."""
    value = getattr(context.config, name, None)
    return default if value is None else value


# ------------------------------------------------------------ the model and its threads
def cropper(model: str | None = None, runtime: str = "auto") -> Any:
    """The process's Cropper for ``model`` (loaded on first use, once; :class:`~asm.settings.CropperSettings`)."""
    from asm.settings import CropperSettings

    key = CropperSettings(model, runtime)
    with _lock:
        if key not in _croppers:
            _croppers[key] = key.build()
        return _croppers[key]


def pool(workers: int) -> ThreadPoolExecutor:
    """The process's thread pool of ``workers`` threads for crops (made once per count)."""
    with _lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(max_workers=max(1, int(workers)), thread_name_prefix="asm-thumbor")
        return _pools[workers]


def pixels(engine: Any) -> np.ndarray:
    """The engine's image as ``[H, W, 3]`` uint8 RGB (alpha dropped)."""
    mode, data = engine.image_data_as_rgb(update_image=False)
    w, h = engine.size
    return np.frombuffer(data, dtype=np.uint8).reshape(h, w, len(mode))[..., :3]


def points(context: Any) -> list[ThumborPoint]:
    """asm's focal point for this request (runs the model: call it off the event loop)."""
    from asm import CropOptions
    from asm.search.focal import content_focal_point

    request, engine = context.request, context.modules.engine
    mode = str(setting(context, "ASM_FOCAL_POINTS", "auto")).lower()
    if mode not in MODES:
        raise ValueError(f"ASM_FOCAL_POINTS must be one of {', '.join(MODES)}, got {mode!r}")
    box_mode = mode == "box" or (mode == "auto" and not caches_points(context))
    faces = bool(setting(context, "ASM_FACES", True))
    crop = cropper(setting(context, "ASM_MODEL", None), str(setting(context, "ASM_RUNTIME", "auto")))
    rgb = pixels(engine)
    H, W = rgb.shape[:2]
    if box_mode:
        left, top, right, bottom = manual_region(request, W, H) or (0, 0, W, H)
        target = target_size(request, (right - left, bottom - top))
        if target is not None and within_ratios(target):
            analysis = crop.analyse(np.ascontiguousarray(rgb[top:bottom, left:right]))
            best = analysis.crops(aspect=[(target[0], target[1])], faces=faces, min_scale=1.0).crops[0]
            fx, fy = focal_for_box(best.box, (right - left, bottom - top), target)
            return [ThumborPoint(left + fx, top + fy, weight=1.0, origin="asm crop")]
    fp = content_focal_point(crop.analyse(np.ascontiguousarray(rgb)), CropOptions.parse(faces=faces))
    return [ThumborPoint(round(fp.x), round(fp.y), weight=1.0, origin="asm focal point")]


class Detector(BaseDetector):
    """asm's focal point for Thumbor's smart crop (see the module's docstring)."""

    async def detect(self) -> None:
        workers = int(setting(self.context, "ASM_WORKERS", 1))
        try:
            found = await asyncio.get_running_loop().run_in_executor(pool(workers), points, self.context)
        except Exception as e:  # noqa: BLE001 - a picture asm cannot crop goes to the next detector
            from asm.errors import AsmError  # asm's own refusals (too small, unreadable) need no traceback

            logger.warning("asm found no focal point for %s (%s); passing it on", self.context.request.image_url,
                           e if isinstance(e, AsmError) else type(e).__name__, exc_info=not isinstance(e, AsmError))
            found = []
        if not found:
            await self.next()
            return
        self.context.request.focal_points.extend(found)
