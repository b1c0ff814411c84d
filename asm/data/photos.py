"""Photographs with a licence class, split by source for training and validation.

-----------
:func:`photo_folder` lists ``<shared>/data/photos/<source>/*`` with the licence class of
each source parsed from ``photos/MANIFEST.txt``; :func:`split_by_source` splits them by
source (see :data:`DEFAULT_VAL_SOURCES`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asm.data.shared import data_dir

__all__ = ["Photo", "IMAGE_EXTENSIONS", "LICENCE_CLASSES", "DEFAULT_VAL_SOURCES", "read_photo_manifest", "photo_folder",
           "split_by_source"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Photo:
    path: Path
    source: str
    licence: str


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
