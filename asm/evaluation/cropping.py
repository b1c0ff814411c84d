"""The published cropping protocols: GAICD (SRCC and Acc_K/N of the scores of every rated
crop) and FCDB / FLMS (IoU and boundary displacement of the best crop)."""

from __future__ import annotations

import numpy as np

from asm.evaluation import peers as peer_mod
from asm.evaluation.metrics import boundary_displacement, gaicd_evaluate, iou
from asm.evaluation.report import DASH, Table, Timer, _bar, _f, _load, _na_notes, _peer_status, shown

__all__ = ["gaicd_section", "best_crop_section", "GAICD_COLUMNS"]


def _clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    return b


GAICD_COLUMNS = ["SRCC", "Acc1/5", "Acc2/5", "Acc3/5", "Acc4/5", "Acc5", "Acc1/10", "Acc2/10", "Acc3/10", "Acc4/10", "Acc10"]


def gaicd_section(cropper, dataset, limit: int | None = None, progress: bool = False, timer: Timer | None = None,
                  status: dict | None = None) -> tuple[Table, dict[str, dict | None]]:
    """GAICD protocol on the available images of ``dataset`` (a :class:`asm.data.cropping.GAICD`).

    Returns the table and ``{method: metrics dict (keys of gaicd_evaluate) or None}``.
    """
    timer = timer or Timer()
    status = status or _peer_status()
    table = Table(f"GAICD protocol ({shown(dataset.root)})", ["method", "images", "crops", *GAICD_COLUMNS])
    names = dataset.available()[:limit] if limit else dataset.available()
    if not names:
        table.notes.append(f"no GAICD images under {shown(dataset.root)}: skipped.")
        return table, {}
    methods = ["asm", "area (bigger is better)", *peer_mod.PEERS]
    preds: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    gts = []
    for name in _bar(names, "GAICD", progress):
        ann = dataset.annotation(name)
        rgb = _load(ann.path)
        H, W = rgb.shape[:2]
        boxes = _clip_boxes(ann.boxes.numpy(), W, H)
        gts.append(ann.scores.numpy().astype(np.float64))
        with timer("asm (score all crops of an image)"):
            preds["asm"].append(np.asarray(cropper.score(rgb, boxes), dtype=np.float64))
        preds["area (bigger is better)"].append((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        for pname, peer in peer_mod.PEERS.items():
            if peer.score is not None and status[pname][0]:
                with timer(f"{pname} (score all crops of an image)"):
                    preds[pname].append(peer.score(rgb, boxes))
    n_crops = sum(len(g) for g in gts)
    results: dict[str, dict | None] = {}
    for m in methods:
        peer = peer_mod.PEERS.get(m)
        if peer is not None and not status[m][0]:
            results[m] = None
            table.add(m, "n/a", *["n/a"] * (1 + len(GAICD_COLUMNS)))
            continue
        if not preds[m]:
            results[m] = None
            table.add(m, len(names), n_crops, *[DASH] * len(GAICD_COLUMNS))
            continue
        r = gaicd_evaluate(preds[m], gts)
        results[m] = r
        table.add(m, len(names), n_crops, _f(r["SRCC"]), *[_f(r[k], 1) for k in GAICD_COLUMNS[1:]])
    table.notes.append(
        "SRCC: Spearman correlation of predicted scores and MOS over the rated crops of each image, averaged over images. "
        "AccK/N (%): share of the K best-scored crops among the N best by MOS; Acc5/Acc10: mean over K = 1..4. "
        "asm scores each crop with `Cropper.score(image, boxes)`; smartcrop.py with its own window score (`asm.evaluation.peers.smartcrop_score`); "
        f"'{DASH}': the peer cannot score an arbitrary crop."
    )
    if len(names) < 20:
        table.notes.append(f"Only {len(names)} image(s): these numbers show the protocol runs, they do not rank methods.")
    table.notes += _na_notes(status)
    return table, results


def _median_ratio(boxes: np.ndarray) -> float:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return float(np.median(w / np.maximum(h, 1e-9)))


def best_crop_section(cropper, dataset, name: str, limit: int | None = None, progress: bool = False,
                      timer: Timer | None = None, status: dict | None = None) -> tuple[Table, dict[str, dict]]:
    """FCDB/FLMS protocol: IoU with the annotated best crop(s) and boundary displacement.

    With several annotated crops (FLMS) the best IoU and the smallest displacement over them
    count, as in the usual FLMS protocol. Methods that need an aspect get the median aspect of
    the annotated crops. Returns the table and ``{method: {"IoU", "Disp", "images"}}``.
    """
    from asm.options import CropOptions

    timer = timer or Timer()
    status = status or _peer_status()
    table = Table(f"{name} protocol ({shown(dataset.root)})", ["method", "images", "IoU ↑", "Disp ↓"])
    names = dataset.available()[:limit] if limit else dataset.available()
    if not names:
        table.notes.append(f"no {name} images under {shown(dataset.root)}: skipped ({len(dataset.names)} annotated images, none present).")
        return table, {}
    methods = ["asm (free aspect)", "asm (annotated aspect)", "whole image", *peer_mod.PEERS]
    ious: dict[str, list[float]] = {m: [] for m in methods}
    disps: dict[str, list[float]] = {m: [] for m in methods}
    free = CropOptions.parse(None)

    def record(m: str, box, gt: np.ndarray, W: int, H: int) -> None:
        b = np.asarray(box, dtype=np.float64)[None]
        ious[m].append(float(np.max(iou(b, gt))))
        disps[m].append(float(np.min(boundary_displacement(b, gt, W, H))))

    for n in _bar(names, name, progress):
        ann = dataset.annotation(n)
        rgb = _load(ann.path)
        H, W = rgb.shape[:2]
        gt = ann.boxes.numpy().astype(np.float64).reshape(-1, 4)
        ratio = _median_ratio(gt)
        with timer("asm (crop free + 1 aspect)"):
            analysis = cropper.analyse(rgb)
            res_free = analysis.crops(free)
            res_gt = analysis.crops(CropOptions.parse((ratio, 1.0)))
        record("asm (free aspect)", res_free.crops[0].box, gt, W, H)
        record("asm (annotated aspect)", res_gt.crops[0].box, gt, W, H)
        record("whole image", [0, 0, W, H], gt, W, H)
        for pname, peer in peer_mod.PEERS.items():
            if status[pname][0]:
                with timer(pname):
                    box = peer.place(rgb, ratio)
                record(pname, box, gt, W, H)
    results = {}
    for m in methods:
        if m in peer_mod.PEERS and not status[m][0]:
            table.add(m, "n/a", "n/a", "n/a")
            continue
        results[m] = {"IoU": float(np.mean(ious[m])), "Disp": float(np.mean(disps[m])), "images": len(ious[m])}
        table.add(m, len(ious[m]), _f(results[m]["IoU"]), _f(results[m]["Disp"], 4))
    table.notes.append(
        "IoU: best over the annotated crops; Disp: boundary displacement (mean of |Δx1|/W, |Δx2|/W, |Δy1|/H, |Δy2|/H), "
        "smallest over the annotated crops. Peers and 'asm (annotated aspect)' get the median aspect of the annotated crops "
        "and place the largest box of it; 'asm (free aspect)' chooses size and aspect itself."
    )
    table.notes += _na_notes(status)
    return table, results
