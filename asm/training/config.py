"""Every knob of a training run (``asm train --config FILE.json`` takes these keys).

The defaults are the first stage of the shipped model's recipe; ``configs/*.json`` list only
what a run changes from them (``configs/default.json``: where the ImageNet weights and the
data pack are; ``configs/finetune.json``: the second stage).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

from asm.data.gaze import STORE_SIDE
from asm.models.weights import InferencePreset

__all__ = ["TrainConfig", "serving_preset"]


@dataclass
class TrainConfig:
    """Every knob of a run (``asm train --config FILE.json`` takes these keys)."""

    out: str = "runs/default"
    backbone: str = "mobilenet_v2"
    backbone_weights: str | None = None
    init: str | None = None  # start from this asm model file (a second training stage)
    pattern: str = "cross_rectangle"
    map_stride: int = 8
    epochs: int = 6
    batch_size: int = 8
    input_size: tuple[int, int] = (192, 256)  # (short, long) sides of the network input (long: unless keep_aspect)
    keep_aspect: bool = False  # inputs keep the photo's aspect as served (serving_preset); else resized to input_size
    lr: float = 1e-3  # heads
    backbone_lr: float = 1e-4
    weight_decay: float = 1e-4
    lam: float = 0.1  # weight of the saliency-aware loss
    distill: float = 0.0  # weight of the teacher-density distillation into θ_avg
    framing: float = 0.0  # weight of "the whole photo outscores a re-framed cut of it" (view finding)
    border: float = 1.0  # weight of the penalty on each map channel's image-border trend
    margin: float = 1.0
    delta: float = 0.03  # minimum difference of kept share for a pair
    nested: bool = True  # also rank each view against a wider view around it (learns scale)
    groups: int = 6  # view groups per image
    views: int = 8  # views per group
    served: float = 0.67  # share of groups drawn as the search serves them
    largest: float = 0.5  # ...of which the largest box of the aspect
    min_view_scale: float = 0.5  # floating views
    max_view_scale: float = 0.9
    outer_crop: float = 0.85  # random outer crop keeps at least this much of each side
    store_side: int = STORE_SIDE  # photos are kept at this long side (--write-pack stores them so); cuts of larger copies stay sharp
    data: str = "gaze"  # "gaze" (OSIE, EyeCrowd, NUS fixations + teacher-labelled photos), "fixations" (the three
    # fixation sets only), "osie" (OSIE only), "synthetic", or a pack file (.pkl)
    limit: int | None = None  # train on N images: the first N of each source, or N drawn at random (seeded) from a pack
    teacher: str | None = None  # FastGaze weights (default: the shared weights folder)
    fixation_repeats: int = 3  # photos with human fixations appear this many times per epoch
    workers: int = 1  # processes preparing batches beside the training loop (0: none)
    seed: int = 0
    half: bool = True  # best.pt and final.pt hold float16 weights (read back as float32); last.pt stays float32

    def __post_init__(self) -> None:
        counts = {"epochs": 1, "batch_size": 1, "map_stride": 1, "groups": 1, "views": 2, "store_side": 32,
                  "fixation_repeats": 1, "workers": 0}
        for name, least in counts.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
        if self.data not in ("gaze", "fixations", "osie", "synthetic") and not str(self.data).endswith(".pkl"):
            raise ValueError(f"unknown training data {self.data!r}; use 'gaze', 'fixations', 'osie', 'synthetic' or a pack file (.pkl)")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ValueError(f"limit must be a whole number >= 1 (or null for all photos), got {self.limit!r}")
        if len(self.input_size) != 2 or not all(isinstance(v, int) and v >= 32 for v in self.input_size):
            raise ValueError(f"input_size must be two whole numbers >= 32 (short, long), got {self.input_size!r}")
        for name in ("lr", "backbone_lr", "weight_decay", "lam", "distill", "framing", "border", "margin", "delta"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < float("inf"):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")

    @classmethod
    def from_file(cls, path: str | os.PathLike, **overrides) -> TrainConfig:
        text = Path(path).read_text()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{os.fspath(path)[-80:]} is not a JSON object of training options ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{os.fspath(path)[-80:]} is not a JSON object of training options")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        if "input_size" in data:
            data["input_size"] = tuple(data["input_size"])
        return cls(**data)


def serving_preset(cfg: TrainConfig) -> InferencePreset:
    """How the trained model is served: at the scale it trained at."""
    return InferencePreset(short_side=cfg.input_size[0], max_long_side=2 * cfg.input_size[0])
