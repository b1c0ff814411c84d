"""Faces, keep-regions and zoom (``make bench``), written to ``benchmarks/results/faces.md``.

On validation photos only (OSIE val, ids 1401-1500, and the held-out photo sources of
:func:`asm.data.photos.split_by_source`):

1. Faces: at 1:1, 4:5 and the aspect far from the photo's own (9:16 for a landscape photo,
   16:9 for a portrait one), the share of crops that cut through a detected face and the
   share of faces kept whole, for asm (faces on and off) and the peers (centre crop,
   smartcrop.py, libvips attention). Faces are YuNet's (asm.search.faces), the same detector asm
   uses: the table measures how often a crop cuts what the detector sees.
2. Keep-regions: a random box per photo and aspect (10-30 % of each side) passed as
   ``keep``: the share of crops holding it whole where it fits, and that asm warns where
   it cannot; a random ``focus`` point: the share of crops holding it and how far it lies
   from the crop centre, against the same crops without focus.
3. Zoom: ``min_scale`` from 0.4 to 1 on OSIE val: eye fixations kept, crop area, faces
   cut; the default is the smallest value that keeps at least 99.8 % of the fixations that
   the largest boxes (min_scale 1) keep.
4. Cost: face detection per photo, and a crop with faces on against off, same run; the
   faces YuNet still finds on smaller copies of the photo, and what that would save.

Run: ``python benchmarks/bench_faces.py [--limit N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asm.cropper import DEFAULT_MIN_SCALE, CropOptions, Cropper  # noqa: E402
from asm.evaluation import peers as peer_mod  # noqa: E402
from asm.evaluation.metrics import fixations_kept  # noqa: E402
from asm.io import load_image  # noqa: E402
from asm.search.candidates import box_iou  # noqa: E402
from asm.search.constraints import contains, cuts, fits  # noqa: E402
from asm.search.faces import DETECT_SIDE, detect_faces  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "faces.md"
PEERS = ["centre crop", "smartcrop.py", "libvips attention"]
SCALES = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
KEEP_TARGET = 0.998
#: Smaller detector inputs tried against asm's (asm.search.faces.DETECT_SIDE).
SMALLER_SIDES = [480, 400, 320]


def far_aspect(width: int, height: int) -> str:
    """The aspect far from the photo's own: 9:16 for a landscape photo, 16:9 for a portrait."""
    return "9:16" if width >= height else "16:9"


def _ratio(label: str) -> float:
    w, h = label.split(":")
    return float(w) / float(h)


def validation_photos(limit: int | None) -> tuple[list, list[Path]]:
    """OSIE val items (with fixations) and the held-out photo paths; empty if the data are absent."""
    from asm.data.osie import OSIE
    from asm.data.photos import photo_folder, split_by_source

    try:
        osie = OSIE(split="val")
        osie_items = [osie[i] for i in range(len(osie))]
    except (FileNotFoundError, OSError, ValueError):
        osie_items = []
    try:
        photos = [p.path for p in split_by_source(photo_folder())[1]]
    except (FileNotFoundError, OSError, ValueError, TypeError):
        photos = []
    return osie_items[:limit], photos[:limit]


def _tensor(boxes) -> torch.Tensor:
    return torch.tensor(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))


def face_stats(box, faces: np.ndarray, ratio: float, width: int, height: int) -> tuple[int, int, int, int]:
    """(cuts any face, cuts a face that some crop of ``ratio`` could hold whole, faces kept
    whole, faces) for one crop."""
    if len(faces) == 0:
        return 0, 0, 0, 0
    b, f = _tensor([box]), torch.from_numpy(faces[:, :4].copy())
    cut = cuts(b, f)[0]
    fit = torch.stack([fits(face, torch.tensor([ratio], dtype=torch.float64), width, height)[0] for face in f])
    return int(bool(cut.any())), int(bool((cut & fit).any())), int(contains(b, f).sum()), len(faces)


def run(limit: int | None) -> str:
    torch.set_num_threads(2)
    cropper = Cropper.from_pretrained()
    osie_items, photo_paths = validation_photos(limit)
    images = [(f"osie/{Path(it.path).stem}", it.path, it.points) for it in osie_items]
    images += [(f"photos/{p.parent.name}/{p.name}", p, None) for p in photo_paths]
    lines = ["# Faces, keep-regions and zoom", ""]
    if not images:
        lines.append("No validation photos (../shared/data/osie, ../shared/data/photos): nothing measured.")
        return "\n".join(lines) + "\n"
    status = {p: peer_mod.available(p) for p in PEERS}
    peers = [p for p in PEERS if status[p][0]]
    methods = ["asm", "asm (faces off)", *peers]
    aspects = ["1:1", "4:5", "far"]
    cut = {m: {a: [] for a in aspects} for m in methods}
    avoidable = {m: [] for m in methods}
    kept = {m: {a: [0, 0] for a in aspects} for m in methods}
    keep_hits, keep_fit, keep_warned, keep_unfit = [], [], [], 0
    focus_in, focus_dist, nofocus_dist = [], [], []
    scale_rows = {s: {"fix": [], "area": [], "cut": []} for s in SCALES}
    t_detect, t_on, t_off = [], [], []
    size_ms: dict[int, list[float]] = {side: [] for side in SMALLER_SIDES}
    size_found = {side: 0 for side in SMALLER_SIDES}
    n_face_photos = n_faces = 0
    rng = np.random.default_rng(0)
    for i, (name, path, points) in enumerate(images):
        rgb = load_image(path)
        H, W = rgb.shape[:2]
        t0 = time.perf_counter()
        faces = detect_faces(rgb)
        t_detect.append(time.perf_counter() - t0)
        for side in SMALLER_SIDES:
            t0 = time.perf_counter()
            small = detect_faces(rgb, max_side=side)
            size_ms[side].append(time.perf_counter() - t0)
            size_found[side] += sum(bool(len(small)) and float(box_iou(_tensor([f[:4]]), _tensor(small[:, :4])).max()) > 0.5
                                    for f in faces)
        analysis = cropper.analyse(rgb)
        labels = {"1:1": "1:1", "4:5": "4:5", "far": far_aspect(W, H)}
        t0 = time.perf_counter()
        on = analysis.crops(CropOptions.parse(list(labels.values())))
        t_on.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        off = analysis.crops(CropOptions.parse(list(labels.values()), faces=False))
        t_off.append(time.perf_counter() - t0)
        if len(faces):
            n_face_photos += 1
            n_faces += len(faces)
            for a, label in labels.items():
                boxes = {"asm": next(c.box for c in on.crops if c.aspect == label),
                         "asm (faces off)": next(c.box for c in off.crops if c.aspect == label)}
                for p in peers:
                    boxes[p] = peer_mod.PEERS[p].place(rgb, _ratio(label))
                for m, box in boxes.items():
                    c, c_fit, k, n = face_stats(box, faces, _ratio(label), W, H)
                    cut[m][a].append(c)
                    avoidable[m].append(c_fit)
                    kept[m][a][0] += k
                    kept[m][a][1] += n
        # keep-regions and focus (every photo)
        for label in labels.values():
            kw, kh = rng.uniform(0.1, 0.3) * W, rng.uniform(0.1, 0.3) * H
            kx, ky = rng.uniform(0, W - kw), rng.uniform(0, H - kh)
            region = [kx, ky, kx + kw, ky + kh]
            res = analysis.crops(CropOptions.parse(label, keep=[region]))
            if bool(fits(_tensor(region)[0], torch.tensor([_ratio(label)], dtype=torch.float64), W, H)[0]):
                keep_hits.append(res.crops[0].keep_kept == [0])
                keep_fit.append(1)
            else:
                keep_unfit += 1
                keep_warned.append(bool(res.warnings))
            point = (float(rng.uniform(0, W)), float(rng.uniform(0, H)))
            with_focus = analysis.crops(CropOptions.parse(label, focus=point)).crops[0].box
            without = next(c.box for c in on.crops if c.aspect == label)
            focus_in.append(bool(contains(_tensor([with_focus]), _tensor([*point, *point]))[0, 0]))
            for box, out in ((with_focus, focus_dist), (without, nofocus_dist)):
                cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                out.append(np.hypot((cx - point[0]) / (box[2] - box[0]), (cy - point[1]) / (box[3] - box[1])))
        # zoom sweep on OSIE (fixations)
        if points is not None:
            for s in SCALES:
                res = analysis.crops(CropOptions.parse(list(labels.values()), min_scale=s))
                for c in res.crops:
                    scale_rows[s]["fix"].append(fixations_kept(c.box, points))
                    scale_rows[s]["area"].append((c.box[2] - c.box[0]) * (c.box[3] - c.box[1]) / (W * H))
                    if len(faces):
                        scale_rows[s]["cut"].append(face_stats(c.box, faces, _ratio(c.aspect), W, H)[0])
        print(f"{i + 1}/{len(images)} {name}", flush=True)

    n_osie = sum(1 for im in images if im[2] is not None)
    lines += [
        f"Validation photos: {n_osie} OSIE val + {len(images) - n_osie} held-out photos; "
        f"{n_face_photos} have faces ({n_faces} faces, YuNet, confidence >= 0.7). Default model, "
        f"min_scale {DEFAULT_MIN_SCALE}, 2 torch threads, {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "## Crops that cut through a face (lower is better) and faces kept whole",
        "",
        "| method | cut 1:1 | cut 4:5 | cut far | cut (all) | cut, avoidable | faces kept whole |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in methods:
        allc = sum((cut[m][a] for a in aspects), [])
        k = sum(kept[m][a][0] for a in aspects), sum(kept[m][a][1] for a in aspects)
        row = [f"{100 * np.mean(cut[m][a]):.1f} %" if cut[m][a] else "–" for a in aspects]
        lines.append(f"| {m} | {' | '.join(row)} | {100 * np.mean(allc):.1f} % ({sum(allc)}/{len(allc)}) | "
                     f"{100 * np.mean(avoidable[m]):.1f} % ({sum(avoidable[m])}) | "
                     f"{100 * k[0] / max(1, k[1]):.1f} % ({k[0]}/{k[1]}) |" if allc else f"| {m} | – | – | – | – | – | – |")
    lines += [
        "",
        "A crop cuts a face when its edge runs through the face's box (by more than a pixel); 'cut, avoidable': "
        "it cuts a face that some crop of the aspect could hold whole (a face wider than the narrowest crop "
        "cannot be kept); 'far': 9:16 for "
        "a landscape photo, 16:9 for a portrait one. Only photos with at least one face count. Peers place the "
        "largest box of the aspect; asm also chooses the size (down to min_scale).",
    ]
    missing = [f"{p}: {status[p][1]}" for p in PEERS if not status[p][0]]
    if missing:
        lines.append("Peers not run: " + "; ".join(missing) + ".")
    lines += [
        "",
        "## Keep-regions and focus point",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| keep-region held whole, where it fits the aspect | {100 * np.mean(keep_hits):.1f} % ({sum(keep_hits)}/{len(keep_hits)}) |",
        f"| keep-region does not fit: answer carries a warning | {sum(keep_warned)}/{keep_unfit} |",
        f"| focus point inside the crop (within a pixel) | {100 * np.mean(focus_in):.1f} % ({sum(focus_in)}/{len(focus_in)}) |",
        f"| focus offset from crop centre (share of crop side), with focus | {np.median(focus_dist):.3f} (median) |",
        f"| same, the crop without focus | {np.median(nofocus_dist):.3f} (median) |",
        "",
        "One random keep box (10-30 % of each side) and one random focus point per photo and aspect "
        "(1:1, 4:5, far).",
        "",
        "## Zoom: min_scale on OSIE val",
        "",
        "| min_scale | fixations kept | share of min_scale 1 | mean crop area | crops cutting a face |",
        "|---:|---:|---:|---:|---:|",
    ]
    full = np.mean(scale_rows[1.0]["fix"]) if scale_rows[1.0]["fix"] else float("nan")
    chosen = None
    for s in SCALES:
        r = scale_rows[s]
        if not r["fix"]:
            continue
        share = np.mean(r["fix"]) / full
        if chosen is None and share >= KEEP_TARGET:
            chosen = s
        c = f"{100 * np.mean(r['cut']):.1f} %" if r["cut"] else "–"
        lines.append(f"| {s:.1f} | {np.mean(r['fix']):.3f} | {share:.3f} | {np.mean(r['area']):.3f} | {c} |")
    lines += [
        "",
        f"Share of the eye fixations (15 viewers) inside the top-1 crop at 1:1, 4:5 and far. The smallest "
        f"min_scale keeping at least {KEEP_TARGET:.1%} of what the largest boxes keep: {chosen} "
        f"(the default is {DEFAULT_MIN_SCALE}).",
        "",
        "## Cost per photo",
        "",
        "| step | median ms |",
        "|---|---:|",
        f"| face detection (YuNet on a copy with long side <= 640) | {1000 * np.median(t_detect):.1f} |",
        f"| search, 3 aspects, faces on (detection included) | {1000 * np.median(t_on):.1f} |",
        f"| search, 3 aspects, faces off | {1000 * np.median(t_off):.1f} |",
        "",
        "Same photos, same run, one after the other.",
        "",
        "## Detector size",
        "",
        f"| YuNet input, long side | median ms | faces found of the {n_faces} at {DETECT_SIDE} px (IoU > 0.5) |",
        "|---:|---:|---:|",
        f"| {DETECT_SIDE} (asm's) | {1000 * np.median(t_detect):.1f} | {n_faces} |",
        *[f"| {side} | {1000 * np.median(size_ms[side]):.1f} | {size_found[side]} ({100 * size_found[side] / max(1, n_faces):.0f} %) |"
          for side in SMALLER_SIDES],
        "",
        "A smaller copy would make detection cheaper, but faces near the confidence threshold and small faces "
        "drop out, so asm keeps the detector at its full input size.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="at most N photos from each source")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    text = run(args.limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
