"""Heuristic cropping peers that ``asm eval`` compares asm with, behind one small interface.

Every peer answers the same question: *where does the largest box of aspect ``ratio``
(width / height) go?* -- ``[x1, y1, x2, y2]`` integer image pixels (``x2, y2`` exclusive),
the box size given by :func:`largest_box` (so all peers crop boxes of identical size and
differ only in placement):

* :func:`centre_crop` -- the box in the middle of the image.
* :func:`smartcrop_py` -- `smartcrop.py <https://github.com/smartcrop/smartcrop.py>`_
  (``smartcrop.SmartCrop().crop(pil_image, width, height, min_scale=1, max_scale=1)``;
  the crop dict is ``result["top_crop"]`` with keys ``x, y, width, height``).
  ``crop()`` analyses the image prescaled so the crop is ``width x height``; we ask for the
  largest box scaled so the analysed image's long side is :data:`SMARTCROP_ANALYSIS_SIDE`
  pixels (smartcrop then slides the box in steps of 8 analysis pixels, its default), and
  ``min_scale = max_scale = 1`` so it only places, never shrinks, the box.
* :func:`fastgaze_centre` -- the saliency baseline: the placement whose box keeps the most
  of FastGaze's fixation density (:mod:`asm.models.fastgaze`) times a centre Gaussian (std a third
  of each side), searched at every pixel of the teacher's 400-px fit.
* :func:`vips_crop` -- libvips ``vips_smartcrop`` through pyvips
  (``pyvips.Image.new_from_array(rgb).smartcrop(w, h, interesting="attention"|"entropy")``)
  on the full-resolution image. libvips returns only the cut-out; its position is in the
  result's header: ``xoffset``/``yoffset`` are **minus** the left/top of the extracted
  area (``extract_area`` moves the origin), so ``left = -out.xoffset, top = -out.yoffset``
  (verified against the pixels in ``tests/test_evaluation.py``). The optional outputs
  ``attention_x``/``attention_y`` (``smartcrop(..., attention_x=True)``) are the centre
  of attention for ``attention`` and 0 for ``entropy``, so they do not give the box.
  ``Image.thumbnail_image(w, height=h, crop=...)`` runs the same smartcrop after a resize
  and reports no usable offset, hence ``smartcrop`` directly.

Scoring arbitrary boxes (GAICD protocol, photo-vs-cut check) is something only smartcrop.py
can do among the peers: :func:`smartcrop_score` is its own per-window score
(``SmartCrop.score`` over its downsampled feature image with its importance map, exactly as
its ``analyse`` scores its candidates). libvips and the centre crop cannot score a box.

The optional libraries are imported lazily: :func:`available` tells whether a peer can run
and, if not, why (``asm eval`` then shows "n/a" with that reason).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from asm.geometry import centre_crop, largest_box, place_box

__all__ = [
    "Peer",
    "PEERS",
    "largest_box",
    "centre_crop",
    "smartcrop_py",
    "smartcrop_score",
    "vips_crop",
    "fastgaze_centre",
    "available",
    "SMARTCROP_ANALYSIS_SIDE",
]

#: smartcrop.py analyses the image prescaled to this long side (its analysis is slow in
#: pure numpy/PIL at full resolution; the library itself recommends prescaling).
SMARTCROP_ANALYSIS_SIDE = 320


def _rgb(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def smartcrop_py(rgb: np.ndarray, ratio: float, analysis_side: int = SMARTCROP_ANALYSIS_SIDE) -> list[int]:
    """smartcrop.py's placement of the largest box of ``ratio`` in ``rgb`` (HxWx3 uint8)."""
    import smartcrop
    from PIL import Image

    rgb = _rgb(rgb)
    H, W = rgb.shape[:2]
    w, h = largest_box(W, H, ratio)
    s = min(1.0, analysis_side / max(W, H))
    tw, th = max(1, round(w * s)), max(1, round(h * s))
    res = smartcrop.SmartCrop().crop(Image.fromarray(rgb), tw, th, min_scale=1.0, max_scale=1.0)
    c = res["top_crop"]
    # smartcrop returns floor-rounded coordinates of a box of about our size: keep its centre
    cx, cy = c["x"] + c["width"] / 2, c["y"] + c["height"] / 2
    return place_box(cx - w / 2, cy - h / 2, w, h, W, H)


def smartcrop_score(rgb: np.ndarray, boxes: Sequence[Sequence[float]], analysis_side: int = SMARTCROP_ANALYSIS_SIDE) -> np.ndarray:
    """smartcrop.py's own score of each box ``[x1, y1, x2, y2]`` (image pixels) of ``rgb``.

    Mirrors ``SmartCrop.analyse``: the image is prescaled (long side ``analysis_side``), the
    feature image is downsampled by ``score_down_sample`` and each window is scored with
    ``SmartCrop.score`` and the importance map of its size.
    """
    import smartcrop
    from PIL import Image

    rgb = _rgb(rgb)
    H, W = rgb.shape[:2]
    sc = smartcrop.SmartCrop()
    s = min(1.0, analysis_side / max(W, H))
    image = Image.fromarray(rgb)
    if s < 1:
        image = image.resize((max(1, round(W * s)), max(1, round(H * s))), Image.Resampling.LANCZOS)
    feats = sc.prepare_features_image(image)
    ds = sc.score_down_sample
    small = feats.resize((math.ceil(image.size[0] / ds), math.ceil(image.size[1] / ds)), Image.Resampling.LANCZOS)
    pre = sc.precompute_features(small)
    prescore = float(np.sum(pre)) * sc.outside_importance
    fx, fy = pre.shape[1] / W, pre.shape[0] / H
    out = np.empty(len(boxes), np.float64)
    cache: dict[tuple[int, int], np.ndarray] = {}
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        cx, cy = int(x1 * fx), int(y1 * fy)
        cw = max(1, min(pre.shape[1] - cx, int(round((x2 - x1) * fx))))
        ch = max(1, min(pre.shape[0] - cy, int(round((y2 - y1) * fy))))
        if (cw, ch) not in cache:
            cache[(cw, ch)] = sc.get_importance(width=cw, height=ch) - sc.outside_importance
        out[i] = sc.score(pre, prescore, (cx, cy, cw, ch), cache[(cw, ch)])
    return out


def vips_crop(rgb: np.ndarray, ratio: float, interesting: str = "attention") -> list[int]:
    """libvips ``smartcrop`` placement (``interesting``: ``"attention"`` or ``"entropy"``)."""
    import pyvips

    if interesting not in ("attention", "entropy"):
        raise ValueError(f"interesting must be 'attention' or 'entropy', got {interesting!r}")
    rgb = _rgb(rgb)
    H, W = rgb.shape[:2]
    w, h = largest_box(W, H, ratio)
    out = pyvips.Image.new_from_array(rgb).smartcrop(w, h, interesting=interesting)
    if (out.width, out.height) != (w, h):
        raise RuntimeError(f"libvips smartcrop returned {out.width}x{out.height}, asked for {w}x{h}")
    return place_box(-out.xoffset, -out.yoffset, w, h, W, H)


_TEACHER: list = []


def _teacher():
    """The FastGaze teacher, loaded once (:func:`asm.data.gaze.teacher_path` finds the file)."""
    if not _TEACHER:
        from asm.models.fastgaze import FastGaze
        from asm.data.gaze import teacher_path

        _TEACHER.append(FastGaze.from_file(teacher_path()))
    return _TEACHER[0]


def fastgaze_centre(rgb: np.ndarray, ratio: float) -> list[int]:
    """Where the largest box of ``ratio`` keeps the most FastGaze density x centre Gaussian."""
    from asm.models.fastgaze import density_on_image, with_centre_prior

    rgb = _rgb(rgb)
    H, W = rgb.shape[:2]
    w, h = largest_box(W, H, ratio)
    d = with_centre_prior(density_on_image(_teacher().density(rgb), H, W))
    fh, fw = d.shape
    if w < W:  # slide along x: mass of every window of the box's width, in fitted pixels
        cols = np.concatenate([[0.0], np.cumsum(d.sum(0, dtype=np.float64))])
        bw = max(1, min(fw, round(w * fw / W)))
        best = int(np.argmax(cols[bw:] - cols[:-bw]))
        return place_box((best + bw / 2) * W / fw - w / 2, 0, w, h, W, H)
    rows = np.concatenate([[0.0], np.cumsum(d.sum(1, dtype=np.float64))])
    bh = max(1, min(fh, round(h * fh / H)))
    best = int(np.argmax(rows[bh:] - rows[:-bh]))
    return place_box(0, (best + bh / 2) * H / fh - h / 2, w, h, W, H)


def _teacher_available() -> None:
    from asm.data.gaze import teacher_path

    teacher_path()


@dataclass(frozen=True)
class Peer:
    """A cropping peer: ``place(rgb, ratio) -> [x1, y1, x2, y2]``; ``score(rgb, boxes)`` if it
    can score arbitrary boxes (else ``None``); ``needs``: the module it imports."""

    name: str
    place: Callable[[np.ndarray, float], list[int]]
    score: Callable[[np.ndarray, Sequence], np.ndarray] | None = None
    needs: str | None = None
    check: Callable[[], None] | None = None  # raises when the peer cannot run (e.g. a missing weights file)


def _centre(rgb: np.ndarray, ratio: float) -> list[int]:
    return centre_crop(rgb.shape[1], rgb.shape[0], ratio)


#: The peers in table order.
PEERS: dict[str, Peer] = {
    "centre crop": Peer("centre crop", _centre),
    "smartcrop.py": Peer("smartcrop.py", smartcrop_py, smartcrop_score, "smartcrop"),
    "libvips attention": Peer("libvips attention", lambda rgb, r: vips_crop(rgb, r, "attention"), None, "pyvips"),
    "libvips entropy": Peer("libvips entropy", lambda rgb, r: vips_crop(rgb, r, "entropy"), None, "pyvips"),
    "FastGaze x centre": Peer("FastGaze x centre", fastgaze_centre, None, None, _teacher_available),
}


def available(peer: Peer | str) -> tuple[bool, str]:
    """``(True, "")`` if the peer's library imports, else ``(False, reason)``."""
    peer = PEERS[peer] if isinstance(peer, str) else peer
    if peer.check is not None:
        try:
            peer.check()
        except FileNotFoundError as e:
            return False, str(e)
    if peer.needs is None:
        return True, ""
    try:
        __import__(peer.needs)
    except Exception as e:  # ImportError, or OSError when libvips itself is missing
        return False, f"{peer.needs} not importable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return True, ""
