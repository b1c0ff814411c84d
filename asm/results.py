"""The answer's schema: :class:`Crop`, :class:`FocalPoint` and :class:`CropResult` (with their
JSON, both ways) and :class:`Heatmaps`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from asm.errors import echo

__all__ = ["Crop", "FocalPoint", "CropResult", "Heatmaps"]


@dataclass
class Crop:
    """One crop: ``box = [x1, y1, x2, y2]`` in original pixels (x2, y2 exclusive)."""

    box: list[int]
    score: float
    aspect: str
    shape: str = "rect"  # "rect" or "circle" (the disc inscribed in the square box)
    faces_kept: list[int] | None = None  # indices into CropResult.faces held whole (None: faces off)
    keep_kept: list[int] | None = None  # indices of the keep-regions held whole (None: none asked)

    def to_json(self) -> dict[str, Any]:
        out = {"box": list(self.box), "score": round(float(self.score), 6), "aspect": self.aspect, "shape": self.shape}
        if self.faces_kept is not None:
            out["faces_kept"] = list(self.faces_kept)
        if self.keep_kept is not None:
            out["keep_kept"] = list(self.keep_kept)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Crop:
        """The inverse of :meth:`to_json` (``KeyError``/``TypeError``/``ValueError`` if malformed)."""
        box = [int(v) for v in data["box"]]
        if len(box) != 4 or data["shape"] not in ("rect", "circle"):
            raise ValueError(f"not a crop: {echo(data)}")
        kept = {k: [int(i) for i in data[k]] if data.get(k) is not None else None for k in ("faces_kept", "keep_kept")}
        return cls(box, float(data["score"]), str(data["aspect"]), data["shape"], **kept)


@dataclass(frozen=True)
class FocalPoint:
    """A point ``x, y`` in image pixels (pixel-edge frame, as crop boxes) of a
    ``width x height`` image: asm's content focal point (:mod:`asm.search.focal`)."""

    x: float
    y: float
    width: int
    height: int

    @property
    def x_norm(self) -> float:
        return self.x / self.width

    @property
    def y_norm(self) -> float:
        return self.y / self.height

    def to_json(self) -> dict[str, Any]:
        """``{"x", "y"}`` in whole pixels and ``{"x_norm", "y_norm"}`` in 0..1 (4 decimals)."""
        return {"x": int(round(self.x)), "y": int(round(self.y)),
                "x_norm": round(self.x_norm, 4), "y_norm": round(self.y_norm, 4)}


@dataclass
class CropResult:
    """Crops for one image, best first within each aspect (aspects in request order)."""

    width: int
    height: int
    crops: list[Crop] = field(default_factory=list)
    #: detected faces ``[x1, y1, x2, y2, confidence]``, most prominent first (None: faces off)
    faces: list[list[float]] | None = None
    #: what could not be honoured, in words (e.g. keep-regions too far apart for an aspect)
    warnings: list[str] = field(default_factory=list)
    #: the image's content focal point, where asked for (``Analysis.crops(..., focal_point=True)``)
    focal_point: FocalPoint | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"width": self.width, "height": self.height, "crops": [c.to_json() for c in self.crops]}
        if self.faces is not None:
            out["faces"] = [{"box": [int(round(v)) for v in f[:4]], "score": round(float(f[4]), 3)} for f in self.faces]
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.focal_point is not None:
            out["focal_point"] = self.focal_point.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CropResult:
        """The inverse of :meth:`to_json` (faces and scores as rounded there); ``ValueError``
        (or ``KeyError``/``TypeError``) if malformed or a box leaves the image."""
        width, height = int(data["width"]), int(data["height"])
        crops = [Crop.from_json(c) for c in data["crops"]]
        for c in crops:
            x1, y1, x2, y2 = c.box
            if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
                raise ValueError(f"the box {c.box} lies outside the {width}x{height} image")
        faces = [[*map(float, f["box"]), float(f["score"])] for f in data["faces"]] if "faces" in data else None
        focal = data.get("focal_point")
        point = None
        if focal is not None:  # the 4-decimal shares, kept within the whole pixels given: both read back the same
            x, y = (min(max(float(focal[n]) * size, float(focal[p]) - 0.5), float(focal[p]) + 0.5)
                    for n, p, size in (("x_norm", "x", width), ("y_norm", "y", height)))
            point = FocalPoint(x, y, width, height)
        return cls(width, height, crops, faces, [str(w) for w in data.get("warnings", [])], point)


@dataclass
class Heatmaps:
    """θ_avg (where content matters) and θ_std (where placement matters), ``[h, w]`` float32
    (the score map's size unless an image size was asked for)."""

    avg: np.ndarray
    std: np.ndarray
