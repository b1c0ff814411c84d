"""The loss of one batch: ranking pairs, the saliency-aware loss, and the optional
distillation, border and framing terms (weights in :class:`~asm.training.config.TrainConfig`)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

import asm.ops.pool  # noqa: F401  (registers torch.ops.asm, used below)
from asm.geometry import map_rows
from asm.models import border_trend, normalize
from asm.models.prior import centre_prior
from asm.training.config import TrainConfig
from asm.training.losses import pair_ranking_loss, saliency_loss
from asm.training.views import _grown, _pairs

__all__ = ["batch_loss", "whole_frame_scores", "cut_scores", "distill_loss"]


def _standardise(x: Tensor) -> Tensor:
    """Per image ``[B, h, w]``: zero mean, unit std."""
    flat = x.flatten(1)
    return ((flat - flat.mean(1, keepdim=True)) / (flat.std(1, keepdim=True) + 1e-6)).view_as(x)


def whole_frame_scores(score_map: Tensor, partition: Tensor) -> Tensor:
    """``[B]`` scores of the whole frame of each map ``[B, L, h, w]`` (its centre prior is 0)."""
    B, _, h, w = score_map.shape
    rows = score_map.new_zeros(B, 5)
    rows[:, 0] = torch.arange(B, dtype=score_map.dtype, device=score_map.device)
    rows[:, 3], rows[:, 4] = w, h
    return torch.ops.asm.composition_pool(score_map, rows, partition)


def cut_scores(model: torch.nn.Module, cuts: list[Tensor]) -> Tensor:
    """``[N]`` whole-frame scores of the ``[3, h, w]`` re-framed cuts, in order (one pass per size)."""
    core = model.module if hasattr(model, "module") else model
    device = next(model.parameters()).device
    partition = core.pattern.partition.to(device)
    by_size: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(cuts):
        by_size.setdefault(tuple(t.shape), []).append(i)
    out = torch.empty(len(cuts), device=device)
    for idx in by_size.values():
        out[idx] = whole_frame_scores(model(normalize(torch.stack([cuts[i] for i in idx])).to(device)), partition)
    return out


def distill_loss(score_map: Tensor, teacher: Tensor) -> Tensor:
    """Squared error between the standardised θ_avg ``[B, h, w]`` and the standardised teacher
    density, area-resized to the map."""
    t = F.interpolate(teacher[:, None], size=score_map.shape[-2:], mode="area")[:, 0]
    return F.mse_loss(_standardise(score_map.mean(1)), _standardise(t))


def batch_loss(model: torch.nn.Module, examples: list[dict], cfg: TrainConfig) -> tuple[Tensor, dict]:
    """``L_rank + lam * L_sal + distill * L_distill`` for a batch; every view of an image
    scored from its one map. Examples of different input sizes (orientations) are forwarded
    in one pass per size."""
    core = model.module if hasattr(model, "module") else model
    device = next(model.parameters()).device
    partition = core.pattern.partition.to(device)
    by_size: dict[tuple[int, ...], list[dict]] = {}
    for e in examples:
        by_size.setdefault(tuple(e["image"].shape), []).append(e)
    scores, better, worse, sal, dst, brd, whole, whole_of, offset = [], [], [], [], [], [], [], [], 0
    for group in by_size.values():
        images = normalize(torch.stack([e["image"] for e in group])).to(device)
        score_map = model(images)  # [B, L, h, w]
        _, _, h, w = score_map.shape
        ih, iw = images.shape[-2:]
        rows, prior = [], []
        for b, e in enumerate(group):
            boxes = e["boxes"].to(device)
            rows.append(map_rows(boxes, (iw, ih), (w, h), batch=b))
            prior.append(centre_prior(boxes, iw, ih))
            n = len(e["group"])
            i, j = _pairs(e["kept"], e["group"], cfg.delta, cfg.nested, _grown(e["boxes"], n))
            better.append(i + offset)
            worse.append(j + offset)
            offset += len(boxes)
        pooled = torch.ops.asm.composition_pool(score_map, torch.cat(rows), partition)
        scores.append(pooled + core.prior_weight * torch.cat(prior))
        teacher = torch.stack([F.interpolate(e["teacher"][None, None], size=(h, w), mode="area")[0, 0] for e in group]).to(device)
        sal.append(saliency_loss(score_map, teacher) * len(group))
        dst.append(distill_loss(score_map, teacher) * len(group) if cfg.distill > 0 else score_map.new_zeros(()))
        brd.append(border_trend(score_map).pow(2).mean() * len(group) if cfg.border > 0 else score_map.new_zeros(()))
        if cfg.framing > 0:
            whole.append(whole_frame_scores(score_map, partition))
            whole_of.extend(group)
    s = torch.cat(scores)
    better_t, worse_t = torch.cat(better).to(device), torch.cat(worse).to(device)
    rank = pair_ranking_loss(s[better_t], s[worse_t], cfg.margin)
    sal_l = torch.stack(sal).sum() / len(examples)
    dst_l = torch.stack(dst).sum() / len(examples)
    brd_l = torch.stack(brd).sum() / len(examples)
    frame_l = s.new_zeros(())
    if cfg.framing > 0:  # the photo's whole frame above the whole frame of a re-framed cut of it
        frame_l = pair_ranking_loss(torch.cat(whole), cut_scores(model, [e["cut"] for e in whole_of]), cfg.margin)
    loss = rank + cfg.lam * sal_l + cfg.distill * dst_l + cfg.border * brd_l + cfg.framing * frame_l
    with torch.no_grad():
        acc = (s[better_t] > s[worse_t]).float().mean().item() if len(better_t) else float("nan")
    return loss, {"loss": loss.item(), "rank": rank.item(), "sal": sal_l.item(), "distill": dst_l.item(),
                  "border": brd_l.item(), "framing": frame_l.item(),
                  "pair_acc": acc, "pairs": len(better_t)}
