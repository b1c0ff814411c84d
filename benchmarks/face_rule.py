"""What the face rule costs and buys, on photos with eye fixations (train splits for tuning).

For each fixation set (:mod:`asm.data.fixations`), each photo is analysed once; then every
variant of the face rule (constants of :mod:`asm.search.constraints`) crops it at the six
validation aspects with the largest box (``min_scale=1``). Reported per set and variant:
fixations kept (mean over photos and aspects), against faces off; the share of crops that
cut a detected face that matters (:func:`asm.search.constraints.face_matters`) and, on
EyeCrowd, a head box drawn by people that matters.

    python benchmarks/face_rule.py --split train --limit 150 [--sets osie,eyecrowd,nus]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import asm.search.constraints as rule
from asm.cropper import Cropper
from asm.options import CropOptions
from asm.data.fixations import EyeCrowd, fixation_set
from asm.geometry import VALIDATION_ASPECTS, fixations_kept

#: name -> constants of asm.search.constraints (the shipped values where not named)
VARIANTS = {
    "every face matters (no size rule)": {"MATTER_SHARE": 0.0, "CROWD": 1e9},
    "shipped: matters 1 %, crowd 4, gain 0.25, agreed faces held": {},
    "matters 1 %, crowd 4, gain 0.25, no agreed-face hold": {"HOLD_COST": 0.0},
    "matters 1 %, crowd 4, gain 0": {"FACE_GAIN": 0.0},
    "matters 1 %, crowd 4, gain 0.5": {"FACE_GAIN": 0.5},
    "matters 1.5 %, crowd 4, gain 0.25": {"MATTER_SHARE": 0.015},
    "matters 0.5 %, crowd 4, gain 0.25": {"MATTER_SHARE": 0.005},
    "matters 1 %, crowd 2, gain 0.25": {"CROWD": 2},
}


def cut_matter(box, faces: np.ndarray) -> bool:
    """Whether ``box`` cuts one of ``faces [F, 4]`` that matters to it (as shipped)."""
    if len(faces) == 0:
        return False
    return bool(rule.cuts_faces_that_matter(np.asarray([box], dtype=np.float64), faces).any())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="train")
    ap.add_argument("--limit", type=int, default=150)
    ap.add_argument("--sets", default="osie,eyecrowd,nus")
    ap.add_argument("--variants", default=None, help="comma-separated indices into VARIANTS")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    cropper = Cropper.from_pretrained(args.model)
    labels = [a for a, _ in VALIDATION_ASPECTS]
    names = list(VARIANTS)
    if args.variants:
        names = [names[int(i)] for i in args.variants.split(",")]
    defaults = {k: getattr(rule, k) for k in ("MATTER_SHARE", "CROWD", "FACE_GAIN", "HOLD_COST")}
    for set_name in args.sets.split(","):
        data = fixation_set(set_name, args.split)
        ids = range(min(args.limit, len(data)))
        t0 = time.time()
        rows = {n: {"kept": [], "cut": [], "cut_heads": []} for n in ["faces off", *names]}
        for i in ids:
            item = data[i]
            analysis = cropper.analyse(str(item.path))
            heads = data.heads(item.image_id) if isinstance(data, EyeCrowd) else np.zeros((0, 4))
            faces = None
            for n in [*names, "faces off"]:
                for k, v in {**defaults, **VARIANTS.get(n, {})}.items():
                    setattr(rule, k, v)
                result = analysis.crops(CropOptions.parse(labels, faces=n != "faces off", min_scale=1))
                if faces is None and result.faces is not None:
                    faces = np.array(result.faces, dtype=np.float64).reshape(-1, 5)[:, :4]
                for k, v in defaults.items():  # "matters" as shipped, for every row
                    setattr(rule, k, v)
                for c in result.crops:
                    rows[n]["kept"].append(fixations_kept(c.box, item.points))
                    rows[n]["cut"].append(cut_matter(c.box, faces if faces is not None else np.zeros((0, 4))))
                    rows[n]["cut_heads"].append(cut_matter(c.box, heads))
        for k, v in defaults.items():
            setattr(rule, k, v)
        print(f"\n{set_name} {args.split}: {len(ids)} photos x {len(labels)} aspects ({time.time() - t0:.0f} s)")
        base = np.mean(rows["faces off"]["kept"])
        for n, r in rows.items():
            kept = np.mean(r["kept"])
            print(f"  {n:34s} kept {kept:.4f} ({kept - base:+.4f})  cuts a face that matters {100 * np.mean(r['cut']):5.1f} %"
                  + (f"  a drawn head {100 * np.mean(r['cut_heads']):5.1f} %" if set_name == "eyecrowd" else ""), flush=True)


if __name__ == "__main__":
    main()
