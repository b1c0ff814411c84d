"""How people frame a photo when they choose its crop: a prior over a crop's shape, size and place.

A free crop (``aspect="free"``) chooses its own shape. The network scores where content is,
but nothing it was trained on compares crops of different shapes and sizes, and a crop's
score is a mean over cells, so on its own it favours narrow crops tight on the subject. The
free search therefore takes its shape from people: :func:`framing_prior` is the log density
of the best-rated crops of the GAICD training photos (1 036 photos, each crop rated by
several people), a Gaussian over the crop's :func:`features`. ``tools/fit_framing.py`` fits
it and writes ``framing.json`` beside this module.

>>> prior = framing_prior(boxes, width, height)   # [N], 0 at the most typical crop, -0.5 per squared std away
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np

__all__ = ["features", "framing_prior", "framing_model", "free_ratios", "FEATURES", "RELATIVE_ASPECTS", "FRAMING_WEIGHT"]

#: The features of a crop, in the order of the fitted mean and covariance.
FEATURES = ("log_rel_aspect", "area", "dx", "dy")
#: The free search's candidate shapes: aspect ratios relative to the photo's (people's
#: best-rated crops lie between 0.80 and 1.37 of it in 90 % of GAICD photos); the fine
#: stage stretches them by up to 10 %.
RELATIVE_ASPECTS = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4, 1.6)
#: A free crop's objective is its score plus this many spreads of the image's crop scores
#: times :func:`framing_prior`: one standard deviation of score is worth one unit of log
#: density. Chosen on OSIE training photos from 0, 0.25, 0.5, 1 and 2: the most fixations
#: kept with shapes like people's (benchmarks/results/eval.md, "Free crops").
FRAMING_WEIGHT = 1.0


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
