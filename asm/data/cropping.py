"""The cropping data sets (GAICD, FCDB, FLMS): sequences of annotated images.

The annotation files are read as they are distributed (:mod:`asm.data.annotations`); nothing
is converted on disk. Boxes are always returned as ``x1, y1, x2, y2`` in original-image pixels (pixel-edge
coordinates: ``(0, 0, W, H)`` is the whole image), as ``float32`` tensors.

The annotation files are read from ``<shared>/data/<dataset>/`` (:mod:`asm.data.shared`);
the images are the user's (they are not redistributable) and are looked up under the
``root`` passed to each reader. Eye fixations are in :mod:`asm.data.fixations`, photographs in
:mod:`asm.data.photos`.

Cropping data sets
------------------
* :class:`GAICD` (Zeng et al. 2019): ``hcic_image_crop.json``
  ``{name: {"bbox": [[x1,y1,x2,y2], ...], "score": [MOS, ...]}}`` with the official
  1036/200 split of ``hcic_original_data_split.json``; or the GAICD release layout
  ``annotations/{train,test}/<name>.txt`` (one crop a line, ``y1 x1 y2 x2 MOS``; MOS ``-2``
  marks an unrated crop and is dropped), chosen with ``annotations=<that folder>``.
* :class:`FCDB` (Chen et al. 2017): ``cropping_{training,testing}_set.json``, one best crop
  per image as ``[x, y, w, h]`` (converted here); the image name is the basename of the
  Flickr URL (what the dataset's download script writes).
  (``fcdb/hcic_image_crop.json`` is not read: although its MANIFEST calls its boxes
  ``x1,y1,x2,y2``, 1577 of its 1580 entries equal the ``[x, y, w, h]`` of the cropping files.)
* :class:`FLMS` (Fang et al. 2014): ``hcic_image_crop.json`` ``{"<id>_Large.jpg": [[x1,y1,x2,y2], ...]}``,
  up to 10 expert best crops per image, no scores.

Each reader knows every annotated image (:attr:`names`, :meth:`annotation`), but
``len()``, indexing and iteration cover only :meth:`available` -- the annotated images
present under ``root``. Iterating a reader with no image present raises
:class:`FileNotFoundError` with the place it looked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from asm.data.annotations import read_fcdb_cropping, read_flms, read_gaicd_json, read_gaicd_split, read_gaicd_txt
from asm.data.shared import _split_arg, data_dir

__all__ = ["CropAnnotation", "GAICD", "FCDB", "FLMS"]


@dataclass(frozen=True)
class CropAnnotation:
    """One annotated image of a cropping data set.

    ``boxes``: ``[N, 4]`` float32, ``x1, y1, x2, y2`` in original pixels. For GAICD these are
    all rated crops and ``scores`` their MOS (``[N]`` float32); for FCDB/FLMS they are the
    annotated best crops and ``scores`` is ``None``.
    """

    name: str
    path: Path
    boxes: Tensor
    scores: Tensor | None = None


class _AnnotatedImages(Sequence):
    """Annotations for a list of image names; images looked up under ``root``."""

    dataset = "dataset"

    def __init__(self, root: str | os.PathLike | None, names: list[str]) -> None:
        if root is None:
            raise ValueError(f"{self.dataset}: pass root, the folder that holds the images")
        self.root = Path(root).expanduser()
        self._names = list(names)
        self._available: list[str] | None = None
        self._paths: dict[str, Path] = {}

    # -- where images are ------------------------------------------------------------
    def _search_dirs(self, name: str) -> list[Path]:
        return [self.root]

    @property
    def names(self) -> list[str]:
        """All annotated image names of this split (present or not)."""
        return list(self._names)

    def image_path(self, name: str) -> Path:
        """Where the image is (the first search folder holding it), else ``root/name``."""
        self._scan()
        return self._paths.get(name, self.root / name)

    def _scan(self) -> None:
        if self._available is not None:
            return
        listing: dict[Path, set[str]] = {}
        found: dict[str, Path] = {}
        for name in self._names:
            for d in self._search_dirs(name):
                if d not in listing:
                    try:
                        listing[d] = set(os.listdir(d))
                    except OSError:
                        listing[d] = set()
                if name in listing[d]:
                    found[name] = d / name
                    break
        self._paths = found
        self._available = [n for n in self._names if n in found]

    def available(self) -> list[str]:
        """Names of the annotated images present under ``root`` (annotation order)."""
        self._scan()
        return list(self._available)

    def refresh(self) -> None:
        """Forget the cached directory scan (after images were added)."""
        self._available = None

    # -- items -------------------------------------------------------------------------
    def annotation(self, name: str):
        """The annotation of ``name`` whether or not its image is present."""
        raise NotImplementedError

    def _require(self) -> list[str]:
        avail = self.available()
        if not avail:
            raise FileNotFoundError(
                f"{self.dataset}: none of the {len(self._names)} annotated images is present under "
                f"{self.root} (looked for e.g. {self._search_dirs(self._names[0])[0] / self._names[0] if self._names else '-'}); "
                "the images are not distributed with the annotations -- download them and pass their folder as root"
            )
        return avail

    def __len__(self) -> int:
        return len(self.available())

    def __getitem__(self, i):
        avail = self._require()
        if isinstance(i, slice):
            return [self.annotation(n) for n in avail[i]]
        return self.annotation(avail[i])

    def __iter__(self) -> Iterator:
        for name in self._require():
            yield self.annotation(name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, annotated={len(self._names)})"


class GAICD(_AnnotatedImages):
    """GAICD: every rated crop of each image with its MOS.

    Args:
        root: folder with the images: flat (``root/<name>.jpg``) or the release layout
            (``root/images/{train,test}/<name>.jpg`` or ``root/{train,test}/<name>.jpg``).
            ``None``: the shared ``gaicd/images`` folder (one annotated image, 302166.jpg).
        split: ``"train"`` (1036), ``"test"`` (200) or ``"all"``.
        annotations: ``None`` -- the shared ``hcic_image_crop.json`` with the official split
            ``hcic_original_data_split.json``; a ``.json`` path in that format (split from
            the shared split file; ``split="all"`` needs none); or a folder of GAICD release
            ``.txt`` files (``<folder>/<split>/<name>.txt`` or ``<folder>/<name>.txt``).
    """

    dataset = "GAICD"
    SPLITS = ("train", "test", "all")

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "test",
        annotations: str | os.PathLike | None = None,
    ) -> None:
        self.split = _split_arg(split, self.SPLITS)
        if root is None:
            root = data_dir("gaicd") / "images"
        self._split_of: dict[str, str] = {}
        ann = Path(annotations).expanduser() if annotations is not None else None
        if ann is not None and ann.is_dir():
            records = self._read_release(ann)
        else:
            json_path = ann if ann is not None else data_dir("gaicd") / "hcic_image_crop.json"
            if not json_path.is_file():
                raise FileNotFoundError(f"GAICD annotations not found: {json_path}")
            records = read_gaicd_json(json_path)
            if self.split == "all":
                names = list(records)
                try:
                    for s, ns in read_gaicd_split(data_dir("gaicd") / "hcic_original_data_split.json").items():
                        for n in ns:
                            self._split_of[n] = s
                except FileNotFoundError:
                    pass
            else:
                split_file = data_dir("gaicd") / "hcic_original_data_split.json"
                split_names = read_gaicd_split(split_file)[self.split]
                missing = [n for n in split_names if n not in records]
                if missing:
                    raise ValueError(f"{json_path}: {len(missing)} images of the {self.split} split are not annotated, e.g. {missing[0]}")
                names = split_names
                self._split_of = {n: self.split for n in names}
            records = {n: records[n] for n in names}
        self._records = records
        super().__init__(root, list(records))

    def _read_release(self, ann: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        splits = ("train", "test") if self.split == "all" else (self.split,)
        dirs = [(s, ann / s) for s in splits if (ann / s).is_dir()]
        if not dirs:
            dirs = [(self.split, ann)]
        records = {}
        for s, d in dirs:
            for txt in sorted(d.glob("*.txt")):
                name = txt.stem + ".jpg"
                records[name] = read_gaicd_txt(txt)
                self._split_of[name] = s
        if not records:
            raise FileNotFoundError(f"no GAICD .txt annotations under {ann} for split {self.split!r}")
        return records

    def _search_dirs(self, name: str) -> list[Path]:
        r = self.root
        s = self._split_of.get(name)
        subs = [s] if s in ("train", "test") else ["train", "test"]
        return [r, *(r / x for x in subs), *(r / "images" / x for x in subs), r / "images"]

    @property
    def num_crops(self) -> int:
        return sum(len(s) for _, s in self._records.values())

    def annotation(self, name: str) -> CropAnnotation:
        boxes, scores = self._records[name]
        return CropAnnotation(name, self.image_path(name), torch.from_numpy(boxes.copy()), torch.from_numpy(scores.copy()))


class FCDB(_AnnotatedImages):
    """FCDB cropping set: one best crop per image (``split``: ``"train"`` 1369, ``"test"`` 345, ``"all"``)."""

    dataset = "FCDB"
    SPLITS = ("train", "test", "all")
    FILES = {"train": "cropping_training_set.json", "test": "cropping_testing_set.json"}

    def __init__(self, root: str | os.PathLike, split: str = "test", annotation_dir: str | os.PathLike | None = None) -> None:
        self.split = _split_arg(split, self.SPLITS)
        adir = Path(annotation_dir) if annotation_dir is not None else data_dir("fcdb")
        records: dict[str, np.ndarray] = {}
        for s in ("train", "test") if split == "all" else (split,):
            records.update(read_fcdb_cropping(adir / self.FILES[s]))
        self._records = records
        super().__init__(root, list(records))

    def annotation(self, name: str) -> CropAnnotation:
        return CropAnnotation(name, self.image_path(name), torch.from_numpy(self._records[name].copy()), None)


class FLMS(_AnnotatedImages):
    """FLMS: 500 images, up to 10 expert best crops each (4 988 crops)."""

    dataset = "FLMS"

    def __init__(self, root: str | os.PathLike, annotations: str | os.PathLike | None = None) -> None:
        path = Path(annotations) if annotations is not None else data_dir("flms") / "hcic_image_crop.json"
        self._records = read_flms(path)
        super().__init__(root, list(self._records))

    def _search_dirs(self, name: str) -> list[Path]:
        return [self.root, self.root / "image"]

    @property
    def num_crops(self) -> int:
        return sum(len(b) for b in self._records.values())

    def annotation(self, name: str) -> CropAnnotation:
        return CropAnnotation(name, self.image_path(name), torch.from_numpy(self._records[name].copy()), None)
