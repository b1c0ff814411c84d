"""ASM-Net (paper §3.1): a torchvision backbone and a multi-scale score-map head.

``ASMNet`` maps a normalised image batch ``[B, 3, H, W]`` to the aesthetic score map
``M [B, L, H/s, W/s]`` (``s = map_stride``), one channel per composition partition of its
pattern. Features from three backbone stages (strides 8, 16, 32) are each projected to
``L`` channels by a 1x1 conv, resized to the map size and summed: the same as a 1x1 conv
over their concatenation, and cheaper.

Crop scores come from ``torch.ops.asm.composition_pool(M, boxes, pattern.partition)``.
Trained weights, and the builder that loads them, are in :mod:`asm.models.weights`.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from asm.models.preprocess import IMAGENET_MEAN, IMAGENET_STD
from asm.patterns import DEFAULT_PATTERN, Pattern, get_pattern

__all__ = [
    "ASMNet",
    "border_trend",
    "BACKBONES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "normalize",
    "theta_avg",
    "theta_std",
]


def _mobilenet_v2_stages(m: nn.Module) -> list[nn.Module]:
    return [m.features[:7], m.features[7:14], m.features[14:18]]  # strides 8, 16, 32


def _mobilenet_v3_small_stages(m: nn.Module) -> list[nn.Module]:
    return [m.features[:4], m.features[4:9], m.features[9:12]]


def _shufflenet_stages(m: nn.Module) -> list[nn.Module]:
    return [nn.Sequential(m.conv1, m.maxpool, m.stage2), m.stage3, m.stage4]


#: Backbones with a stage split (strides 8, 16, 32). Any torchvision classifier with a
#: stage split can be added here.
BACKBONES = {
    "mobilenet_v2": _mobilenet_v2_stages,
    "mobilenet_v3_small": _mobilenet_v3_small_stages,
    "shufflenet_v2_x1_0": _shufflenet_stages,
}


def normalize(images: Tensor) -> Tensor:
    """``[B, 3, H, W]`` RGB in ``[0, 1]`` -> ImageNet-normalised input for :class:`ASMNet`."""
    mean = images.new_tensor(IMAGENET_MEAN)[:, None, None]
    std = images.new_tensor(IMAGENET_STD)[:, None, None]
    return (images - mean) / std


def theta_avg(score_map: Tensor) -> Tensor:
    """Eq. 5: mean over partitions, ``[B, L, H, W] -> [B, H, W]`` (content importance)."""
    return score_map.mean(1)


def theta_std(score_map: Tensor) -> Tensor:
    """Eq. 6: population std over partitions, ``[B, L, H, W] -> [B, H, W]`` (composition sensitivity)."""
    return score_map.std(1, correction=0)


def border_trend(maps: Tensor) -> Tensor:
    """``[B, C, h, w]`` maps -> ``[B, C]``: (mean over the outer ring of map pixels - mean over
    the interior) / std of the map, per channel: check (b) of ``asm eval``, 0 where a map has
    no image-border trend (or is flat), NaN where it has no interior. Differentiable (a
    training loss uses it)."""
    ring = torch.zeros(maps.shape[-2:], dtype=torch.bool, device=maps.device)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    if bool(ring.all()):
        return torch.full(maps.shape[:2], float("nan"), dtype=maps.dtype, device=maps.device)
    flat, r = maps.flatten(2), ring.flatten()
    d = flat[..., r].mean(-1) - flat[..., ~r].mean(-1)
    sd = flat.std(-1, correction=0)
    return torch.where(sd > 0, d / sd.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(d))


class ASMNet(nn.Module):
    """Aesthetic score map network.

    Args:
        backbone: a key of :data:`BACKBONES`.
        pattern: a composition pattern name (:data:`asm.patterns.PATTERN_NAMES`).
        backbone_weights: path to a torchvision ImageNet state dict of ``backbone``
            (e.g. ``../shared/weights/mobilenet_v2-imagenet.pth``; the classifier's keys may be
            left out); ``None`` leaves it random.
        map_stride: stride of the score map with respect to the input (8, 16 or 32).
        padding_mode: padding of the backbone's convolutions. ``"reflect"`` (default) gives
            the network no cue of where the input ends, so it cannot learn "touch the image
            border" instead of composition (paper §4.5, spatial bias).
    """

    def __init__(
        self,
        backbone: str = "mobilenet_v2",
        pattern: str = DEFAULT_PATTERN,
        backbone_weights: str | os.PathLike | None = None,
        map_stride: int = 8,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
        if map_stride not in (8, 16, 32):
            raise ValueError(f"map_stride must be 8, 16 or 32, got {map_stride}")
        if padding_mode not in ("zeros", "reflect", "replicate"):
            raise ValueError(f"padding_mode must be 'zeros', 'reflect' or 'replicate', got {padding_mode!r}")
        self.config: dict[str, Any] = {
            "backbone": backbone,
            "pattern": pattern,
            "map_stride": map_stride,
            "padding_mode": padding_mode,
        }
        self.pattern: Pattern = get_pattern(pattern)
        self.map_stride = map_stride

        import torchvision  # here, not at the top: the ONNX path never builds the torch model

        classifier = getattr(torchvision.models, backbone)(weights=None)
        if backbone_weights is not None:
            state = torch.load(backbone_weights, map_location="cpu", weights_only=True)
            missing, unexpected = classifier.load_state_dict(state, strict=False)
            if unexpected or any(not k.startswith(("classifier.", "fc.")) for k in missing):
                raise ValueError(f"{backbone_weights} is not a torchvision {backbone} state dict "
                                 f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        self.stages = nn.ModuleList(BACKBONES[backbone](classifier))
        if padding_mode != "zeros":
            for m in self.stages.modules():
                if isinstance(m, nn.Conv2d) and any(p > 0 for p in m.padding):
                    m.padding_mode = padding_mode
        for m in self.stages.modules():  # frozen BatchNorm (the weights came from int8 models)
            if isinstance(m, nn.BatchNorm2d):
                m.requires_grad_(False)

        with torch.no_grad():
            widths = [f.shape[1] for f in self._features(torch.zeros(1, 3, 128, 128))]
        L = self.pattern.num_partitions
        self.heads = nn.ModuleList(nn.Conv2d(c, L, kernel_size=1) for c in widths)
        for h in self.heads:
            nn.init.normal_(h.weight, std=0.01)
            nn.init.zeros_(h.bias)
        self.register_buffer("partition", self.pattern.partition.clone(), persistent=False)
        #: weight of the centre prior in a crop's score (:mod:`asm.models.prior`), learnt in training
        self.prior_weight = nn.Parameter(torch.zeros(()))

    @property
    def num_partitions(self) -> int:
        return self.pattern.num_partitions

    def _features(self, x: Tensor) -> list[Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def train(self, mode: bool = True) -> ASMNet:
        super().train(mode)
        for m in self.stages.modules():  # BatchNorm stays in eval mode
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def map_size(self, height: int, width: int) -> tuple[int, int]:
        """Score-map size for an input of ``height x width``."""
        s = self.map_stride
        return -(-height // s), -(-width // s)

    def forward(self, images: Tensor) -> Tensor:
        """``[B, 3, H, W]`` normalised images -> score map ``[B, L, ceil(H/s), ceil(W/s)]``."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W], got shape {tuple(images.shape)}")
        size = self.map_size(images.shape[-2], images.shape[-1])
        out = None
        for feat, head in zip(self._features(images), self.heads):
            y = head(feat)
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            out = y if out is None else out + y
        return out
