"""What the network sees: RGB pixels as an ImageNet-normalised ``[B, 3, H, W]`` float32 array.

numpy only, so the crop path on ONNX Runtime needs no torch; :func:`asm.models.asmnet.normalize`
is the same maths on tensors (training).
"""

from __future__ import annotations

import numpy as np

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "network_input"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
_STD = np.array(IMAGENET_STD, dtype=np.float32)[:, None, None]


def network_input(rgb: np.ndarray) -> np.ndarray:
    """``[h, w, 3]`` uint8 RGB -> ``[1, 3, h, w]`` float32, ImageNet-normalised (in float32,
    step for step as :func:`~asm.models.asmnet.normalize` does it on ``rgb / 255``)."""
    x = rgb.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255)
    return (x - _MEAN) / _STD
