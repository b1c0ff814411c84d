"""Eye-fixation sets: photos and the pixels people looked at.

Three sets share one layout in the shared folder (``images/<id>.jpg`` and
``fixation_points/<id>.png``, 255 at every pixel fixated by any viewer):

* :class:`OSIE` (Xu et al. 2014): everyday scenes, 800x600, 15 viewers. Ids 1001-1400
  ``train``, 1401-1500 ``val`` (the dataset's own split of the shared ids).
* :class:`EyeCrowd` (Jiang et al. 2014): crowds, 800x600, 16 viewers, plus head boxes drawn
  by people (``faces.json``, :meth:`EyeCrowd.heads`).
* :class:`NUSScene` (Liang et al. 2015): scenes mostly without people, sizes up to 1024.

EyeCrowd and NUS Scene have no split of their own: ``val`` is every 4th id in sorted order
(the 4th, 8th, ...: 100 of the 400 shared ids), ``train`` the other 300. Nothing in
training reads ``val``.

Points are pixel centres ``(col + 0.5, row + 0.5)`` in the pixel-edge frame of crop boxes.
``sigma(width, height)`` is each set's own fixation blur, in pixels of the stored photo.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asm.data.shared import _split_arg, data_dir

__all__ = ["FixationItem", "FixationSet", "OSIE", "EyeCrowd", "NUSScene", "FIXATION_SETS", "fixation_set"]

SPLITS = ("train", "val", "all")


@dataclass(frozen=True)
class FixationItem:
    """A photo and its fixations (all viewers) as ``[N, 2]`` float32 pixel-centre ``x, y``."""

    image_id: int
    path: Path
    points: np.ndarray
    size: tuple[int, int]  # (H, W)


class FixationSet(Sequence):
    """Photos with eye fixations (see the module docstring): ``set[i]`` is a :class:`FixationItem`.

    Args:
        root: folder with ``images/`` and ``fixation_points/`` (default: the shared ``data/<folder>``).
        split: ``"train"``, ``"val"`` or ``"all"``.
    """

    #: the set's name (``asm eval --fixations``, validation keys) and its shared folder
    name = ""
    folder = ""

    def __init__(self, root: str | os.PathLike | None = None, split: str = "all") -> None:
        self.split = _split_arg(split, SPLITS)
        self.root = Path(root).expanduser() if root is not None else data_dir(self.folder)
        fix_dir, img_dir = self.root / "fixation_points", self.root / "images"
        if not fix_dir.is_dir() or not img_dir.is_dir():
            raise FileNotFoundError(f"{self.root} must hold images/ and fixation_points/ ({self.name} layout)")
        imgs = set(os.listdir(img_dir))
        ids = sorted(int(stem) for stem, ext in map(os.path.splitext, os.listdir(fix_dir))
                     if ext.lower() == ".png" and stem.isdigit() and f"{stem}.jpg" in imgs)
        self._width = max((len(s) for s, _ in map(os.path.splitext, imgs) if s.isdigit()), default=1)
        self.ids = [i for n, i in enumerate(ids) if self._in_split(i, n)]
        if not self.ids:
            raise FileNotFoundError(f"no {self.name} images with fixations for split {split!r} under {self.root}")

    def _in_split(self, image_id: int, index: int) -> bool:
        """Whether the ``index``-th id (sorted) belongs to this split: every 4th id is ``val``."""
        return self.split == "all" or (index % 4 == 3) == (self.split == "val")

    def sigma(self, width: int, height: int) -> float:
        """The set's fixation blur (Gaussian standard deviation) in pixels of a ``width x height`` photo."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.ids)

    def stem(self, image_id: int) -> str:
        return str(image_id).zfill(self._width)

    def image_path(self, image_id: int) -> Path:
        return self.root / "images" / f"{self.stem(image_id)}.jpg"

    def fixations(self, image_id: int) -> tuple[np.ndarray, tuple[int, int]]:
        """``(points [N, 2] float32 xy pixel centres, (H, W))`` of one photo."""
        from PIL import Image

        with Image.open(self.root / "fixation_points" / f"{self.stem(image_id)}.png") as im:
            a = np.asarray(im.convert("L"))
        rows, cols = np.nonzero(a > 127)
        return np.stack([cols, rows], axis=1).astype(np.float32) + 0.5, (int(a.shape[0]), int(a.shape[1]))

    def __getitem__(self, i: int) -> FixationItem:  # type: ignore[override]
        image_id = self.ids[i]
        pts, size = self.fixations(image_id)
        return FixationItem(image_id, self.image_path(image_id), pts, size)

    def __iter__(self) -> Iterator[FixationItem]:
        for i in range(len(self.ids)):
            yield self[i]


class OSIE(FixationSet):
    """OSIE: ids 1001-1400 ``train``, 1401-1500 ``val`` (the other 200 of the 700 are not shared)."""

    name, folder = "osie", "osie"
    RANGES = {"train": (1001, 1400), "val": (1401, 1500), "all": (1001, 1700)}

    def _in_split(self, image_id: int, index: int) -> bool:
        lo, hi = self.RANGES[self.split]
        return lo <= image_id <= hi

    def sigma(self, width: int, height: int) -> float:
        return 24.0 * width / 800  # the dataset's own blur at 800x600


class EyeCrowd(FixationSet):
    """EyeCrowd crowds (800x600) with the head boxes people drew."""

    name, folder = "eyecrowd", "eyecrowd"

    def sigma(self, width: int, height: int) -> float:
        return 26.0 * width / 1024  # the dataset's own blur at 1024x768

    def heads(self, image_id: int) -> np.ndarray:
        """The drawn head boxes of one photo, ``[M, 4]`` float64 ``x1, y1, x2, y2`` pixel edges."""
        if not hasattr(self, "_heads"):
            self._heads = json.loads((self.root / "faces.json").read_text())
        return np.array(self._heads.get(f"{self.stem(image_id)}.jpg", []), dtype=np.float64).reshape(-1, 4)


class NUSScene(FixationSet):
    """NUS Scene: SUN2012 scenes, mostly without people, of many sizes."""

    name, folder = "nus", "nus-scene"

    def sigma(self, width: int, height: int) -> float:
        return 8.0 / 256 * max(width, height)  # the dataset's blur: 8 px on a 256-px map


#: The sets by name, in the order tables list them.
FIXATION_SETS: dict[str, type[FixationSet]] = {c.name: c for c in (OSIE, EyeCrowd, NUSScene)}


def fixation_set(name: str, split: str = "all", root: str | os.PathLike | None = None) -> FixationSet:
    """The fixation set ``name`` (a key of :data:`FIXATION_SETS`) for ``split``."""
    if name not in FIXATION_SETS:
        raise ValueError(f"unknown fixation set {name!r}; known: {', '.join(FIXATION_SETS)}")
    return FIXATION_SETS[name](root, split)
