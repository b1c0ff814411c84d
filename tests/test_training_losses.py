"""Ranking and saliency-aware losses against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import asm.ops.pool  # noqa: F401  (registers torch.ops.asm)
from asm.training.losses import pair_ranking_loss, resize_saliency, safe_theta_std, saliency_loss
from asm.models import theta_std


# --------------------------------------------------------------------------------------
# pair_ranking_loss
# --------------------------------------------------------------------------------------
def test_pair_ranking_loss_hand_values():
    b = torch.tensor([1.0, 0.0, 3.0], requires_grad=True)
    w = torch.tensor([0.5, 0.5, 0.0], requires_grad=True)
    # hinges: 1 + 0.5 - 1 = 0.5, 1 + 0.5 - 0 = 1.5, max(0, 1 + 0 - 3) = 0
    loss = pair_ranking_loss(b, w)
    assert loss.item() == pytest.approx(2.0 / 3)
    loss.backward()
    assert b.grad.tolist() == pytest.approx([-1 / 3, -1 / 3, 0.0])
    assert w.grad.tolist() == pytest.approx([1 / 3, 1 / 3, 0.0])
    assert pair_ranking_loss(b, w, margin=0.0).item() == pytest.approx(0.5 / 3)
    empty = pair_ranking_loss(torch.zeros(0, requires_grad=True), torch.zeros(0))
    assert empty.item() == 0.0 and empty.requires_grad
    with pytest.raises(ValueError):
        pair_ranking_loss(b, w[:2])


# --------------------------------------------------------------------------------------
# saliency_loss
# --------------------------------------------------------------------------------------
def test_saliency_loss_hand_value():
    # L = 2 channels, H = 1, W = 2. Pixel 0: (0, 2) -> std 1; pixel 1: (0, 4) -> std 2.
    m = torch.tensor([[[[0.0, 0.0]], [[2.0, 4.0]]]], requires_grad=True)
    s = torch.tensor([[[1.0, 0.0]]])
    # (1/HW) sum (1 - s) std / mean(std) = ((0 * 1 + 1 * 2) / 2) / 1.5 = 2/3
    loss = saliency_loss(m, s)
    assert loss.item() == pytest.approx(2 / 3, abs=1e-6)
    loss.backward()
    assert torch.isfinite(m.grad).all()
    # saliency on the other pixel: (1 * 1 + 0 * 2) / 2 / 1.5 = 1/3
    assert saliency_loss(m, torch.tensor([[[0.0, 1.0]]])).item() == pytest.approx(1 / 3, abs=1e-6)
    # zero saliency: the loss is exactly 1 whatever the map (scale invariant)
    assert saliency_loss(m * 7.0, torch.zeros(1, 1, 2)).item() == pytest.approx(1.0, abs=1e-6)


def test_saliency_loss_batch_mean_and_resize():
    m = torch.tensor([[[[0.0, 0.0]], [[2.0, 4.0]]]])
    m2 = torch.cat([m, m])
    s = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert saliency_loss(m2, s).item() == pytest.approx((2 / 3 + 1 / 3) / 2, abs=1e-6)
    # saliency given at 2x4 is area-averaged to 1x2: [[1,1,0,0],[1,1,0,0]] -> [1, 0]
    big = torch.tensor([[[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]])
    assert saliency_loss(m, big).item() == pytest.approx(2 / 3, abs=1e-6)
    # numpy [H, W] for a batch of one
    assert saliency_loss(m, np.array([[1.0, 1.0, 0.0, 0.0]], np.float32)).item() == pytest.approx(2 / 3, abs=1e-6)
    with pytest.raises(ValueError, match="batch"):
        saliency_loss(m2, torch.zeros(3, 1, 2))


def test_resize_saliency_area():
    s = torch.arange(16, dtype=torch.float32).reshape(4, 4)
    r = resize_saliency(s, (2, 2))
    assert r.shape == (1, 2, 2)
    assert r[0].tolist() == [[2.5, 4.5], [10.5, 12.5]]  # means of the 2x2 blocks
    assert torch.equal(resize_saliency(s[None], (4, 4)), s[None])  # already the right size
    with pytest.raises(ValueError):
        resize_saliency(torch.zeros(1, 1, 2, 2), (2, 2))


def test_saliency_loss_safe_when_std_is_zero():
    m = torch.ones(2, 5, 3, 4, requires_grad=True)  # every channel equal: theta_std = 0 everywhere
    loss = saliency_loss(m, torch.rand(2, 3, 4))
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(m.grad).all()
    m3 = torch.ones(1, 3, 2, 2)
    m3[0, 0, 0, 0] = 2.0  # one pixel with spread, the rest flat
    m3.requires_grad_(True)
    saliency_loss(m3, torch.zeros(1, 2, 2)).backward()
    assert torch.isfinite(m3.grad).all()


def test_safe_theta_std_matches_model_theta_std():
    torch.manual_seed(0)
    m = torch.randn(2, 12, 6, 7)
    assert torch.allclose(safe_theta_std(m), theta_std(m), atol=1e-6)
    # and the loss equals eq. 7 written with the model's theta_std
    s = torch.rand(2, 6, 7)
    t = theta_std(m)
    ref = (((1 - s) * t).mean(dim=(1, 2)) / t.mean(dim=(1, 2))).mean()
    assert saliency_loss(m, s).item() == pytest.approx(ref.item(), rel=1e-5)
