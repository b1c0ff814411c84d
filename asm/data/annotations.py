"""Plain readers of the cropping data sets' annotation files, exactly as published.

Nothing is converted on disk. Boxes are returned as ``[N, 4]`` float32 ``x1, y1, x2, y2`` in
original-image pixels (pixel-edge coordinates: ``(0, 0, W, H)`` is the whole image); the
data set classes over them are in :mod:`asm.data.cropping`.
"""

from __future__ import annotations

import json
import os

import numpy as np

__all__ = ["read_gaicd_json", "read_gaicd_split", "read_gaicd_txt", "read_fcdb_cropping", "read_flms", "GAICD_UNRATED",
           "gaicd_photo_size", "best_rated"]

#: GAICD's marker for a crop that was not rated (release ``.txt`` files only).
GAICD_UNRATED = -2.0


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


def gaicd_photo_size(boxes: np.ndarray) -> tuple[int, int]:
    """A GAICD photo's ``(W, H)`` from its rated crops ``[N, 4]``: they lie on a grid whose
    largest right / bottom edge is 23/24 of the side."""
    return round(float(boxes[:, 2].max()) * 24 / 23), round(float(boxes[:, 3].max()) * 24 / 23)


def best_rated(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``[B, 4]`` the crops with the highest mean opinion score (ties: all of them)."""
    return boxes[scores >= scores.max() - 1e-6]


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
