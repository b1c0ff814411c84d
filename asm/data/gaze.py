"""Training photos and where people look at them (recipe v2).

Each :class:`GazeSample` holds a photo (long side at most :data:`STORE_SIDE`, all training
ever sees) and two densities over it, each ``[h, w]`` float32 summing to 1:

* ``target``: where people look. Human eye fixations (OSIE, EyeCrowd, NUS Scene, each blurred
  with its dataset's own sigma) where they exist; elsewhere the teacher's density times the centre prior
  (FastGaze x centre Gaussian: NSS 2.54 / AUC 0.885 against OSIE's viewers, the best
  estimate here of human looks). Crops are ranked by the share of it they keep.
* ``teacher``: the teacher's density alone (content, no centre bias): ``S`` of the
  saliency-aware loss and the target of distillation into θ_avg.

Teacher labels are computed once per photo and cached (``~/.cache/asm/teacher``); a set of
samples travels as one file (:mod:`asm.data.pack`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from asm.models.fastgaze import FastGaze, density_on_image, with_centre_prior
from asm.saliency import cached, fixation_density, image_cache_key

__all__ = ["GazeSample", "fixation_gaze", "photo_gaze", "teacher_path", "default_cache_dir", "STORE_SIDE", "MAP_STRIDE"]

#: Training photos are kept with their long side at most this long (the network input's
#: long side is 288; the outer crop keeps at least 85 % of a side).
STORE_SIDE = 384
#: Density maps have one cell per this many stored pixels.
MAP_STRIDE = 8


@dataclass
class GazeSample:
    """A training photo and where people look at it (see the module docstring)."""

    image: np.ndarray  # [H, W, 3] uint8, long side <= the store side (default STORE_SIDE)
    target: np.ndarray  # [H / MAP_STRIDE, W / MAP_STRIDE] float32, sums to 1
    teacher: np.ndarray  # same grid, sums to 1
    name: str
    points: np.ndarray | None = None  # [N, 2] human fixations in stored pixels, where known


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/asm`` (default ``~/.cache/asm``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asm"


def teacher_path(path: str | os.PathLike | None = None) -> Path:
    """The FastGaze weights: ``path``, else ``$ASM_TEACHER``, else the shared ``weights/fastgaze-saliency.pth``."""
    from asm.data.shared import shared_dir

    if path is None:
        path = os.environ.get("ASM_TEACHER")
    if path is None:
        base = shared_dir()
        if base is None:
            raise FileNotFoundError("no FastGaze weights: pass --teacher PATH, set ASM_TEACHER, or place the shared folder at <repo>/../shared")
        path = base / "weights" / "fastgaze-saliency.pth"
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"no FastGaze weights at {p}")
    return p


def _store(rgb: np.ndarray, side: int = STORE_SIDE) -> np.ndarray:
    """``rgb`` shrunk (area) so that its long side is at most ``side``; never enlarged."""
    h, w = rgb.shape[:2]
    s = min(1.0, side / max(h, w))
    if s == 1.0:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _grid(image: np.ndarray) -> tuple[int, int]:
    return max(1, -(-image.shape[0] // MAP_STRIDE)), max(1, -(-image.shape[1] // MAP_STRIDE))


def _on_grid(density: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """A density resized to ``grid`` (area), renormalised to sum 1."""
    d = cv2.resize(density.astype(np.float32), (grid[1], grid[0]), interpolation=cv2.INTER_AREA)
    return (d / max(float(d.sum()), 1e-12)).astype(np.float32)


def _teacher_density(teacher: FastGaze, path: Path, rgb: np.ndarray, cache_dir: Path | None) -> np.ndarray:
    """The teacher's density of one photo file on its fitted (400 px) image, ``[h, w]``; the
    network's cells are cached."""
    key = image_cache_key(path, "fastgaze400")
    cells = cached(lambda: teacher.density(rgb), key, None if cache_dir is None else cache_dir / "teacher")
    return density_on_image(cells, *rgb.shape[:2])


def _bar(items, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="photo", disable=not progress, mininterval=2.0)


def fixation_gaze(name: str, split: str, teacher: FastGaze, limit: int | None = None, cache_dir: Path | None = None,
                  progress: bool = False, store_side: int = STORE_SIDE) -> list[GazeSample]:
    """Photos of the fixation set ``name`` (:data:`asm.data.fixations.FIXATION_SETS`) and ``split``,
    stored at long side ``store_side``, with their human fixations (blurred with the set's own
    sigma) as the target."""
    from asm.data.fixations import fixation_set
    from asm.io import load_image

    data = fixation_set(name, split)
    out = []
    for i in _bar(range(len(data) if limit is None else min(limit, len(data))), f"{name} {split}", progress):
        item = data[i]
        rgb = load_image(item.path)
        image = _store(rgb, store_side)
        scale = image.shape[1] / rgb.shape[1]
        grid = _grid(image)
        pts = item.points * scale
        sigma = data.sigma(rgb.shape[1], rgb.shape[0]) * scale
        human = fixation_density(pts / MAP_STRIDE, grid, sigma=sigma / MAP_STRIDE, normalize="sum")
        content = _on_grid(_teacher_density(teacher, item.path, rgb, cache_dir), grid)
        out.append(GazeSample(image, human, content, f"{name}/{item.image_id}", pts.astype(np.float32)))
    return out


def photo_gaze(photos: list, teacher: FastGaze, cache_dir: Path | None = None, progress: bool = False,
               min_side: int = 128, store_side: int = STORE_SIDE) -> list[GazeSample]:
    """Photos (:class:`asm.data.photos.Photo` items, stored at long side ``store_side``) with the
    teacher x centre prior as the target. Photos whose short side is under ``min_side`` are skipped."""
    from asm.io import load_image

    out = []
    for photo in _bar(photos, "teacher labels", progress):
        rgb = load_image(photo.path)
        if min(rgb.shape[:2]) < min_side:
            continue
        image = _store(rgb, store_side)
        grid = _grid(image)
        content = _teacher_density(teacher, Path(photo.path), rgb, cache_dir)
        out.append(GazeSample(image, _on_grid(with_centre_prior(content), grid), _on_grid(content, grid), f"{photo.source}/{Path(photo.path).name}"))
    return out
