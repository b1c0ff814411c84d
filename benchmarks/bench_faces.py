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
5. Detector precision: asm's float YuNet against the same model with no declared shapes
   (how asm loaded it before) and int8 versions of it (``benchmarks/yunet_int8.py``,
   calibrated now on training photos): ``yunet()`` on 1 and 2 threads, interleaved in one
   run, the faces each finds of the float model's, and the crops' face statistics (table 1)
   with each int8 detector, scored against the float model's faces.

Run: ``python benchmarks/bench_faces.py [--limit N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asm.cropper import Cropper  # noqa: E402
from asm.evaluation import peers as peer_mod  # noqa: E402
from asm.geometry import fixations_kept  # noqa: E402
from asm.io import load_image  # noqa: E402
from asm.options import DEFAULT_MIN_SCALE, CropOptions  # noqa: E402
from asm.search.candidates import box_iou  # noqa: E402
from asm.search.constraints import contains, cuts, fits  # noqa: E402
from asm.search.faces import DETECT_SIDE, MIN_CONFIDENCE, detect_faces, detector_copy, yunet  # noqa: E402
from benchmarks.bench_crop import _median_ms  # noqa: E402
from benchmarks.check_faces import detector  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "faces.md"
PEERS = ["centre crop", "smartcrop.py", "libvips attention"]
SCALES = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
KEEP_TARGET = 0.998
#: Smaller detector inputs tried against asm's (asm.search.faces.DETECT_SIDE).
SMALLER_SIDES = [480, 400, 320]


#: asm's float YuNet, as it loads it (the reference of "Detector precision").
FLOAT = "float (asm)"
#: The same model with no shape declared at all, as asm loaded it before.
SHAPELESS = "float, no declared shapes (asm before)"
#: Float faces this close above MIN_CONFIDENCE count as near the threshold.
NEAR = 0.02
#: Runs of yunet() per photo, detector and thread count (their median counts).
DETECTOR_REPEAT = 5


def detector_sessions(workdir: Path) -> tuple[dict[str, dict[int, object]], list[str]]:
    """The YuNet sessions "Detector precision" compares, by label and thread count (1, 2):
    :data:`FLOAT`, :data:`SHAPELESS` and the int8 recipes of ``benchmarks/yunet_int8.py``
    (built into ``workdir`` now); and a note for each one that could not be built."""
    import onnx

    from asm.cpu_session import cpu_session
    from asm.search.faces import runtime_model, yunet_model
    from benchmarks import yunet_int8

    shapeless = onnx.load_from_string(yunet_model())
    for value in [*shapeless.graph.input, *shapeless.graph.output]:
        value.type.tensor_type.ClearField("shape")
    del shapeless.graph.value_info[:]
    models, notes = {FLOAT: runtime_model(yunet_model()), SHAPELESS: shapeless.SerializeToString()}, []
    try:
        photos = yunet_int8.calibration_photos()
        inputs = yunet_int8.yunet_inputs(photos)
        for key, recipe in yunet_int8.RECIPES.items():
            models[recipe.label] = yunet_int8.quantize_yunet(workdir / f"{key}.onnx", inputs, recipe).read_bytes()
            print(f"built {recipe.label}", flush=True)
        notes.append(f"The int8 models are calibrated on {len(photos)} training photos (OSIE 1001-1400 and the "
                     "shared photos' training sources).")
    except (FileNotFoundError, ValueError, ImportError) as e:
        notes.append(f"int8 models not built: {str(e)[:100]}.")
    return {label: {t: cpu_session(data, t) for t in (1, 2)} for label, data in models.items()}, notes


def match_faces(reference: np.ndarray, found: np.ndarray, min_iou: float = 0.5) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of ``reference`` and ``found`` faces (``[F, 5]`` each) overlapping by
    IoU above ``min_iou``, greedily from the most overlapping pair."""
    if len(reference) == 0 or len(found) == 0:
        return []
    iou = box_iou(reference[:, :4], found[:, :4])
    pairs = []
    while iou.size and iou.max() > min_iou:
        i, j = np.unravel_index(np.argmax(iou), iou.shape)
        pairs.append((int(i), int(j)))
        iou[i, :], iou[:, j] = -1, -1
    return pairs


def far_aspect(width: int, height: int) -> str:
    """The aspect far from the photo's own: 9:16 for a landscape photo, 16:9 for a portrait."""
    return "9:16" if width >= height else "16:9"


def _ratio(label: str) -> float:
    w, h = label.split(":")
    return float(w) / float(h)


def validation_photos(limit: int | None) -> tuple[list, list[Path]]:
    """OSIE val items (with fixations) and the held-out photo paths; empty if the data are absent."""
    from asm.data.fixations import OSIE
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
    with tempfile.TemporaryDirectory() as workdir:
        return _run(limit, Path(workdir))


def _run(limit: int | None, workdir: Path) -> str:
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
    sessions, detector_notes = detector_sessions(workdir)
    int8 = {label: f"asm, YuNet {label}" for label in sessions if label not in (FLOAT, SHAPELESS)}
    methods = ["asm", "asm (faces off)", *int8.values(), *peers]
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
    yunet_ms = {label: {t: [] for t in (1, 2)} for label in sessions}
    found = {label: {"found": 0, "extra": 0, "near_lost": 0, "conf": []} for label in sessions}
    n_near = 0
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
        bgr = detector_copy(rgb)[..., ::-1]
        for threads in (1, 2):  # every detector on the same photo in turn, the order alternating
            for label in (list(sessions) if i % 2 == 0 else list(sessions)[::-1]):
                run_once = partial(yunet, bgr, session=sessions[label][threads])
                yunet_ms[label][threads].append(_median_ms(run_once, repeat=DETECTOR_REPEAT))
        analysis = cropper.analyse(rgb)
        labels = {"1:1": "1:1", "4:5": "4:5", "far": far_aspect(W, H)}
        t0 = time.perf_counter()
        on = analysis.crops(CropOptions.parse(list(labels.values())))
        t_on.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        off = analysis.crops(CropOptions.parse(list(labels.values()), faces=False))
        t_off.append(time.perf_counter() - t0)
        near = faces[:, 4] < MIN_CONFIDENCE + NEAR
        n_near += int(near.sum())
        crops_by = {}
        for label in sessions:
            with detector(partial(yunet, session=sessions[label][2])):
                other = detect_faces(rgb)
                if label in int8 and len(faces):
                    crops_by[int8[label]] = analysis.crops(CropOptions.parse(list(labels.values())))
            pairs = match_faces(faces, other)
            matched = [k for k, _ in pairs]
            found[label]["found"] += len(pairs)
            found[label]["extra"] += len(other) - len(pairs)
            found[label]["near_lost"] += int(near.sum()) - int(near[matched].sum())
            found[label]["conf"] += [abs(other[j, 4] - faces[k, 4]) for k, j in pairs]
        if len(faces):
            n_face_photos += 1
            n_faces += len(faces)
            for a, label in labels.items():
                boxes = {"asm": next(c.box for c in on.crops if c.aspect == label),
                         "asm (faces off)": next(c.box for c in off.crops if c.aspect == label)}
                boxes.update({m: next(c.box for c in res.crops if c.aspect == label) for m, res in crops_by.items()})
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
        "largest box of the aspect; asm also chooses the size (down to min_scale). The 'asm, YuNet int8' rows: asm with "
        "that detector in place of its float one (\"Detector precision\" below), scored against the float model's faces.",
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
        "",
        *precision_table(sessions, yunet_ms, found, n_faces, n_near, detector_notes),
    ]
    return "\n".join(lines) + "\n"


def precision_table(sessions: dict, yunet_ms: dict, found: dict, n_faces: int, n_near: int, notes: list[str]) -> list[str]:
    """The "Detector precision" section: speed and faces of each detector against :data:`FLOAT`."""
    base = {t: np.median(yunet_ms[FLOAT][t]) for t in (1, 2)}
    lines = [
        "## Detector precision",
        "",
        f"| YuNet | yunet() ms, 1 thread | 2 threads | speed vs float (asm), 1 / 2 threads | faces found of the {n_faces} "
        f"(IoU > 0.5) | extra faces | lost of the {n_near} within {NEAR} of {MIN_CONFIDENCE} | confidence change, "
        "largest / median |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ships = []
    for label in sessions:
        ms = {t: np.median(yunet_ms[label][t]) for t in (1, 2)}
        f = found[label]
        conf = f["conf"] or [float("nan")]
        lines.append(f"| {label} | {ms[1]:.1f} | {ms[2]:.1f} | {base[1] / ms[1]:.2f}x / {base[2] / ms[2]:.2f}x | "
                     f"{f['found']} | {f['extra']} | {f['near_lost']} | {max(conf):.4f} / {np.median(conf):.4f} |")
        if label not in (FLOAT, SHAPELESS) and f["found"] == n_faces and f["extra"] == 0 and base[1] / ms[1] >= 1.3:
            ships.append(label)
    verdict = (f"Int8 that holds every face at >= 1.3x on 1 thread: {', '.join(ships)}." if ships else
               "No int8 model holds every face at >= 1.3x on 1 thread, so asm keeps the float model.")
    lines += [
        "",
        "`asm.search.faces.yunet()` (network input, forward, decoding, NMS) on each photo's detector copy (long side "
        f"<= 640), each detector in turn on the same photo (order alternating), median of {DETECTOR_REPEAT} runs per photo; the "
        "table shows the median over photos. Faces: `detect_faces` with each detector against the float model's "
        "(IoU > 0.5, greedy). The float model as asm loads it (`asm.search.faces.runtime_model`) declares its input "
        "`[1, 3, height, width]`, which lets ONNX Runtime keep the max-pools in its blocked NCHWc layout (with no "
        "declared shapes they run in plain NCHW between layout conversions), and has no landmark head. int8 models: "
        "`benchmarks/yunet_int8.py` (static, int8 weights per channel, uint8 activations, the objectness head "
        "and output sigmoids in float). " + " ".join(notes) + " " + verdict,
    ]
    return lines


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
