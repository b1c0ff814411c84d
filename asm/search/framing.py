"""How people frame a photo when they choose its crop: a prior over a crop's shape, size and place.

A free crop (``aspect="free"``) chooses its own shape. The network scores where content is,
but nothing it was trained on compares crops of different shapes and sizes, and a crop's
score is a mean over cells, so on its own it favours narrow crops tight on the subject. So:

* **How people frame.** :func:`framing_prior` is the log density of the best-rated crops of
  the GAICD training photos (1 036 photos, each crop rated by several people), a Gaussian
  over the crop's :func:`features`.
* **Scores made comparable across shapes.** :func:`shape_bias` is what a model's best crop
  of each shape scores on an average photo (in spreads of the photo's crop scores), measured
  on training photos; the free search subtracts it, so a shape wins only where *this* photo's
  content favours it.

``tools/fit_framing.py`` fits the prior and, for a model file, its shape bias and the prior's
weight, and writes them to ``framing.json`` beside this module (the bias is keyed by the
model file's SHA-256: another model gets none until it is fitted).

>>> prior = framing_prior(boxes, width, height)   # [N], 0 at the most typical crop, -0.5 per squared std away
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

__all__ = ["features", "framing_prior", "framing_model", "free_ratios", "shape_bias", "ShapeBias", "calibration_for",
           "FEATURES", "RELATIVE_ASPECTS", "BIAS_AREAS", "FRAMING_WEIGHT"]

#: The features of a crop, in the order of the fitted mean and covariance.
FEATURES = ("log_rel_aspect", "area", "dx", "dy")
#: The free search's candidate shapes: aspect ratios relative to the photo's (people's
#: best-rated crops lie between 0.80 and 1.37 of it in 90 % of GAICD photos); the fine
#: stage stretches them by up to 10 %.
RELATIVE_ASPECTS = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4, 1.6)
#: The area shares at which :func:`shape_bias` is tabulated (with :data:`RELATIVE_ASPECTS`).
BIAS_AREAS = tuple(round(0.35 + 0.05 * i, 2) for i in range(14))
#: Without a fitted bias for the model, a free crop's objective is its score plus this many
#: spreads of the image's crop scores times :func:`framing_prior` (a fitted model's own
#: weight is in ``framing.json``).
FRAMING_WEIGHT = 1.0


@dataclass(frozen=True)
class ShapeBias:
    """A model's shape bias (see the module docstring): ``table [len(RELATIVE_ASPECTS),
    len(BIAS_AREAS)]`` in spreads, and the weight of :func:`framing_prior` that goes with it."""

    table: np.ndarray
    weight: float


def shape_bias(boxes: np.ndarray, width: float, height: float, bias: ShapeBias) -> np.ndarray:
    """``[N]`` the bias of ``boxes [N, 4]``: ``bias.table`` interpolated (bilinear, clamped at
    its edges) at each box's log aspect relative to the photo's and its area share."""
    f = features(boxes, width, height)
    u = np.interp(f[:, 0], np.log(RELATIVE_ASPECTS), np.arange(len(RELATIVE_ASPECTS)))
    v = np.interp(f[:, 1], BIAS_AREAS, np.arange(len(BIAS_AREAS)))
    i0, j0 = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    i1, j1 = np.minimum(i0 + 1, len(RELATIVE_ASPECTS) - 1), np.minimum(j0 + 1, len(BIAS_AREAS) - 1)
    du, dv = u - i0, v - j0
    t = bias.table
    return ((1 - du) * (1 - dv) * t[i0, j0] + du * (1 - dv) * t[i1, j0] + (1 - du) * dv * t[i0, j1] + du * dv * t[i1, j1])


def calibration_for(digest: str) -> ShapeBias | None:
    """The fitted :class:`ShapeBias` of the model file whose SHA-256 is ``digest``, or None."""
    for entry in framing_model().get("calibration", []):
        if entry["model_sha256"] == digest:
            return ShapeBias(np.asarray(entry["table"], dtype=np.float64), float(entry["weight"]))
    return None


def free_ratios(width: float, height: float) -> list[float]:
    """The aspect ratios (width / height) the free search starts from in a ``width x height`` photo."""
    return [r * width / height for r in RELATIVE_ASPECTS]


def features(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """``[N, 4]`` features of ``boxes [N, 4]`` (pixel ``x1, y1, x2, y2``) in a ``width x height``
    photo: the log of the crop's aspect relative to the photo's, its share of the photo's area,
    and the offset of its centre from the photo's as a share of the photo's width and height."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.stack([np.log((w / h) / (width / height)), w * h / (width * height),
                     ((boxes[:, 0] + boxes[:, 2]) / 2 - width / 2) / width,
                     ((boxes[:, 1] + boxes[:, 3]) / 2 - height / 2) / height], axis=1)


@lru_cache(maxsize=1)
def framing_model() -> dict:
    """The fitted prior shipped with asm (``asm/search/framing.json``): ``mean [4]``, ``cov [4, 4]``, provenance."""
    return json.loads(resources.files("asm.search").joinpath("framing.json").read_text(encoding="utf-8"))


def framing_prior(boxes: np.ndarray, width: float, height: float, model: dict | None = None) -> np.ndarray:
    """``[N]`` log density (up to a constant) of ``boxes [N, 4]`` under how people crop a
    ``width x height`` photo: minus half the squared Mahalanobis distance of their features."""
    m = framing_model() if model is None else model
    d = features(boxes, width, height) - np.asarray(m["mean"], dtype=np.float64)
    return -0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(np.asarray(m["cov"], dtype=np.float64)), d)
