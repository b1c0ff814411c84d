"""Which files a batch job crops: files, folders (recursive), globs and manifests of paths."""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from asm.errors import BadRequest, echo

__all__ = ["expand_inputs", "IMAGE_SUFFIXES", "MANIFEST_SUFFIXES"]

#: Files a folder or a glob contributes (a file named on its own is always taken).
IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .jfif .png .webp .gif .tif .tiff .bmp .ppm .pgm .pbm .pnm .avif .heic".split()
)
#: Text files that list image paths, one per line (CSV/TSV: a ``path``/``file`` column, else the first).
MANIFEST_SUFFIXES = frozenset((".txt", ".lst", ".csv", ".tsv"))
_PATH_COLUMNS = ("path", "file", "filename", "image", "image_path")


def _folder(root: Path) -> Iterable[str]:
    """Image files under ``root``, recursively, in sorted order; hidden files and folders skipped."""
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield os.path.join(folder, name)


def _manifest(path: Path) -> Iterable[str]:
    """Paths listed in a text or CSV/TSV manifest; relative ones are relative to the manifest's folder."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise BadRequest(f"cannot read the manifest {echo(str(path))}: {getattr(e, 'strerror', None) or e}") from None
    if path.suffix.lower() in (".csv", ".tsv"):
        try:
            rows = [r for r in csv.reader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ",") if r]
        except csv.Error as e:  # a field over csv's limit (128 KB)
            raise BadRequest(f"cannot read the manifest {echo(str(path))}: {e}") from None
        header = [c.strip().lower() for c in rows[0]] if rows else []
        column = next((header.index(c) for c in _PATH_COLUMNS if c in header), None)
        entries = [r[column] if column is not None and column < len(r) else r[0] for r in rows[column is not None:]]
    else:
        entries = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    for entry in entries:
        entry = entry.strip()
        if entry:
            yield os.path.join(path.parent, os.path.expanduser(entry))


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """Absolute paths of the images named by ``inputs``, each once, in input order.

    Each input is a folder (its images, recursively), a manifest (``.txt``/``.lst``: one path
    a line, ``#`` comments; ``.csv``/``.tsv``: a ``path``/``file`` column or the first), a glob
    (``photos/**/*.jpg``) or a file. A path that does not exist is kept: the job answers it
    with an error line instead of dropping it silently. A glob that matches nothing raises
    :class:`~asm.errors.BadRequest`.
    """
    found: dict[str, None] = {}  # an ordered set
    for item in inputs:
        path = Path(os.path.expanduser(item))
        if path.is_dir():
            names: Iterable[str] = _folder(path)
        elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            names = _manifest(path)
        elif not path.exists() and glob.has_magic(item):
            names = sorted(p for p in glob.glob(os.path.expanduser(item), recursive=True) if os.path.isfile(p))
            if not names:
                raise BadRequest(f"{echo(item)} matches no files")
        else:
            names = [str(path)]
        for name in names:
            found.setdefault(os.path.abspath(name), None)
    return list(found)
