"""What each epoch is judged by, on held-out photos: the share of where people look that the
top crop keeps (next to the centre crop's), and the border checks of ``asm eval``."""

from __future__ import annotations


import numpy as np
import torch

from asm.data.gaze import GazeSample
from asm.geometry import VALIDATION_ASPECTS as VAL_ASPECTS, centre_crop, density_kept, fixations_kept
from asm.models import ASMNet, border_trend
from asm.search.candidates import random_cut
from asm.training.config import TrainConfig, serving_preset

__all__ = ["validate", "VAL_ASPECTS"]


def validate(model: ASMNet, val: dict[str, list[GazeSample]], cfg: TrainConfig) -> dict:
    """Share of the target kept by the model's top-1 crop at each of :data:`VAL_ASPECTS`, and
    by the centre crop, per validation set (human fixation points where known, else the
    target density); ``<set>_kept`` / ``<set>_centre`` are the means over the aspects."""
    from asm.cropper import Cropper

    model.eval()
    cropper = Cropper(model, serving_preset(cfg), device=next(model.parameters()).device)
    labels = [a for a, _ in VAL_ASPECTS]
    out: dict[str, float] = {}
    checked = "photos" if val.get("photos") else next(iter(val), None)  # the set checks (a) and (b) run on
    analyses = []  # of the checked set's photos, kept for the checks
    for name, samples in val.items():
        kept: dict[str, list[float]] = {a: [] for a in labels}
        centre: dict[str, list[float]] = {a: [] for a in labels}
        for s in samples:
            H, W = s.image.shape[:2]
            analysis = cropper.analyse(s.image)
            if name == checked:
                analyses.append(analysis)
            result = analysis.crops(aspect=labels)
            for (a, ratio), crop in zip(VAL_ASPECTS, result.crops):
                for store, box in ((kept, crop.box), (centre, centre_crop(W, H, ratio))):
                    if s.points is not None:
                        store[a].append(fixations_kept(box, s.points))
                    else:
                        cells = np.asarray(box, np.float64) * np.array([s.target.shape[1] / W, s.target.shape[0] / H] * 2)
                        store[a].append(float(density_kept(s.target, cells[None])[0]))
        for a in labels:
            out[f"{name}_kept_{a}"] = float(np.mean(kept[a]))
            out[f"{name}_centre_{a}"] = float(np.mean(centre[a]))
        out[f"{name}_kept"] = float(np.mean([out[f"{name}_kept_{a}"] for a in labels]))
        out[f"{name}_centre"] = float(np.mean([out[f"{name}_centre_{a}"] for a in labels]))
    rng = np.random.default_rng(0)
    wins, trends = [], []
    for s, analysis in zip(val.get(checked, []), analyses):  # checks (a) and (b) of asm eval on the held-out photos
        H, W = s.image.shape[:2]
        whole = float(analysis.score([[0, 0, W, H]])[0])
        trends.append(border_trend(torch.from_numpy(analysis.score_map))[0].abs().mean().item())
        for _ in range(3):
            x1, y1, x2, y2 = random_cut(rng, W, H)
            cut = np.ascontiguousarray(s.image[y1:y2, x1:x2])
            wins.append(float(whole > float(cropper.score(cut, [[0, 0, x2 - x1, y2 - y1]])[0])))
    out["photo_beats_cut"] = float(np.mean(wins)) if wins else float("nan")
    out["border_trend"] = float(np.mean(trends)) if trends else float("nan")
    out["prior_weight"] = model.prior_weight.item()
    model.train()
    return out
