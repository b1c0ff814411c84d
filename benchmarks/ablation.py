"""Ablation of the composition pattern and the saliency weight λ (paper Table 1, Fig. 5).

Shortened schedule for 2 CPU cores: every run trains the default recipe (OSIE fixation
pairs, see asm/train.py) for ``--epochs`` on the first ``--limit`` training photos and is
measured on OSIE validation photos (ids 1401-1500, never trained on). Each run is one
process (``--runs`` picks a subset, so two can run side by side); the table is rebuilt from
every finished run's history in ``runs/ablation/`` and written to
``benchmarks/results/ablation.md``.

    python benchmarks/ablation.py --runs all
    python benchmarks/ablation.py --table        # only rebuild the table
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "ablation"
RESULTS = ROOT / "benchmarks" / "results" / "ablation.md"
PATTERNS = ("grid1x1", "grid3x3", "grid5x5", "multi_rectangle", "multi_direction", "cross_rectangle")
LAMBDAS = (0.0, 0.1, 1.0)
RUNS = [(p, 0.1) for p in PATTERNS] + [("cross_rectangle", 0.0), ("cross_rectangle", 1.0)]


def run_name(pattern: str, lam: float) -> str:
    return f"{pattern}_lam{lam:g}"


def run(pattern: str, lam: float, epochs: int, limit: int, weights: str) -> None:
    from asm.train import TrainConfig, osie_samples, train

    cfg = TrainConfig(out=str(OUT / run_name(pattern, lam)), pattern=pattern, lam=lam, epochs=epochs, limit=limit,
                      backbone_weights=weights, outer_crop=0.6)
    train(cfg, val_set=osie_samples("val", 50), progress=False)


def table() -> str:
    rows = ["| pattern | λ | val pair acc | fixations kept 1:1 | fixations kept 9:16 | train loss |", "|---|---:|---:|---:|---:|---:|"]
    centre = None
    for pattern, lam in RUNS:
        hist = OUT / run_name(pattern, lam) / "history.json"
        if not hist.is_file():
            rows.append(f"| {pattern} | {lam:g} | (not run) | | | |")
            continue
        last = json.loads(hist.read_text())[-1]
        centre = centre or (last["centre_kept_1x1"], last["centre_kept_9x16"])
        rows.append(f"| {pattern} | {lam:g} | {last['val_pair_acc']:.3f} | {last['val_kept_1x1']:.3f} | "
                    f"{last['val_kept_9x16']:.3f} | {last['loss']:.3f} |")
    if centre:
        rows.append(f"| centre crop | | | {centre[0]:.3f} | {centre[1]:.3f} | |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="all", help="'all' or comma-separated run names, e.g. grid1x1_lam0.1")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=160)
    ap.add_argument("--weights", default=str(ROOT.parent / "shared" / "weights" / "mobilenet_v2-imagenet.pth"))
    ap.add_argument("--table", action="store_true", help="only rebuild the table")
    args = ap.parse_args()
    if not args.table:
        wanted = None if args.runs == "all" else set(args.runs.split(","))
        for pattern, lam in RUNS:
            if wanted is None or run_name(pattern, lam) in wanted:
                run(pattern, lam, args.epochs, args.limit, args.weights)
    header = (f"# Ablation: composition pattern and saliency weight\n\n"
              f"Shortened schedule on 2 CPU cores: {args.epochs} epochs on the first {args.limit} OSIE training photos "
              f"(MobileNetV2, fixation pairs, outer crop 60-100 %); measured on 50 OSIE validation photos. "
              f"'val pair acc': held-out equal-size and nested view pairs ranked as the fixations rank them; "
              f"'fixations kept': share of human fixations inside the top-1 crop.\n\n")
    RESULTS.write_text(header + table() + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
