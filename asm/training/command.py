"""The ``asm train`` command (also ``python -m asm.training``, which ``torchrun -m asm.training`` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from asm.data.pack import save_pack
from asm.errors import echo
from asm.training.config import TrainConfig
from asm.training.loop import train
from asm.training.samples import load_gaze

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on where people look (OSIE fixations + FastGaze teacher)",
        description="Train ASM-Net on ranking pairs from where people look (see asm/training/). "
        "Runs on CPU, GPU, or several processes with torchrun. Every TrainConfig field can be set "
        "in a JSON --config file; flags override it.",
    )
    p.add_argument("--config", type=Path, help="JSON file with TrainConfig fields")
    p.add_argument("--out", help="output folder (checkpoints, history.json, curves.png)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, dest="batch_size")
    p.add_argument("--backbone")
    p.add_argument("--backbone-weights", dest="backbone_weights", help="torchvision ImageNet state dict of the backbone")
    p.add_argument("--pattern")
    p.add_argument("--lam", type=float, help="weight of the saliency-aware loss (default 0.1)")
    p.add_argument("--distill", type=float, help="weight of the teacher-density distillation into θ_avg")
    p.add_argument("--limit", type=int, help="train on N images: the first N of each source, or N drawn at random "
                   "(seeded) from a pack")
    p.add_argument("--data", help="training data: gaze (default: OSIE fixations + teacher-labelled photos), osie, synthetic, "
                   "or a pack file written by --write-pack")
    p.add_argument("--write-pack", type=Path, metavar="FILE.pkl",
                   help="only load the training and validation data and write them to one file (photos as WebP), then stop")
    p.add_argument("--store-side", type=int, dest="store_side",
                   help="long side photos are kept at, and --write-pack stores them at (default 384)")
    p.add_argument("--teacher", help="FastGaze weights (default: the shared weights folder)")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    overrides = {k: getattr(args, k) for k in ("out", "epochs", "batch_size", "backbone", "backbone_weights", "pattern", "lam", "distill", "limit", "seed", "data", "teacher", "store_side")}
    try:
        cfg = TrainConfig.from_file(args.config, **overrides) if args.config else TrainConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    except (OSError, ValueError, TypeError) as e:  # a missing or malformed config, a bad value
        from asm.cli import fail

        text = f"{e.strerror}: {echo(str(e.filename))}" if isinstance(e, OSError) and e.filename else str(e)
        fail("train", text if len(text) <= 200 else text[:197] + "...")
        return 2
    if args.write_pack:
        train_set, val_sets = load_gaze(cfg, progress=not args.no_progress)
        save_pack({"train": train_set, **val_sets}, args.write_pack)
        print(f"wrote {args.write_pack}: {len(train_set)} training samples, "
              + ", ".join(f"{k} {len(v)}" for k, v in val_sets.items()))
        return 0
    train(cfg, resume=args.resume, progress=not args.no_progress)
    return 0
