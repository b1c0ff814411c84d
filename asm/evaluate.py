"""``asm eval``: asm next to the centre crop and heuristic peers, on the same images in one run.

Sections (each skipped with a clear line when its data are missing):

1. **GAICD protocol** on whatever GAICD images are under ``--gaicd ROOT`` (default: the
   shared ``gaicd/images``, one annotated image): per-image SRCC and Acc_K/N of the scores
   of every annotated crop (``Cropper.score(image, boxes)``), next to the content-free
   "bigger crop is better" baseline (score = area) and smartcrop.py's own window score.
   Peers that cannot score an arbitrary crop get "–".
2. **FCDB / FLMS protocol** (best-crop IoU and boundary displacement) on the available
   images: asm's free top-1 crop and asm, the centre crop and the peers at the aspect of the
   annotated crop(s), plus the whole image.
3. **Border-free checks** that gate a model:
   (a) *photo vs re-framed cut* -- a random cut (60-85 % of each side, random place) of each
   photo, re-framed as its own image; both scored as whole images; the share of pairs where
   the real photo scores higher (target >= 0.80);
   (b) *border bias* of the score map per channel: (mean of the outer ring of map pixels -
   interior mean) / map std, averaged over the photos (near 0 is good);
   (c) with ``--osie``: *content retention* on OSIE validation (ids 1401-1500): share of
   human eye fixations kept by the top-1 crop at 1:1 and 9:16 for asm, the centre crop and
   the peers, plus the best possible box of that aspect and the largest size.
4. ``--sheet PATH``: a comparison sheet (rows: validation photos; columns: asm, centre crop,
   smartcrop.py, libvips attention; each cell the photo with its 1:1, 9:16 and 16:9 crops).
5. Timings per method and image.

Peers are described in :mod:`asm.peers`; the ones whose library does not import show "n/a".
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asm import peers as peer_mod
from asm.candidates import random_cut
from asm.metrics import VALIDATION_ASPECTS, boundary_displacement, fixations_kept, gaicd_evaluate, iou, placement_offset

__all__ = [
    "Table",
    "Timer",
    "gaicd_section",
    "best_crop_section",
    "photo_vs_cut",
    "border_bias",
    "osie_retention",
    "best_possible_kept",
    "PhotoMaps",
    "comparison_sheet",
    "validation_photos",
    "run",
    "add_parser",
    "PHOTO_TARGET",
]

DASH = "–"
#: The share of photos that must beat their re-framed cut.
PHOTO_TARGET = 0.80
RETENTION_ASPECTS = VALIDATION_ASPECTS
SHEET_ASPECTS = (("1:1", 1.0), ("9:16", 9 / 16), ("16:9", 16 / 9))
SHEET_METHODS = ("asm", "centre crop", "smartcrop.py", "libvips attention")


# ----------------------------------------------------------------------------- output
@dataclass
class Table:
    """A titled table that prints as markdown."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        out = [f"### {self.title}", ""]
        if self.rows:
            out.append("| " + " | ".join(self.columns) + " |")
            out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|")
            out += ["| " + " | ".join(r) + " |" for r in self.rows]
            out.append("")
        out += [f"{n}  " if i < len(self.notes) - 1 else n for i, n in enumerate(self.notes)]
        return "\n".join(out).rstrip() + "\n"


class Timer:
    """Seconds per call of each method (``with timer("asm"): ...``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def __call__(self, name: str) -> _Timing:
        return _Timing(self, name)

    def table(self) -> Table:
        t = Table("Timings", ["method", "calls", "ms / call (mean)", "ms / call (median)", "total s"])
        for name, s in self.seconds.items():
            a = np.asarray(s) * 1000
            t.add(name, len(a), f"{a.mean():.1f}", f"{np.median(a):.1f}", f"{a.sum() / 1000:.1f}")
        t.notes.append(
            "One call: asm = resize + forward pass + search of every requested aspect of one image "
            "(or one scoring call); a peer = one aspect of one image. Images are decoded once, outside the timings."
        )
        return t


class _Timing:
    def __init__(self, timer: Timer, name: str) -> None:
        self.timer, self.name = timer, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timer.seconds.setdefault(self.name, []).append(time.perf_counter() - self.t0)


def shown(path: str | os.PathLike) -> str:
    """A path as the tables show it: relative to the working folder or to the shared data
    folder (``<shared>/...``) where it lies under one, else just its name; tables are
    committed, and a path of one machine means nothing on another."""
    from asm.datasets import shared_dir

    p = Path(path).resolve()
    for base, prefix in ((Path.cwd().resolve(), ""), (shared_dir(), "<shared>/")):
        if base is not None and p.is_relative_to(base.resolve()):
            return prefix + str(p.relative_to(base.resolve()))
    return p.name


def _f(x: float | None, digits: int = 3) -> str:
    if x is None:
        return DASH
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return f"{x:.{digits}f}"


def _bar(items: Sequence, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", disable=not progress or len(items) < 2, file=sys.stderr, leave=False)


def _peer_status() -> dict[str, tuple[bool, str]]:
    return {name: peer_mod.available(p) for name, p in peer_mod.PEERS.items()}


def _na_notes(status: dict[str, tuple[bool, str]]) -> list[str]:
    return [f"n/a {name}: {why}" for name, (ok, why) in status.items() if not ok]


def _load(path: str | os.PathLike) -> np.ndarray:
    from asm.io import load_image

    return load_image(Path(path))


def _clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    return b


# ----------------------------------------------------------------------- 1. GAICD
GAICD_COLUMNS = ["SRCC", "Acc1/5", "Acc2/5", "Acc3/5", "Acc4/5", "Acc5", "Acc1/10", "Acc2/10", "Acc3/10", "Acc4/10", "Acc10"]


def gaicd_section(cropper, dataset, limit: int | None = None, progress: bool = False, timer: Timer | None = None,
                  status: dict | None = None) -> tuple[Table, dict[str, dict | None]]:
    """GAICD protocol on the available images of ``dataset`` (a :class:`asm.datasets.GAICD`).

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
        "asm scores each crop with `Cropper.score(image, boxes)`; smartcrop.py with its own window score (`asm.peers.smartcrop_score`); "
        f"'{DASH}': the peer cannot score an arbitrary crop."
    )
    if len(names) < 20:
        table.notes.append(f"Only {len(names)} image(s): these numbers show the protocol runs, they do not rank methods.")
    table.notes += _na_notes(status)
    return table, results


# ------------------------------------------------------------------- 2. FCDB / FLMS
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
    from asm.cropper import CropOptions

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


# ------------------------------------------------------------- 3. border-free checks
def validation_photos(photos: str | os.PathLike | None = None) -> list[Path]:
    """The validation photos: the held-out sources of :func:`asm.datasets.split_by_source` of a
    photo folder with a ``MANIFEST.txt`` (OPEN and RESEARCH classes), else every image file
    directly in ``photos``."""
    from asm.datasets import IMAGE_EXTENSIONS, photo_folder, split_by_source

    root = Path(photos).expanduser() if photos is not None else None
    if root is None or (root / "MANIFEST.txt").is_file():
        _, val = split_by_source(photo_folder(root))
        return [p.path for p in val]
    if not root.is_dir():
        raise FileNotFoundError(f"photo folder {root} does not exist")
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def photo_vs_cut(cropper, paths: Sequence[Path], cuts: int = 3, seed: int = 0, progress: bool = False,
                 timer: Timer | None = None, status: dict | None = None) -> tuple[Table, dict[str, dict | None], PhotoMaps]:
    """Check (a): does the whole photo score above a re-framed random cut of itself?

    Returns the table, ``{method: {"share", "pairs", "photos"} or None}``, and the asm score
    maps of the photos and cuts (:class:`PhotoMaps`, for :func:`border_bias`).
    """
    timer = timer or Timer()
    status = status or _peer_status()
    rng = np.random.default_rng(seed)
    table = Table("Border-free check (a): photo vs re-framed cut", ["method", "photos", "pairs", "share photo > cut", "target", "verdict"])
    if not paths:
        table.notes.append("no photos: skipped.")
        return table, {}, PhotoMaps()
    wins: dict[str, list[float]] = {"asm": []}
    for pname, peer in peer_mod.PEERS.items():
        if peer.score is not None and status[pname][0]:
            wins[pname] = []
    maps = PhotoMaps()
    for path in _bar(list(paths), "photo vs cut", progress):
        rgb = _load(path)
        H, W = rgb.shape[:2]
        with timer("asm (score a whole photo)"):
            analysis = cropper.analyse(rgb)
            whole = float(analysis.score([[0, 0, W, H]])[0])
        maps.photos.append(analysis.score_map)
        maps.sizes.append((W, H))
        cut_boxes = [random_cut(rng, W, H) for _ in range(cuts)]
        cut_images = [np.ascontiguousarray(rgb[y1:y2, x1:x2]) for x1, y1, x2, y2 in cut_boxes]
        for box, cut in zip(cut_boxes, cut_images):
            with timer("asm (score a re-framed cut)"):
                cut_analysis = cropper.analyse(cut)
                s_cut = float(cut_analysis.score([[0, 0, cut.shape[1], cut.shape[0]]])[0])
            maps.cuts.append((len(maps.photos) - 1, box, cut_analysis.score_map))
            wins["asm"].append(_win(whole, s_cut))
        for pname in wins:
            if pname == "asm":
                continue
            score = peer_mod.PEERS[pname].score
            s_whole = float(score(rgb, [[0, 0, W, H]])[0])
            for cut in cut_images:
                wins[pname].append(_win(s_whole, float(score(cut, [[0, 0, cut.shape[1], cut.shape[0]]])[0])))
    results: dict[str, dict | None] = {}
    for m in ["asm", *peer_mod.PEERS]:
        if m in wins:
            share = float(np.mean(wins[m]))
            results[m] = {"share": share, "pairs": len(wins[m]), "photos": len(paths)}
            verdict = ("pass" if share >= PHOTO_TARGET else "FAIL") if m == "asm" else ""
            table.add(m, len(paths), len(wins[m]), _f(share), f"≥ {PHOTO_TARGET:.2f}" if m == "asm" else "", verdict)
        elif m in peer_mod.PEERS and not status[m][0]:
            results[m] = None
            table.add(m, "n/a", "", "n/a", "", "")
        else:
            results[m] = None
            table.add(m, len(paths), "", DASH, "", "")
    table.notes.append(
        f"Each photo and {cuts} random cut(s) of it (60-85 % of each side, random place, re-framed as an image of its own) "
        "are scored as whole images (`Cropper.score(img, [[0, 0, W, H]])`); a tie counts one half. A model that learnt "
        "'touch the image border' instead of composition scores every re-framed cut as high as a real photo. "
        f"smartcrop.py: its own window score of the whole image. '{DASH}': the peer cannot score an image."
    )
    table.notes += _na_notes(status)
    return table, results, maps


def _win(a: float, b: float) -> float:
    return 1.0 if a > b else 0.5 if a == b else 0.0


@dataclass
class PhotoMaps:
    """asm score maps of check (a): ``photos[i]`` ``[1, L, h, w]`` of a ``sizes[i] = (W, H)``
    photo; ``cuts``: ``(photo index, cut box in photo pixels, map of the re-framed cut)``."""

    photos: list = field(default_factory=list)
    sizes: list = field(default_factory=list)
    cuts: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.photos)


def _region(m, box: Sequence[int], width: int, height: int):
    """The part of a map ``[1, L, h, w]`` (covering ``width x height``) under ``box``."""
    h, w = m.shape[-2:]
    x1, x2 = int(round(box[0] * w / width)), int(round(box[2] * w / width))
    y1, y2 = int(round(box[1] * h / height)), int(round(box[3] * h / height))
    return m[..., y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]


def border_bias(maps: PhotoMaps | Sequence) -> tuple[Table, dict[str, object]]:
    """Check (b): per channel, (outer-ring mean - interior mean) / std of the score map,
    averaged over the maps (``[1, L, h, w]`` tensors, or the :class:`PhotoMaps` of check (a)).
    Also for θ_avg and θ_std.

    With :class:`PhotoMaps` two more rows separate the frame from the content: the same
    statistic on the maps of the re-framed cuts, and on the photo's own map over the cut's
    region (same content, no image border there). Their difference is what the image border
    alone does to the map.
    """
    from asm.metrics import border_trend
    from asm.model import theta_avg, theta_std

    table = Table("Border-free check (b): score-map border bias", [])
    if not len(maps):
        table.notes.append("no photos: skipped.")
        return table, {}
    photo_maps = maps.photos if isinstance(maps, PhotoMaps) else list(maps)

    def stats(ms: Sequence) -> dict[str, object]:
        per_ch, avg, std = [], [], []
        for m in ms:
            m = m.detach().cpu().double()
            per_ch.append(border_trend(m)[0].numpy())
            avg.append(float(border_trend(theta_avg(m)[:, None])[0, 0]))
            std.append(float(border_trend(theta_std(m)[:, None])[0, 0]))
        ch = np.nanmean(np.stack(per_ch), 0)
        return {"channels": ch.tolist(), "mean_abs": float(np.nanmean(np.abs(ch))), "theta_avg": float(np.nanmean(avg)),
                "theta_std": float(np.nanmean(std)), "maps": len(ms)}

    rows = {"photos": stats(photo_maps)}
    if isinstance(maps, PhotoMaps) and maps.cuts:
        rows["re-framed cuts"] = stats([m for _, _, m in maps.cuts])
        rows["photo map over the cut regions"] = stats(
            [_region(maps.photos[i], box, *maps.sizes[i]) for i, box, _ in maps.cuts])
    L = len(rows["photos"]["channels"])
    table.columns = ["asm map of", "maps", *[f"ch{i + 1}" for i in range(L)], "mean abs (ch)", "θ_avg", "θ_std"]
    for name, r in rows.items():
        table.add(name, r["maps"], *[_f(float(v), 2) for v in r["channels"]], _f(r["mean_abs"], 2),
                  _f(r["theta_avg"], 2), _f(r["theta_std"], 2))
    table.notes.append(
        "Per channel (composition partition): (mean over the outer ring of score-map pixels - mean over the interior) / "
        "std of that channel's map, averaged over the maps. Near 0 is good; positive: the map rises at the border, "
        "negative: it falls there. Photos also put less of their subject at the border, so part of a photo's value is "
        "content: compare 're-framed cuts' (the cut is an image of its own, so its border is an image border) with "
        "'photo map over the cut regions' (the same content inside the photo, no image border there): what differs "
        "between the two rows comes from the frame itself (the spatial-bias shortcut); what they share is content or a "
        "smooth trend across the photo (the cuts are 60-85 % of it, so their regions are central). Peers have no score map."
    )
    out = dict(rows["photos"])
    out["rows"] = rows
    return table, out


def best_possible_kept(points: np.ndarray, width: int, height: int, ratio: float) -> float:
    """Upper bound: the most fixations any largest box of ``ratio`` keeps (every integer
    offset along the free axis; boxes as in :func:`asm.peers.largest_box`)."""
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
    :data:`asm.metrics.VALIDATION_ASPECTS`.

    Rows: asm's own crop (its size is its choice), asm restricted to the largest box of the
    aspect (placement only), the centre crop and peers (largest box), and the best possible
    largest box. Returns ``{method: {"1:1": kept, ..., "mean": ..., "area 1:1": ...,
    "offsets": [placement offsets]}}``.
    """
    from asm.cropper import CropOptions

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


def placement_table(results: dict[str, dict | None], title: str) -> Table:
    """How far from the centre crops sit: mean |offset| as a share of the free range (0 centred,
    0.5 at an end) and the share at an end (within 5 % of the range)."""
    table = Table(title, ["method", "mean |offset| (0.5 = at an end)", "share at an end"])
    for m, r in results.items():
        if r is None or not r.get("offsets") or m == "best possible box":
            continue
        o = np.abs(np.asarray(r["offsets"], np.float64))
        o = o[np.isfinite(o)]
        if len(o):
            table.add(m, _f(float(o.mean()) / 2), _f(float((o >= 0.9).mean())))
    table.notes.append("Offset: where the crop sits along the axis it has most room on, -1 / +1 at the two ends, 0 centred.")
    return table


def placement_histogram(results: dict[str, dict | None], out: str | os.PathLike,
                        methods: Sequence[str] = ("asm", "FastGaze x centre", "smartcrop.py", "libvips attention")) -> Path:
    """Histograms of placement offsets (-1 / +1: at an end of the free range, 0: centred)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in methods if results.get(m) and results[m].get("offsets")]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 2.8), sharey=True, squeeze=False)
    for ax, m in zip(axes[0], shown):
        o = np.asarray(results[m]["offsets"], np.float64)
        ax.hist(o[np.isfinite(o)], bins=np.linspace(-1, 1, 21), color="#4477aa")
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("offset (-1, +1: at an end)")
    axes[0][0].set_ylabel("crops")
    fig.suptitle("Where top-1 crops sit along their free axis (OSIE val, all aspects)", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def teacher_section(cropper, osie, teacher, limit: int | None = None, progress: bool = False) -> tuple[Table, dict[str, dict]]:
    """How well maps predict where OSIE's viewers looked: NSS and AUC (every pixel a
    negative) of FastGaze, FastGaze x centre Gaussian, the centre Gaussian alone and asm's θ_avg."""
    import cv2

    from asm.fastgaze import centre_gaussian, density_on_image, with_centre_prior
    from asm.metrics import auc_all_pixels, nss

    items = list(range(len(osie)))[:limit] if limit else list(range(len(osie)))
    scores: dict[str, dict[str, list[float]]] = {}
    for i in _bar(items, "saliency", progress):
        item = osie[i]
        rgb = _load(item.path)
        H, W = rgb.shape[:2]
        fg = cv2.resize(density_on_image(teacher.density(rgb), H, W), (W, H), interpolation=cv2.INTER_LINEAR)
        centre = centre_gaussian(H, W, 1 / 4)
        maps = {"FastGaze": fg, "FastGaze x centre Gaussian": with_centre_prior(fg), "centre Gaussian (W/4, H/4)": centre,
                "asm θ_avg": cropper.heatmaps(rgb, at_image_size=True).avg}
        for name, m in maps.items():
            s = scores.setdefault(name, {"NSS": [], "AUC": []})
            s["NSS"].append(nss(m, item.points))
            s["AUC"].append(auc_all_pixels(m, item.points))
    table = Table(f"Saliency maps against OSIE {osie.split} fixations ({len(items)} photos)", ["map", "NSS", "AUC"])
    out = {}
    for name, s in scores.items():
        out[name] = {k: float(np.nanmean(v)) for k, v in s.items()}
        table.add(name, _f(out[name]["NSS"], 2), _f(out[name]["AUC"]))
    table.notes.append("NSS: mean of the standardised map at the fixated pixels. AUC: the chance that a fixated pixel "
                       "scores above a random pixel of the image (every pixel a negative). The teacher's MANIFEST reports "
                       "FastGaze 2.45 / 0.875 and FastGaze x centre 2.54 / 0.885 on these photos.")
    return table, out


def photo_retention(cropper, samples, progress: bool = False) -> tuple[Table, dict[str, dict]]:
    """Share of the teacher x centre density kept at each validation aspect on held-out,
    teacher-labelled photos (:func:`asm.train_data.photo_gaze`): asm, the centre crop, and
    the largest box that keeps the most (the best possible placement)."""
    from asm.cropper import CropOptions
    from asm.metrics import density_kept

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


# --------------------------------------------------------------------- 4. the sheet
def _draw(rgb: np.ndarray, boxes: Sequence[tuple[str, list[int]]], target_h: int = 300) -> np.ndarray:
    """The photo ``target_h`` pixels tall with each ``(aspect, box)`` drawn by :func:`asm.viz.draw_crops`
    (colours in order, as the sheet's legend), labelled with its aspect."""
    import cv2

    from asm.cropper import Crop
    from asm.viz import draw_crops

    s = target_h / rgb.shape[0]
    img = cv2.resize(rgb, (max(1, round(rgb.shape[1] * s)), target_h), interpolation=cv2.INTER_AREA)
    crops = [Crop([int(round(v * s)) for v in box], 0.0, label) for label, box in boxes]
    return draw_crops(img, crops, labels=[c.aspect for c in crops])


def comparison_sheet(cropper, images: Sequence[tuple[str, str | os.PathLike]], out: str | os.PathLike,
                     methods: Sequence[str] = SHEET_METHODS, aspects=SHEET_ASPECTS, title: str = "",
                     status: dict | None = None) -> Path:
    """Draw a PNG grid: rows = ``images`` (``(label, path)``), columns = ``methods``; each cell
    the photo with the method's top-1 crop at each aspect outlined (one colour per aspect)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from asm.viz import PALETTE

    status = status or _peer_status()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    labels = [a for a, _ in aspects]
    cells: list[list[np.ndarray | str]] = []
    widths = []
    for _, path in images:
        rgb = _load(path)
        H, W = rgb.shape[:2]
        row: list[np.ndarray | str] = []
        for m in methods:
            if m == "asm":
                res = cropper.crop(rgb, aspect=labels)
                boxes = [(a, next(c.box for c in res.crops if c.aspect == a)) for a in labels]
            elif not status[m][0]:
                row.append(f"n/a\n{status[m][1]}")
                continue
            else:
                boxes = [(a, peer_mod.PEERS[m].place(rgb, r)) for a, r in aspects]
            row.append(_draw(rgb, boxes))
        widths.append(W / H)
        cells.append(row)
    n_rows, n_cols = len(cells), len(methods)
    aspect = max(widths) if widths else 4 / 3
    cell_w = 3.2
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell_w * n_cols, cell_w / aspect * n_rows + 1.0), squeeze=False)
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if isinstance(cell, str):
                ax.text(0.5, 0.5, cell, ha="center", va="center", fontsize=7, wrap=True)
            else:
                ax.imshow(cell)
            if r == 0:
                ax.set_title(methods[c], fontsize=11, fontweight="bold")
            if c == 0:
                ax.set_ylabel(images[r][0], fontsize=8)
    handles = [Patch(edgecolor=[v / 255 for v in PALETTE[i]], facecolor="none", linewidth=2, label=a) for i, a in enumerate(labels)]
    fig.legend(handles=handles, loc="lower center", ncol=len(labels), frameon=False, fontsize=10)
    fig.suptitle(title or "Top-1 crops: asm vs centre crop vs heuristic peers", fontsize=12)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def sheet_images(photos: Sequence[Path], osie=None, rows: int = 6) -> list[tuple[str, Path]]:
    """About ``rows`` validation images: half OSIE val, half photo-folder val, evenly spread."""
    picks: list[tuple[str, Path]] = []
    n_osie = rows // 2 if osie is not None and len(osie) else 0
    n_photo = rows - n_osie
    if osie is not None and n_osie:
        for k in range(n_osie):
            image_id = osie.ids[int((k + 0.5) * len(osie) / n_osie)]
            picks.append((f"OSIE {image_id}", osie.image_path(image_id)))
    if photos:
        for k in range(min(n_photo, len(photos))):
            p = Path(photos[int((k + 0.5) * len(photos) / n_photo) if n_photo <= len(photos) else k])
            picks.append((f"{p.parent.name}\n{p.name}", p))
    return picks


# -------------------------------------------------------------------------- driver
def _model_line(cropper, path) -> str:
    meta = getattr(cropper.model, "meta", {}) or {}
    cfg = cropper.model.config
    extra = ""
    if "val" in meta:
        try:
            import json

            v = json.loads(meta["val"])
            extra = f", checkpoint of epoch {v.get('epoch')}"
        except (ValueError, TypeError):
            pass
    return f"model `{shown(path)}` ({cfg.get('backbone')}, pattern {cfg.get('pattern')}{extra})"


def _load_teacher(path):
    """The FastGaze teacher, or why it cannot be loaded."""
    from asm.fastgaze import FastGaze
    from asm.train_data import teacher_path

    try:
        return FastGaze.from_file(teacher_path(path))
    except (FileNotFoundError, RuntimeError) as e:
        return str(e)


def run(args: argparse.Namespace) -> int:
    from asm.cropper import DEFAULT_MODEL_PATH, Cropper
    from asm.datasets import FCDB, FLMS, GAICD, OSIE, data_dir

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cropper = Cropper.from_pretrained(args.model, device=args.device)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"asm: eval: {e}", file=sys.stderr)
        return 2
    status = _peer_status()
    timer = Timer()
    progress = not args.no_progress
    t_start = time.time()
    sections: list[str] = []

    def emit(table: Table) -> None:
        text = table.markdown()
        sections.append(text)
        print(text, flush=True)

    def shared_root(name: str, *sub: str) -> Path | None:
        try:
            return data_dir(name).joinpath(*sub)
        except FileNotFoundError:
            return None

    head = [
        "# asm eval",
        "",
        f"{_model_line(cropper, args.model or DEFAULT_MODEL_PATH)}; device {args.device}, {torch.get_num_threads()} torch thread(s); "
        f"limit {args.limit if args.limit else 'none'}; {time.strftime('%Y-%m-%d %H:%M')}.",
        "Peers: " + ", ".join(f"{n} ({'ok' if ok else 'n/a: ' + why})" for n, (ok, why) in status.items()) + ".",
        "",
    ]
    print("\n".join(head), flush=True)

    # 1. GAICD
    root = args.gaicd or shared_root("gaicd", "images")
    if root is None:
        emit(Table("GAICD protocol", [], notes=["no GAICD root given and no shared data folder: skipped."]))
    else:
        try:
            ds = GAICD(root, split="all")
        except (FileNotFoundError, ValueError) as e:
            emit(Table("GAICD protocol", [], notes=[f"GAICD annotations unavailable ({e}): skipped."]))
        else:
            emit(gaicd_section(cropper, ds, args.limit, progress, timer, status)[0])

    # 2. FCDB / FLMS
    for name, cls, arg, sub in (("FCDB", FCDB, args.fcdb, "fcdb"), ("FLMS", FLMS, args.flms, "flms")):
        root = arg or shared_root(sub)
        if root is None:
            emit(Table(f"{name} protocol", [], notes=[f"no {name} root given and no shared data folder: skipped."]))
            continue
        try:
            ds = cls(root, split="test") if cls is FCDB else cls(root)
        except (FileNotFoundError, ValueError) as e:
            emit(Table(f"{name} protocol", [], notes=[f"{name} annotations unavailable ({e}): skipped."]))
            continue
        if not ds.available():
            line = f"no {name} images under {shown(ds.root)}: skipped ({len(ds.names)} annotated images, none present)."
            emit(Table(f"{name} protocol", [], notes=[line]))
            continue
        emit(best_crop_section(cropper, ds, name, args.limit, progress, timer, status)[0])

    # 3. border-free checks
    try:
        photos = validation_photos(args.photos)
    except (FileNotFoundError, ValueError) as e:
        photos = []
        emit(Table("Border-free checks (a), (b)", [], notes=[f"no validation photos ({e}): skipped."]))
    if photos:
        photos_used = photos[: args.limit] if args.limit else photos
        t_a, _, maps = photo_vs_cut(cropper, photos_used, args.cuts, args.seed, progress, timer, status)
        emit(t_a)
        emit(border_bias(maps)[0])
    osie = None
    if args.osie or args.sheet:
        try:
            osie = OSIE(args.osie_root, split="val")
        except (FileNotFoundError, ValueError) as e:
            if args.osie:
                emit(Table("Border-free check (c): eye fixations kept", [], notes=[f"no OSIE validation images ({e}): skipped."]))
    if args.osie and osie is not None:
        table, retention = osie_retention(cropper, osie, args.limit, progress, timer, status)
        emit(table)
        emit(placement_table(retention, "Placement: how far from the centre top-1 crops sit (OSIE val, all aspects)"))
        if args.placements:
            print(f"placement histogram: {placement_histogram(retention, args.placements)}\n", flush=True)
        teacher = _load_teacher(args.teacher)
        if isinstance(teacher, str):
            emit(Table("Saliency maps against OSIE fixations", [], notes=[f"no teacher ({teacher}): skipped."]))
        else:
            emit(teacher_section(cropper, osie, teacher, args.limit, progress)[0])
    if args.osie and photos and args.photos is None:
        teacher = _load_teacher(args.teacher)
        if not isinstance(teacher, str):
            from asm.datasets import photo_folder, split_by_source
            from asm.train_data import photo_gaze

            val_photos = split_by_source(photo_folder())[1]
            samples = photo_gaze(val_photos[: args.limit] if args.limit else val_photos, teacher, progress=progress)
            emit(photo_retention(cropper, samples, progress)[0])

    # 4. sheet
    if args.sheet:
        picks = sheet_images(photos, osie, args.sheet_rows)
        if picks:
            path = comparison_sheet(cropper, picks, args.sheet, status=status,
                                    title=f"Top-1 crops at 1:1, 9:16, 16:9 -- model {shown(args.model or DEFAULT_MODEL_PATH)}")
            print(f"comparison sheet: {path}\n", flush=True)
            sections.append(f"Comparison sheet: `{shown(path)}`.\n")
        else:
            print("comparison sheet: no validation images to draw, skipped\n", flush=True)

    # 5. timings
    t = timer.table()
    t.notes.append(f"Whole run: {time.time() - t_start:.1f} s (decoding and metric bookkeeping included).")
    emit(t)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(head) + "\n" + "\n".join(sections), encoding="utf-8")
        print(f"written: {out}", flush=True)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model next to the centre crop and heuristic peers",
        description="Evaluate asm next to the centre crop and the heuristic peers (smartcrop.py, libvips\n"
        "attention and entropy) on the same images: GAICD protocol, FCDB/FLMS protocol, border-free\n"
        "checks (photo vs re-framed cut, score-map border bias, OSIE fixation retention with --osie),\n"
        "an optional comparison sheet, timings. Prints markdown tables; --out writes them to a file.\n"
        "Sections whose images are missing say so and are skipped.",
        epilog="example:\n  asm eval --model runs/v1/best.pt --osie --sheet docs/comparison.png --out benchmarks/results/eval.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", type=Path, metavar="PATH", help="a model file (default: the model shipped with asm)")
    p.add_argument("--gaicd", type=Path, metavar="ROOT", help="GAICD images (default: the shared gaicd/images)")
    p.add_argument("--fcdb", type=Path, metavar="ROOT", help="FCDB images (default: the shared fcdb folder)")
    p.add_argument("--flms", type=Path, metavar="ROOT", help="FLMS images (default: the shared flms folder)")
    p.add_argument("--photos", type=Path, metavar="DIR",
                   help="photos for the border-free checks: a photo folder with MANIFEST.txt (its validation sources "
                   "are used) or any folder of images (default: the shared photos)")
    p.add_argument("--osie", action="store_true", help="also measure eye fixations kept on OSIE validation (ids 1401-1500)")
    p.add_argument("--osie-root", type=Path, metavar="DIR", help="OSIE folder (default: the shared osie)")
    p.add_argument("--teacher", type=Path, metavar="PATH", help="FastGaze weights (default: the shared weights folder)")
    p.add_argument("--placements", type=Path, metavar="PATH", help="with --osie: draw the placement-offset histogram PNG here")
    p.add_argument("--sheet", type=Path, metavar="PATH", help="draw a comparison sheet PNG here")
    p.add_argument("--sheet-rows", type=int, default=6, metavar="N", help="photos on the sheet (default 6)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N images per section")
    p.add_argument("--cuts", type=int, default=3, metavar="K", help="random cuts per photo in check (a) (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random cuts (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads (default: torch's choice); 1 is far faster when other processes keep the cores busy")
    p.add_argument("--out", type=Path, metavar="FILE.md", help="also write the tables as markdown here")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="asm")
    add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(["eval", *sys.argv[1:]])
    sys.exit(ns.func(ns))
