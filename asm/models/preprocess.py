"""What the network sees: RGB pixels as an ImageNet-normalised ``[B, 3, H, W]`` float32 array.

numpy and OpenCV only, so the crop path on ONNX Runtime needs no torch; :func:`asm.models.asmnet.normalize`
is the same maths on tensors (training).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "network_input"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
_STD = np.array(IMAGENET_STD, dtype=np.float32)[:, None, None]


def network_input(rgb: np.ndarray) -> np.ndarray:
    """``[h, w, 3]`` uint8 RGB -> ``[1, 3, h, w]`` float32, ImageNet-normalised (in float32,
    step for step as :func:`~asm.models.asmnet.normalize` does it on ``rgb / 255``)."""
    x = np.empty((1, 3, *rgb.shape[:2]), np.float32)
    for c, plane in enumerate(cv2.split(rgb)):  # plane by plane (a strided transpose is 6x slower)
        x[0, c] = plane
    x /= np.float32(255)
    x -= _MEAN
    x /= _STD
    return x
