"""``Cropper``: composition-aware crops of an image, from one forward pass of ASM-Net.

>>> cropper = Cropper.from_pretrained()
>>> result = cropper.crop("photo.jpg", aspect=["16:9", "1:1"], top_k=3)
>>> result.to_json()
{'width': 640, 'height': 427, 'crops': [{'box': [x1, y1, x2, y2], 'score': ..., ...}, ...]}
>>> analysis = cropper.analyse("photo.jpg")   # decode + forward once, then crops / heatmaps / scores
>>> analysis.crops(aspect="1:1"); analysis.overlays()

Shells (CLI, TorchServe handler, Gradio demo, batch jobs, evaluation) make one call per
image: :meth:`Cropper.analyse` (or :meth:`Cropper.analyse_many` for a batch) and then ask
the :class:`~asm.analysis.Analysis`. Underneath, the steps are ``prepare`` (decode, orient,
resize) -> ``score_maps`` (one forward pass per input size) -> ``search`` (two-stage
candidate search for every requested aspect, one scoring call per stage).

The network runs on ONNX Runtime on the CPU when it can (``runtime="auto"``, see
:mod:`asm.runtime`), on torch otherwise or when asked (``runtime="torch"``: CUDA, training).
Everything after the network (the search, the pooling, faces) is numpy, so a cropper on
ONNX Runtime never imports torch: ``asm crop`` starts in well under a second.
Only the network-sized picture is decoded to find crops (a JPEG in the DCT domain, at up
to 1/8 of its size); the full-size pixels are decoded when ``Prepared.image`` is first read.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

from asm.errors import InvalidImage, InvalidOption, echo
from asm.io import image_size, load_image, load_image_draft
from asm.models.preprocess import network_input
from asm.models.prior import centre_prior
from asm.models.weights import ASMNet_Weights, InferencePreset, Weights, as_weights
from asm.ops.kernel import pool_numpy
from asm.runtime import OnnxNet, int8_path, load_onnx_net
from asm.search.candidates import (FREE_ASPECTS, Aspect, box_iou, coarse_candidates, first_rows, iter_nms, nms,
                                   parse_aspects, refine_candidates, snap_box, unique_boxes)
from asm.search.constraints import Wishes, smallest_side_share
from asm.search.faces import detect_faces, prominence

if TYPE_CHECKING:
    import torch

    from asm.analysis import Analysis
    from asm.models import ASMNet

__all__ = ["Cropper", "Crop", "CropResult", "CropOptions", "Prepared", "Heatmaps"]

logger = logging.getLogger(__name__)

MAX_TOP_K = 20
#: Options accepted by :meth:`CropOptions.from_mapping` (servers and forms).
OPTION_KEYS = ("aspect", "circular", "top_k", "nms_iou", "faces", "keep", "focus", "min_scale")
#: The smallest crop side, as a share of the largest box of the aspect, by default (chosen on
#: held-out photos: benchmarks/results/faces.md).
DEFAULT_MIN_SCALE = 0.6
MAX_KEEP = 16
#: The search's second stage refines this many of the best coarse candidates of each aspect
#: (kept apart by suppression) per crop asked for, up to two crops, or 3 per crop when more.
#: Refining 10 instead of 5 for a single crop changed 1 of 500 top crops (OSIE val, 5 aspects)
#: and doubled the boxes of the fine stage (about 1 000 -> 2 300 for five aspects).
REFINE_SEEDS = 5
#: A JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that keeps this many times the
#: network's input on each side; the area resize does the rest. Measured on 22 real photos
#: upscaled to ~4000 px, against a full decode: scores moved by 0.35% (median; 2.3% at most)
#: with 4, by 1.2% (6%) with 2; a DCT reduction straight to the network size moved them by
#: up to 17% on 1024 px photos. An 8000x6000 photo is still read at 1/4. With the current model,
#: on 20 held-out photos at 4000 px (3 aspects): scores moved by 0.65% (median; 4.0% at most,
#: the previous model 3.1%), 8 of 60 top crops moved, and none scores more than 0.3% below the
#: full decode's best crop on the full decode.
DRAFT_MARGIN = 4
#: Where the network runs: "auto" (ONNX Runtime on the CPU when available, else torch),
#: "onnx" or "torch".
RUNTIMES = ("auto", "int8", "onnx", "torch")


@dataclass
class Crop:
    """One crop: ``box = [x1, y1, x2, y2]`` in original pixels (x2, y2 exclusive)."""

    box: list[int]
    score: float
    aspect: str
    shape: str = "rect"  # "rect" or "circle" (the disc inscribed in the square box)
    faces_kept: list[int] | None = None  # indices into CropResult.faces held whole (None: faces off)
    keep_kept: list[int] | None = None  # indices of the keep-regions held whole (None: none asked)

    def to_json(self) -> dict[str, Any]:
        out = {"box": list(self.box), "score": round(float(self.score), 6), "aspect": self.aspect, "shape": self.shape}
        if self.faces_kept is not None:
            out["faces_kept"] = list(self.faces_kept)
        if self.keep_kept is not None:
            out["keep_kept"] = list(self.keep_kept)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Crop:
        """The inverse of :meth:`to_json` (``KeyError``/``TypeError``/``ValueError`` if malformed)."""
        box = [int(v) for v in data["box"]]
        if len(box) != 4 or data["shape"] not in ("rect", "circle"):
            raise ValueError(f"not a crop: {echo(data)}")
        kept = {k: [int(i) for i in data[k]] if data.get(k) is not None else None for k in ("faces_kept", "keep_kept")}
        return cls(box, float(data["score"]), str(data["aspect"]), data["shape"], **kept)


@dataclass
class CropResult:
    """Crops for one image, best first within each aspect (aspects in request order)."""

    width: int
    height: int
    crops: list[Crop] = field(default_factory=list)
    #: detected faces ``[x1, y1, x2, y2, confidence]``, most prominent first (None: faces off)
    faces: list[list[float]] | None = None
    #: what could not be honoured, in words (e.g. keep-regions too far apart for an aspect)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"width": self.width, "height": self.height, "crops": [c.to_json() for c in self.crops]}
        if self.faces is not None:
            out["faces"] = [{"box": [int(round(v)) for v in f[:4]], "score": round(float(f[4]), 3)} for f in self.faces]
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CropResult:
        """The inverse of :meth:`to_json` (faces and scores as rounded there); ``ValueError``
        (or ``KeyError``/``TypeError``) if malformed or a box leaves the image."""
        width, height = int(data["width"]), int(data["height"])
        crops = [Crop.from_json(c) for c in data["crops"]]
        for c in crops:
            x1, y1, x2, y2 = c.box
            if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
                raise ValueError(f"the box {c.box} lies outside the {width}x{height} image")
        faces = [[*map(float, f["box"]), float(f["score"])] for f in data["faces"]] if "faces" in data else None
        return cls(width, height, crops, faces, [str(w) for w in data.get("warnings", [])])


@dataclass
class Heatmaps:
    """θ_avg (where content matters) and θ_std (where placement matters), ``[h, w]`` float32
    (the score map's size unless an image size was asked for)."""

    avg: np.ndarray
    std: np.ndarray


class Prepared:
    """An image's network input ``[1, 3, h, w]`` (float32 numpy) and its size; ``preview``: the pixels the
    input was made from (``[h', w', 3]`` uint8 RGB, the JPEG's DCT-scaled decode or the full
    image), enough for face detection; the full-size pixels (``image``, ``[H, W, 3]``,
    EXIF-oriented) are decoded on first use."""

    def __init__(self, input: np.ndarray, width: int, height: int, image: np.ndarray | None = None,
                 source: object = None, max_pixels: int | None = None, preview: np.ndarray | None = None) -> None:
        self.input = input
        self.width = int(width)
        self.height = int(height)
        self.preview = preview if preview is not None else image
        self._image = image
        self._source = source
        self._max_pixels = max_pixels

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            rgb = load_image(self._source, max_pixels=self._max_pixels)  # type: ignore[arg-type]
            if rgb.shape[:2] != (self.height, self.width):
                raise InvalidImage("The image changed while it was being read; try again.")
            self._image, self._source = rgb, None
        return self._image


def _parse_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise InvalidOption(f"{name} must be true or false, got {echo(value)}")


def _parse_int(name: str, value: object, lo: int, hi: int) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidOption(f"{name} must be a whole number, got {echo(value)}") from None
    if not lo <= number <= hi:
        raise InvalidOption(f"{name} must be between {lo} and {hi}, got {number}")
    return number


def _parse_float(name: str, value: object, lo: float, hi: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidOption(f"{name} must be a number, got {echo(value)}") from None
    if not lo <= number <= hi:
        raise InvalidOption(f"{name} must be between {lo:g} and {hi:g}, got {echo(value)}")
    return number


def _numbers(name: str, value: object, count: int) -> list[float]:
    """``count`` finite numbers from a list or a comma-separated string."""
    items = value.replace(" ", ",").split(",") if isinstance(value, str) else value
    if isinstance(items, (list, tuple)):
        items = [v for v in items if not (isinstance(v, str) and not v.strip())]
    try:
        if not isinstance(items, (list, tuple)) or len(items) != count or any(isinstance(v, bool) for v in items):
            raise ValueError
        numbers = [float(v) for v in items]
    except (TypeError, ValueError):
        raise InvalidOption(f"{name} must be {count} numbers, got {echo(value)}") from None
    if not all(np.isfinite(numbers)):
        raise InvalidOption(f"{name} must be finite numbers, got {echo(value)}")
    return numbers


def _parse_keep(value: object) -> tuple[tuple[float, float, float, float], ...]:
    """Keep-regions ``x1,y1,x2,y2`` in image pixels: one box or a list of them, as lists or
    as text (``"10,20,200,180"``, boxes separated by ``;``, or JSON ``[[10, 20, 200, 180]]``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise InvalidOption(f"keep is not valid JSON: {echo(value)}") from None
        else:
            value = [part for part in text.split(";") if part.strip()]
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (list, tuple, str)):
        value = [value]  # one flat box
    if not isinstance(value, (list, tuple)):
        raise InvalidOption(f"keep must be boxes x1,y1,x2,y2, got {echo(value)}")
    if len(value) > MAX_KEEP:
        raise InvalidOption(f"at most {MAX_KEEP} keep-regions, got {len(value)}")
    boxes = []
    for i, item in enumerate(value):
        x1, y1, x2, y2 = _numbers(f"keep box {i}", item, 4)
        if not (0 <= x1 < x2 and 0 <= y1 < y2):
            raise InvalidOption(f"keep box {i} {echo(item)} must satisfy 0 <= x1 < x2 and 0 <= y1 < y2")
        boxes.append((x1, y1, x2, y2))
    return tuple(boxes)


def _parse_focus(value: object) -> tuple[float, float] | None:
    """A focus point ``x,y`` in image pixels (``[x, y]`` or ``"x,y"``), or None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidOption(f"focus is not valid JSON: {echo(value)}") from None
    x, y = _numbers("focus", value, 2)
    if x < 0 or y < 0:
        raise InvalidOption(f"focus {echo(value)} must be a point x,y inside the image (not negative)")
    return x, y


@dataclass(frozen=True)
class CropOptions:
    """Validated crop options (every shell parses user input through this)."""

    aspects: tuple[Aspect, ...] = (Aspect("free", None),)
    circular: bool = False
    top_k: int = 1
    nms_iou: float = 0.5
    faces: bool = True  # detect faces, keep them whole and let them weigh in the score
    keep: tuple[tuple[float, float, float, float], ...] = ()  # regions x1, y1, x2, y2 every crop must hold
    focus: tuple[float, float] | None = None  # a point x, y the crops are pulled towards (and hold)
    min_scale: float = DEFAULT_MIN_SCALE  # smallest crop side, as a share of the largest box's

    @classmethod
    def parse(cls, aspect: object = None, circular: object = False, top_k: object = 1, nms_iou: object = 0.5,
              faces: object = True, keep: object = None, focus: object = None, min_scale: object = None) -> CropOptions:
        """Checked options from user input (strings as forms and the CLI send them, or
        Python values); raises :class:`~asm.errors.InvalidOption` with a short message."""
        aspects = tuple(parse_aspects(aspect))
        circular = _parse_bool("circular", circular)
        if circular:
            if any(a.ratio is not None and abs(a.ratio - 1) > 1e-9 for a in aspects):
                raise InvalidOption("circular crops are round (1:1); leave out the aspect or ask for 1:1")
            aspects = (Aspect("1:1", 1.0),)
        return cls(aspects, circular, _parse_int("top_k", top_k, 1, MAX_TOP_K), _parse_float("nms_iou", nms_iou, 0.0, 1.0),
                   _parse_bool("faces", faces), _parse_keep(keep), _parse_focus(focus),
                   DEFAULT_MIN_SCALE if min_scale is None else _parse_float("min_scale", min_scale, 0.1, 1.0))

    @classmethod
    def from_mapping(cls, options: Mapping[str, object]) -> CropOptions:
        """Options from a form or JSON object (keys :data:`OPTION_KEYS`).

        Unknown keys are refused, so a misspelt option is never ignored silently.
        """
        refuse_unknown(options, OPTION_KEYS)
        return cls.parse(**{k: options[k] for k in OPTION_KEYS if k in options})


def refuse_unknown(names: Iterable[object], known: Sequence[str]) -> None:
    """:class:`~asm.errors.InvalidOption` naming any of ``names`` not in ``known``, so a
    misspelt option is never ignored silently."""
    unknown = sorted(set(names) - set(known), key=str)
    if unknown:
        raise InvalidOption(f"unknown option(s) {echo(', '.join(map(str, unknown)))}; known: {', '.join(known)}")


class Cropper:
    """Composition-aware cropping with an :class:`~asm.models.ASMNet`.

    Args:
        model: the score-map network (eval mode is set here).
        short_side: the network sees the image resized so its short side is this long.
        max_long_side: ...and its long side at most this long (panoramas).
        max_pixels: larger images are refused before decoding (decompression bombs).
        device: where a torch network runs (an :class:`~asm.runtime.OnnxNet` runs on the CPU).
        weights: the model file ``model`` came from (:meth:`from_pretrained` sets it), or None.
    """

    def __init__(
        self,
        model: ASMNet | OnnxNet,
        short_side: int = InferencePreset.short_side,
        max_long_side: int = InferencePreset.max_long_side,
        max_pixels: int = 50_000_000,
        device: str | torch.device = "cpu",
        weights: Weights | None = None,
    ) -> None:
        if isinstance(model, OnnxNet):
            if _device_type(device) != "cpu":
                raise InvalidOption(f"the ONNX runtime runs on the CPU, not {device}; use runtime='torch'")
            self.device: str | torch.device = "cpu"
            self.model: ASMNet | OnnxNet = model
        else:
            import torch

            self.device = torch.device(device)
            self.model = model.eval().to(self.device)
        #: "torch", "onnx" (the float ONNX twin) or "int8"
        self.runtime = ("int8" if model.precision == "int8" else "onnx") if isinstance(model, OnnxNet) else "torch"
        self.short_side = short_side
        self.max_long_side = max_long_side
        self.max_pixels = max_pixels
        self.weights = weights
        self.partition = model.pattern.table  # [gh, gw] int64
        #: weight of the centre prior (:mod:`asm.models.prior`) in every crop's score
        self.prior_weight = float(model.prior_weight) if isinstance(model, OnnxNet) else model.prior_weight.item()

    @classmethod
    def from_pretrained(cls, weights: Weights | ASMNet_Weights | str | os.PathLike | None = None, runtime: str = "auto",
                        **kwargs: Any) -> Cropper:
        """A cropper over ``weights`` (default :attr:`ASMNet_Weights.DEFAULT
        <asm.models.weights.ASMNet_Weights>`, the model that ships; or a model file), served
        with the weights' own preset (:class:`~asm.models.weights.InferencePreset`) unless
        ``kwargs`` say otherwise.

        ``runtime``: where the network runs.

        * "auto": on the CPU with onnxruntime installed, the int8 twin when there is one next
          to the model file (the shipped model has one), else the float ONNX twin (exported to
          the user's cache on first use, see :mod:`asm.runtime`); otherwise torch.
        * "int8", "onnx" (the float twin, equal to torch within 1e-3) or "torch" insist.

        Raises :class:`~asm.errors.ModelNotFound` (no such file) or
        :class:`~asm.errors.InvalidModel` (not an asm model, unreadable).
        """
        weights = as_weights(weights if weights is not None else ASMNet_Weights.DEFAULT)
        if runtime not in RUNTIMES:
            raise InvalidOption(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        if not weights.file.is_file():
            weights.preset  # raises ModelNotFound, with the message every caller shows
        on_cpu = _device_type(kwargs.get("device", "cpu")) == "cpu"
        model: ASMNet | OnnxNet | None = None
        fast_cpu = runtime == "auto" and on_cpu and _onnxruntime_installed()
        if runtime == "int8" or (fast_cpu and int8_path(weights.file).is_file()):
            try:
                model = load_onnx_net(weights.file, precision="int8")
            except FileNotFoundError as e:  # a stale twin (the model file changed): the float path
                if runtime == "int8":
                    raise
                warnings.warn(f"asm: {e}", stacklevel=2)
        if model is None and (runtime == "onnx" or fast_cpu):
            try:
                model = load_onnx_net(weights.file)
            except (ImportError, OSError) as e:  # no exporter installed, a read-only cache, ...
                if runtime == "onnx":
                    raise
                warnings.warn(f"asm: running the network on torch: no ONNX export of {weights.file.name} ({e})", stacklevel=2)
        if model is None:
            from asm.models import asm_net

            model = asm_net(weights=weights)
        # a twin carries the checkpoint's preset (reading the checkpoint itself needs torch)
        preset = model.preset if isinstance(model, OnnxNet) and model.preset is not None else weights.preset
        return cls(model, **{**asdict(preset), **kwargs}, weights=weights)

    # ------------------------------------------------------------------ steps
    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """Network input ``(w, h)``: short side ``short_side``, long side capped, multiples of 32
        (:meth:`InferencePreset.input_size <asm.models.weights.InferencePreset.input_size>`)."""
        return InferencePreset(self.short_side, self.max_long_side).input_size(width, height)

    def prepare(self, image: object) -> Prepared:
        """Decode (safely, see :func:`asm.io.load_image`) and resize for the network.

        Files and bytes are decoded at the network's size (JPEG: in the DCT domain); the
        full-size pixels only when :attr:`Prepared.image` is read.
        """
        if isinstance(image, (np.ndarray, Image.Image)):
            rgb = load_image(image, max_pixels=self.max_pixels)
            full, (W, H) = rgb, (rgb.shape[1], rgb.shape[0])
        else:
            if hasattr(image, "read") and not isinstance(image, io.TextIOBase):  # read once, kept for Prepared.image
                try:
                    image = image.read()  # type: ignore[union-attr]
                except Exception as e:  # closed, unreadable, ...
                    raise InvalidImage(f"Cannot read the image stream: {str(e)[:100]}") from e
            W, H = image_size(image)  # type: ignore[arg-type]
            w, h = self.input_size(W, H)
            rgb = load_image_draft(image, (DRAFT_MARGIN * w, DRAFT_MARGIN * h), max_pixels=self.max_pixels)  # type: ignore[arg-type]
            full = None
            if rgb.shape[1] == W and rgb.shape[0] == H:  # decoded in full anyway: keep it
                full, image = rgb, None
        small = cv2.resize(rgb, self.input_size(W, H), interpolation=cv2.INTER_AREA)
        return Prepared(network_input(small), W, H, image=full, source=image, max_pixels=self.max_pixels, preview=rgb)

    def score_maps(self, prepared: Sequence[Prepared]) -> list[np.ndarray]:
        """One forward pass per distinct input size; ``[1, L, h, w]`` float32 maps in input order."""
        maps: list[np.ndarray | None] = [None] * len(prepared)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, p in enumerate(prepared):
            by_size.setdefault(tuple(p.input.shape), []).append(i)
        for idx in by_size.values():
            out = self._forward(np.concatenate([prepared[i].input for i in idx]))
            for j, i in enumerate(idx):
                maps[i] = out[j : j + 1]
        return maps  # type: ignore[return-value]

    def _forward(self, images: np.ndarray) -> np.ndarray:
        """The network on ``images [B, 3, h, w]``: ``[B, L, h', w']`` float32."""
        if isinstance(self.model, OnnxNet):
            return self.model(images)
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(images).to(self.device)).float().cpu().numpy()

    def score_boxes(self, score_map: np.ndarray, boxes: np.ndarray, width: int, height: int,
                    circular: bool = False) -> np.ndarray:
        """Scores ``[N]`` (float64) of image-pixel ``boxes [N, 4]`` on a ``[1, L, h, w]`` map
        covering the image: the pooled map plus the model's weighted centre prior
        (:mod:`asm.models.prior`)."""
        boxes = np.asarray(boxes, dtype=np.float64)
        if boxes.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        h, w = score_map.shape[-2:]
        to_map = np.array([w / width, h / height, w / width, h / height])
        rows = np.concatenate([np.zeros((boxes.shape[0], 1)), boxes * to_map], axis=1)
        # map coordinates in the map's own precision (float32), as the search always had them
        rows = rows.astype(score_map.dtype).astype(np.float64)
        return pool_numpy(score_map, rows, self.partition, circular) + self.prior_weight * centre_prior(boxes, width, height)

    def wishes(self, prepared: Prepared, options: CropOptions) -> tuple[Wishes, np.ndarray]:
        """Faces (detected unless ``options.faces`` is off; ``[F, 5]`` as
        :func:`asm.search.faces.detect_faces` gives them), keep-regions and focus point of one
        image, checked against its size (:class:`~asm.errors.InvalidOption` if outside)."""
        W, H = prepared.width, prepared.height
        for i, (x1, y1, x2, y2) in enumerate(options.keep):
            if x2 > W or y2 > H:
                raise InvalidOption(f"keep box {i} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] lies outside the {W}x{H} image")
        if options.focus is not None and not (options.focus[0] <= W and options.focus[1] <= H):
            raise InvalidOption(f"focus [{options.focus[0]:g}, {options.focus[1]:g}] lies outside the {W}x{H} image")
        faces = detect_faces(prepared.preview, size=(W, H)) if options.faces else np.zeros((0, 5))
        return Wishes(W, H, faces[:, :4].copy(), prominence(faces),
                      np.array(options.keep, dtype=np.float64).reshape(-1, 4), options.focus), faces

    def search(self, prepared: Prepared, score_map: np.ndarray, options: CropOptions) -> CropResult:
        """Two-stage search (coarse anchors, then a fine search around the best) for every
        aspect in ``options``, each stage scored in one call of the pooling op.

        Faces, keep-regions and the focus point (:mod:`asm.search.constraints`) add candidates
        fitted around them and terms to each candidate's score: first no keep-region left
        out and no face cut through wherever some candidate manages it, then the model's
        score plus the faces held whole (by prominence) and the pull of the focus point.
        """
        W, H = prepared.width, prepared.height
        wishes, faces = self.wishes(prepared, options)
        ratios, owner = [], []  # candidate ratio -> index of the requested aspect
        for a, aspect in enumerate(options.aspects):
            for r in ([aspect.ratio] if aspect.ratio is not None else [w / h for w, h in FREE_ASPECTS] + [W / H]):
                ratios.append(r)
                owner.append(a)
        boxes, group = coarse_candidates(ratios, W, H, min_scale=options.min_scale)
        aspect_of = np.array(owner)[group]
        if not wishes.empty:  # fitted copies keep the aspect (and so the owner) of their anchor
            boxes, source = wishes.variants(boxes)
            aspect_of = aspect_of[source]
        boxes, aspect_of, objective, spread = self._rank(score_map, boxes, aspect_of, wishes, options.circular)

        # stage 2: refine the best few (kept diverse) of each aspect, all in one call
        n_seeds = max(REFINE_SEEDS * min(options.top_k, 2), 3 * options.top_k)
        seeds = [np.flatnonzero(aspect_of == a) for a in range(len(options.aspects))]
        # (suppression in float32, as the search always ranked its seeds)
        seeds = [s[nms(boxes[s].astype(np.float32), objective[s].astype(np.float32), 0.7, n_seeds)] for s in seeds]
        seed_idx = np.concatenate(seeds)
        free = np.array([a.free for a in options.aspects])[aspect_of[seed_idx]]
        fine, from_seed = refine_candidates(boxes[seed_idx], free, W, H)
        fine, fine_aspects, fine_objective, _ = self._rank(score_map, wishes.project(fine), aspect_of[seed_idx][from_seed],
                                                           wishes, options.circular, spread)
        all_boxes = np.concatenate([boxes, fine])
        all_objective = np.concatenate([objective, fine_objective])
        all_aspects = np.concatenate([aspect_of, fine_aspects])
        all_ratios = (all_boxes[:, 2] - all_boxes[:, 0]) / (all_boxes[:, 3] - all_boxes[:, 1])
        too_small = smallest_side_share(all_boxes, all_ratios, W, H) < options.min_scale - 0.01
        all_objective[too_small] = -float("inf")  # refinement shrank them past the zoom limit

        # the best top_k of each aspect, kept apart by non-maximum suppression on the pixel
        # boxes actually returned (snapping moves boxes; equal boxes are never returned twice)
        picked: list[tuple[int, list[int]]] = []
        for a, aspect in enumerate(options.aspects):
            sel = np.flatnonzero((all_aspects == a) & ~too_small)
            kept: list[list[int]] = []
            for j in iter_nms(all_boxes[sel].astype(np.float32), all_objective[sel].astype(np.float32), options.nms_iou):
                i = int(sel[j])
                box = snap_box(all_boxes[i].tolist(), aspect.ratio, W, H)
                if not kept or (box not in kept and float(box_iou(np.array([box]), np.array(kept)).max()) <= options.nms_iou):
                    kept.append(box)
                    if len(kept) == options.top_k:
                        break
            picked += [(a, b) for b in kept]
        snapped = np.array([b for _, b in picked], dtype=np.float64).reshape(-1, 4)
        model_scores = self.score_boxes(score_map, snapped, W, H, options.circular)
        final = (model_scores + wishes.soft(snapped, spread)).tolist()
        rank = (wishes.hard(snapped) + np.array(final, dtype=np.float64)).tolist()
        shape = "circle" if options.circular else "rect"
        crops = []
        for (a, b), s in zip(picked, final):
            faces_kept, keep_kept = wishes.kept(b)
            crops.append(Crop(b, float(s), options.aspects[a].label, shape,
                              faces_kept if options.faces else None, keep_kept if options.keep else None))
        order = sorted(range(len(crops)), key=lambda j: (picked[j][0], -rank[j]))  # best first per aspect
        return CropResult(W, H, [crops[j] for j in order], faces.tolist() if options.faces else None,
                          self._warnings(wishes, options, ratios, owner))

    def _rank(self, score_map: np.ndarray, boxes: np.ndarray, aspect_of: np.ndarray, wishes: Wishes, circular: bool,
              spread: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """One stage of the search: the objective of candidates ``boxes [N, 4]`` of the aspects
        ``aspect_of [N]``, each distinct box scored once (candidates repeat: equal aspects, boxes
        pushed against the image's edges or fitted around the same face).

        Returns the first row of each distinct (aspect, box) pair, in order (a repeat changes
        no search result: suppression drops it): ``boxes [M, 4]``, ``aspect_of [M]``,
        ``objective [M]``; and the spread (standard deviation) of the scores of all N rows,
        which sets the scale of the soft terms (``spread`` when given).
        """
        distinct, inverse = unique_boxes(boxes)
        scores = self.score_boxes(score_map, distinct, wishes.width, wishes.height, circular)
        if spread is None:
            spread = float(scores[inverse].std(ddof=1)) if len(inverse) > 1 else 1.0
        objective = self._objective(wishes, distinct, scores, spread)
        if len(distinct) == len(boxes):  # no repeats (one fixed aspect, no faces)
            return boxes, aspect_of, objective[inverse], spread
        rows = first_rows(aspect_of * len(distinct) + inverse)
        return boxes[rows], aspect_of[rows], objective[inverse[rows]], spread

    @staticmethod
    def _objective(wishes: Wishes, boxes: np.ndarray, scores: np.ndarray, spread: float) -> np.ndarray:
        """What the search maximises: the hard terms (keep-regions, faces cut) dominate."""
        if wishes.empty:
            return scores
        return scores + wishes.soft(boxes, spread) + wishes.hard(boxes)

    @staticmethod
    def _warnings(wishes: Wishes, options: CropOptions, ratios: list[float], owner: list[int]) -> list[str]:
        """One sentence per aspect whose crop cannot hold every keep-region and the focus point."""
        if len(wishes.required) == 0:
            return []
        fit = wishes.required_fits(np.array(ratios, dtype=np.float64))
        out = []
        for a, aspect in enumerate(options.aspects):
            if not any(bool(fit[i]) for i, o in enumerate(owner) if o == a):
                out.append(f"the keep-regions and focus point do not fit together in a {aspect.label} crop of this "
                           "image; the crop holds as much of them as it can")
        return out

    # ------------------------------------------------------------- per-image API
    def analyse(self, image: object) -> Analysis:
        """Decode ``image`` (path, bytes, PIL image or ``HxWx3`` uint8 array) and run the
        network once; the :class:`~asm.analysis.Analysis` gives crops, heatmaps and box
        scores from that one pass."""
        from asm.analysis import Analysis  # asm.analysis builds on this module

        prepared = self.prepare(image)
        return Analysis(self, prepared, self.score_maps([prepared])[0])

    def analyse_many(self, images: Sequence[object], return_exceptions: bool = False) -> list[Any]:
        """:meth:`analyse` for several images with one forward pass per input size (servers,
        batch jobs); the same analyses as one call per image, in input order.

        ``return_exceptions``: an image that cannot be analysed gets its exception in its
        place instead of failing the rest (as :func:`asyncio.gather`); if the batched
        forward pass itself fails, the images are retried one by one.
        """
        from asm.analysis import Analysis  # asm.analysis builds on this module

        out: list[Any] = [None] * len(images)
        prepared: dict[int, Prepared] = {}
        for i, image in enumerate(images):
            try:
                prepared[i] = self.prepare(image)
            except Exception as e:  # noqa: BLE001 - one bad image is its own answer
                if not return_exceptions:
                    raise
                out[i] = e
        try:
            maps = dict(zip(prepared, self.score_maps(list(prepared.values()))))
        except Exception:
            if not return_exceptions:
                raise
            logger.warning("batched forward pass failed; retrying the %d images one by one", len(prepared), exc_info=True)
            maps = {}
            for i, p in prepared.items():
                try:
                    maps[i] = self.score_maps([p])[0]
                except Exception as e:  # noqa: BLE001
                    out[i] = e
        for i, m in maps.items():
            out[i] = Analysis(self, prepared[i], m)
        return out

    def crop(
        self,
        image: object,
        aspect: object = None,
        circular: bool = False,
        top_k: int = 1,
        nms_iou: float = 0.5,
        faces: bool = True,
        keep: object = None,
        focus: object = None,
        min_scale: float | None = None,
    ) -> CropResult:
        """Best crops of ``image`` (path, bytes, PIL image or ``HxWx3`` uint8 array) for each
        ``aspect`` (``None``/"free", ``"W:H"``, ``(w, h)`` or a list of them); all aspects
        come from one forward pass. Faces are kept whole (``faces=False`` turns that off);
        ``keep=[[x1, y1, x2, y2], ...]`` regions stay inside, ``focus=(x, y)`` pulls the
        crops towards a point; ``min_scale`` bounds the zoom (see :class:`CropOptions`).
        ``analyse(image).crops(...)`` when one image needs several answers."""
        options = CropOptions.parse(aspect, circular, top_k, nms_iou, faces, keep, focus, min_scale)
        return self.analyse(image).crops(options)

    def heatmaps(self, image: object, at_image_size: bool = False) -> Heatmaps:
        """θ_avg and θ_std of ``image``: :meth:`Analysis.heatmaps <asm.analysis.Analysis.heatmaps>`."""
        return self.analyse(image).heatmaps(at_image_size)

    def score(self, image: object, boxes: object, circular: bool = False) -> np.ndarray:
        """Scores of the caller's own ``boxes`` (``[N, 4]`` x1, y1, x2, y2 in image pixels):
        :meth:`Analysis.score <asm.analysis.Analysis.score>`."""
        return self.analyse(image).score(boxes, circular)


def _device_type(device: object) -> str:
    """``"cpu"``, ``"cuda"``, ... of a device given as a string (``"cuda:1"``) or a
    ``torch.device``, without importing torch."""
    return str(getattr(device, "type", device)).split(":")[0].strip().lower()


def _onnxruntime_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None
