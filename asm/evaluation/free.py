"""Free crops next to people's: the shape, size and content of asm's ``aspect="free"`` crops.

On validation photos (the fixation sets' ``val`` splits): the distribution of the top-1 free
crop's aspect relative to the photo's and of its share of the photo's area, beside the
best-rated GAICD crops (all 1 236 photos), with the two-sample KS distance; the share of
landscape photos whose crop is narrower than 2:3; and the fixations the free crop keeps
beside the centre crop of the same area and the photo's aspect. On the GAICD images present
(the shared folder has two), the IoU of the free crop with the best-rated crop, beside the
whole photo's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from asm.evaluation.metrics import iou, ks_distance
from asm.geometry import fixations_kept
from asm.evaluation.report import Table, _bar, _f, _load

__all__ = ["free_section", "human_free_crops", "same_area_centre_crop", "crop_shapes", "frames_like_people"]


def same_area_centre_crop(area_share: float, width: int, height: int) -> list[float]:
    """The centred crop of the photo's aspect covering ``area_share`` of it."""
    s = float(np.sqrt(area_share))
    w, h = width * s, height * s
    return [(width - w) / 2, (height - h) / 2, (width + w) / 2, (height + h) / 2]


def crop_shapes(crops: Sequence[tuple[Sequence[float], float, float]]) -> dict[str, np.ndarray]:
    """The shapes of crops ``(box, photo width, photo height)``: ``rel_aspect [N]`` (the crop's
    aspect relative to the photo's) and ``area [N]`` (its share of the photo), from
    :func:`asm.search.framing.features`; ``narrow [L]``, for the L landscape photos (wider than
    1.05:1), whether the crop is narrower than 2:3."""
    from asm.search.framing import features

    if not crops:
        return {"rel_aspect": np.zeros(0), "area": np.zeros(0), "narrow": np.zeros(0, dtype=bool)}
    f = np.concatenate([features(np.asarray([box], dtype=np.float64), W, H) for box, W, H in crops])
    photo = np.array([W / H for _, W, H in crops])
    aspect = np.exp(f[:, 0]) * photo
    return {"rel_aspect": np.exp(f[:, 0]), "area": f[:, 1], "narrow": aspect[photo > 1.05] < 2 / 3}


def frames_like_people(shapes: dict[str, np.ndarray]) -> bool:
    """The gates of free crops: median aspect 0.8-1.3x the photo's, median area share
    0.45-0.85, at most 10 % of landscape crops narrower than 2:3."""
    narrow = float(np.mean(shapes["narrow"])) if len(shapes["narrow"]) else 0.0
    return bool(0.8 <= np.median(shapes["rel_aspect"]) <= 1.3 and 0.45 <= np.median(shapes["area"]) <= 0.85 and narrow <= 0.10)


def human_free_crops() -> dict[str, np.ndarray] | None:
    """The shapes (:func:`crop_shapes`) of the best-rated GAICD crop of every photo, or None
    without the shared annotations."""
    from asm.data.annotations import best_rated, gaicd_photo_size, read_gaicd_json
    from asm.data.shared import data_dir

    try:
        crops = read_gaicd_json(data_dir("gaicd") / "hcic_image_crop.json")
    except (FileNotFoundError, OSError):
        return None
    return crop_shapes([(best_rated(boxes, scores)[0].tolist(), *gaicd_photo_size(boxes)) for boxes, scores in crops.values()])


def free_section(cropper, fixation_sets: Sequence, limit: int | None = None, progress: bool = False) -> tuple[Table, dict]:
    """The table described in the module docstring; returns it and the figures."""
    placed, kept, centre = [], [], []
    for data in fixation_sets:
        items = list(range(len(data)))[:limit] if limit else list(range(len(data)))
        for i in _bar(items, f"free {data.name}", progress):
            item = data[i]
            rgb = _load(item.path)
            H, W = rgb.shape[:2]
            box = cropper.analyse(rgb).crops(aspect="free").crops[0].box
            placed.append((box, W, H))
            kept.append(fixations_kept(box, item.points))
            area = (box[2] - box[0]) * (box[3] - box[1]) / (W * H)
            centre.append(fixations_kept(same_area_centre_crop(area, W, H), item.points))
    shapes = crop_shapes(placed)
    human = human_free_crops()
    table = Table(f"Free crops next to people's ({len(placed)} validation photos of {', '.join(d.name for d in fixation_sets)})",
                  ["", "asm free", "people (GAICD best-rated)", "KS distance"])
    out: dict = {"photos": len(placed)}
    for key, label in (("rel_aspect", "aspect relative to the photo's, median (IQR)"),
                       ("area", "share of the photo's area, median (IQR)")):
        values = shapes[key]
        q = np.percentile(values, [50, 25, 75]) if len(values) else [float("nan")] * 3
        hq = np.percentile(human[key], [50, 25, 75]) if human is not None else None
        ks = ks_distance(values, human[key]) if human is not None else float("nan")
        out[key] = {"median": float(q[0]), "ks": ks}
        table.add(label, f"{_f(q[0], 2)} ({_f(q[1], 2)}-{_f(q[2], 2)})",
                  f"{_f(hq[0], 2)} ({_f(hq[1], 2)}-{_f(hq[2], 2)})" if hq is not None else "n/a", _f(ks))
    narrow = shapes["narrow"]
    out["narrow"] = float(np.mean(narrow)) if len(narrow) else float("nan")
    people_narrow = (f"{_f(100 * float(np.mean(human['narrow'])), 1)} % of {len(human['narrow'])}" if human is not None
                     else "n/a")
    table.add("landscape photos whose crop is narrower than 2:3", f"{_f(100 * out['narrow'], 1)} % of {len(narrow)}", people_narrow, "")
    out["kept"], out["centre_kept"] = float(np.nanmean(kept)) if kept else float("nan"), float(np.nanmean(centre)) if centre else float("nan")
    table.add("fixations kept (same-area centre crop beside)", _f(out["kept"]), f"centre crop: {_f(out['centre_kept'])}", "")
    out["gaicd"] = _gaicd_iou(cropper)
    for name, (iou_free, iou_whole) in out["gaicd"].items():
        table.add(f"GAICD {name}: IoU with the best-rated crop", _f(iou_free), f"whole photo: {_f(iou_whole)}", "")
    if not out["gaicd"]:
        table.notes.append("No GAICD image present: the IoU rows are skipped.")
    bias = getattr(cropper, "shape_bias", None)
    table.notes.append("Free crops take their shape from how people frame (asm.search.framing: a prior fitted on the GAICD "
                       "training photos' best-rated crops) and from the score map with the model's shape bias removed "
                       + (f"(fitted for this model, prior weight {bias.weight:g})" if bias is not None else
                          "(none fitted for this model: the prior alone, weight 1)") + "; their place from the score map.")
    return table, out


def _gaicd_iou(cropper) -> dict[str, tuple[float, float]]:
    """``{image name: (IoU of asm's free crop, IoU of the whole photo)}`` with the best-rated crop,
    for the GAICD images in the shared folder."""
    from asm.data.annotations import best_rated, read_gaicd_json
    from asm.data.shared import data_dir

    try:
        root = data_dir("gaicd")
        crops = read_gaicd_json(root / "hcic_image_crop.json")
    except (FileNotFoundError, OSError):
        return {}
    out = {}
    for path in sorted((root / "images").glob("*.jpg")):
        if path.name not in crops:
            continue
        rgb = _load(path)
        H, W = rgb.shape[:2]
        best = best_rated(*crops[path.name])[0].tolist()
        box = cropper.analyse(rgb).crops(aspect="free").crops[0].box
        out[path.stem] = (float(iou(box, best)), float(iou([0, 0, W, H], best)))
    return out
