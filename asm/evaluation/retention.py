"""Check (c): how much of where people look the top crop keeps -- eye fixations on OSIE
validation photos, and the teacher x centre density on held-out photos -- next to the centre
crop, the peers and the best possible box."""

from __future__ import annotations

import numpy as np

from asm.evaluation import peers as peer_mod
from asm.evaluation.metrics import placement_offset
from asm.evaluation.report import Table, Timer, _bar, _f, _load, _na_notes, _peer_status
from asm.geometry import VALIDATION_ASPECTS, density_kept, fixations_kept

__all__ = ["osie_retention", "photo_retention", "best_possible_kept", "RETENTION_ASPECTS"]

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


def osie_retention(cropper, osie, limit: int | None = None, progress: bool = False, timer: Timer | None = None,
                   status: dict | None = None) -> tuple[Table, dict[str, dict[str, float] | None]]:
    """Check (c): share of eye fixations kept by the top-1 crop at each of
    :data:`asm.geometry.VALIDATION_ASPECTS`.

    Rows: asm's own crop (its size is its choice), asm restricted to the largest box of the
    aspect (placement only), the centre crop and peers (largest box), and the best possible
    largest box. Returns ``{method: {"1:1": kept, ..., "mean": ..., "area 1:1": ...,
    "offsets": [placement offsets]}}``.
    """
    from asm.options import CropOptions

    timer = timer or Timer()
    status = status or _peer_status()
    labels = [a for a, _ in RETENTION_ASPECTS]
    table = Table(f"Check (c): eye fixations kept on OSIE {osie.split} ({len(osie)} photos)",
                  ["method", "images", *[f"kept {a}" for a in labels], "mean", "mean crop area"])
    items = list(range(len(osie)))[:limit] if limit else list(range(len(osie)))
    methods = ["asm", "asm (largest box)", *peer_mod.PEERS, "best possible box"]
    kept: dict[str, dict[str, list[float]]] = {m: {a: [] for a in labels} for m in methods}
    area: dict[str, list[float]] = {m: [] for m in methods}
    offsets: dict[str, list[float]] = {m: [] for m in methods}
    options = CropOptions.parse(labels)
    for i in _bar(items, "OSIE", progress):
        item = osie[i]
        rgb = _load(item.path)
        H, W = rgb.shape[:2]

        def add(m: str, a: str, box) -> None:
            kept[m][a].append(fixations_kept(box, item.points))
            area[m].append((box[2] - box[0]) * (box[3] - box[1]) / (W * H))
            offsets[m].append(placement_offset(box, W, H))

        with timer(f"asm (crop at {len(labels)} aspects)"):
            analysis = cropper.analyse(rgb)
            result = analysis.crops(options)
        for a in labels:
            add("asm", a, next(c.box for c in result.crops if c.aspect == a))
        for a, ratio in RETENTION_ASPECTS:
            w, h = peer_mod.largest_box(W, H, ratio)
            slide = [[x, y, x + w, y + h] for x in range(0, W - w + 1, 4) for y in range(0, H - h + 1, 4)]
            s = analysis.score(slide)
            add("asm (largest box)", a, slide[int(np.argmax(s))])
            for pname, peer in peer_mod.PEERS.items():
                if status[pname][0]:
                    with timer(pname):
                        box = peer.place(rgb, ratio)
                    add(pname, a, box)
            kept["best possible box"][a].append(best_possible_kept(item.points, W, H, ratio))
            area["best possible box"].append(w * h / (W * H))
    results: dict[str, dict[str, float] | None] = {}
    for m in methods:
        if m in peer_mod.PEERS and not status[m][0]:
            results[m] = None
            table.add(m, "n/a", *["n/a"] * (len(labels) + 2))
            continue
        r: dict = {a: float(np.nanmean(kept[m][a])) for a in labels}
        r["mean"] = float(np.mean([r[a] for a in labels]))
        r["area"] = float(np.mean(area[m]))
        r["offsets"] = offsets[m]
        results[m] = r
        table.add(m, len(items), *[_f(r[a]) for a in labels], _f(r["mean"]), _f(r["area"], 2))
    table.notes.append(
        "Share of the fixated pixels (all 15 viewers) inside the top-1 crop, mean over images. The peers, the centre crop "
        "and 'asm (largest box)' (asm's best-scored placement of the largest box, 4-px grid) place the largest box of the "
        "aspect; 'asm' chooses its crop size too (crop area: mean share of the image). 'FastGaze x centre': the largest box "
        "where the teacher's density times a centre Gaussian keeps the most. 'best possible box': the most fixations any "
        "largest box of the aspect keeps (an upper bound for placement)."
    )
    table.notes += _na_notes(status)
    return table, results


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
