"""Fit the framing prior of free crops (:mod:`asm.search.framing`) on the GAICD annotations.

The best-rated crop of each GAICD training photo (official split; ties: all of them) gives
one sample of :func:`asm.search.framing.features`; the prior is their mean and covariance.
The photo's size is pinned by the GAICD grid (its crops span 1/24 to 23/24 of each side).
Reports, on the 200 test photos, the share of best-rated crops inside the Gaussian's 95 % ellipsoid
and the SRCC of the prior against the mean opinion scores; then writes the JSON.

    python tools/fit_framing.py [--gaicd DIR] [--out asm/search/framing.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from asm.data.annotations import best_rated, gaicd_photo_size as photo_size, read_gaicd_json, read_gaicd_split
from asm.data.shared import data_dir
from asm.evaluation.metrics import srcc
from asm.search.framing import FEATURES, features, framing_prior


#: The 95 % quantile of the chi-square distribution with 4 degrees of freedom.
CHI2_95_4DOF = 9.4877


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gaicd", type=Path, help="folder with hcic_image_crop.json and hcic_original_data_split.json "
                    "(default: the shared data/gaicd)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "asm" / "search" / "framing.json")
    args = ap.parse_args()
    root = args.gaicd or data_dir("gaicd")
    crops = read_gaicd_json(root / "hcic_image_crop.json")
    split = read_gaicd_split(root / "hcic_original_data_split.json")
    train = [n for n in split["train"] if n in crops]
    x = np.concatenate([features(best_rated(*crops[n]), *photo_size(crops[n][0])) for n in train])
    model = {"features": list(FEATURES), "mean": x.mean(axis=0).round(6).tolist(),
             "cov": np.cov(x, rowvar=False).round(8).tolist()}
    test = [n for n in split["test"] if n in crops]
    inside, rho = [], []
    for n in test:
        boxes, scores = crops[n]
        size = photo_size(boxes)
        prior = framing_prior(boxes, *size, model=model)
        inside += (framing_prior(best_rated(boxes, scores), *size, model=model) >= -0.5 * CHI2_95_4DOF).tolist()
        rho.append(srcc(prior, scores))
    model["fitted_on"] = (f"GAICD hcic_image_crop.json, official train split: the best-rated crops of {len(train)} photos "
                          f"({len(x)} crops), their feature mean and covariance (tools/fit_framing.py)")
    model["test"] = {"photos": len(test), "best_rated_inside_95pct_ellipsoid": round(float(np.mean(inside)), 4),
                     "mean_srcc_vs_mos": round(float(np.nanmean(rho)), 4)}
    args.out.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(model, indent=2))


if __name__ == "__main__":
    main()
