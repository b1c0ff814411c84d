"""FastGaze: the saliency teacher (where people look).

Twitter's production saliency network for image cropping (Theis et al. 2018, "Faster gaze
prediction with dense networks and Fisher pruning"; weights Apache-2.0, from
``twitter-research/image-crop-analysis``), rebuilt from the description in
``shared/weights/MANIFEST.txt``: ten 3x3 convolutions with four 2x2 max pools, then four
1x1 readouts with learned leaky-ReLU slopes. 121 k parameters.

It maps an image to an unnormalised log fixation density with one cell per 16x16 input
pixels; a softmax over the cells gives the probability that a look lands in each one.
It has no centre bias. asm uses it as a teacher (training targets, the saliency map ``S``
of the saliency-aware loss, evaluation), not on every request.

>>> teacher = FastGaze.from_file("fastgaze-saliency.pth")
>>> density = teacher.density(rgb)      # [h, w] float32, sums to 1, h = ceil(H'/16)
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["FastGaze", "CAFFE_BGR_MEAN", "FIT_SIZE", "centre_gaussian", "with_centre_prior", "fitted_size", "density_on_image"]

#: Caffe/VGG channel means subtracted from B, G, R pixels on the 0..255 scale.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
#: Images are resized (aspect kept) to fit in this square before the network.
FIT_SIZE = 400
#: Output cell size in input pixels.
CELL = 16

_WIDTHS = (3, 43, 44, 49, 56, 44, 38, 31, 20, 18, 10)
_READOUT_WIDTHS = (10, 7, 7, 2, 1)
_POOL_AFTER = (2, 4, 6, 8)  # a 2x2 max pool follows these convolutions


class _Readout(nn.Module):
    """1x1 convolution, then a leaky ReLU whose negative slope is a parameter."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.slope = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        y = F.conv2d(x, self.weight, self.bias)
        return torch.where(y >= 0, y, y * self.slope)


class FastGaze(nn.Module):
    """FastGaze saliency network: ``[B, 3, H, W]`` BGR minus Caffe means -> ``[B, 1, ceil(H/16), ceil(W/16)]``
    unnormalised log fixation density. Cell ``(i, j)`` is centred on input pixel ``(16 j + 8, 16 i + 8)``."""

    def __init__(self) -> None:
        super().__init__()
        for i in range(1, 11):
            self.add_module(f"conv{i}", nn.Conv2d(_WIDTHS[i - 1], _WIDTHS[i], 3, padding=1))
        for i in range(1, 5):
            self.add_module(f"readout{i}", _Readout(_READOUT_WIDTHS[i - 1], _READOUT_WIDTHS[i]))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> FastGaze:
        """Load the weights file (a plain dict of float32 tensors), eval mode."""
        model = cls()
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        return model.eval()

    def forward(self, x: Tensor) -> Tensor:
        for i in range(1, 11):
            x = F.relu(getattr(self, f"conv{i}")(x))
            if i in _POOL_AFTER:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        for i in range(1, 5):
            x = getattr(self, f"readout{i}")(x)
        return x

    @staticmethod
    def preprocess(rgb: np.ndarray, fit: int = FIT_SIZE) -> Tensor:
        """``H x W x 3`` uint8 RGB -> ``[1, 3, h, w]`` network input (fit in ``fit x fit``, B, G, R minus means)."""
        h, w = fitted_size(rgb.shape[0], rgb.shape[1], fit)
        shrink = h < rgb.shape[0]
        small = cv2.resize(np.ascontiguousarray(rgb), (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        x = torch.from_numpy(small[:, :, ::-1].astype(np.float32)) - torch.tensor(CAFFE_BGR_MEAN)
        return x.permute(2, 0, 1)[None].contiguous()

    @torch.inference_mode()
    def log_density(self, rgb: np.ndarray, fit: int = FIT_SIZE) -> np.ndarray:
        """Log fixation density ``[h, w]`` (log-softmax over the cells; one cell per 16 px of the fitted image)."""
        logits = self(self.preprocess(rgb, fit))[0, 0]
        return torch.log_softmax(logits.flatten(), 0).reshape(logits.shape).numpy()

    def density(self, rgb: np.ndarray, fit: int = FIT_SIZE) -> np.ndarray:
        """Fixation density ``[h, w]`` float32 summing to 1 (no centre bias)."""
        return np.exp(self.log_density(rgb, fit)).astype(np.float32)


def centre_gaussian(height: int, width: int, sigma: float = 1 / 3) -> np.ndarray:
    """``[height, width]`` Gaussian centred on the grid, std ``sigma`` of each side, peak 1.

    Cell centres sit at ``(i + 0.5) / height``: the same prior on any grid covering the image.
    """
    y = ((np.arange(height) + 0.5) / height - 0.5) / sigma
    x = ((np.arange(width) + 0.5) / width - 0.5) / sigma
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2)).astype(np.float32)


def with_centre_prior(density: np.ndarray) -> np.ndarray:
    """A density ``[h, w]`` covering an image times :func:`centre_gaussian`, renormalised to sum
    1: the teacher's estimate of where people look (FastGaze alone has no centre bias)."""
    d = density * centre_gaussian(*density.shape)
    return (d / max(float(d.sum()), 1e-30)).astype(np.float32)


def fitted_size(height: int, width: int, fit: int = FIT_SIZE) -> tuple[int, int]:
    """``(h, w)`` of an image resized, aspect kept, to fit in ``fit x fit``."""
    s = fit / max(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


def density_on_image(cells: np.ndarray, height: int, width: int, fit: int = FIT_SIZE) -> np.ndarray:
    """The cell density of a ``height x width`` image (its ``ceil(h/16) x ceil(w/16)`` grid
    overhangs the fitted image) on the pixels of the fitted image, ``[h, w]``, summing to 1."""
    h, w = fitted_size(height, width, fit)
    pixels = np.repeat(np.repeat(cells, CELL, axis=0), CELL, axis=1)[:h, :w]
    return (pixels / max(float(pixels.sum()), 1e-30)).astype(np.float32)
