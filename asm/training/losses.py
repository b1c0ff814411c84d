"""Training losses (paper eqs. 3, 4, 7, 8).

* :func:`pair_ranking_loss`: the hinge ``max(0, margin + s_worse - s_better)`` (eq. 4) over
  (better, worse) pairs chosen by the caller (eq. 3's ``y_k - y_t >= delta``, in
  :mod:`asm.training.views`). The paper **sums** over pairs; we **average**, so the weight ``lambda``
  of the saliency loss (eq. 8) does not depend on how many crops or images a batch holds.
* :func:`saliency_loss`: eq. 7, ``(1/HW) sum (1 - s) theta_std / mean(theta_std)`` per image,
  averaged over the batch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["pair_ranking_loss", "saliency_loss", "resize_saliency", "safe_theta_std"]


def _zero(t: Tensor) -> Tensor:
    """A zero that keeps the graph (so ``backward()`` works and gives zero gradients)."""
    return t.sum() * 0.0


def pair_ranking_loss(score_better: Tensor, score_worse: Tensor, margin: float = 1.0) -> Tensor:
    """Mean of ``max(0, margin + s_worse - s_better)`` over ``[P]`` pairs; zero (attached) if ``P = 0``."""
    if score_better.shape != score_worse.shape:
        raise ValueError(f"score_better {tuple(score_better.shape)} and score_worse {tuple(score_worse.shape)} differ")
    if score_better.numel() == 0:
        return _zero(score_better) + _zero(score_worse)
    return F.relu(margin + score_worse - score_better).mean()


def resize_saliency(saliency, size: tuple[int, int]) -> Tensor:
    """Saliency ``[B, h, w]`` or ``[h, w]`` (tensor or numpy) -> ``[B, H, W]`` float tensor, area-resized.

    Area interpolation (``adaptive_avg_pool2d``) is exact box averaging when shrinking, which
    is the usual case (image-size saliency to a stride-8/16 score map).
    """
    s = torch.as_tensor(np.asarray(saliency) if not isinstance(saliency, Tensor) else saliency)
    if not s.is_floating_point():
        s = s.float()
    if s.dim() == 2:
        s = s[None]
    if s.dim() != 3:
        raise ValueError(f"saliency must be [B, H, W] or [H, W], got shape {tuple(s.shape)}")
    H, W = int(size[0]), int(size[1])
    if tuple(s.shape[-2:]) == (H, W):
        return s
    return F.interpolate(s[:, None], size=(H, W), mode="area")[:, 0]


def safe_theta_std(score_map: Tensor, eps: float = 1e-8) -> Tensor:
    """Eq. 6 with a finite gradient at zero spread: ``sqrt(var_l(M) + eps)``, ``[B, L, H, W] -> [B, H, W]``.

    (``torch.std`` has a NaN gradient where all channels are equal; ``eps`` shifts the value
    by at most ``sqrt(eps)``.)
    """
    return torch.sqrt(score_map.var(1, correction=0) + eps)


def saliency_loss(score_map: Tensor, saliency, eps: float = 1e-8) -> Tensor:
    """Saliency-aware loss, eq. 7, averaged over the batch.

    Per image: ``mean_ij[(1 - s_ij) * theta_std_ij] / (mean_ij[theta_std_ij] + eps)``, i.e.
    ``(1/HW) sum (1 - s) theta_std / mean(theta_std)``. The denominator is part of the graph
    (as in the paper): the loss moves composition sensitivity towards salient pixels without
    rewarding a score map that is flat everywhere (scale invariant in ``theta_std``).

    Args:
        score_map: ``[B, L, H, W]``.
        saliency: ``[B, h, w]`` (or ``[h, w]`` for ``B = 1``) in ``[0, 1]``, any size; resized
            (area) to ``H x W`` by :func:`resize_saliency`.
        eps: keeps value and gradient finite where ``theta_std`` is ~0.
    """
    if score_map.dim() != 4:
        raise ValueError(f"score_map must be [B, L, H, W], got shape {tuple(score_map.shape)}")
    B, _, H, W = score_map.shape
    s = resize_saliency(saliency, (H, W)).to(device=score_map.device, dtype=score_map.dtype)
    if s.shape[0] != B:
        raise ValueError(f"saliency has batch {s.shape[0]} but score_map has {B}")
    std = safe_theta_std(score_map, eps)  # [B, H, W]
    num = ((1.0 - s) * std).mean(dim=(1, 2))
    den = std.mean(dim=(1, 2)) + eps
    return (num / den).mean()
