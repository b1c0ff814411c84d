"""``Cropper``: composition-aware crops of an image, from one score map of ASM-Net.

>>> cropper = Cropper.from_pretrained()
>>> result = cropper.crop("examples/dogs-window.jpg", aspect=["16:9", "1:1"], top_k=3)
>>> result.to_json()  # doctest: +ELLIPSIS
{'width': 533, 'height': 800, 'crops': [{'box': [...], 'score': ..., 'aspect': '16:9', 'shape': 'rect', ...}, ...], ...}
>>> analysis = cropper.analyse("examples/dogs-window.jpg")   # decode + forward once, then crops / heatmaps / scores
>>> analysis.crops(aspect="1:1").crops[0].aspect
'1:1'
>>> sorted(analysis.overlays())
['theta_avg', 'theta_std']

Shells (CLI, TorchServe handler, Gradio demo, batch jobs, evaluation) make one call per
image: :meth:`Cropper.analyse` (or :meth:`Cropper.analyse_many` for a batch) and then ask
the :class:`~asm.analysis.Analysis`. Underneath, the steps are ``prepare`` (decode, orient,
resize: :mod:`asm.prepare`) -> ``score_maps`` (the network on the images and on their mirrors,
per input size: :mod:`asm.models.mirror`) -> the
search (:mod:`asm.search.search`, two stages, one scoring call per stage), which the
analysis runs.

The network runs on ONNX Runtime on the CPU when it can (``runtime="auto"``, see
:func:`asm.runtime.load_net`), on torch otherwise or when asked (``runtime="torch"``: CUDA,
training). Everything after the network (the search, the pooling, faces) is numpy, so a
cropper on ONNX Runtime never imports torch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from asm.analysis import Analysis
from asm.errors import InvalidOption
from asm.io import DEFAULT_MAX_PIXELS
from asm.models.mirror import mirror_mean, mirror_permutation
from asm.models.weights import ASMNet_Weights, InferencePreset, Weights, as_weights
from asm.options import CropOptions
from asm.prepare import Prepared, prepare
from asm.results import CropResult, Heatmaps
from asm.runtime import OnnxNet, device_type, file_digest, load_net, served_preset
from asm.search.framing import calibration_for
from asm.search.scorer import Scorer

if TYPE_CHECKING:
    import torch

    from asm.models import ASMNet

__all__ = ["Cropper"]

logger = logging.getLogger(__name__)


class Cropper:
    """Composition-aware cropping with an :class:`~asm.models.ASMNet`.

    Args:
        model: the score-map network (eval mode is set here).
        preset: how ``model`` is served (the scale it trained at): the model file's
            (:attr:`Weights.preset <asm.models.weights.Weights.preset>`), which
            :meth:`from_pretrained` reads.
        max_pixels: larger images are refused before decoding (decompression bombs).
        device: where a torch network runs (an :class:`~asm.runtime.OnnxNet` runs on the CPU).
        weights: the model file ``model`` came from (:meth:`from_pretrained` sets it), or None.
    """

    def __init__(
        self,
        model: ASMNet | OnnxNet,
        preset: InferencePreset,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        device: str | torch.device = "cpu",
        weights: Weights | None = None,
    ) -> None:
        if isinstance(model, OnnxNet):
            if device_type(device) != "cpu":
                raise InvalidOption(f"the ONNX runtime runs on the CPU, not {device}; use runtime='torch'")
            self.device: str | torch.device = "cpu"
            self.model: ASMNet | OnnxNet = model
        else:
            import torch

            self.device = torch.device(device)
            self.model = model.eval().to(self.device)
        #: "torch", "onnx" (the float ONNX twin) or "int8"
        self.runtime = ("int8" if model.precision == "int8" else "onnx") if isinstance(model, OnnxNet) else "torch"
        if not isinstance(preset, InferencePreset):
            raise InvalidOption(f"preset must be an InferencePreset (the model's, e.g. Weights.preset), got {preset!r}")
        self.preset = preset
        self.max_pixels = max_pixels
        self.weights = weights
        self.partition = model.pattern.table  # [gh, gw] int64
        #: partition -> its mirror partition, for the mirror-averaged map (None: the pattern has none)
        self.mirror = mirror_permutation(self.partition)
        #: weight of the centre prior (:mod:`asm.models.prior`) in every crop's score
        self.prior_weight = float(model.prior_weight) if isinstance(model, OnnxNet) else model.prior_weight.item()
        #: the model's fitted shape bias for free crops (asm.search.framing), by its file's SHA-256
        digest = (model.digest if isinstance(model, OnnxNet)
                  else file_digest(weights.file) if weights is not None and weights.file.is_file() else "")
        self.shape_bias = calibration_for(digest) if digest else None

    @classmethod
    def from_pretrained(cls, weights: Weights | ASMNet_Weights | str | os.PathLike | None = None, runtime: str = "auto",
                        **kwargs: Any) -> Cropper:
        """A cropper over ``weights`` (default :attr:`ASMNet_Weights.DEFAULT
        <asm.models.weights.ASMNet_Weights>`, the model that ships; or a model file), served
        with the weights' own preset (:class:`~asm.models.weights.InferencePreset`);
        ``kwargs``: ``max_pixels``, ``device``.

        ``runtime``: where the network runs, :data:`~asm.runtime.RUNTIMES` ("auto": ONNX Runtime
        on the CPU when installed, the int8 twin first; see :func:`asm.runtime.load_net`).

        Raises :class:`~asm.errors.ModelNotFound` (no such file) or
        :class:`~asm.errors.InvalidModel` (not an asm model, unreadable).
        """
        weights = as_weights(weights if weights is not None else ASMNet_Weights.DEFAULT)
        model = load_net(weights, runtime, kwargs.get("device", "cpu"))
        return cls(model, served_preset(model, weights), **kwargs, weights=weights)

    # ------------------------------------------------------------------ steps
    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """Network input ``(w, h)`` of a ``width x height`` image
        (:meth:`InferencePreset.input_size <asm.models.weights.InferencePreset.input_size>`)."""
        return self.preset.input_size(width, height)

    def prepare(self, image: object) -> Prepared:
        """Decode (safely, see :func:`asm.io.load_image`) and resize for the network
        (:func:`asm.prepare.prepare`); the full-size pixels only when :attr:`Prepared.image` is read."""
        return prepare(image, self.preset, self.max_pixels)

    def score_maps(self, prepared: Sequence[Prepared]) -> list[np.ndarray]:
        """``[1, L, h, w]`` float32 maps in input order, the images batched per input size.

        Each image's map is the mean of the network's map of it and of its left-right mirror
        (:mod:`asm.models.mirror`: two forward passes; one for a pattern without a mirror)."""
        maps: list[np.ndarray | None] = [None] * len(prepared)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, p in enumerate(prepared):
            by_size.setdefault(tuple(p.input.shape), []).append(i)
        for idx in by_size.values():
            images = np.concatenate([prepared[i].input for i in idx])
            if self.mirror is None:
                out = self._forward(images)
            else:
                # two calls: ONNX Runtime takes longer for one batch of both (8.2 against 2 x 3.8 ms)
                out = mirror_mean(self._forward(images), self._forward(np.ascontiguousarray(images[..., ::-1])),
                                  self.mirror)
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

    def scorer(self, score_map: np.ndarray) -> Scorer:
        """The :class:`~asm.search.scorer.Scorer` of boxes on ``score_map`` ``[1, L, h, w]`` (one image's)."""
        return Scorer(score_map, self.partition, self.prior_weight, self.shape_bias)

    # ------------------------------------------------------------- per-image API
    def analyse(self, image: object) -> Analysis:
        """Decode ``image`` (path, bytes, PIL image or ``HxWx3`` uint8 array) and run the
        network once; the :class:`~asm.analysis.Analysis` gives crops, heatmaps and box
        scores from that one pass."""
        prepared = self.prepare(image)
        return Analysis(prepared, self.scorer(self.score_maps([prepared])[0]))

    def analyse_many(self, images: Sequence[object], return_exceptions: bool = False) -> list[Any]:
        """:meth:`analyse` for several images, batched per input size (servers,
        batch jobs); the same analyses as one call per image, in input order.

        ``return_exceptions``: an image that cannot be analysed gets its exception in its
        place instead of failing the rest (as :func:`asyncio.gather`); if the batched
        forward pass itself fails, the images are retried one by one.
        """
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
            out[i] = Analysis(prepared[i], self.scorer(m))
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
        come from one analysis. Faces are kept whole (``faces=False`` turns that off);
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
