"""Check (c): how much of where people look the top crop keeps -- eye fixations on the
validation splits of OSIE, EyeCrowd and NUS Scene, and the teacher x centre density on held-out photos -- next to the centre
crop, the peers and the best possible box."""

from __future__ import annotations

import numpy as np

from asm.evaluation import peers as peer_mod
from asm.evaluation.metrics import placement_offset
from asm.evaluation.report import Table, Timer, _bar, _f, _load, _na_notes, _peer_status
from asm.geometry import VALIDATION_ASPECTS, density_kept, fixations_kept

__all__ = ["fixation_retention", "photo_retention", "best_possible_kept", "RETENTION_ASPECTS"]

RETENTION_ASPECTS = VALIDATION_ASPECTS


def best_possible_kept(points: np.ndarray, width: int, height: int, ratio: float) -> float:
    """Upper bound: the most fixations any largest box of ``ratio`` keeps (every integer
    offset along the free axis; boxes as in :func:`asm.evaluation.peers.largest_box`)."""
    w, h = peer_mod.largest_box(width, height, ratio)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(p) == 0:
        return float("nan")
    xs, ys = np.arange(width - w + 1), np.arange(height - h + 1)
    inx = (p[:, 0][None, :] >= xs[:, None]) & (p[:, 0][None, :] <= xs[:, None] + w)  # [X, N]
    iny = (p[:, 1][None, :] >= ys[:, None]) & (p[:, 1][None, :] <= ys[:, None] + h)  # [Y, N]
    counts = inx.astype(np.int32) @ iny.T.astype(np.int32)  # [X, Y]
    return float(counts.max() / len(p))


def fixation_retention(cropper, data, limit: int | None = None, progress: bool = False, timer: Timer | None = None,
                       status: dict | None = None) -> tuple[Table, dict[str, dict[str, float] | None]]:
    """Check (c): share of eye fixations kept by the top-1 crop at each of
    :data:`asm.geometry.VALIDATION_ASPECTS` on a fixation set ``data`` (:mod:`asm.data.fixations`).

    Rows: asm with its defaults (faces on), asm with faces off, the centre crop and the peers
    (largest box), and the best possible largest box. Returns ``{method: {"1:1": kept, ...,
    "mean": ..., "area": ..., "offsets": [placement offsets]}}`` and, under ``"faces"``, how
    often asm's crops cut a face that matters (:func:`asm.search.constraints.face_matters`):
    ``{"crops", "cut", "cut_heads"}`` (drawn head boxes, where the set has them).
    """
    from asm.options import CropOptions
    from asm.search.constraints import cuts_faces_that_matter

    timer = timer or Timer()
    status = status or _peer_status()
    labels = [a for a, _ in RETENTION_ASPECTS]
    title = f"Check (c): eye fixations kept on {data.name} {data.split} ({len(data)} photos)"
    table = Table(title, ["method", "images", *[f"kept {a}" for a in labels], "mean", "mean crop area"])
    items = list(range(len(data)))[:limit] if limit else list(range(len(data)))
    methods = ["asm", "asm, faces off", *peer_mod.PEERS, "best possible box"]
    kept: dict[str, dict[str, list[float]]] = {m: {a: [] for a in labels} for m in methods}
    area: dict[str, list[float]] = {m: [] for m in methods}
    offsets: dict[str, list[float]] = {m: [] for m in methods}
    options = {"asm": CropOptions.parse(labels), "asm, faces off": CropOptions.parse(labels, faces=False)}
    cut = {"crops": 0, "cut": 0, "cut_heads": 0, "photos_with_faces": 0}
    heads_of = getattr(data, "heads", None)
    for i in _bar(items, data.name, progress):
        item = data[i]
        rgb = _load(item.path)
        H, W = rgb.shape[:2]

        def add(m: str, a: str, box) -> None:
            kept[m][a].append(fixations_kept(box, item.points))
            area[m].append((box[2] - box[0]) * (box[3] - box[1]) / (W * H))
            offsets[m].append(placement_offset(box, W, H))

        with timer(f"asm (crop at {len(labels)} aspects)"):
            analysis = cropper.analyse(rgb)
            results = {m: analysis.crops(o) for m, o in options.items()}
        for m, result in results.items():
            for a in labels:
                add(m, a, next(c.box for c in result.crops if c.aspect == a))
        boxes = np.array([c.box for c in results["asm"].crops], dtype=np.float64)
        faces = np.array(results["asm"].faces or [], dtype=np.float64).reshape(-1, 5)[:, :4]
        heads = heads_of(item.image_id) if heads_of else np.zeros((0, 4))
        cut["crops"] += len(boxes)
        cut["photos_with_faces"] += int(len(faces) > 0)
        for key, regions in (("cut", faces), ("cut_heads", heads)):
            if len(regions):
                cut[key] += int(cuts_faces_that_matter(boxes, regions).any(axis=1).sum())
        for a, ratio in RETENTION_ASPECTS:
            for pname, peer in peer_mod.PEERS.items():
                if status[pname][0]:
                    with timer(pname):
                        box = peer.place(rgb, ratio)
                    add(pname, a, box)
            w, h = peer_mod.largest_box(W, H, ratio)
            kept["best possible box"][a].append(best_possible_kept(item.points, W, H, ratio))
            area["best possible box"].append(w * h / (W * H))
    results_out: dict = {}
    for m in methods:
        if m in peer_mod.PEERS and not status[m][0]:
            results_out[m] = None
            table.add(m, "n/a", *["n/a"] * (len(labels) + 2))
            continue
        r: dict = {a: float(np.nanmean(kept[m][a])) for a in labels}
        r["mean"] = float(np.mean([r[a] for a in labels]))
        r["area"] = float(np.mean(area[m]))
        r["offsets"] = offsets[m]
        results_out[m] = r
        table.add(m, len(items), *[_f(r[a]) for a in labels], _f(r["mean"]), _f(r["area"], 2))
    results_out["faces"] = cut
    table.notes.append(
        f"Share of the fixated pixels (all viewers) inside the top-1 crop, mean over images. 'asm': the shipped defaults "
        "(faces on, the largest box of the aspect unless min_scale asks for zoom); the peers and the centre crop place the "
        "largest box of the aspect. 'FastGaze x centre': the largest box where the teacher's density times a centre "
        "Gaussian keeps the most. 'best possible box': the most fixations any largest box keeps (an upper bound)."
    )
    heads_note = (f"; {cut['cut_heads']} cut a head box drawn by people that matters ({_f(100 * cut['cut_heads'] / max(cut['crops'], 1), 1)} %)"
                  if heads_of else "")
    table.notes.append(
        f"Faces: {cut['photos_with_faces']} of {len(items)} photos have detected faces; of asm's {cut['crops']} crops "
        f"{cut['cut']} cut a detected face that matters ({_f(100 * cut['cut'] / max(cut['crops'], 1), 1)} %){heads_note}. "
        "A face matters to a crop when its area is at least 1 % of the crop's (more in a crowd: asm.search.constraints)."
    )
    table.notes += _na_notes(status)
    return table, results_out


def photo_retention(cropper, samples, progress: bool = False) -> tuple[Table, dict[str, dict]]:
    """Share of the teacher x centre density kept at each validation aspect on held-out,
    teacher-labelled photos (:func:`asm.data.gaze.photo_gaze`): asm, the centre crop, and
    the largest box that keeps the most (the best possible placement)."""
    from asm.options import CropOptions

    labels = [a for a, _ in RETENTION_ASPECTS]
    options = CropOptions.parse(labels)
    kept: dict[str, dict[str, list[float]]] = {m: {a: [] for a in labels} for m in ("asm", "centre crop", "best possible box")}
    for s in _bar(samples, "photos", progress):
        H, W = s.image.shape[:2]
        gh, gw = s.target.shape
        to_cells = np.array([gw / W, gh / H] * 2)
        result = cropper.analyse(s.image).crops(options)
        for (a, ratio), crop in zip(RETENTION_ASPECTS, result.crops):
            w, h = peer_mod.largest_box(W, H, ratio)
            slide = np.array([[x, y, x + w, y + h] for x in range(0, W - w + 1, 2) for y in range(0, H - h + 1, 2)], np.float64)
            kept["asm"][a].append(float(density_kept(s.target, np.asarray(crop.box) * to_cells)[0]))
            kept["centre crop"][a].append(float(density_kept(s.target, np.asarray(peer_mod.centre_crop(W, H, ratio)) * to_cells)[0]))
            kept["best possible box"][a].append(float(density_kept(s.target, slide * to_cells).max()))
    table = Table(f"Teacher-labelled validation photos ({len(samples)}): FastGaze x centre density kept",
                  ["method", *[f"kept {a}" for a in labels], "mean"])
    out = {}
    for m, k in kept.items():
        r = {a: float(np.mean(k[a])) for a in labels}
        r["mean"] = float(np.mean(list(r.values())))
        out[m] = r
        table.add(m, *[_f(r[a]) for a in labels], _f(r["mean"]))
    table.notes.append("Held-out photo sources (never trained on); the target is the teacher's density times the centre "
                       "Gaussian, which the FastGaze x centre baseline maximises by construction, so it is not listed.")
    return table, out
