"""Readers for the cropping, saliency and photo data sets (annotation files as published).

Everything here reads the files exactly as they are distributed; nothing is converted on
disk. Boxes are always returned as ``x1, y1, x2, y2`` in original-image pixels (pixel-edge
coordinates: ``(0, 0, W, H)`` is the whole image), as ``float32`` tensors.

Where the data live
-------------------
:func:`shared_dir` finds the shared data folder: ``$ASM_SHARED`` if set, else
``<repo>/../shared`` if it exists. The annotation files are read from
``<shared>/data/<dataset>/``; the images are the user's (they are not redistributable)
and are looked up under the ``root`` passed to each reader.

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

Eye fixations
-------------
:class:`OSIE` (Xu et al. 2014) as stored in the shared folder: ``images/<id>.jpg`` (800x600)
and ``fixation_points/<id>.png`` (0/255, 255 at every pixel fixated by any of the 15
viewers). Ids 1001..1500 are present (the other 200 of the 700 are kept aside for
evaluation and are not here). Split by id: 1001..1400 ``train`` (400), 1401..1500 ``val``
(100). Points are returned as pixel centres ``(col + 0.5, row + 0.5)``, in the same
pixel-edge frame as crop boxes. Several viewers fixating the same pixel give one point
(the PNG is binary): 110-179 points per image (69 598 in all).

Photographs
-----------
:func:`photo_folder` lists ``<shared>/data/photos/<source>/*`` with the licence class of
each source parsed from ``photos/MANIFEST.txt``; :func:`split_by_source` splits them by
source (see :data:`DEFAULT_VAL_SOURCES`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "shared_dir",
    "data_dir",
    "CropAnnotation",
    "FixationItem",
    "Photo",
    "read_gaicd_json",
    "read_gaicd_split",
    "read_gaicd_txt",
    "read_fcdb_cropping",
    "read_flms",
    "GAICD",
    "FCDB",
    "FLMS",
    "OSIE",
    "OSIE_SPLITS",
    "LICENCE_CLASSES",
    "DEFAULT_VAL_SOURCES",
    "read_photo_manifest",
    "photo_folder",
    "split_by_source",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: GAICD's marker for a crop that was not rated (release ``.txt`` files only).
GAICD_UNRATED = -2.0


# --------------------------------------------------------------------------------------
# Where the shared data are
# --------------------------------------------------------------------------------------
def _repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """The shared data folder: ``$ASM_SHARED`` if set, else ``<repo>/../shared``; ``None`` if absent.

    When ``ASM_SHARED`` is set it wins, even if it does not exist (then ``None``).
    """
    env = os.environ.get("ASM_SHARED")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    p = _repo_root().parent / "shared"
    return p if p.is_dir() else None


def data_dir(name: str) -> Path:
    """``<shared>/data/<name>``; :class:`FileNotFoundError` with a clear message if missing."""
    base = shared_dir()
    if base is None:
        raise FileNotFoundError(
            "the shared data folder was not found: set ASM_SHARED or place it at <repo>/../shared"
        )
    p = base / "data" / name
    if not p.is_dir():
        raise FileNotFoundError(f"{p} does not exist (shared data folder {base} has no data/{name})")
    return p


# --------------------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class FixationItem:
    """An OSIE image and its fixations (all viewers) as ``(N, 2)`` float32 pixel-centre ``x, y``."""

    image_id: int
    path: Path
    points: np.ndarray
    size: tuple[int, int]  # (H, W)


@dataclass(frozen=True)
class Photo:
    path: Path
    source: str
    licence: str


# --------------------------------------------------------------------------------------
# Plain readers of the annotation files
# --------------------------------------------------------------------------------------
def _load_json(path: str | os.PathLike):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _boxes_array(rows, what: str) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float32).reshape(-1, 4) if len(rows) else np.zeros((0, 4), np.float32)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"{what}: expected boxes of 4 numbers, got shape {a.shape}")
    return a


def read_gaicd_json(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``hcic_image_crop.json`` -> ``{name: (boxes [N,4] x1y1x2y2, MOS [N])}`` (file order)."""
    raw = _load_json(path)
    out = {}
    for name, rec in raw.items():
        boxes = _boxes_array(rec["bbox"], f"{path}: {name}")
        scores = np.asarray(rec["score"], dtype=np.float32).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"{path}: {name} has {len(boxes)} boxes but {len(scores)} scores")
        keep = scores != GAICD_UNRATED
        out[name] = (boxes[keep], scores[keep])
    return out


def read_gaicd_split(path: str | os.PathLike) -> dict[str, list[str]]:
    """``hcic_original_data_split.json`` -> ``{"train": [names], "test": [names]}``."""
    raw = _load_json(path)
    return {k: list(v) for k, v in raw.items()}


def read_gaicd_txt(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One GAICD release annotation file -> ``(boxes [N,4] x1y1x2y2, MOS [N])``.

    Each line is ``y1 x1 y2 x2 MOS`` (whitespace or commas); lines with MOS ``-2`` (unrated)
    are dropped, blank lines skipped.
    """
    boxes, scores = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.replace(",", " ").split()
            if not parts:
                continue
            if len(parts) != 5:
                raise ValueError(f"{path}:{lineno}: expected 'y1 x1 y2 x2 MOS', got {line.strip()!r}")
            try:
                y1, x1, y2, x2, mos = (float(p) for p in parts)
            except ValueError:
                raise ValueError(f"{path}:{lineno}: not numbers: {line.strip()!r}") from None
            if mos == GAICD_UNRATED:
                continue
            boxes.append((x1, y1, x2, y2))
            scores.append(mos)
    return _boxes_array(boxes, str(path)), np.asarray(scores, dtype=np.float32)


def _xywh_to_xyxy(b) -> list[float]:
    x, y, w, h = (float(v) for v in b)
    return [x, y, x + w, y + h]


def _url_name(entry: dict) -> str:
    return entry["url"].rstrip("/").rsplit("/", 1)[-1]


def read_fcdb_cropping(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``cropping_{training,testing}_set.json`` -> ``{image name: best box [1,4] x1y1x2y2}``."""
    out = {}
    for e in _load_json(path):
        out[_url_name(e)] = _boxes_array([_xywh_to_xyxy(e["crop"])], str(path))
    return out


def read_flms(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """FLMS ``hcic_image_crop.json`` -> ``{name: best boxes [N,4] x1y1x2y2}``."""
    return {name: _boxes_array(rows, f"{path}: {name}") for name, rows in _load_json(path).items()}


# --------------------------------------------------------------------------------------
# Data set classes
# --------------------------------------------------------------------------------------
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


def _split_arg(split: str, allowed: tuple[str, ...]) -> str:
    if split not in allowed:
        raise ValueError(f"split must be one of {', '.join(allowed)}; got {split!r}")
    return split


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


# --------------------------------------------------------------------------------------
# OSIE
# --------------------------------------------------------------------------------------
#: OSIE ids by split (inclusive ranges); only 1001..1500 are in the shared folder.
OSIE_SPLITS = {"train": (1001, 1400), "val": (1401, 1500), "all": (1001, 1700)}


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


# --------------------------------------------------------------------------------------
# Photographs
# --------------------------------------------------------------------------------------
#: Licence classes of photos/MANIFEST.txt.
LICENCE_CLASSES = ("OPEN", "RESEARCH", "UNCLEAR")

#: Sources held out for validation: one OPEN source (pop-os wallpapers, 14 Unsplash photos
#: of varied subjects), the small RESEARCH classics (Set14 + Set5, 16 images) and the
#: UNCLEAR demo photos (darknet, 6). Training keeps the bulk: the other wallpapers (62),
#: ImageNet samples (1000) and Urban100 (100). With only OPEN photos: 62 train / 14 val.
DEFAULT_VAL_SOURCES = (
    "github-pop-os-wallpapers",
    "github-selfexsr-Set14",
    "github-selfexsr-Set5",
    "darknet-data",
)

_MANIFEST_SOURCE = re.compile(r"^\[([^\]]+)\]\s+count=(\d+)\s+class=(\w+)")


def read_photo_manifest(path: str | os.PathLike) -> dict[str, tuple[str, int]]:
    """``photos/MANIFEST.txt`` -> ``{source folder: (licence class, listed count)}``."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = _MANIFEST_SOURCE.match(line.strip())
            if m:
                out[m.group(1)] = (m.group(3), int(m.group(2)))
    return out


def photo_folder(root: str | os.PathLike | None = None, classes: Iterable[str] = ("OPEN", "RESEARCH")) -> list[Photo]:
    """The photos under ``root`` (default: shared ``data/photos``) whose licence class is in ``classes``.

    Sources listed in the MANIFEST but absent from the folder are skipped; folders that the
    MANIFEST does not list are ignored (their licence is unknown). The default leaves out
    ``UNCLEAR`` (demo photos of unclear licence). Sorted by source, then file name.
    """
    classes = tuple(classes)
    bad = [c for c in classes if c not in LICENCE_CLASSES]
    if bad:
        raise ValueError(f"unknown licence classes {bad}; choose from {', '.join(LICENCE_CLASSES)}")
    root = Path(root).expanduser() if root is not None else data_dir("photos")
    manifest = root / "MANIFEST.txt"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: the licence classes come from it")
    out = []
    for source, (licence, _count) in sorted(read_photo_manifest(manifest).items()):
        d = root / source
        if licence not in classes or not d.is_dir():
            continue
        for f in sorted(os.listdir(d)):
            if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS and (d / f).is_file():
                out.append(Photo(d / f, source, licence))
    return out


def split_by_source(items: Sequence, val_sources: Iterable[str] = DEFAULT_VAL_SOURCES) -> tuple[list, list]:
    """Deterministic ``(train, val)`` split of items with a ``.source``: no source in both.

    Items keep their order. Raises :class:`ValueError` if either side would be empty.
    """
    val_sources = set(val_sources)
    train = [it for it in items if it.source not in val_sources]
    val = [it for it in items if it.source in val_sources]
    if not train or not val:
        present = sorted({it.source for it in items})
        raise ValueError(
            f"split_by_source gives {len(train)} train / {len(val)} val items; "
            f"val_sources={sorted(val_sources)}, sources present: {present}"
        )
    return train, val
