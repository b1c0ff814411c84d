"""The networks and their weights.

- :mod:`asm.models.asmnet`: ASM-Net, the score-map network (paper §3.1), θ_avg / θ_std
  and the maps' border trend.
- :mod:`asm.models.weights`: model files as :class:`Weights` (network config, serving
  preset, metadata), the shipped :class:`ASMNet_Weights`, and the builder :func:`asm_net`.
- :mod:`asm.models.prior`: the centre prior added to every crop's score.
- :mod:`asm.models.mirror`: the mirror-averaged score map the cropper serves (the map of an
  image and of its left-right mirror, averaged).
- :mod:`asm.models.fastgaze`: FastGaze, the saliency teacher (training and evaluation only).

Names load their modules on first use: :mod:`asm.models.prior` and the serving preset
(:class:`InferencePreset`) need no torch, so the crop path on ONNX Runtime never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asm.lazy import lazy_names

__all__ = ["ASMNet", "ASMNet_Weights", "Weights", "WeightsMeta", "InferencePreset", "asm_net", "save_model",
           "DEFAULT_MODEL_PATH", "normalize", "theta_avg", "theta_std", "border_trend", "centre_prior"]

_HOMES = {
    "ASMNet": "asm.models.asmnet",
    "normalize": "asm.models.asmnet",
    "theta_avg": "asm.models.asmnet",
    "theta_std": "asm.models.asmnet",
    "border_trend": "asm.models.asmnet",
    "centre_prior": "asm.models.prior",
    **{name: "asm.models.weights" for name in ("ASMNet_Weights", "Weights", "WeightsMeta", "InferencePreset", "asm_net",
                                                "save_model", "DEFAULT_MODEL_PATH")},
}

if TYPE_CHECKING:
    from asm.models.asmnet import ASMNet, border_trend, normalize, theta_avg, theta_std
    from asm.models.prior import centre_prior
    from asm.models.weights import (DEFAULT_MODEL_PATH, ASMNet_Weights, InferencePreset, Weights, WeightsMeta, asm_net,
                                    save_model)

__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__)
