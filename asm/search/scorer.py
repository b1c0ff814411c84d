"""``Scorer``: the model's score of image boxes on one image's score map (paper eq. 2), plus
the centre prior (:mod:`asm.models.prior`). The search scores every candidate through it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asm.geometry import map_rows
from asm.models.prior import centre_prior
from asm.ops.kernel import pool_numpy
from asm.search.framing import ShapeBias

__all__ = ["Scorer"]


@dataclass(frozen=True)
class Scorer:
    """One image's ``score_map [1, L, h, w]`` (float32, covering the image), the pattern's
    ``partition [gh, gw]`` (int64, cell -> partition), the weight of the centre prior and the
    model's fitted shape bias (:class:`asm.search.framing.ShapeBias`, for free crops; None if
    the model has none)."""

    score_map: np.ndarray
    partition: np.ndarray
    prior_weight: float
    shape_bias: ShapeBias | None = None

    def score(self, boxes: np.ndarray, width: int, height: int, circular: bool = False) -> np.ndarray:
        """Scores ``[N]`` (float64) of ``boxes [N, 4]`` in a ``width x height`` image: the
        pooled map plus the weighted centre prior."""
        boxes = np.asarray(boxes, dtype=np.float64)
        if boxes.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        h, w = self.score_map.shape[-2:]
        # map coordinates in the map's own precision (float32), as the search always had them
        rows = map_rows(boxes, (width, height), (w, h)).astype(self.score_map.dtype).astype(np.float64)
        return pool_numpy(self.score_map, rows, self.partition, circular) + self.prior_weight * centre_prior(boxes, width, height)
