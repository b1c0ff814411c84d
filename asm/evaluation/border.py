"""Border-free checks (a) and (b), which gate a model: does a photo score above a re-framed
cut of itself, and does the score map rise or fall at the image border?"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asm.evaluation import peers as peer_mod
from asm.evaluation.report import DASH, Table, Timer, _bar, _f, _load, _na_notes, _peer_status
from asm.search.candidates import random_cut

__all__ = ["validation_photos", "photo_vs_cut", "border_bias", "PhotoMaps", "PHOTO_TARGET"]

#: The share of photos that must beat their re-framed cut.
PHOTO_TARGET = 0.80


def validation_photos(photos: str | os.PathLike | None = None) -> list[Path]:
    """The validation photos: the held-out sources of :func:`asm.data.photos.split_by_source` of a
    photo folder with a ``MANIFEST.txt`` (OPEN and RESEARCH classes), else every image file
    directly in ``photos``."""
    from asm.data.photos import IMAGE_EXTENSIONS, photo_folder, split_by_source

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
    averaged over the maps (``[1, L, h, w]`` arrays or tensors, or the :class:`PhotoMaps` of check (a)).
    Also for θ_avg and θ_std.

    With :class:`PhotoMaps` two more rows separate the frame from the content: the same
    statistic on the maps of the re-framed cuts, and on the photo's own map over the cut's
    region (same content, no image border there). Their difference is what the image border
    alone does to the map.
    """
    import torch

    from asm.models import border_trend, theta_avg, theta_std

    table = Table("Border-free check (b): score-map border bias", [])
    if not len(maps):
        table.notes.append("no photos: skipped.")
        return table, {}
    photo_maps = maps.photos if isinstance(maps, PhotoMaps) else list(maps)

    def stats(ms: Sequence) -> dict[str, object]:
        per_ch, avg, std = [], [], []
        for m in ms:
            m = torch.as_tensor(m).detach().cpu().double()  # numpy maps (Analysis) or tensors (training)
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
