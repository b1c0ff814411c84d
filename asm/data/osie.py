"""OSIE eye fixations (Xu et al. 2014).

:class:`OSIE` (Xu et al. 2014) as stored in the shared folder: ``images/<id>.jpg`` (800x600)
and ``fixation_points/<id>.png`` (0/255, 255 at every pixel fixated by any of the 15
viewers). Ids 1001..1500 are present (the other 200 of the 700 are kept aside for
evaluation and are not here). Split by id: 1001..1400 ``train`` (400), 1401..1500 ``val``
(100). Points are returned as pixel centres ``(col + 0.5, row + 0.5)``, in the same
pixel-edge frame as crop boxes. Several viewers fixating the same pixel give one point
(the PNG is binary): 110-179 points per image (69 598 in all).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asm.data.shared import _split_arg, data_dir

__all__ = ["FixationItem", "OSIE", "OSIE_SPLITS"]

#: OSIE ids by split (inclusive ranges); only 1001..1500 are in the shared folder.
OSIE_SPLITS = {"train": (1001, 1400), "val": (1401, 1500), "all": (1001, 1700)}


@dataclass(frozen=True)
class FixationItem:
    """An OSIE image and its fixations (all viewers) as ``(N, 2)`` float32 pixel-centre ``x, y``."""

    image_id: int
    path: Path
    points: np.ndarray
    size: tuple[int, int]  # (H, W)



class OSIE(Sequence):
    """OSIE eye fixations: ``(image path, points (N, 2) pixel-centre xy)`` per image.

    Args:
        root: folder with ``images/<id>.jpg`` and ``fixation_points/<id>.png``
            (default: the shared ``data/osie``).
        split: ``"train"`` (ids 1001-1400), ``"val"`` (1401-1500) or ``"all"``.
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str = "all") -> None:
        self.split = _split_arg(split, tuple(OSIE_SPLITS))
        self.root = Path(root).expanduser() if root is not None else data_dir("osie")
        fix_dir, img_dir = self.root / "fixation_points", self.root / "images"
        if not fix_dir.is_dir() or not img_dir.is_dir():
            raise FileNotFoundError(f"{self.root} must hold images/ and fixation_points/ (OSIE layout)")
        lo, hi = OSIE_SPLITS[split]
        ids = []
        imgs = set(os.listdir(img_dir))
        for f in os.listdir(fix_dir):
            stem, ext = os.path.splitext(f)
            if ext.lower() == ".png" and stem.isdigit() and lo <= int(stem) <= hi and f"{stem}.jpg" in imgs:
                ids.append(int(stem))
        if not ids:
            raise FileNotFoundError(f"no OSIE images with fixations for split {split!r} under {self.root}")
        self.ids = sorted(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, image_id: int) -> Path:
        return self.root / "images" / f"{image_id}.jpg"

    def fixations(self, image_id: int) -> tuple[np.ndarray, tuple[int, int]]:
        """``(points (N, 2) float32 xy pixel centres, (H, W))`` of one image."""
        from PIL import Image

        with Image.open(self.root / "fixation_points" / f"{image_id}.png") as im:
            a = np.asarray(im.convert("L"))
        rows, cols = np.nonzero(a > 127)
        pts = np.stack([cols, rows], axis=1).astype(np.float32) + 0.5
        return pts, (int(a.shape[0]), int(a.shape[1]))

    def __getitem__(self, i: int) -> FixationItem:
        image_id = self.ids[i]
        pts, size = self.fixations(image_id)
        return FixationItem(image_id, self.image_path(image_id), pts, size)

    def __iter__(self) -> Iterator[FixationItem]:
        for i in range(len(self.ids)):
            yield self[i]
