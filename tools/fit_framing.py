"""Fit how free crops frame (:mod:`asm.search.framing`): the people's prior, and a model's shape bias.

``prior``: the best-rated crop of each GAICD training photo (official split; ties: all of
them) gives one sample of :func:`asm.search.framing.features`; the prior is their mean and
covariance. The photo's size is pinned by the GAICD grid (its crops span 1/24 to 23/24 of
each side). Reports, on the 200 test photos, the share of best-rated crops inside the
Gaussian's 95 % ellipsoid and the SRCC of the prior against the mean opinion scores.

``bias --model M.pt``: on the fixation sets' *training* photos (every n-th of OSIE, EyeCrowd
and NUS Scene train), the model's best crop of each shape (:data:`RELATIVE_ASPECTS` x
:data:`BIAS_AREAS`, placed on a 9 x 9 grid) scored in spreads of the photo's crop scores,
averaged over half the photos: the shape bias. On the other half it then picks the prior's
weight from :data:`WEIGHTS`: the most fixations kept beyond the same-area centre crop among
the weights whose free crops frame as the issue's gates ask (median aspect 0.8-1.3x the
photo's, median area 0.45-0.85, at most 10 % of landscape crops narrower than 2:3).

    python tools/fit_framing.py prior [--gaicd DIR]
    python tools/fit_framing.py bias --model asm/weights/asm_default.pt [--per-set 60]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from asm.data.annotations import best_rated, gaicd_photo_size as photo_size, read_gaicd_json, read_gaicd_split
from asm.data.shared import data_dir
from asm.evaluation.metrics import srcc
from asm.search.framing import BIAS_AREAS, FEATURES, RELATIVE_ASPECTS, ShapeBias, features, framing_prior

OUT = Path(__file__).resolve().parents[1] / "asm" / "search" / "framing.json"
#: The 95 % quantile of the chi-square distribution with 4 degrees of freedom.
CHI2_95_4DOF = 9.4877
#: The prior's weights the bias fit chooses from.
WEIGHTS = (0.25, 0.5, 1.0, 2.0)


def fit_prior(root: Path) -> dict:
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
        inside += (framing_prior(best_rated(boxes, scores), *size, model=model) >= -0.5 * CHI2_95_4DOF).tolist()
        rho.append(srcc(framing_prior(boxes, *size, model=model), scores))
    model["fitted_on"] = (f"GAICD hcic_image_crop.json, official train split: the best-rated crops of {len(train)} photos "
                          f"({len(x)} crops), their feature mean and covariance (tools/fit_framing.py prior)")
    model["test"] = {"photos": len(test), "best_rated_inside_95pct_ellipsoid": round(float(np.mean(inside)), 4),
                     "mean_srcc_vs_mos": round(float(np.nanmean(rho)), 4)}
    return model


def shape_grid(width: int, height: int, positions: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of every tabulated shape on a ``positions x positions`` grid, and the flat index of each one's shape."""
    boxes, shape = [], []
    for i, rel in enumerate(RELATIVE_ASPECTS):
        r = rel * width / height
        for j, area in enumerate(BIAS_AREAS):
            w = np.sqrt(area * width * height * r)
            h = w / r
            s = min(1.0, width / w, height / h)
            w, h = w * s, h * s
            for fx in np.linspace(0, 1, positions):
                for fy in np.linspace(0, 1, positions):
                    x, y = fx * (width - w), fy * (height - h)
                    boxes.append([x, y, x + w, y + h])
                    shape.append(i * len(BIAS_AREAS) + j)
    return np.array(boxes), np.array(shape)


def fit_bias(model_path: str, per_set: int) -> dict:
    from asm.cropper import Cropper
    from asm.data.fixations import fixation_set
    from asm.evaluation.free import crop_shapes, frames_like_people, same_area_centre_crop
    from asm.geometry import fixations_kept
    from asm.runtime import file_digest

    cropper = Cropper.from_pretrained(model_path)
    photos = []
    for name in ("osie", "eyecrowd", "nus"):
        data = fixation_set(name, "train")
        for k in range(0, len(data), max(1, len(data) // per_set)):
            item = data[k]
            photos.append((cropper.analyse(str(item.path)), item.points))
    fit, check = photos[::2], photos[1::2]
    table = np.zeros(len(RELATIVE_ASPECTS) * len(BIAS_AREAS))
    for analysis, _ in fit:
        boxes, shape = shape_grid(analysis.width, analysis.height)
        s = analysis.scorer.score(boxes, analysis.width, analysis.height)
        best = np.full(len(table), -np.inf)
        np.maximum.at(best, shape, (s - s.mean()) / max(float(s.std()), 1e-12))
        table += best
    table /= len(fit)
    table = table.reshape(len(RELATIVE_ASPECTS), len(BIAS_AREAS))
    trials = []
    for weight in WEIGHTS:
        cropper.shape_bias = ShapeBias(table, weight)
        placed, gain = [], []
        for analysis, points in check:
            W, H = analysis.width, analysis.height
            analysis.scorer = cropper.scorer(analysis.scorer.score_map)
            b = analysis.crops(aspect="free", faces=False).crops[0].box
            placed.append((b, W, H))
            area = (b[2] - b[0]) * (b[3] - b[1]) / (W * H)
            gain.append(fixations_kept(b, points) - fixations_kept(same_area_centre_crop(area, W, H), points))
        shapes = crop_shapes(placed)
        trials.append({"weight": weight, "median_rel_aspect": round(float(np.median(shapes["rel_aspect"])), 3),
                       "median_area": round(float(np.median(shapes["area"])), 3),
                       "narrow_landscape": round(float(np.mean(shapes["narrow"])), 3),
                       "kept_beyond_same_area_centre": round(float(np.mean(gain)), 4),
                       "frames_like_people": frames_like_people(shapes)})
        print(json.dumps(trials[-1]), flush=True)
    good = [t for t in trials if t["frames_like_people"]] or trials
    best = max(good, key=lambda t: t["kept_beyond_same_area_centre"])
    return {"model_sha256": file_digest(model_path), "model": Path(model_path).name, "weight": best["weight"],
            "table": table.round(4).tolist(),
            "fitted_on": f"{len(fit)} training photos of OSIE, EyeCrowd and NUS Scene (bias); the weight on {len(check)} others",
            "trials": trials}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("prior")
    p.add_argument("--gaicd", type=Path, help="folder with hcic_image_crop.json and hcic_original_data_split.json "
                   "(default: the shared data/gaicd)")
    b = sub.add_parser("bias")
    b.add_argument("--model", required=True)
    b.add_argument("--per-set", type=int, default=60, help="training photos per fixation set (default 60)")
    args = ap.parse_args()
    current = json.loads(OUT.read_text(encoding="utf-8")) if OUT.is_file() else {}
    if args.what == "prior":
        out = {**fit_prior(args.gaicd or data_dir("gaicd")), "calibration": current.get("calibration", [])}
    else:
        entry = fit_bias(args.model, args.per_set)
        out = {**current, "calibration": [c for c in current.get("calibration", []) if c["model_sha256"] != entry["model_sha256"]] + [entry]}
    OUT.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"written: {OUT.relative_to(OUT.parents[2])}")


if __name__ == "__main__":
    main()
